//! Routing, decided in one place: from a request's method and target to a
//! resource and its path parameter, and from there to the handler's answer
//! or to 404, 405 (with `Allow`), 501 or `OPTIONS *`.
//!
//! Seven resources, two of them with one parameter each, do not need a
//! radix tree (matchit's, under axum): the fixed paths are tried as a
//! prefix compare and a look at the byte after it, in the order of how
//! often benchmarks ask for them, then the two parameter prefixes. What a
//! parameter must look like is its handler's to judge (a `count` that is
//! no number is a 400 there, not a 404 here).

use crate::http::{Method, Target};
use crate::resources::{self, Exchange, Wait};
use crate::response::{Response, SmallBody, Status, ALLOW};

/// A resource of this server, the server as a whole, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `/plaintext` (TFB)
    Plaintext,
    /// `/json` (TFB)
    Json,
    /// `/json/{count}?m={m}` (HttpArena's json-tls)
    JsonItems,
    /// `/baseline11?a=&b=` (HttpArena's baseline and latency profiles)
    Baseline,
    /// `/pipeline` (HttpArena's pipelined profile)
    Pipeline,
    /// `/delay/{ms}` (HttpArena's async profile)
    Delay,
    /// `/echo` (HttpArena's 8gbit profile)
    Echo,
    /// The server as a whole: `OPTIONS *` (RFC 9110 9.3.7).
    Server,
    NotFound,
}

/// What a request-target names: a resource, and the path parameter its
/// handler reads (`5` in `/json/5`; empty for resources without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<'a> {
    pub resource: Resource,
    pub param: &'a [u8],
    /// The target's path and query, as the handler sees it
    /// ([`Exchange::target`]); empty for a target without one.
    pub target: &'a [u8],
}

impl Route<'_> {
    const fn to(resource: Resource) -> Route<'static> {
        Route {
            resource,
            param: b"",
            target: b"",
        }
    }
}

/// Paths that name a resource as they are, tried in this order.
const FIXED: &[(&[u8], Resource)] = &[
    (b"/plaintext", Resource::Plaintext),
    (b"/json", Resource::Json),
    (b"/baseline11", Resource::Baseline),
    (b"/pipeline", Resource::Pipeline),
    (b"/echo", Resource::Echo),
];

/// Prefixes followed by one non-empty path segment, the parameter.
const WITH_PARAMETER: &[(&[u8], Resource)] = &[
    (b"/json/", Resource::JsonItems),
    (b"/delay/", Resource::Delay),
];

/// The route a target names; `head` is the head it was parsed from.
#[inline(always)]
pub fn route(target: Target, head: &[u8]) -> Route<'_> {
    match target.path_and_query(head) {
        Some(path_and_query) => route_path(path_and_query),
        None if target == Target::Server => Route::to(Resource::Server),
        None => Route::to(Resource::NotFound),
    }
}

/// The route of a path and query; the query is not looked at.
#[inline(always)]
pub fn route_path(path_and_query: &[u8]) -> Route<'_> {
    for &(path, resource) in FIXED {
        if let Some(rest) = path_and_query.strip_prefix(path) {
            if matches!(rest, [] | [b'?', ..]) {
                return Route {
                    resource,
                    param: b"",
                    target: path_and_query,
                };
            }
        }
    }
    for &(prefix, resource) in WITH_PARAMETER {
        if let Some(rest) = path_and_query.strip_prefix(prefix) {
            let end = rest
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(rest.len());
            if end > 0 && rest.get(end) != Some(&b'/') {
                return Route {
                    resource,
                    param: &rest[..end],
                    target: path_and_query,
                };
            }
        }
    }
    Route {
        target: path_and_query,
        ..Route::to(Resource::NotFound)
    }
}

