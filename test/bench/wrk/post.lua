-- wrk script: POST /v2/events with batches of events.  FILE holds one JSON
-- list per line whose message_ids are the placeholder @ID@; every request
-- replaces them with ids unique to this run (TAG), thread and request, so
-- every posted event is new.  Usage: wrk ... -s post.lua URL -- FILE TAG PATH
local bodies = {}
local n = 0
local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

function init(args)
   for line in io.lines(args[1]) do
      bodies[#bodies + 1] = line
   end
   if #bodies == 0 then
      error("no bodies in " .. args[1])
   end
   tag = args[2]
   path = args[3] or "/v2/events"
   headers = { ["Content-Type"] = "application/json" }
end

function request()
   n = n + 1
   local k = 0
   local body = string.gsub(bodies[n % #bodies + 1], "@ID@", function()
      k = k + 1
      return string.format("%s-%d-%d-%d", tag, tid, n, k)
   end)
   return wrk.format("POST", path, headers, body)
end
