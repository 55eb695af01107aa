//! The floor's own unit tests (examples/floor.rs: both scans find the same
//! terminators), run by `cargo test`. An example's tests run only when
//! Cargo.toml declares the example, and a declared example makes the
//! manifest need `examples/`, which the exported TFB and HttpArena folders
//! leave out; so the file is compiled here as a module instead.

#[allow(dead_code)]
#[path = "../examples/floor.rs"]
mod floor;
