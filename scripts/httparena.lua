-- wrk script for HttpArena's baseline and limited-conn profiles.
--
--   wrk -c 4096 -d 15s http://127.0.0.1:8080/baseline11 -s scripts/httparena.lua -- baseline
--   wrk -c 4096 -d 15s http://127.0.0.1:8080/baseline11 -s scripts/httparena.lua -- limited 10
--
-- baseline: requests cycle through HttpArena's three shapes, byte for byte:
--   GET  /baseline11?a=13&b=42                      (answer: 55)
--   POST /baseline11?a=13&b=42, Content-Length: 2, body 20       (75)
--   POST /baseline11?a=13&b=42, chunked 2\r\n20\r\n0\r\n\r\n      (75)
-- limited N (default 10): the same, with `Connection: close` on every Nth
-- request, so the server answers and closes and wrk reconnects: connections
-- live N requests on average. wrk's request() cannot tell its connections
-- apart, so the count is per wrk thread, not per connection; HttpArena's own
-- client counts per connection and closes the connection itself.
-- wrk's -H headers do not apply: every request is sent as written here.

local shapes = {
  "GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
  "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 2\r\n\r\n20",
  "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n",
}
local closing = {}
for i, s in ipairs(shapes) do
  closing[i] = s:gsub("Host: localhost:8080\r\n", "Host: localhost:8080\r\nConnection: close\r\n", 1)
end

local every = 0
local n = 0

init = function(args)
  if args[1] == "limited" then
    every = tonumber(args[2]) or 10
  elseif args[1] ~= nil and args[1] ~= "baseline" then
    error("httparena.lua: unknown profile " .. args[1] .. " (baseline, limited N)")
  end
end

request = function()
  n = n + 1
  local i = (n - 1) % #shapes + 1
  if every > 0 and n % every == 0 then
    return closing[i]
  end
  return shapes[i]
end
