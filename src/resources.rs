//! The resources this server serves: one handler per resource, and the one
//! table that maps a path to its handler.
//!
//! A handler fills a [`Response`] (a status, its own fields, a body) and
//! knows nothing of the wire: `Server`, `Date`, `Content-Length` and
//! `Connection` are the encoder's (src/response.rs). Adding a resource is
//! one line in the [`resources!`] table below and its handler function.

use serde::Serialize;

use crate::request::{Body, Method};
#[cfg(test)]
use crate::response::HeaderName;
use crate::response::{BodyBuffer, Response, Status, ALLOW, CONTENT_TYPE};

/// Defines [`Route`] from the table: one variant per resource (plus
/// `Server` and `NotFound`), with its path, methods, `Allow` value and
/// handler. A `match`
/// rather than a table of function pointers: the handler of a route known
/// at compile time is inlined into the pipeline's loop.
macro_rules! resources {
    ($($route:ident $path:literal [$($method:ident),*] allows $allow:literal => $handler:ident;)*) => {
        /// A resource of this server, the server as a whole, or none.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Route {
            $($route,)*
            /// The server as a whole: `OPTIONS *` (RFC 9110 9.3.7).
            Server,
            NotFound,
        }

        impl Route {
            /// Every resource, in the order their paths are tried.
            pub const ALL: &'static [Route] = &[$(Route::$route),*];

            /// The path this route serves; empty for `Server` and
            /// `NotFound`, which no path names.
            pub fn path(self) -> &'static [u8] {
                match self {
                    $(Route::$route => $path,)*
                    Route::Server | Route::NotFound => b"",
                }
            }

            /// The methods this route serves, as `Allow` lists them: for
            /// `Server` every method some resource serves; empty for
            /// `NotFound`.
            pub fn allow(self) -> &'static [u8] {
                match self {
                    $(Route::$route => $allow,)*
                    Route::Server => SERVER_ALLOW,
                    Route::NotFound => b"",
                }
            }

            /// Whether this route's handler serves `method`.
            #[inline(always)]
            pub fn allows(self, method: Method) -> bool {
                match self {
                    $(Route::$route => matches!(method, $(Method::$method)|*),)*
                    Route::Server | Route::NotFound => false,
                }
            }

            /// Hands the handler's response to `write`; only for a resource
            /// and a method it serves ([`respond`] decides the rest). Each
            /// arm calls `write` itself, so that each response is encoded
            /// with its handler's constants.
            #[inline(always)]
            fn handle(self, exchange: &Exchange<'_>, write: impl WriteResponse) {
                let mut body = BodyBuffer::new();
                match self {
                    $(Route::$route => write.write(&$handler(exchange, &mut body)),)*
                    Route::Server | Route::NotFound => unreachable!("{self:?} has no handler"),
                }
            }
        }
    };
}

resources! {
    Plaintext b"/plaintext" [Get, Head] allows b"GET, HEAD" => plaintext;
    Json b"/json" [Get, Head] allows b"GET, HEAD" => json;
    Baseline b"/baseline11" [Get, Head, Post] allows b"GET, HEAD, POST" => baseline;
    Pipeline b"/pipeline" [Get, Head] allows b"GET, HEAD" => pipeline;
}

/// What a handler sees of its request.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    pub method: Method,
    /// The request head, from its method to the blank line.
    pub head: &'a [u8],
    /// The body, decoded, where it is read ([`reads_body`]); empty
    /// otherwise: other bodies are skipped unread.
    pub body: &'a [u8],
}

impl Exchange<'_> {
    /// The query of the request-target, without its `?`; empty when there
    /// is none. The head was validated: its request line is `method SP
    /// target SP version`.
    pub fn query(&self) -> &[u8] {
        let target = self.head.split(|&b| b == b' ').nth(1).unwrap_or_default();
        match target.iter().position(|&b| b == b'?') {
            Some(at) => &target[at + 1..],
            None => b"",
        }
    }
}

/// Whether the request's body is read before its handler runs, and handed
/// to it: a `POST /baseline11` (the one resource that uses a body), and any
/// other request there with a chunked body, since the answer to one waits
/// for the body's end and this handler needs the head, which is gone by
/// then. Every other body is skipped unread.
#[inline(always)]
pub fn reads_body(route: Route, method: Method, body: Body) -> bool {
    route == Route::Baseline
        && route.allows(method)
        && (method == Method::Post || body == Body::Chunked)
}

