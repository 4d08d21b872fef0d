-- wrk script for bench: `wrk ... -s wrk.lua URL -- FILE METHOD PATH`
--
-- Without FILE ("-") every request is the static one wrk builds from its
-- command line (-H headers), and wrk sends it without calling Lua.
-- With FILE, each line is one request, used once: "COOKIE<TAB>BODY" (either
-- part may be empty). Thread k of n takes lines k, k+n, k+2n, ... and builds
-- them all in init(), so request() is a table lookup. A thread that runs out
-- sends its last request again and counts it in "exhausted": the harness
-- prepares enough lines that this stays 0, and reports it when it is not.
-- done() prints one line "WRK_JSON {...}" for the harness to parse.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local position = 0
exhausted = 0

local function feed()
  position = position + 1
  local r = requests[position]
  if r == nil then
    exhausted = exhausted + 1
    return requests[#requests]
  end
  return r
end

function init(args)
  local file, method, path = args[1], args[2], args[3]
  if file == nil or file == "-" then
    return
  end
  local n = tonumber(args[4])
  local i = 0
  for line in io.lines(file) do
    if i % n == id then
      local tab = string.find(line, "\t", 1, true)
      local cookie, body = string.sub(line, 1, tab - 1), string.sub(line, tab + 1)
      local headers = {}
      if cookie ~= "" then
        headers["Cookie"] = cookie
      end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      table.insert(requests, wrk.format(method, path, headers, body))
    end
    i = i + 1
  end
  request = feed
end

function done(summary, latency, requests_stats)
  local out = 0
  for _, thread in ipairs(threads) do
    out = out + (thread:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
    '"exhausted": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, out))
end
