//! The handlers: one function per resource, each filling a [`Response`]
//! (a status, its own fields, a body) from what it sees of its request.
//!
//! A handler knows nothing of the wire: `Server`, `Date`, `Content-Length`
//! and `Connection` are the encoder's (src/response.rs), and which handler
//! runs is the router's (src/router.rs). Adding a resource is a line in the
//! router's tables and a function here.

use serde::Serialize;

use crate::dataset::{Dataset, Item};
use crate::http::{decimal_i64, decimal_u64, query, query_param, Method};
use crate::response::{Response, SmallBody, Status, CONTENT_TYPE};

/// What a handler sees of its request.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    pub method: Method,
    /// The target's path and query (empty for a target without one).
    pub target: &'a [u8],
    /// The route's path parameter (`5` in `/json/5`); empty for resources
    /// without one.
    pub param: &'a [u8],
    /// The body, decoded, where the handler reads one
    /// ([`Resource::reads_body`](crate::router::Resource::reads_body));
    /// empty otherwise: other bodies are skipped unread.
    pub body: &'a [u8],
    /// What the handlers serve from.
    pub data: &'a Data,
}

/// What the handlers serve from, loaded once at start and shared by every
/// connection of the server.
#[derive(Debug, Default)]
pub struct Data {
    /// `--dataset`'s items, for `/json/{count}`; `None` when the file is
    /// absent (the route then answers 404).
    pub dataset: Option<Dataset>,
}

/// The `/plaintext` body.
pub const PLAINTEXT_BODY: &[u8] = b"Hello, World!";

/// `/plaintext`: a static body.
#[inline(always)]
pub fn plaintext() -> Response<'static> {
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
pub fn json(body: &mut SmallBody) -> Response<'_> {
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

/// `/pipeline` (HttpArena's pipelined profile): `ok`.
#[inline(always)]
pub fn pipeline() -> Response<'static> {
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(b"ok")
}

/// `/baseline11?a=A&b=B` (HttpArena): the decimal sum A+B, plus the body's
/// number for a `POST`. Bad numbers, a missing or repeated `a` or `b`, and
/// a sum outside `i64` get 400 (docs/httparena.md).
pub fn baseline<'b>(exchange: &Exchange<'_>, body: &'b mut SmallBody) -> Response<'b> {
    let sum = (|| {
        let query = query(exchange.target);
        let a = decimal_i64(query_param(query, b"a").ok()??)?;
        let b = decimal_i64(query_param(query, b"b").ok()??)?;
        let sum = a.checked_add(b)?;
        match exchange.method {
            Method::Post => sum.checked_add(decimal_i64(exchange.body)?),
            _ => Some(sum),
        }
    })();
    let Some(sum) = sum else {
        return Response::new(Status::BadRequest);
    };
    body.put(itoa::Buffer::new().format(sum).as_bytes());
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(body.as_bytes())
}

/// `/json/{count}?m={m}` (HttpArena's json-tls): the first `count` items
/// of the dataset, each with `total = price * quantity * m`, as
/// `{"items":[...],"count":N}`, serialized by serde_json for this request
/// from the loaded items. `count` is a decimal of at least 1, clamped to
/// the dataset's size (the `count` field says how many items came back);
/// `m` a decimal `i64`, 1 when absent. Anything else, or a total outside
/// `i64`, is a 400; without a dataset, 404.
pub fn json_items<'b>(exchange: &Exchange<'_>, body: &'b mut Vec<u8>) -> Response<'b> {
    let Some(dataset) = &exchange.data.dataset else {
        return Response::new(Status::NotFound);
    };
    let request = (|| {
        let count = decimal_u64(exchange.param).filter(|&count| count >= 1)?;
        let m = match query_param(query(exchange.target), b"m").ok()? {
            None => 1,
            Some(m) => decimal_i64(m)?,
        };
        let items = &dataset.items()[..count.min(dataset.items().len() as u64) as usize];
        // Every total must fit before any is written.
        for item in items {
            item.total(m)?;
        }
        Some((items, m))
    })();
    let Some((items, m)) = request else {
        return Response::new(Status::BadRequest);
    };
    body.clear();
    let reply = Items { items, m };
    if let Err(e) = serde_json::to_writer(&mut *body, &reply) {
        panic!("serializing into memory cannot fail: {e}");
    }
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"application/json")
        .body(body)
}

