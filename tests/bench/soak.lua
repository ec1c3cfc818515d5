-- wrk script for the soak (tests/bench/soak.sh): a fixed mix of 100 requests, shuffled once
-- (the same order in every thread), sent round robin over wrk's connections.
-- Run it with -t1. Arguments (after --): TOKEN BAD_TOKEN QUOTA [close]
--   QUOTA  answers after which wrk stops and reports (0: run for -d): the thread stops and
--          sends SIGINT to wrk's main thread (LuaJIT FFI, tgkill), which ends wrk's -d sleep
--   close  every request carries "Connection: close" (connection churn: a TLS handshake each)
-- done() prints one line, "STATUSES 200=n 204=n ...", the answers of all threads by status.
--
--   per 100   request                                            expected answer
--   40        GET  /api/items            valid token             200 (Redis limits, JWT)
--   10        GET  /api/items            valid token, Origin     200 + CORS headers
--    5        GET  /api/items?page=2     valid token             200
--   10        GET  /pub/items                                    200 (auth off)
--   10        POST /api/orders           valid token, JSON body  200 (body checks)
--    5        OPTIONS /api/orders        preflight               204 from visor
--    4        GET  /api/items            no token                401
--    2        GET  /api/items            token, wrong signature  401
--    4        GET  /nope                                         404 (no route)
--    2        GET  /.env                                         404 (scanner probe, counted)
--    4        GET  /lim/items                                    200 or 429 (20 per second)
--    2        GET  /api/boom             valid token             500 from the app, scrubbed
--    2        GET  /api/leak             valid token             400 with a stack, scrubbed
local ffi = require("ffi")
ffi.cdef[[ int getpid(void); int tgkill(int tgid, int tid, int sig); ]]
local threads = {}
function setup(thread) threads[#threads + 1] = thread end

local reqs, i, quota, n = {}, 0, 0, 0
statuses = {}   -- global: done() reads it from each thread (thread:get)

function init(args)
  local tok, bad = args[1], args[2]
  quota = tonumber(args[3]) or 0
  local close = args[4] == "close"
  local origin = "https://app.example.com"
  local body = '{"sku":"A-1042","qty":2,"note":"soak test order","tags":["x","y"],"address":{"city":"Lyon","zip":"69001"}}'
  local function add(k, method, path, hdrs, b)
    if close then hdrs["Connection"] = "close" end
    local r = wrk.format(method, path, hdrs, b)
    for _ = 1, k do reqs[#reqs + 1] = r end
  end
  local auth = "Bearer " .. tok
  add(40, "GET", "/api/items", { ["Authorization"] = auth })
  add(10, "GET", "/api/items", { ["Authorization"] = auth, ["Origin"] = origin })
  add(5, "GET", "/api/items?page=2", { ["Authorization"] = auth })
  add(10, "GET", "/pub/items", {})
  add(10, "POST", "/api/orders", { ["Authorization"] = auth, ["Origin"] = origin,
    ["Content-Type"] = "application/json" }, body)
  add(5, "OPTIONS", "/api/orders", { ["Origin"] = origin, ["Access-Control-Request-Method"] = "POST",
    ["Access-Control-Request-Headers"] = "authorization,content-type" })
  add(4, "GET", "/api/items", {})
  add(2, "GET", "/api/items", { ["Authorization"] = "Bearer " .. bad })
  add(4, "GET", "/nope", {})
  add(2, "GET", "/.env", {})
  add(4, "GET", "/lim/items", {})
  add(2, "GET", "/api/boom", { ["Authorization"] = auth })
  add(2, "GET", "/api/leak", { ["Authorization"] = auth })
  math.randomseed(42)
  for j = #reqs, 2, -1 do
    local k = math.random(j)
    reqs[j], reqs[k] = reqs[k], reqs[j]
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status)
  n = n + 1
  local k = tostring(status)
  statuses[k] = (statuses[k] or 0) + 1
  if n == quota then
    wrk.thread:stop()
    local pid = ffi.C.getpid()
    ffi.C.tgkill(pid, pid, 2)
  end
end

function done()
  local tot, keys, parts = {}, {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do tot[k] = (tot[k] or 0) + v end
  end
  for k in pairs(tot) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tot[k] end
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
end