/// Largest request body read for a handler: a decimal `i64` is at most 20
/// bytes. A larger one gets 413 (RFC 9110 15.5.14) and the connection
/// closes, its body unread.
pub const MAX_BODY_BYTES: usize = BodyBuffer::CAPACITY;

/// What `OPTIONS *` lists: the methods some resource serves.
const SERVER_ALLOW: &[u8] = b"GET, HEAD, POST";

/// Hands the response to `method` on `route` to `write`: the handler's
/// for a method the resource serves, else the answer for the server
/// (`OPTIONS *`), for no such resource (404), for a method this resource
/// does not serve (405 with `Allow`) or one no resource does (501).
///
/// A callback rather than a returned [`Response`]: returned from one
/// function for every route, the response's pieces are values known only at
/// run time, each copied by a `memcpy` call; written from inside each arm,
/// they are constants, each copy one of a known length (measured in
/// docs/design.md, "Write batching and response composition").
#[inline(always)]
pub fn respond(exchange: &Exchange<'_>, route: Route, write: impl WriteResponse) {
    let method = exchange.method;
    match (route, method) {
        (_, Method::NotImplemented) => write.write(&Response::new(Status::NotImplemented)),
        // RFC 9110 9.3.7: a 200 to OPTIONS with no content has
        // `Content-Length: 0`, which the encoder writes.
        (Route::Server, _) => write.write(&Response::new(Status::Ok).header(ALLOW, route.allow())),
        (Route::NotFound, _) => write.write(&Response::new(Status::NotFound)),
        (_, _) if !route.allows(method) => {
            write.write(&Response::new(Status::MethodNotAllowed).header(ALLOW, route.allow()))
        }
        (_, _) => route.handle(exchange, write),
    }
}

/// Where [`respond`] hands its response: the pipeline's encoder, or a test.
/// A trait rather than a closure so the implementation can be marked
/// `#[inline(always)]`, which a closure cannot.
pub trait WriteResponse {
    fn write(self, response: &Response<'_>);
}

impl Route {
    /// The route whose path `path` is, ignoring a query string.
    #[inline]
    pub fn for_path(path: &[u8]) -> Route {
        for &route in Route::ALL {
            if let Some(rest) = path.strip_prefix(route.path()) {
                if rest.is_empty() || rest[0] == b'?' {
                    return route;
                }
            }
        }
        Route::NotFound
    }
}

/// The `/plaintext` body.
pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";

/// `/plaintext`: a static body.
#[inline(always)]
fn plaintext<'b>(_: &Exchange<'_>, _: &'b mut BodyBuffer) -> Response<'b> {
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(PLAINTEXT_BODY)
}

/// The JSON test's object, built fresh for every request.
#[derive(Serialize)]
pub struct Message {
    pub message: &'static str,
}

/// `/json`: a fresh [`Message`], serialized by serde_json for this request.
#[inline(always)]
fn json<'b>(_: &Exchange<'_>, body: &'b mut BodyBuffer) -> Response<'b> {
    let message = Message {
        message: "Hello, World!",
    };
    // Checked here, not by `expect`, which the compiler left a call.
    if let Err(e) = serde_json::to_writer(&mut *body, &message) {
        panic!("the message fits in the body buffer: {e}");
    }
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"application/json")
        .body(body.as_bytes())
}

/// `/baseline11?a=A&b=B` (HttpArena): the decimal sum A+B, plus the body's
/// number for a `POST`. Bad numbers, a missing or repeated `a` or `b`, and
/// a sum outside `i64` get 400 (docs/httparena.md).
fn baseline<'b>(exchange: &Exchange<'_>, body: &'b mut BodyBuffer) -> Response<'b> {
    let sum = (|| {
        let (a, b) = a_and_b(exchange.query())?;
        let sum = a.checked_add(b)?;
        match exchange.method {
            Method::Post => sum.checked_add(decimal(exchange.body)?),
            _ => Some(sum),
        }
    })();
    let Some(sum) = sum else {
        return Response::new(Status::BadRequest);
    };
    let mut digits = itoa::Buffer::new();
    std::io::Write::write_all(body, digits.format(sum).as_bytes())
        .expect("an i64 fits in the body buffer");
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(body.as_bytes())
}

