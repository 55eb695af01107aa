//! Runs the sans-I/O core over 16-deep pipelined TFB batches, for counting
//! instructions without sockets or a runtime:
//!
//! ```sh
//! cargo build --release --example pipeline_cost
//! valgrind --tool=callgrind target/release/examples/pipeline_cost plaintext 10000
//! ```
//!
//! Divide the total Ir by 16 × batches (the start-up cost is a few hundred
//! thousand instructions; run twice with different counts to subtract it).
//!
//! `json-items` batches HttpArena's json-tls requests instead: its seven
//! `/json/{count}?m=` pairs in its order (scripts/httparena.lua), 14 per
//! batch, over the dataset in tests/data/dataset.json (or the path after the
//! count): the handler's serde_json work without TLS or sockets.

use std::path::Path;

use chopin::dataset::Dataset;
use chopin::date::DateCache;
use chopin::pipeline::{Buffers, Context, Pipeline};
use chopin::resources::Data;
use chopin::response::{Encoder, ServerField};

const ACCEPT_PLAINTEXT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
const ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

/// HttpArena's json-tls requests, in its order (scripts/httparena.lua).
const JSON_TLS_PATHS: [&str; 7] = [
    "/json/1?m=3",
    "/json/5?m=7",
    "/json/10?m=2",
    "/json/15?m=5",
    "/json/25?m=4",
    "/json/40?m=8",
    "/json/50?m=6",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let test = args.next().unwrap_or_else(|| "plaintext".into());
    let batches: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let accept = if test == "json" {
        ACCEPT_JSON
    } else {
        ACCEPT_PLAINTEXT
    };
    let (batch, per_batch, data) = if test == "json-items" {
        let path = args
            .next()
            .unwrap_or_else(|| "tests/data/dataset.json".into());
        let dataset = Dataset::load(Path::new(&path))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no dataset at {path}"));
        let batch: String = JSON_TLS_PATHS
            .iter()
            .map(|path| format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n"))
            .collect();
        let data = Data {
            dataset: Some(dataset),
        };
        (batch.repeat(2), 2 * JSON_TLS_PATHS.len(), data)
    } else {
        let request = format!(
            "GET /{test} HTTP/1.1\r\nHost: localhost:8080\r\nAccept: {accept}\r\nConnection: keep-alive\r\n\r\n"
        );
        (request.repeat(16), 16, Data::default())
    };

    let server = ServerField::new("chopin");
    let mut date = DateCache::new();
    let mut pipeline = Pipeline::new();
    let mut bufs = Buffers::default();
    bufs.out.reserve(64 * 1024);
    let mut bytes = 0;
    for _ in 0..batches {
        bufs.out.clear();
        let encoder = Encoder::new(&server, date.refresh());
        let cx = Context::new(&encoder, &data, 1 << 20);
        let answered = pipeline.answer(batch.as_bytes(), &mut bufs, &cx);
        assert_eq!(answered.consumed, batch.len());
        bytes += bufs.out.len();
    }
    println!("{} requests, {bytes} response bytes", batches * per_batch);
}
