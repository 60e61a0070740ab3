-- wrk script of bench/run.py: rotate over the requests in $BENCH_REQUESTS, one a line:
--   PATH<TAB>Header: value<TAB>Header: value ...
-- (cookies, bearer tokens, X-Forwarded-Proto), each thread from its own offset; count
-- every response that is not 2xx; print one JSON line (prefixed "BENCH ") at the end.
local requests = {}
local threads = {}
local counter = 0
-- globals, not locals: done() reads them from each thread with thread:get()
bad = 0
first_bad = ""

local function split(line, sep)
  local out = {}
  for part in string.gmatch(line, "([^" .. sep .. "]+)") do
    out[#out + 1] = part
  end
  return out
end

local function load()
  local name = os.getenv("BENCH_REQUESTS")
  local file = assert(io.open(name, "r"), "cannot open BENCH_REQUESTS " .. tostring(name))
  for line in file:lines() do
    if #line > 0 then
      local parts = split(line, "\t")
      local headers = {}
      for i = 2, #parts do
        local key, value = string.match(parts[i], "^([^:]+):%s*(.*)$")
        headers[key] = value
      end
      requests[#requests + 1] = wrk.format("GET", parts[1], headers)
    end
  end
  file:close()
  assert(#requests > 0, "no requests in " .. name)
end

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  load()
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status)
    end
  end
end

function done(summary, latency, requests_)
  local total_bad = 0
  local statuses = ""
  for _, thread in ipairs(threads) do
    total_bad = total_bad + (thread:get("bad") or 0)
    local s = thread:get("first_bad") or ""
    if s ~= "" then statuses = s end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"non2xx":%d,"first_bad":"%s","connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    total_bad, statuses, e.connect, e.read, e.write, e.timeout))
end
