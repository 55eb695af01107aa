-- wrk script for HTTP/1.1 pipelining, as in TechEmpower's toolset/wrk/pipeline.lua:
-- every write sends `depth` copies of the request back to back, and wrk counts
-- each response. TFB's plaintext test runs it with a depth of 16:
--   wrk -H 'Host: tfb-server' -H 'Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7' \
--       -H 'Connection: keep-alive' --latency -d 15 -c 16384 --timeout 8 -t "$(nproc)" \
--       http://127.0.0.1:8080/plaintext -s scripts/pipeline.lua -- 16
-- The depth is the first script argument (after `--`); it defaults to 16 here
-- (TFB's copy defaults to 1 but is always given 16).

init = function(args)
  local r = {}
  local depth = tonumber(args[1]) or 16
  for i=1,depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
