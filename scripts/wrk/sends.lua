-- wrk script for scripts/bench-sends.sh --wrk: posts sends, rotating over the senders that
-- `sends --targets-to FILE` set up (one line each: path, token or empty, sender id), and
-- counts the answers by status so the script can compare 201s with the rows stored.
--   wrk -t2 -c64 -d20s -s scripts/wrk/sends.lua http://127.0.0.1:3200 -- FILE
local targets = {}
local n = 0
ok = 0
other = 0

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local path, token, sender = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    local headers = { ["content-type"] = "application/json" }
    if token ~= "" then headers["authorization"] = "Bearer " .. token end
    table.insert(targets, { path = path, headers = headers, sender = sender })
  end
  n = id * 1000000000
end

function request()
  n = n + 1
  local t = targets[(n % #targets) + 1]
  local body = '{"senderId":"' .. t.sender .. '","body":"wrk message ' .. n .. '"}'
  return wrk.format("POST", t.path, t.headers, body)
end

function response(status, headers, body)
  if status == 201 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local answered, refused = 0, 0
  for _, t in ipairs(threads) do
    answered = answered + t:get("ok")
    refused = refused + t:get("other")
  end
  io.write(string.format("answered 201: %d\nanswered otherwise: %d\n", answered, refused))
  io.write(string.format("p50/p99/p99.9 ms: %.2f / %.2f / %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
