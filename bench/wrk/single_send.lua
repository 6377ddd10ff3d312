-- wrk 4.1 script: single-send requests, each to a distinct recipient that carries the request's
-- send time, a fixed number of them, optionally on a fixed schedule. Run by bench/load.py:
--
--   BENCH_API_KEY=... wrk -t1 -cC -dMAX --timeout 20s -s bench/wrk/single_send.lua URL -- TAG COUNT RATE EMAIL_ID ITEMS
--
--   TAG       recipients are bench-TAG-N-EPOCHMS@example.com (N = 0..COUNT-1, EPOCHMS = the send time)
--   COUNT     requests in all; the thread stops once COUNT of them are answered
--   RATE      requests/s offered on a fixed schedule (request k is due at start + k/RATE); 0 = each
--             connection sends its next request as soon as its previous one is answered
--   EMAIL_ID  the single-send email; ITEMS: customProperties.items as JSON
--
-- Pacing: wrk 4.1 is closed-loop (one request in flight per connection); delay() holds a free
-- connection until the next request is due. When every connection is busy, a due request waits
-- for one: it goes out late and its latency is measured from that late start (coordinated
-- omission). The script measures that lateness per request ("lag"), so a run says whether its
-- offered rate held; wrk itself, at the end of a run, adds back the samples a stalled
-- connection would have taken (stats_correct), which the percentiles below include.
--
-- Prints "wrk-thread-done" when its requests are answered (wrk's main thread sleeps for the
-- whole -d otherwise: the harness then interrupts it) and, from done(), one line
-- "wrk-summary {json}" with the counts, wrk's latency percentiles (microseconds) and the lag.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_REALTIME = 0
local now_ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_REALTIME, now_ts)
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

local PARK_MS = 3600 * 1000 -- a connection with nothing left to send waits here until the stop

-- Per-thread state; globals, so that done() can read them with thread:get(). A request is
-- reserved by delay() before it is written; one that wrk writes again after a reconnect (the
-- server closed the connection or was down) has no reservation: it is a retry.
issued, answered, ok, reserved, retries = 0, 0, 0, 0, 0
first_ms, last_ms = 0, 0
lags = {}
local due = {} -- due times of the requests reserved by delay() and not sent yet, oldest first
local due_head = 1

function init(args)
  tag, count, rate, email_id, items = args[1], tonumber(args[2]), tonumber(args[3]), args[4], args[5]
  wrk.method = "POST"
  wrk.path = "/marketing/v3/transactional/single-email/send"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_API_KEY")
end

function delay()
  if reserved >= count then
    return PARK_MS
  end
  reserved = reserved + 1
  if rate == 0 then
    return 0
  end
  local now = now_ms()
  if not start_ms then
    start_ms = now
  end
  local at = start_ms + (reserved - 1) * 1000 / rate
  due[#due + 1] = at
  return math.max(0, math.floor(at - now))
end

function request()
  if reserved == 0 then
    -- wrk's own check of the script, before the run (every request goes through delay() first)
    return wrk.format(nil, nil, nil, "{}")
  end
  local now = now_ms()
  if issued == 0 then
    first_ms = now
  end
  if issued >= reserved + retries then
    retries = retries + 1
  elseif due[due_head] then
    lags[#lags + 1] = math.max(0, now - due[due_head])
    due[due_head] = nil
    due_head = due_head + 1
  end
  local n = issued
  issued = issued + 1
  local to = string.format("bench-%s-%d-%d@example.com", tag, n, math.floor(now))
  local body = string.format(
    '{"emailId":%s,"message":{"to":"%s"},"contactProperties":{"firstname":"Jane"},'
      .. '"customProperties":{"order_id":"%d","items":%s}}',
    email_id, to, 1000 + n, items)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  last_ms = now_ms()
  if status == 200 then
    ok = ok + 1
  end
  if answered >= count then
    io.write("wrk-thread-done\n")
    io.flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  return sorted[math.max(1, math.ceil(p / 100 * #sorted))]
end

local function count_over(values, limit)
  local n = 0
  for _, value in ipairs(values) do
    if value > limit then
      n = n + 1
    end
  end
  return n
end

function done(summary, latency, requests)
  local all_lags, totals = {}, { issued = 0, answered = 0, ok = 0, retries = 0 }
  local first, last = math.huge, 0
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
    first = math.min(first, thread:get("first_ms"))
    last = math.max(last, thread:get("last_ms"))
    for _, lag in ipairs(thread:get("lags")) do
      all_lags[#all_lags + 1] = lag
    end
  end
  table.sort(all_lags)
  local e = summary.errors
  io.write(string.format(
    'wrk-summary {"issued":%d,"answered":%d,"ok":%d,"retries":%d,"first_ms":%.3f,"last_ms":%.3f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},'
      .. '"lag_ms":{"p50":%.3f,"p99":%.3f,"max":%.3f,"over_10ms":%d}}\n',
    totals.issued, totals.answered, totals.ok, totals.retries, first, last,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    percentile(all_lags, 50), percentile(all_lags, 99), all_lags[#all_lags] or 0, count_over(all_lags, 10)))
end