/// `{"items":[...],"count":N}`: serialized straight from the dataset's
/// items, each with its total, without building a list first.
struct Items<'a> {
    items: &'a [Item],
    m: i64,
}

impl Serialize for Items<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut reply = serializer.serialize_struct("Items", 2)?;
        reply.serialize_field("items", &PricedItems(self))?;
        reply.serialize_field("count", &self.items.len())?;
        reply.end()
    }
}

/// The items, each with its total.
struct PricedItems<'a>(&'a Items<'a>);

impl Serialize for PricedItems<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0.m;
        serializer.collect_seq(self.0.items.iter().map(|item| Priced {
            item,
            // Checked by the handler before serializing.
            total: item.total(m).unwrap_or_default(),
        }))
    }
}

/// An item as `/json/{count}` answers it: its fields, then its total.
#[derive(Serialize)]
struct Priced<'a> {
    #[serde(flatten)]
    item: &'a Item,
    total: i64,
}

/// `POST /echo` (HttpArena's 8gbit): the request body back, byte for byte.
#[inline(always)]
pub fn echo<'a>(exchange: &Exchange<'a>) -> Response<'a> {
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"application/octet-stream")
        .body(exchange.body)
}

/// Longest wait `/delay/{ms}` takes, in milliseconds: a minute.
pub const MAX_DELAY_MS: u32 = 60_000;

/// An answer that may leave only once its wait has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub ms: u32,
}

impl Wait {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.ms))
    }
}

