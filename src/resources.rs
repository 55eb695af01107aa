//! The resources this server serves: one handler per resource, and the one
//! table that maps a path to its handler.
//!
//! A handler fills a [`Response`] (a status, its own fields, a body) and
//! knows nothing of the wire: `Server`, `Date`, `Content-Length` and
//! `Connection` are the encoder's (src/response.rs). Adding a resource is
//! one line in the [`resources!`] table below and its handler function.

use serde::Serialize;

use crate::request::Method;
#[cfg(test)]
use crate::response::HeaderName;
use crate::response::{BodyBuffer, Response, Status, ALLOW, CONTENT_TYPE};

/// Defines [`Route`] from the table: one variant per resource plus
/// `NotFound`, with its path, its `Allow` value and its handler. A `match`
/// rather than a table of function pointers: the handler of a route known
/// at compile time is inlined into the pipeline's loop.
macro_rules! resources {
    ($($route:ident $path:literal allows $allow:literal => $handler:ident;)*) => {
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

            /// Hands the handler's response to `write`; only for a resource
            /// and a method it serves ([`respond`] decides the rest). Each
            /// arm calls `write` itself, so that each response is encoded
            /// with its handler's constants.
            #[inline(always)]
            fn handle(self, write: impl WriteResponse) {
                let mut body = BodyBuffer::new();
                match self {
                    $(Route::$route => write.write(&$handler(&mut body)),)*
                    Route::Server | Route::NotFound => unreachable!("{self:?} has no handler"),
                }
            }
        }
    };
}

resources! {
    Plaintext b"/plaintext" allows b"GET, HEAD" => plaintext;
    Json b"/json" allows b"GET, HEAD" => json;
}

/// What `OPTIONS *` lists: the methods some resource serves.
const SERVER_ALLOW: &[u8] = b"GET, HEAD";

/// Hands the response to `method` on `route` to `write`: the handler's
/// for a method the resource serves, else the answer for the server
/// (`OPTIONS *`), for no such resource (404), for a method this resource
/// does not serve (405 with `Allow`) or one no resource does (501).
///
/// A callback rather than a returned [`Response`]: returned from one
/// function for every route, the response's pieces are values known only at
/// run time, each copied by a `memcpy` call; written from inside each arm,
/// they are constants (982 against 860 instructions per pipelined
/// `/plaintext` request, `scripts/bench --profile`).
#[inline(always)]
pub fn respond(route: Route, method: Method, write: impl WriteResponse) {
    match (route, method) {
        (_, Method::NotImplemented) => write.write(&Response::new(Status::NotImplemented)),
        // RFC 9110 9.3.7: a 200 to OPTIONS with no content has
        // `Content-Length: 0`, which the encoder writes.
        (Route::Server, _) => write.write(&Response::new(Status::Ok).header(ALLOW, route.allow())),
        (Route::NotFound, _) => write.write(&Response::new(Status::NotFound)),
        (_, _) if !route.allows(method) => {
            write.write(&Response::new(Status::MethodNotAllowed).header(ALLOW, route.allow()))
        }
        (_, _) => route.handle(write),
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

    /// Whether this route's handler serves `method`: every resource serves
    /// `GET` and `HEAD` and no other.
    pub fn allows(self, method: Method) -> bool {
        !matches!(self, Route::Server | Route::NotFound)
            && matches!(method, Method::Get | Method::Head)
    }
}

/// The `/plaintext` body.
pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";

/// `/plaintext`: a static body.
#[inline(always)]
fn plaintext(_body: &mut BodyBuffer) -> Response<'_> {
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
fn json(body: &mut BodyBuffer) -> Response<'_> {
    let message = Message {
        message: "Hello, World!",
    };
    serde_json::to_writer(&mut *body, &message).expect("the message fits in the body buffer");
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"application/json")
        .body(body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        for (path, route) in [
            (&b"/plaintext"[..], Route::Plaintext),
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
        respond(route, method, Describe(&mut described));
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

    #[test]
    fn every_resource_allows_get_and_head_only() {
        for &route in Route::ALL {
            assert_eq!(route.allow(), b"GET, HEAD");
            assert!(route.allows(Method::Get) && route.allows(Method::Head));
            assert!(!route.allows(Method::NotAllowed) && !route.allows(Method::Options));
        }
        assert!(!Route::NotFound.allows(Method::Get));
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
        for (route, method, expected) in [
            (
                Route::Server,
                Method::Options,
                (Status::Ok, allow(), vec![]),
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
