-- routes.lua: the wrk script of the route step (bench/wrkroutes).
--
-- Arguments (after wrk's "--"): KEYFILE SPILL [HEADER ...]
--   KEYFILE  "-" for no Idempotency-Key; otherwise thread N reads its keys,
--            one per line, from KEYFILE.N as it sends them (each once). They
--            are read as they are sent, not loaded in init(): wrk runs each
--            thread's init() before starting the next thread, so a long load
--            there would let the first thread run alone for a while
--   SPILL    prefix of the keys a thread makes up once its file is used up
--            (unique too, but not placed; the harness reports how many)
--   HEADER   extra "Name: value" header lines sent with every request
--
-- Every scenario builds its requests in request(), keyed or not, so wrk does
-- the same kind of work for each; done() prints one "meshbench" line with the
-- exact counts and percentiles the harness reads (wrk --latency has no
-- p99.9) and how many keys each thread sent, in thread order.

local threads = {}

function setup(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

-- Globals of each thread's state: done() reads them with thread:get.
used = 0
spilled = 0

local static, head, tail, keys, spill

function init(args)
	local keyfile, headers = args[1] or "-", {}
	spill = (args[2] or "spill") .. "-" .. tid .. "-"
	for i = 3, #args do
		local name, value = args[i]:match("^([^:]+):%s*(.*)$")
		if name then
			headers[name] = value
		end
	end
	headers["Host"] = wrk.headers["Host"]
	if keyfile == "-" then
		static = wrk.format("GET", wrk.path, headers)
		return
	end
	headers["Idempotency-Key"] = "\001KEY\001"
	local template = wrk.format("GET", wrk.path, headers)
	local at = template:find("\001KEY\001", 1, true)
	head, tail = template:sub(1, at - 1), template:sub(at + 5)
	keys = assert(io.open(keyfile .. "." .. tid, "r"))
end

function request()
	if static then
		return static
	end
	used = used + 1
	local key = keys and keys:read("*l")
	if key then
		return head .. key .. tail
	end
	keys = nil
	spilled = spilled + 1
	return head .. spill .. used .. tail
end

function done(summary, latency, requests)
	local u, s, each = 0, 0, {}
	for i, t in ipairs(threads) do
		local n = t:get("used") or 0
		u = u + n
		s = s + (t:get("spilled") or 0)
		each[i] = tostring(n)
	end
	local e = summary.errors
	io.write(string.format(
		"meshbench requests=%d duration_us=%d bytes=%d errors_status=%d errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d " ..
		"p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f keys_used=%d keys_spilled=%d keys_used_by_thread=%s\n",
		summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
		latency.max, latency.mean, u, s, table.concat(each, ",")))
end
