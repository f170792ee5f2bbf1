-- wrk script for bench_ingest: each thread sends its own slice of pre-signed deliveries
-- (files BENCH_WRK_FILES.<n>, one per thread, written by tests/benchmarks/signed.py).
--   BENCH_WRK_PORTS  comma-separated ports on 127.0.0.1; threads are spread over them
--   BENCH_WRK_WRAP   "1": cycle through the slice (the trivial baseline does not care about
--                    repeats); otherwise a thread that runs out asks for /exhausted, which
--                    answers 404 and is reported, so a duplicate never passes for ingest work
-- done() prints one JSON line: rate, latency percentiles, non-2xx answers and socket errors.

local threads = {}
local counter = 0

function setup(thread)
  local ports = {}
  for port in string.gmatch(os.getenv("BENCH_WRK_PORTS"), "[^,]+") do
    table.insert(ports, port)
  end
  local port = ports[(counter % #ports) + 1]
  thread.addr = wrk.lookup("127.0.0.1", port)[1]
  thread:set("slice", os.getenv("BENCH_WRK_FILES") .. "." .. counter)
  thread:set("host", "127.0.0.1:" .. port)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  wrap = os.getenv("BENCH_WRK_WRAP") == "1"
  requests = {}
  for line in io.lines(slice) do
    local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/webhooks/clerk", {
      ["Host"] = host,
      ["svix-id"] = id,
      ["svix-timestamp"] = ts,
      ["svix-signature"] = sig,
      ["content-type"] = "application/json",
    }, body)
  end
  exhausted_request = wrk.format("POST", "/exhausted", { ["Host"] = host }, "{}")
  next_index = 1
  non2xx = 0
  exhausted = 0
end

function request()
  if next_index > #requests then
    if not wrap then
      exhausted = exhausted + 1
      return exhausted_request
    end
    next_index = 1
  end
  local r = requests[next_index]
  next_index = next_index + 1
  return r
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non2xx_total, exhausted_total = 0, 0
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + thread:get("non2xx")
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"non2xx": %d, "exhausted": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, non2xx_total, exhausted_total, e.connect, e.read, e.write, e.status,
    e.timeout))
end
