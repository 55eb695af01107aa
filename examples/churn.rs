//! A connection-churn client: HttpArena's limited-conn shape.
//!
//! Each of `--concurrency` connections, on one thread, sends one request
//! and reads its answer, `--requests` times, then closes with a reset
//! (`SO_LINGER` 0, as HttpArena's load generator does) and is replaced by
//! a new one, until `--seconds` have passed. It prints what it did as
//! one line: `connections N requests N errors N seconds S`.
//!
//! It exists to measure what an accepted connection costs a server
//! (`scripts/churn-cost`), which wrk cannot: wrk reconnects only when the
//! server closes.
//!
//! Usage: `cargo run --release --example churn -- --port 8080
//! [--concurrency 64] [--requests 10] [--seconds 5] [--path /baseline11?a=13&b=42]`

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

struct Args {
    addr: SocketAddr,
    concurrency: usize,
    requests: usize,
    seconds: f64,
    path: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:8080".parse().unwrap(),
        concurrency: 64,
        requests: 10,
        seconds: 5.0,
        path: "/baseline11?a=13&b=42".to_owned(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let bad = |v: &str| format!("{flag}: bad value {v:?}");
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                args.addr.set_port(v.parse().map_err(|_| bad(&v))?);
            }
            "--concurrency" => {
                let v = value()?;
                args.concurrency = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| bad(&v))?;
            }
            "--requests" => {
                let v = value()?;
                args.requests = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| bad(&v))?;
            }
            "--seconds" => {
                let v = value()?;
                args.seconds = v
                    .parse()
                    .ok()
                    .filter(|&s: &f64| s > 0.0)
                    .ok_or_else(|| bad(&v))?;
            }
            "--path" => args.path = value()?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the file's doc comment"
                ))
            }
        }
    }
    Ok(args)
}

/// Reads one response whose head has a `Content-Length`; `Ok(false)` when
/// the server closed the connection first.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| io::Error::other("an answer without Content-Length"))?;
            if buf.len() >= end + 4 + length {
                return Ok(true);
            }
        }
        stream.readable().await?;
        let n = match stream.try_read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes all of `bytes` (tokio's `AsyncWriteExt` needs a feature the
/// server does not use).
async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One connection's life: `requests` exchanges, then a reset.
async fn one_connection(args: &Args, request: &[u8], answered: &Cell<u64>) -> io::Result<()> {
    let mut stream = TcpStream::connect(args.addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(512);
    for _ in 0..args.requests {
        write_all(&stream, request).await?;
        if !read_response(&mut stream, &mut buf).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        answered.set(answered.get() + 1);
    }
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => Rc::new(args),
        Err(e) => {
            eprintln!("churn: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let request: Rc<[u8]> = format!(
        "GET {} HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
        args.path,
        args.addr.port()
    )
    .into_bytes()
    .into();
    // One thread, many connections: a client that is busy rather than
    // asleep, so the server's answers rarely have to wake it (a blocking
    // client thread per connection made every answer a cross-core wakeup,
    // charged to the server's send).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let counts = Rc::new((Cell::new(0u64), Cell::new(0u64), Cell::new(0u64)));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        for _ in 0..args.concurrency {
            let (args, request, counts) =
                (Rc::clone(&args), Rc::clone(&request), Rc::clone(&counts));
            local.spawn_local(async move {
                while Instant::now() < deadline {
                    let (connections, requests, errors) = &*counts;
                    match one_connection(&args, &request, requests).await {
                        Ok(()) => connections.set(connections.get() + 1),
                        Err(_) => errors.set(errors.get() + 1),
                    }
                }
            });
        }
        local.await;
    });
    let (connections, requests, errors) = &*counts;
    println!(
        "connections {} requests {} errors {} seconds {:.3}",
        connections.get(),
        requests.get(),
        errors.get(),
        start.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