impl Resource {
    /// Every resource that a path names, in the order they are tried.
    pub const ALL: &'static [Resource] = &[
        Resource::Plaintext,
        Resource::Json,
        Resource::Baseline,
        Resource::Pipeline,
        Resource::Echo,
        Resource::JsonItems,
        Resource::Delay,
    ];

    /// The path, as a pattern: `{name}` stands for the parameter.
    pub fn pattern(self) -> &'static str {
        match self {
            Resource::Plaintext => "/plaintext",
            Resource::Json => "/json",
            Resource::JsonItems => "/json/{count}",
            Resource::Baseline => "/baseline11",
            Resource::Pipeline => "/pipeline",
            Resource::Delay => "/delay/{ms}",
            Resource::Echo => "/echo",
            Resource::Server => "*",
            Resource::NotFound => "",
        }
    }

    /// The methods this resource serves, as `Allow` lists them: for
    /// `Server` every method some resource serves; empty for `NotFound`.
    pub fn allow(self) -> &'static [u8] {
        match self {
            Resource::Plaintext
            | Resource::Json
            | Resource::JsonItems
            | Resource::Pipeline
            | Resource::Delay => b"GET, HEAD",
            Resource::Baseline | Resource::Server => b"GET, HEAD, POST",
            Resource::Echo => b"POST",
            Resource::NotFound => b"",
        }
    }

    /// Whether this resource's handler serves `method`.
    #[inline(always)]
    pub fn allows(self, method: Method) -> bool {
        match self {
            Resource::Plaintext
            | Resource::Json
            | Resource::JsonItems
            | Resource::Pipeline
            | Resource::Delay => matches!(method, Method::Get | Method::Head),
            Resource::Baseline => matches!(method, Method::Get | Method::Head | Method::Post),
            Resource::Echo => method == Method::Post,
            Resource::Server | Resource::NotFound => false,
        }
    }

    /// Whether the handler reads the request's body: it is then read
    /// whole (up to `--max-body`) before the handler runs. Every other
    /// body is skipped unread.
    #[inline(always)]
    pub fn reads_body(self, method: Method) -> bool {
        method == Method::Post && matches!(self, Resource::Baseline | Resource::Echo)
    }
}

