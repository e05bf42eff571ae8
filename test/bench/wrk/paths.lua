-- wrk script: GET the paths listed in a file (one per line), cycling, each
-- thread from its own offset.  Usage: wrk ... -s paths.lua URL -- FILE
local paths = {}
local i = 0
local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

function init(args)
   for line in io.lines(args[1]) do
      paths[#paths + 1] = line
   end
   if #paths == 0 then
      error("no paths in " .. args[1])
   end
   i = ((tid or 0) * 7919) % #paths
end

function request()
   i = i % #paths + 1
   return wrk.format("GET", paths[i])
end
