-- wrk script for HttpArena's baseline and limited-conn profiles.
--
--   wrk -c 4096 -d 15s http://127.0.0.1:8080/baseline11 -s scripts/httparena.lua -- baseline
--   wrk -c 4096 -d 15s http://127.0.0.1:8080/baseline11 -s scripts/httparena.lua -- limited 10
--   wrk -c 4096 -d 15s https://127.0.0.1:8081/ -s scripts/httparena.lua -- json-tls
--   wrk -c 512 -d 15s https://127.0.0.1:8081/echo -s scripts/httparena.lua -- echo 10240
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
-- json-tls: GET /json/{count}?m={m} rotating over HttpArena's seven pairs in
-- its order (requests/json-tls-rotate.lua at 28606baf), with wrk.format's
-- request line and Host, as that script sends them.
-- echo N (default 10240): POST /echo with HttpArena's 8gbit body, N bytes of
-- "echo-body:" repeated, Content-Type application/octet-stream.
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

local json_paths = {
  "/json/1?m=3", "/json/5?m=7", "/json/10?m=2", "/json/15?m=5",
  "/json/25?m=4", "/json/40?m=8", "/json/50?m=6",
}

local every = 0
local n = 0

init = function(args)
  if args[1] == "limited" then
    every = tonumber(args[2]) or 10
  elseif args[1] == "json-tls" then
    for i, path in ipairs(json_paths) do
      shapes[i] = wrk.format("GET", path)
    end
    for i = #json_paths + 1, #shapes do
      shapes[i] = nil
    end
  elseif args[1] == "echo" then
    local size = tonumber(args[2]) or 10240
    local body = string.rep("echo-body:", math.ceil(size / 10)):sub(1, size)
    shapes = { "POST /echo HTTP/1.1\r\nHost: localhost:8081\r\n"
      .. "Content-Type: application/octet-stream\r\nContent-Length: " .. size
      .. "\r\n\r\n" .. body }
  elseif args[1] ~= nil and args[1] ~= "baseline" then
    error("httparena.lua: unknown profile " .. args[1]
      .. " (baseline, limited N, json-tls, echo N)")
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
