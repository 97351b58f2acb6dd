-- wrk script of modgate's cache-hit benchmark (see README.md).
--
-- Cycles through the URL paths listed, one per line, in the file named by
-- the BENCH_PATHS environment variable; each wrk thread starts at a
-- different offset so that threads do not request the same file in step.
-- At the end it prints one machine-readable line:
--
--   BENCH rps=<req/s> p50_us=<µs> p99_us=<µs> requests=<n> bytes=<n> errors=<n> status_errors=<n>
--
-- errors counts connect, read, write and timeout errors; status_errors
-- counts responses with a status other than 2xx or 3xx.

local function load_paths()
  local file = os.getenv("BENCH_PATHS")
  if file == nil or file == "" then
    error("BENCH_PATHS is not set")
  end
  local list = {}
  for line in io.lines(file) do
    if line ~= "" then
      list[#list + 1] = line
    end
  end
  if #list == 0 then
    error(file .. ": no paths")
  end
  return list
end

local paths = load_paths()
local next_thread = 0
local index = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  -- thread_id is set by setup in the main state before init runs.
  index = (thread_id * 7919) % #paths
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH rps=%.2f p50_us=%d p99_us=%d requests=%d bytes=%d errors=%d status_errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status))
end
