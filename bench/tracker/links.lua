-- wrk script: replays the signed link paths of $LINKS (one per line) round-robin, as a browser.
local paths = {}
local n = 0

init = function(args)
  local file = io.open(os.getenv("LINKS") or "/tmp/tracker-bench-links.txt", "r")
  for line in file:lines() do
    paths[#paths + 1] = line
  end
  file:close()
  n = math.random(#paths)
  wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
end

request = function()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50 ms: %.2f  p99 ms: %.2f  max ms: %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx/3xx: %d  socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
