//! chopin: a pipelined HTTP/1.1 server for the TechEmpower `/plaintext` and
//! `/json` tests.
//!
//! A request travels socket → [`connection`] (the I/O loop) →
//! [`pipeline`] (answers every complete request in a buffer) → [`request`]
//! (parses and validates one head: `request/fast.rs` takes the shape nearly
//! every client sends, `request/httparse_path.rs` everything else, with
//! `request/version.rs` for versions httparse refuses; both judge targets
//! and `Host` by `request/uri.rs` and field lines by `request/syntax.rs`;
//! [`chunked`] skips a chunked body) → [`resources`] (the handler fills a
//! response) → [`response`] (the encoder writes it).
//! [`server`] sets up threads, runtimes and listeners for the two
//! [`config::Flavour`]s and never touches request bytes; [`timer`] holds
//! the few deadlines (timeouts, linger, drain) off the hot path.

pub mod chunked;
pub mod config;
pub mod connection;
pub mod dataset;
pub mod date;
pub mod http;
pub mod pipeline;
pub mod request;
pub mod resources;
pub mod response;
pub mod router;
pub mod scan;
pub mod server;
pub mod shutdown;
pub mod stats;
pub mod timer;
pub mod tls;

pub use config::{Config, Flavour};
pub use server::Server;
