-- wrk script for HttpArena's limited-conn profile (docs/httparena.md): the
-- baseline templates, 10 requests per connection, then a new connection for
-- the next template, as gcannon -r 10 does:
--   wrk -t 2 -c 2 -d 10s -s scripts/httparena-limited.lua http://127.0.0.1:8080
-- wrk's Lua cannot close a connection, but wrk reconnects when an answer says
-- Connection: close. So every 10th request of a thread adds
-- "Connection: close" and the server closes after answering it.
-- Exact only with one connection per thread (-c equal to -t): request() is
-- called per thread, so with more connections per thread the closes are
-- spread over them unevenly. And here the server closes (FIN, TIME_WAIT on
-- the server's side) where gcannon's client resets (RST, no TIME_WAIT); for
-- that, use gcannon itself.

local per_conn = 10
local templates = {
  { "GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n", "\r\n" },
  { "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 2\r\n", "\r\n20" },
  { "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nTransfer-Encoding: chunked\r\n",
    "\r\n2\r\n20\r\n0\r\n\r\n" },
}

-- Each template's keep-alive request and its last, closing, request.
local keep, last = {}, {}
for i, t in ipairs(templates) do
  keep[i] = t[1] .. t[2]
  last[i] = t[1] .. "Connection: close\r\n" .. t[2]
end

local n = 0

request = function()
  local conn = math.floor(n / per_conn)
  local t = conn % #templates + 1
  local closing = n % per_conn == per_conn - 1
  n = n + 1
  if closing then
    return last[t]
  end
  return keep[t]
end