/// `/delay/{ms}` (HttpArena's async profile): the wait its answer must
/// take, `ms` a decimal `0..=`[`MAX_DELAY_MS`]; else 400.
#[allow(clippy::result_large_err)] // once per /delay request, returned by value
pub fn delay(exchange: &Exchange<'_>) -> Result<Wait, Response<'static>> {
    match decimal_u64(exchange.param) {
        Some(ms) if ms <= u64::from(MAX_DELAY_MS) => Ok(Wait { ms: ms as u32 }),
        _ => Err(Response::new(Status::BadRequest)),
    }
}

/// The answer to `/delay/{ms}` once its wait has passed: `ms`, in decimal.
pub fn delayed(wait: Wait, body: &mut SmallBody) -> Response<'_> {
    body.put(itoa::Buffer::new().format(wait.ms).as_bytes());
    Response::new(Status::Ok)
        .header(CONTENT_TYPE, b"text/plain")
        .body(body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange<'a>(
        method: Method,
        target: &'a str,
        param: &'a str,
        body: &'a [u8],
        data: &'a Data,
    ) -> Exchange<'a> {
        Exchange {
            method,
            target: target.as_bytes(),
            param: param.as_bytes(),
            body,
            data,
        }
    }

    fn baseline_answer(method: Method, target: &str, body: &[u8]) -> (Status, Vec<u8>) {
        let data = Data::default();
        let mut small = SmallBody::new();
        let response = baseline(&exchange(method, target, "", body, &data), &mut small);
        (response.status(), response.body_bytes().to_vec())
    }

    #[test]
    fn baseline_sums() {
        let ok = |sum: &str| (Status::Ok, sum.as_bytes().to_vec());
        let bad = (Status::BadRequest, vec![]);
        for (target, expected) in [
            ("/baseline11?a=13&b=42", ok("55")),
            ("/baseline11?b=42&a=13&c=x", ok("55")),
            ("/baseline11?a=-5&b=2", ok("-3")),
            ("/baseline11?a=007&b=-0", ok("7")),
            (
                "/baseline11?a=9223372036854775807&b=0",
                ok("9223372036854775807"),
            ),
            (
                "/baseline11?a=-9223372036854775808&b=0",
                ok("-9223372036854775808"),
            ),
            ("/baseline11?a=9223372036854775807&b=1", bad.clone()),
            ("/baseline11?a=9223372036854775808&b=0", bad.clone()),
            ("/baseline11?a=99999999999999999999999&b=1", bad.clone()),
            ("/baseline11", bad.clone()),
            ("/baseline11?a=1", bad.clone()),
            ("/baseline11?a=1&b=", bad.clone()),
            ("/baseline11?a=1&b", bad.clone()),
            ("/baseline11?a=1&b=2&a=3", bad.clone()),
            ("/baseline11?a=1&b=x", bad.clone()),
            ("/baseline11?a=1&b=+2", bad.clone()),
            ("/baseline11?a=1&b=%32", bad.clone()),
            ("/baseline11?a=1&b=-", bad.clone()),
            ("/baseline11?a=1&b=1.5", bad.clone()),
        ] {
            assert_eq!(
                baseline_answer(Method::Get, target, b""),
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

    fn item(id: i64, price: i64, quantity: i64) -> Item {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("n{id}"), "category": "c", "price": price,
            "quantity": quantity, "active": id % 2 == 0, "tags": ["t"],
            "rating": {"score": 1, "count": 2},
        }))
        .unwrap()
    }

    fn items_answer(data: &Data, target: &str, count: &str) -> (Status, String) {
        let mut body = Vec::new();
        let response = json_items(&exchange(Method::Get, target, count, b"", data), &mut body);
        let status = response.status();
        (
            status,
            String::from_utf8(response.body_bytes().to_vec()).unwrap(),
        )
    }

    #[test]
    fn json_items_counts_and_totals() {
        let data = Data {
            dataset: Some(Dataset::from_items(vec![
                item(1, 328, 15),
                item(2, 3, 4),
                item(3, 5, 6),
            ])),
        };
        let one = r#"{"items":[{"id":1,"name":"n1","category":"c","price":328,"quantity":15,"active":false,"tags":["t"],"rating":{"score":1,"count":2},"total":14760}],"count":1}"#;
        assert_eq!(
            items_answer(&data, "/json/1?m=3", "1"),
            (Status::Ok, one.to_owned())
        );
        for (target, count, totals) in [
            ("/json/2", "2", vec![4920, 12]),
            ("/json/2?m=-2", "2", vec![-9840, -24]),
            ("/json/2?m=0", "2", vec![0, 0]),
            ("/json/3?x=1&m=2", "3", vec![9840, 24, 60]),
            ("/json/4?m=1", "4", vec![4920, 12, 30]),
            ("/json/99999999?m=1", "99999999", vec![4920, 12, 30]),
            ("/json/007", "007", vec![4920, 12, 30]),
        ] {
            let (status, body) = items_answer(&data, target, count);
            assert_eq!(status, Status::Ok, "{target}");
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            let got: Vec<i64> = value["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["total"].as_i64().unwrap())
                .collect();
            assert_eq!(got, totals, "{target}");
            assert_eq!(value["count"], totals.len(), "{target}");
        }
        for (target, count) in [
            ("/json/0", "0"),
            ("/json/x", "x"),
            ("/json/-1", "-1"),
            ("/json/+1", "+1"),
            ("/json/1.0", "1.0"),
            ("/json/%31", "%31"),
            ("/json/18446744073709551616", "18446744073709551616"),
            ("/json/1?m=", "1"),
            ("/json/1?m", "1"),
            ("/json/1?m=x", "1"),
            ("/json/1?m=+3", "1"),
            ("/json/1?m=1.5", "1"),
            ("/json/1?m=9223372036854775808", "1"),
            ("/json/1?m=1&m=1", "1"),
            // 328 * 15 * m overflows i64.
            ("/json/1?m=9223372036854775807", "1"),
        ] {
            assert_eq!(
                items_answer(&data, target, count).0,
                Status::BadRequest,
                "{target}"
            );
        }
        assert_eq!(
            items_answer(&Data::default(), "/json/1", "1").0,
            Status::NotFound
        );
    }

    #[test]
    fn delays() {
        let data = Data::default();
        let wait =
            |ms: &str| delay(&exchange(Method::Get, "", ms, b"", &data)).map_err(|r| r.status());
        assert_eq!(wait("0"), Ok(Wait { ms: 0 }));
        assert_eq!(wait("10"), Ok(Wait { ms: 10 }));
        assert_eq!(wait("60000"), Ok(Wait { ms: 60_000 }));
        for bad in ["60001", "-1", "1.5", "x", "", "+1", "99999999999999999999"] {
            assert_eq!(wait(bad), Err(Status::BadRequest), "{bad:?}");
        }
        let mut small = SmallBody::new();
        assert_eq!(delayed(Wait { ms: 500 }, &mut small).body_bytes(), b"500");
    }

    #[test]
    fn echo_is_the_body() {
        let data = Data::default();
        let body = [0u8, 1, 255, b'\r', b'\n'];
        let response = echo(&exchange(Method::Post, "/echo", "", &body, &data));
        assert_eq!(response.body_bytes(), body);
        assert_eq!(
            response.fields(),
            [(CONTENT_TYPE, &b"application/octet-stream"[..])]
        );
    }
}
