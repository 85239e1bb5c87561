-- wrk script: signed-in users holding short conversations with POST /api/chat.
--
-- Run with as many threads as connections (-t N -c N): wrk keeps Lua state per thread,
-- so one connection per thread gives each connection its own user and session id.
-- Arguments after `--`: a file of bearer tokens (one a line), turns per conversation.
-- done() prints one line, "BENCH_JSON {...}", that the bench reads.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(tokens, line) end
  end
  turns_per_conversation = tonumber(args[2]) or 8
  token = tokens[(id % #tokens) + 1]
  session_id = nil
  sent_session = nil
  turn = 0
  n = 0
  continued = 0
  broken = 0
  failed = 0
end

function request()
  n = n + 1
  local text = "Draft a short post about our spring sale, idea " .. n .. " from client " .. id
  local body
  if session_id == nil then
    body = '{"messages":[{"role":"user","content":"' .. text .. '"}]}'
  else
    body = '{"sessionId":"' .. session_id .. '","messages":[{"role":"user","content":"' .. text .. '"}]}'
  end
  sent_session = session_id
  return wrk.format("POST", "/api/chat", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
    session_id = nil
    turn = 0
    return
  end
  local sid = string.match(body, '"sessionId"%s*:%s*"([^"]+)"')
  if sent_session ~= nil then
    -- A reply in another session means the server forgot this conversation.
    if sid == sent_session then continued = continued + 1 else broken = broken + 1 end
  end
  turn = turn + 1
  if turn >= turns_per_conversation then
    session_id = nil
    turn = 0
  else
    session_id = sid
  end
end

function done(summary, latency, requests)
  local c, b, f = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("continued")
    b = b + t:get("broken")
    f = f + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d,"continued":%d,"broken":%d,"failed":%d}\n',
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(90)),
    math.floor(latency:percentile(99)), math.floor(latency.max), math.floor(latency.mean),
    e.connect, e.read, e.write, e.status, e.timeout, c, b, f))
end
