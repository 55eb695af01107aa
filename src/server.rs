//! Threads, runtimes and listeners for the two flavours.
//!
//! Nothing here touches request bytes: both flavours spawn
//! [`connection::serve`] for every accepted socket. They differ only in how
//! the work is laid out:
//!
//! * **per-core**: one OS thread per worker, pinned to its own core, each
//!   with its own `current_thread` runtime and its own `SO_REUSEPORT`
//!   listener. The kernel spreads connections over the listeners; a
//!   connection then lives and dies on one core.
//! * **multithread**: one work-stealing runtime with pinned worker threads;
//!   by default one `SO_REUSEPORT` listener and accept task per worker.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::runtime::{self, Runtime};

use crate::config::{Config, Flavour, Listeners};
use crate::connection::{self, Shared};
use crate::response::Fragments;
use crate::shutdown::{Shutdown, DRAIN_BOUND};
use crate::timer::Timer;

/// How long an accept loop pauses when the process is out of file
/// descriptors: long enough not to spin, short enough to notice freed fds.
const FD_BACKOFF: Duration = Duration::from_millis(100);

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    flavour: Running,
    startup_line: String,
}

enum Running {
    PerCore(Vec<JoinHandle<()>>),
    Multithread(Runtime, Arc<Timer>),
}

impl Server {
    /// Binds the listeners and starts the workers; returns once every worker
    /// is accepting connections.
    pub fn start(config: &Config) -> io::Result<Server> {
        let workers = usize::from(config.workers.unwrap_or_else(default_workers));
        let shared = Arc::new(Shared {
            fragments: Fragments::new(&config.server_name),
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            idle_timeout: config.idle_timeout,
            shutdown: Shutdown::new(),
        });
        let cores = if config.pin {
            allowed_cores(workers)
        } else {
            Vec::new()
        };
        let listener_count = match (config.runtime, config.listeners) {
            (Flavour::Multithread, Listeners::Shared) => 1,
            _ => workers,
        };
        let (local_addr, listeners) = bind_all(config, listener_count)?;
        let (flavour, pinned) = match config.runtime {
            Flavour::PerCore => start_per_core(listeners, &cores, &shared)?,
            Flavour::Multithread => start_multithread(listeners, workers, &cores, &shared)?,
        };
        let pinning = match (config.pin, pinned.is_empty()) {
            (false, _) => "not pinned".to_owned(),
            (true, true) => "pinning refused by the platform".to_owned(),
            (true, false) => format!("pinned to cores {pinned:?}"),
        };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let startup_line = format!(
            "chopin {}: {} runtime, {workers} worker{}, {pinning}, {listener_count} listener{}, listening on {local_addr}",
            env!("CARGO_PKG_VERSION"),
            config.runtime,
            plural(workers),
            plural(listener_count),
        );
        Ok(Server {
            local_addr,
            shared,
            flavour,
            startup_line,
        })
    }

    /// The bound address; with `--port 0` this names the chosen port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// One line for stderr: flavour, workers, pinned cores, bound address.
    pub fn startup_line(&self) -> &str {
        &self.startup_line
    }

    /// Stops accepting, lets in-flight responses finish (at most
    /// [`DRAIN_BOUND`]), then closes every connection and joins the workers.
    pub fn shutdown(self) {
        self.shared.shutdown.begin();
        match self.flavour {
            Running::PerCore(threads) => {
                for thread in threads {
                    let _ = thread.join();
                }
            }
            Running::Multithread(runtime, timer) => {
                runtime.block_on(self.shared.shutdown.drained(&timer, DRAIN_BOUND));
                runtime.shutdown_timeout(Duration::from_millis(100));
            }
        }
    }
}

fn default_workers() -> u16 {
    thread::available_parallelism().map_or(1, |n| n.get().min(4096) as u16)
}

/// The cores this process may run on (its affinity mask, so `taskset -c 1`
/// is honoured), one per worker, reused in turn when workers outnumber them.
fn allowed_cores(workers: usize) -> Vec<core_affinity::CoreId> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.iter().copied().cycle().take(workers).collect(),
        _ => Vec::new(),
    }
}

/// Pins the calling thread; `None` when the platform refuses.
fn pin(core: Option<core_affinity::CoreId>) -> Option<usize> {
    let core = core?;
    core_affinity::set_for_current(core).then_some(core.id)
}

/// Binds `count` listeners on one address. With `SO_REUSEPORT` a second
/// server on the same port would silently join the group and take half the
/// connections, so the port is first claimed by a socket without it: that
/// bind fails with "address in use" if anyone else holds the port.
fn bind_all(config: &Config, count: usize) -> io::Result<(SocketAddr, Vec<StdListener>)> {
    let requested = SocketAddr::new(config.bind, config.port);
    let cannot = |e: io::Error| io::Error::new(e.kind(), format!("cannot bind {requested}: {e}"));
    if count == 1 {
        let listener = bind(requested, config.backlog, false).map_err(cannot)?;
        return Ok((listener.local_addr()?, vec![listener]));
    }
    // The probe only binds: a listening probe could queue connections that
    // are then reset when it closes.
    let probe = bound(requested, false).map_err(cannot)?;
    let local_addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the probe socket has no IP address"))?;
    drop(probe);
    let listeners = (0..count)
        .map(|_| bind(local_addr, config.backlog, true))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind {local_addr}: {e}")))?;
    Ok((local_addr, listeners))
}

