-- wrk script for HttpArena's baseline profile (docs/httparena.md): every
-- request is the next of HttpArena's three load templates, byte for byte as
-- in its requests/get.raw, post_cl.raw and post_chunked.raw (answers 55, 75, 75):
--   wrk -t 2 -c 64 -d 10s -s scripts/httparena.lua http://127.0.0.1:8080
-- HttpArena's load generator (gcannon --raw) fixes one template per
-- connection; wrk calls request() per request of a thread, so here each
-- connection sends the three in turn. The mix is the same thirds.
-- No response() is defined: wrk would then hand every answer to Lua. Check
-- the sums with scripts/httparena-validate; wrk's "Non-2xx or 3xx responses"
-- counts the answers that would not score.

local templates = {
  "GET /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
  "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 2\r\n\r\n20",
  "POST /baseline11?a=13&b=42 HTTP/1.1\r\nHost: localhost:8080\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n20\r\n0\r\n\r\n",
}

local n = 0

request = function()
  n = n % #templates + 1
  return templates[n]
end
