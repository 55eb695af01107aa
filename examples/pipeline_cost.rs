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

use chopin::date::DateCache;
use chopin::pipeline::{Buffers, Context, Pipeline};
use chopin::resources::Data;
use chopin::response::{Encoder, ServerField};

const ACCEPT_PLAINTEXT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
const ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

fn main() {
    let mut args = std::env::args().skip(1);
    let test = args.next().unwrap_or_else(|| "plaintext".into());
    let batches: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let accept = if test == "json" {
        ACCEPT_JSON
    } else {
        ACCEPT_PLAINTEXT
    };
    let request = format!(
        "GET /{test} HTTP/1.1\r\nHost: localhost:8080\r\nAccept: {accept}\r\nConnection: keep-alive\r\n\r\n"
    );
    let batch = request.repeat(16);

    let server = ServerField::new("chopin");
    let mut date = DateCache::new();
    let mut pipeline = Pipeline::new();
    let data = Data::default();
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
    println!("{} requests, {bytes} response bytes", batches * 16);
}
