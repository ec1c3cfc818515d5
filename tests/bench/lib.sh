# Sourced by the bench scripts (run.sh, ratelimit.sh, jwt.sh): process bookkeeping and the
# small measuring helpers they share. Every process a script starts goes into PIDS[name]; the
# EXIT trap stops them all (TERM, then KILL).
declare -A PIDS=()

stop_all() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
trap stop_all EXIT
# waits up to 10 s for 127.0.0.1:$1 to accept
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 did not open" >&2; exit 1; }
# CPU clock ticks (user + system) used so far by the given PIDs together
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $s; }
# median of the numbers on stdin, one a line
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.4g\n", (a[NR/2]+a[NR/2+1])/2}'; }
