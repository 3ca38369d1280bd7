-- wrk script for bench.soak --mode mixed: POST /liveness with bodies rotated in a fixed
-- order (one file per slot, e.g. 7 live, 1 no face, 1 corrupt, 1 wrong hash_id), paced to a
-- fixed total rate, with every status code counted.
--   wrk -t1 -c4 -d600s -s bench/mixed.lua URL -- RATE body1.json body2.json ...
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *tp);
]]
local ts = ffi.new("timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  interval_ms = 1000 / tonumber(args[1]) -- one thread: its rate is the total rate
  requests = {}
  for i = 2, #args do
    local file = assert(io.open(args[i], "rb"))
    local body = file:read("*a")
    file:close()
    requests[#requests + 1] = wrk.format(
      "POST", "/liveness", { ["Content-Type"] = "application/json" }, body
    )
  end
  sent = 0
  statuses = {}
  next_ms = now_ms()
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end

-- Called before each request after the first on a connection: wait for its slot.
function delay()
  next_ms = next_ms + interval_ms
  return math.max(0, next_ms - now_ms())
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      parts[#parts + 1] = string.format('"%s": %d', code, n)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'MIXED {"statuses": {%s}, "transport_errors": %d, "requests": %d, ' ..
    '"p50_ms": %.1f, "p99_ms": %.1f}\n',
    table.concat(parts, ", "), errors.connect + errors.read + errors.write + errors.timeout,
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000
  ))
end