/// The values of `a` and `b` in `query` (`name=value` pairs split by `&`,
/// taken as they are: no percent-decoding); `None` unless each appears
/// exactly once with a decimal value. Other parameters are ignored.
fn a_and_b(query: &[u8]) -> Option<(i64, i64)> {
    let (mut a, mut b) = (None, None);
    for pair in query.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let slot = match name {
            b"a" => &mut a,
            b"b" => &mut b,
            _ => continue,
        };
        if slot.replace(decimal(value)?).is_some() {
            return None;
        }
    }
    Some((a?, b?))
}

/// `-?[0-9]+` as an `i64`; `None` for anything else or out of range.
fn decimal(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negatively so that i64::MIN parses too.
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// `/pipeline` (HttpArena's pipelined profile): `ok`.
#[inline(always)]
fn pipeline<'b>(_: &Exchange<'_>, _: &'b mut BodyBuffer) -> Response<'b> {
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(b"ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        for (path, route) in [
            (&b"/plaintext"[..], Route::Plaintext),
            (b"/pipeline", Route::Pipeline),
            (b"/baseline11?a=1&b=2", Route::Baseline),
            (b"/baseline1", Route::NotFound),
            (b"/plaintext?a=1", Route::Plaintext),
            (b"/json", Route::Json),
            (b"/json?", Route::Json),
            (b"/json/", Route::NotFound),
            (b"/jsonx", Route::NotFound),
            (b"/", Route::NotFound),
            (b"", Route::NotFound),
        ] {
            assert_eq!(Route::for_path(path), route, "{path:?}");
        }
    }

    /// The response's status, fields and body, as owned values.
    type Described = (Status, Vec<(HeaderName, Vec<u8>)>, Vec<u8>);

    fn described(route: Route, method: Method) -> Described {
        struct Describe<'a>(&'a mut Option<Described>);
        impl WriteResponse for Describe<'_> {
            fn write(self, response: &Response<'_>) {
                *self.0 = Some((
                    response.status(),
                    response
                        .fields()
                        .iter()
                        .map(|&(n, v)| (n, v.to_vec()))
                        .collect(),
                    response.body_bytes().to_vec(),
                ));
            }
        }
        let mut described = None;
        let exchange = Exchange {
            method,
            head: b"GET /x HTTP/1.1\r\n\r\n",
            body: b"",
        };
        respond(&exchange, route, Describe(&mut described));
        described.expect("respond always writes")
    }

    #[test]
    fn handlers_set_type_and_body() {
        let plain = described(Route::Plaintext, Method::Get);
        assert_eq!(
            plain,
            (
                Status::Ok,
                vec![(CONTENT_TYPE, b"text/plain".to_vec())],
                b"Hello, World!".to_vec()
            )
        );
        let json = described(Route::Json, Method::Head);
        assert_eq!(
            json,
            (
                Status::Ok,
                vec![(CONTENT_TYPE, b"application/json".to_vec())],
                br#"{"message":"Hello, World!"}"#.to_vec()
            )
        );
    }

    /// Each route's `Allow` lists exactly the methods it serves.
    #[test]
    fn allow_lists_the_methods_served() {
        let all = [
            (Method::Get, &b"GET"[..]),
            (Method::Head, b"HEAD"),
            (Method::Post, b"POST"),
            (Method::Options, b"OPTIONS"),
            (Method::NotAllowed, b"DELETE"),
            (Method::NotImplemented, b"BREW"),
        ];
        for &route in Route::ALL {
            let listed: Vec<&[u8]> = route
                .allow()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .collect();
            let served: Vec<&[u8]> = all
                .iter()
                .filter(|(m, _)| route.allows(*m))
                .map(|&(_, name)| name)
                .collect();
            assert_eq!(listed, served, "{route:?}");
        }
        assert!(!Route::NotFound.allows(Method::Get));
        assert!(!Route::Server.allows(Method::Options));
    }

    fn baseline_answer(method: Method, target: &str, body: &[u8]) -> (Status, Vec<u8>) {
        let head = format!("{method:?} {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let exchange = Exchange {
            method,
            head: head.as_bytes(),
            body,
        };
        let mut buffer = BodyBuffer::new();
        let response = baseline(&exchange, &mut buffer);
        (response.status(), response.body_bytes().to_vec())
    }

    #[test]
    fn baseline_sums() {
        let ok = |sum: &str| (Status::Ok, sum.as_bytes().to_vec());
        let bad = (Status::BadRequest, vec![]);
        for (target, body, expected) in [
            ("/baseline11?a=13&b=42", &b""[..], ok("55")),
            ("/baseline11?b=42&a=13&c=x", b"", ok("55")),
            ("http://h/baseline11?a=-5&b=2", b"", ok("-3")),
            ("/baseline11?a=007&b=-0", b"", ok("7")),
            (
                "/baseline11?a=9223372036854775807&b=0",
                b"",
                ok("9223372036854775807"),
            ),
            (
                "/baseline11?a=-9223372036854775808&b=0",
                b"",
                ok("-9223372036854775808"),
            ),
            ("/baseline11?a=9223372036854775807&b=1", b"", bad.clone()),
            ("/baseline11?a=9223372036854775808&b=0", b"", bad.clone()),
            (
                "/baseline11?a=99999999999999999999999&b=1",
                b"",
                bad.clone(),
            ),
            ("/baseline11", b"", bad.clone()),
            ("/baseline11?a=1", b"", bad.clone()),
            ("/baseline11?a=1&b=", b"", bad.clone()),
            ("/baseline11?a=1&b", b"", bad.clone()),
            ("/baseline11?a=1&b=2&a=3", b"", bad.clone()),
            ("/baseline11?a=1&b=x", b"", bad.clone()),
            ("/baseline11?a=1&b=+2", b"", bad.clone()),
            ("/baseline11?a=1&b=%32", b"", bad.clone()),
            ("/baseline11?a=1&b=-", b"", bad.clone()),
            ("/baseline11?a=1&b=1.5", b"", bad.clone()),
        ] {
            assert_eq!(
                baseline_answer(Method::Get, target, body),
                expected,
                "GET {target}"
            );
        }
        // A GET's body is not added; a POST's is.
        assert_eq!(
            baseline_answer(Method::Get, "/baseline11?a=13&b=42", b"20"),
            ok("55")
        );
        assert_eq!(
            baseline_answer(Method::Post, "/baseline11?a=13&b=42", b"20"),
            ok("75")
        );
        assert_eq!(
            baseline_answer(Method::Post, "/baseline11?a=1&b=2", b"-4"),
            ok("-1")
        );
        for body in [
            &b""[..],
            b" 20",
            b"20\n",
            b"2 0",
            b"x",
            b"9223372036854775807",
        ] {
            assert_eq!(
                baseline_answer(Method::Post, "/baseline11?a=13&b=42", body),
                bad,
                "{body:?}"
            );
        }
    }

    /// `OPTIONS *` lists every method some resource lists, and no other.
    #[test]
    fn server_allow_is_the_union_of_the_resources() {
        let methods = |allow: &'static [u8]| -> Vec<&'static [u8]> {
            let mut methods: Vec<_> = allow
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .collect();
            methods.sort_unstable();
            methods.dedup();
            methods
        };
        let mut union: Vec<_> = Route::ALL.iter().flat_map(|r| methods(r.allow())).collect();
        union.sort_unstable();
        union.dedup();
        assert_eq!(methods(Route::Server.allow()), union);
    }

    #[test]
    fn answers_other_than_the_handlers() {
        let allow = || vec![(ALLOW, b"GET, HEAD".to_vec())];
        let all = || vec![(ALLOW, b"GET, HEAD, POST".to_vec())];
        for (route, method, expected) in [
            (Route::Server, Method::Options, (Status::Ok, all(), vec![])),
            (
                Route::Baseline,
                Method::NotAllowed,
                (Status::MethodNotAllowed, all(), vec![]),
            ),
            (
                Route::Pipeline,
                Method::Post,
                (Status::MethodNotAllowed, allow(), vec![]),
            ),
            (
                Route::Json,
                Method::Options,
                (Status::MethodNotAllowed, allow(), vec![]),
            ),
            (
                Route::Plaintext,
                Method::NotAllowed,
                (Status::MethodNotAllowed, allow(), vec![]),
            ),
            (
                Route::NotFound,
                Method::Get,
                (Status::NotFound, vec![], vec![]),
            ),
            (
                Route::NotFound,
                Method::NotImplemented,
                (Status::NotImplemented, vec![], vec![]),
            ),
            (
                Route::Json,
                Method::NotImplemented,
                (Status::NotImplemented, vec![], vec![]),
            ),
        ] {
            assert_eq!(described(route, method), expected, "{method:?} {route:?}");
        }
    }
}
