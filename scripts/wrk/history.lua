-- wrk script for scripts/bench-history.sh: GETs one history page, rotating over the
-- identities in FILE (one line each: tab-separated `name: value` headers, e.g. a bearer
-- token through the gateway, or the gateway's identity headers straight to chat); without
-- FILE, no identity (compat mode). Prints the latency percentiles.
--   wrk -t2 -c64 -d15s -s scripts/wrk/history.lua http://127.0.0.1:3500 -- PATH [FILE]
local requests = {}
local n = 0

function init(args)
  local path = args[1]
  if args[2] then
    for line in io.lines(args[2]) do
      local headers = {}
      for name, value in line:gmatch("([^\t:]+): ([^\t]+)") do headers[name] = value end
      table.insert(requests, wrk.format("GET", path, headers))
    end
  end
  if #requests == 0 then table.insert(requests, wrk.format("GET", path, {})) end
end

function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end

function done(summary, latency, requests)
  io.write(string.format("p50/p99/p99.9 ms: %.2f / %.2f / %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
