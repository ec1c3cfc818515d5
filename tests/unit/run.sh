#!/bin/sh
# Runs each unit-test binary given, sums their counts; last line: "N passed, N failed".
# A binary that crashes or prints no count line counts as one failure.
pass=0; fail=0
for t in "$@"; do
  res=$("$t" 2>&1); rc=$?
  printf '%s\n' "$res" | grep -v '^ok ' 
  line=$(printf '%s\n' "$res" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  if [ -z "$line" ]; then
    echo "$t: crashed or printed no result (exit $rc)"; fail=$((fail + 1)); continue
  fi
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
  pass=$((pass + p)); fail=$((fail + f))
  [ $rc -ne 0 ] && [ "$f" = 0 ] && { echo "$t: exit $rc"; fail=$((fail + 1)); }
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
