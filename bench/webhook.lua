-- wrk script: POST pre-signed webhook bodies, each once (unique message ids).
-- BODIES (env) names the file written by gen_bodies.py (gzipped if it ends in .gz); threads
-- take every Nth line.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  requests = {}
  local i = 0
  local path = os.getenv("BODIES")
  local lines
  if path:sub(-3) == ".gz" then
    lines = io.popen("gzip -dc '" .. path .. "'"):lines()
  else
    lines = io.lines(path)
  end
  for line in lines do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local sig, body = line:sub(1, tab - 1), line:sub(tab + 1)
      requests[#requests + 1] = wrk.format("POST", "/v1/channels/whatsapp/webhook",
        { ["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig }, body)
    end
    i = i + 1
  end
  next_request = 1
end

function request()
  local r = requests[next_request]
  next_request = next_request + 1
  if next_request > #requests then
    next_request = 1 -- wrapped: later requests are duplicates (still acknowledged, not re-recorded)
  end
  return r
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or socket errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