/// Where [`respond`] hands its answer: the pipeline's encoder, or a test.
/// A trait rather than a closure so the implementation can be marked
/// `#[inline(always)]`, which a closure cannot.
pub trait WriteResponse {
    /// The answer, now.
    fn write(self, response: &Response<'_>);
    /// The answer is [`resources::delayed`]`(wait)`, once `wait` has passed.
    fn hold(self, wait: Wait);
}

/// Hands the answer to a `method` request for `resource` to `write`: the
/// handler's for a method the resource serves, else the answer for the
/// server (`OPTIONS *`), for no such resource (404), for a method this
/// resource does not serve (405 with `Allow`) or one no resource does
/// (501). Bodies known to be short (a `/json` message, a sum) are rendered
/// into a [`SmallBody`] on the stack, made in the arm that needs it so that
/// no other answer pays for it; bodies of any length (`/json/{count}`) into
/// `large`, the worker's growable buffer. The [`Exchange`] is made the same
/// way, by `exchange`, only in the arms whose handler reads the request:
/// made before the call, its fields were stored to the stack for every
/// answer (`scripts/bench --profile`, callgrind by source line).
///
/// A callback rather than a returned [`Response`]: returned from one
/// function for every route, the response's pieces are values known only at
/// run time, each copied by a `memcpy` call; written from inside each arm,
/// they are constants, each copy one of a known length (measured in
/// docs/design.md, "Write batching and response composition").
#[inline(always)]
pub fn respond<'a>(
    method: Method,
    resource: Resource,
    exchange: impl FnOnce() -> Exchange<'a>,
    large: &mut Vec<u8>,
    write: impl WriteResponse,
) {
    // The served case first, one test of the method against the
    // resource's set, then a jump on the resource alone.
    if resource.allows(method) {
        // Each arm calls `write` itself, so that each response is encoded
        // with its handler's constants.
        match resource {
            Resource::Plaintext => write.write(&resources::plaintext()),
            Resource::Json => write.write(&resources::json(&mut SmallBody::new())),
            Resource::Pipeline => write.write(&resources::pipeline()),
            Resource::Baseline => {
                write.write(&resources::baseline(&exchange(), &mut SmallBody::new()))
            }
            Resource::JsonItems => write.write(&resources::json_items(&exchange(), large)),
            Resource::Echo => write.write(&resources::echo(&exchange())),
            Resource::Delay => match resources::delay(&exchange()) {
                Ok(wait) => write.hold(wait),
                Err(refused) => write.write(&refused),
            },
            // `allows` serves no method on these.
            Resource::Server | Resource::NotFound => write.write(&Response::new(Status::NotFound)),
        }
        return;
    }
    match (resource, method) {
        (_, Method::NotImplemented) => write.write(&Response::new(Status::NotImplemented)),
        // RFC 9110 9.3.7: a 200 to OPTIONS with no content has
        // `Content-Length: 0`, which the encoder writes.
        (Resource::Server, _) => {
            write.write(&Response::new(Status::Ok).header(ALLOW, resource.allow()))
        }
        (Resource::NotFound, _) => write.write(&Response::new(Status::NotFound)),
        _ => write.write(&Response::new(Status::MethodNotAllowed).header(ALLOW, resource.allow())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        let to = |resource| (resource, &b""[..]);
        let with = |resource, param: &'static str| (resource, param.as_bytes());
        for (path, expected) in [
            ("/plaintext", to(Resource::Plaintext)),
            ("/plaintext?a=1", to(Resource::Plaintext)),
            ("/pipeline", to(Resource::Pipeline)),
            ("/baseline11?a=1&b=2", to(Resource::Baseline)),
            ("/baseline1", to(Resource::NotFound)),
            ("/baseline11/", to(Resource::NotFound)),
            ("/json", to(Resource::Json)),
            ("/json?", to(Resource::Json)),
            ("/jsonx", to(Resource::NotFound)),
            ("/json/", to(Resource::NotFound)),
            ("/json/5", with(Resource::JsonItems, "5")),
            ("/json/50?m=6", with(Resource::JsonItems, "50")),
            ("/json/x?m=6", with(Resource::JsonItems, "x")),
            ("/json/5/", to(Resource::NotFound)),
            ("/json/5/6", to(Resource::NotFound)),
            ("/json//5", to(Resource::NotFound)),
            ("/json/?m=1", to(Resource::NotFound)),
            ("/delay/10", with(Resource::Delay, "10")),
            ("/delay/10?x", with(Resource::Delay, "10")),
            ("/delay", to(Resource::NotFound)),
            ("/delay/", to(Resource::NotFound)),
            ("/echo", to(Resource::Echo)),
            ("/echo?x=1", to(Resource::Echo)),
            ("/echo/", to(Resource::NotFound)),
            ("/JSON", to(Resource::NotFound)),
            ("/", to(Resource::NotFound)),
            ("", to(Resource::NotFound)),
            ("?q", to(Resource::NotFound)),
        ] {
            let route = route_path(path.as_bytes());
            assert_eq!((route.resource, route.param), expected, "{path:?}");
            assert_eq!(route.target, path.as_bytes(), "{path:?}");
        }
        assert_eq!(route(Target::Server, b"").resource, Resource::Server);
        assert_eq!(route(Target::Elsewhere, b"").resource, Resource::NotFound);
    }

    /// Each resource's `Allow` lists exactly the methods it serves, and
    /// `OPTIONS *` the union of them all.
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
        let listed = |allow: &'static [u8]| -> Vec<&'static [u8]> {
            allow
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .collect()
        };
        let mut union = Vec::new();
        for &resource in Resource::ALL {
            let served: Vec<&[u8]> = all
                .iter()
                .filter(|(m, _)| resource.allows(*m))
                .map(|&(_, name)| name)
                .collect();
            assert_eq!(listed(resource.allow()), served, "{resource:?}");
            union.extend(served);
        }
        union.sort_unstable();
        union.dedup();
        let mut server = listed(Resource::Server.allow());
        server.sort_unstable();
        assert_eq!(server, union);
        assert!(!Resource::NotFound.allows(Method::Get));
        assert!(!Resource::Server.allows(Method::Options));
    }

    /// Every pattern routes to its resource (with `7` for the parameter).
    #[test]
    fn patterns_route_to_their_resource() {
        for &resource in Resource::ALL {
            let path = resource
                .pattern()
                .replace(['{', '}'], "")
                .replace("count", "7")
                .replace("ms", "7");
            let route = route_path(path.as_bytes());
            assert_eq!(route.resource, resource, "{path}");
            let has_param = resource.pattern().contains('{');
            assert_eq!(route.param, if has_param { &b"7"[..] } else { b"" });
        }
    }
}
