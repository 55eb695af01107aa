//! Inputs for the property tests: where to split a byte stream, and
//! HTTP-ish token soup. Shared by tests/properties.rs and
//! tests/malformed_input.rs.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// Cut points that feed `input` one byte at a time.
pub fn every_byte(input: &[u8]) -> Vec<usize> {
    (1..input.len()).collect()
}

pub fn cuts() -> impl Strategy<Value = Vec<usize>> {
    vec(any::<usize>(), 0..12)
}

/// HTTP-ish fragments: inputs built from them reach far deeper into the
/// parser than uniform random bytes.
pub const TOKENS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "OPTIONS",
    "CONNECT",
    "a.b:443",
    " ",
    "  ",
    "/json",
    "/plaintext",
    "/pipeline",
    "/baseline11?a=1&b=2",
    "/baseline11?a=x",
    "/",
    "*",
    "?a=1",
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/1.",
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    "Host: a",
    "host:",
    "Host: a b",
    "Content-Length: 3",
    "Content-Length: 65",
    "12",
    "2\r\n20\r\n0\r\n\r\n",
    "Content-Length: 0",
    "content-length: 1, 1",
    "Content-Length: x",
    "Transfer-Encoding: chunked",
    "Connection: close",
    "Connection: keep-alive",
    ":",
    "\t",
    "X-A: b",
    "abc",
    "\0",
    "\x7f",
    "\u{e9}",
];

pub fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    vec(select(TOKENS.to_vec()), 0..40).prop_map(|t| t.concat().into_bytes())
}