/// A bound, not yet listening, socket. Without `SO_REUSEPORT` the bind
/// fails if anyone else holds the port.
fn bound(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<StdListener> {
    let socket = bound(addr, reuse_port)?;
    socket.set_nonblocking(true)?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// One pinned thread per listener, each with its own `current_thread`
/// runtime. Returns once every thread has pinned itself and is accepting.
fn start_per_core(
    listeners: Vec<StdListener>,
    cores: &[core_affinity::CoreId],
    shared: &Arc<Shared>,
) -> io::Result<(Running, Vec<usize>)> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let count = listeners.len();
    let mut threads = Vec::with_capacity(count);
    for (i, listener) in listeners.into_iter().enumerate() {
        let runtime = runtime::Builder::new_current_thread().enable_io().build()?;
        let timer = Timer::start(&runtime)?;
        let core = cores.get(i).copied();
        let shared = Arc::clone(shared);
        let ready_tx = ready_tx.clone();
        let thread = thread::Builder::new()
            .name(format!("chopin-worker-{i}"))
            .spawn(move || {
                let pinned = pin(core);
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener);
                    let _ = ready_tx.send(pinned);
                    drop(ready_tx);
                    if let Ok(listener) = listener {
                        accept_loop(listener, Arc::clone(&shared), Arc::clone(&timer)).await;
                        shared.shutdown.drained(&timer, DRAIN_BOUND).await;
                    }
                });
            })?;
        threads.push(thread);
    }
    drop(ready_tx);
    // Each worker reports once, when its listener is registered; a worker
    // that dies first drops its sender and ends the wait early.
    let pinned: Vec<Option<usize>> = ready_rx.iter().take(count).collect();
    Ok((Running::PerCore(threads), all_pinned(&pinned, cores)))
}

/// One work-stealing runtime; its worker threads pin themselves in turn.
fn start_multithread(
    listeners: Vec<StdListener>,
    workers: usize,
    cores: &[core_affinity::CoreId],
    shared: &Arc<Shared>,
) -> io::Result<(Running, Vec<usize>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let pinned = Arc::new((Mutex::new(Vec::with_capacity(workers)), Condvar::new()));
    let cores_for_threads = cores.to_vec();
    let pinned_by_threads = Arc::clone(&pinned);
    let runtime = runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("chopin-worker")
        .enable_io()
        .on_thread_start(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i < cores_for_threads.len() {
                let result = pin(cores_for_threads.get(i).copied());
                let (results, changed) = &*pinned_by_threads;
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(result);
                changed.notify_all();
            }
        })
        .build()?;
    let timer = Timer::start(&runtime)?;
    for listener in listeners {
        let shared = Arc::clone(shared);
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, shared, Arc::clone(&timer)));
    }
    // Worker threads start while the runtime is built; wait until each has
    // reported its pinning so the startup line tells the truth.
    let (results, changed) = &*pinned;
    let results = changed
        .wait_timeout_while(
            results.lock().unwrap_or_else(|e| e.into_inner()),
            Duration::from_secs(5),
            |results| results.len() < cores.len(),
        )
        .unwrap_or_else(|e| e.into_inner())
        .0
        .clone();
    Ok((
        Running::Multithread(runtime, timer),
        all_pinned(&results, cores),
    ))
}

/// The pinned core ids, warning once (one line) if any pin was refused.
fn all_pinned(results: &[Option<usize>], cores: &[core_affinity::CoreId]) -> Vec<usize> {
    if cores.is_empty() {
        return Vec::new();
    }
    let pinned: Vec<usize> = results.iter().flatten().copied().collect();
    if pinned.len() < results.len().max(1) {
        eprintln!(
            "chopin: warning: the platform refused to pin {} of {} worker threads; they run unpinned",
            results.len() - pinned.len(),
            results.len()
        );
    }
    pinned
}

/// Accepts until the stop signal, spawning one task per connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, timer: Arc<Timer>) {
    let stop = shared.shutdown.begun();
    tokio::pin!(stop);
    let mut out_of_fds = false;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                out_of_fds = false;
                // Responses are written whole, one write per batch: Nagle
                // would only delay them.
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection::serve(
                    stream,
                    Arc::clone(&shared),
                    Arc::clone(&timer),
                ));
            }
            Err(e) if is_fd_exhaustion(&e) => {
                if !out_of_fds {
                    eprintln!(
                        "chopin: warning: accept failed ({e}); pausing accepts until descriptors \
                         are freed (raise `ulimit -n`)"
                    );
                    out_of_fds = true;
                }
                // The pending connection stays in the backlog and the
                // listener stays readable: retrying at once would spin.
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = timer.sleep_until(Instant::now() + FD_BACKOFF) => {}
                }
            }
            // ECONNABORTED and friends concern one connection, not the listener.
            Err(_) => {}
        }
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    // EMFILE (24): this process; ENFILE (23): the whole system; ENOBUFS /
    // ENOMEM: socket memory.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}
