-- wrk's --latency distribution lists p50/p75/p90/p99 but not p95: print it (and the rest,
-- in one parseable line) when the run ends. Latencies are in microseconds.
-- Usage: wrk -t2 -c4 -d15s --latency -s bench/wrk_p95.lua URL

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format("  p95 latency: %.2fms\n", latency:percentile(95) / 1000))
  io.write(string.format(
    "WRK_RESULT p50_ms=%.2f p75_ms=%.2f p90_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.2f"
      .. " mean_ms=%.2f requests=%d rps=%.1f errors=%d non2xx=%d\n",
    latency:percentile(50) / 1000, latency:percentile(75) / 1000,
    latency:percentile(90) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
    summary.requests, summary.requests / seconds, errors, summary.errors.status))
end
