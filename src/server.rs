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

use crate::config::{Config, Flavour, Listeners as ListenerLayout};
use crate::connection::{self, Shared, Transport};
use crate::dataset::Dataset;
use crate::resources::Data;
use crate::response::ServerField;
use crate::shutdown::{Shutdown, DRAIN_BOUND};
use crate::stats::{Table, WorkerStats};
use crate::timer::Timer;

/// How long an accept loop pauses when the process is out of file
/// descriptors: long enough not to spin, short enough to notice freed fds.
const FD_BACKOFF: Duration = Duration::from_millis(100);

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    local_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    flavour: Running,
    startup_line: String,
    stats: Table,
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
        let dataset = Dataset::load(&config.dataset).map_err(io::Error::other)?;
        let dataset_note = match &dataset {
            Some(dataset) => format!(
                "{} dataset items from {}",
                dataset.items().len(),
                config.dataset.display()
            ),
            None => format!(
                "no dataset at {} (--dataset): GET /json/{{count}} answers 404",
                config.dataset.display()
            ),
        };
        let tls = match config.tls_port {
            Some(_) => Some(
                crate::tls::server_config(&config.tls_cert, &config.tls_key)
                    .map_err(io::Error::other)?,
            ),
            None => None,
        };
        let shared = Arc::new(Shared {
            server: ServerField::new(&config.server_name),
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            idle_timeout: config.idle_timeout,
            max_body: config.max_body,
            data: Data { dataset },
            tls,
            shutdown: Shutdown::new(),
        });
        let cores = if config.pin {
            allowed_cores(workers)
        } else {
            Vec::new()
        };
        let listener_count = match (config.runtime, config.listeners) {
            (Flavour::Multithread, ListenerLayout::Shared) => 1,
            _ => workers,
        };
        let (local_addr, plain) = bind_all(config, config.port, listener_count)?;
        let (tls_addr, mut tls_listeners) = match config.tls_port {
            Some(port) => {
                let (addr, listeners) = bind_all(config, port, listener_count)?;
                (Some(addr), listeners.into_iter().map(Some).collect())
            }
            None => (None, Vec::new()),
        };
        tls_listeners.resize_with(listener_count, || None);
        let listeners: Vec<Listeners> = plain
            .into_iter()
            .zip(tls_listeners)
            .map(|(plain, tls)| Listeners { plain, tls })
            .collect();
        let stats = if config.stats {
            Table::new(workers)
        } else {
            Table::default()
        };
        let tuning = Tuning {
            event_interval: config.event_interval,
        };
        let (flavour, pinned) = match config.runtime {
            Flavour::PerCore => start_per_core(listeners, &cores, &shared, &stats, tuning)?,
            Flavour::Multithread => {
                start_multithread(listeners, workers, &cores, &shared, &stats, tuning)?
            }
        };
        let pinning = match (config.pin, pinned.is_empty()) {
            (false, _) => "not pinned".to_owned(),
            (true, true) => "pinning refused by the platform".to_owned(),
            (true, false) => format!("pinned to cores {pinned:?}"),
        };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let tls_note = match tls_addr {
            Some(addr) => format!(
                "chopin: TLS 1.3 on {addr}, certificate {}\n",
                config.tls_cert.display()
            ),
            None => String::new(),
        };
        // The address ends the last line: scripts and tests read it there.
        let startup_line = format!(
            "chopin: {dataset_note}\n{tls_note}chopin {}: {} runtime, {workers} worker{}, {pinning}, {listener_count} listener{}, listening on {local_addr}",
            env!("CARGO_PKG_VERSION"),
            config.runtime,
            plural(workers),
            plural(listener_count),
        );
        Ok(Server {
            local_addr,
            tls_addr,
            shared,
            flavour,
            startup_line,
            stats,
        })
    }

    /// Every worker's counters (`--stats`; empty without it). The table
    /// stays readable after [`Server::shutdown`], with each thread's CPU
    /// time as it ended.
    pub fn stats(&self) -> Table {
        self.stats.clone()
    }

    /// The bound address; with `--port 0` this names the chosen port.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound TLS address (`--tls-port`), if there is one; with port 0
    /// this names the chosen port.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// One line for stderr: flavour, workers, pinned cores, bound address.
    pub fn startup_line(&self) -> &str {
        &self.startup_line
    }

    /// Resolves when the stop has begun: after [`Server::shutdown`], or
    /// when the server stopped itself ([`Server::failure`] then says why).
    pub async fn stopping(&self) {
        self.shared.shutdown.begun().await;
    }

    /// Why the server stopped itself, if it did: one line naming the
    /// worker and the cause (a worker whose timer failed can keep none of
    /// its deadlines). The process should exit with an error.
    pub fn failure(&self) -> Option<String> {
        self.shared.shutdown.failure()
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

/// One worker's (or accept task's) listeners: plain HTTP, and TLS with
/// `--tls-port`.
struct Listeners {
    plain: StdListener,
    tls: Option<StdListener>,
}

/// Binds `count` listeners on one address. With `SO_REUSEPORT` a second
/// server on the same port would silently join the group and take half the
/// connections, so the port is first claimed by a socket without it: that
/// bind fails with "address in use" if anyone else holds the port.
fn bind_all(
    config: &Config,
    port: u16,
    count: usize,
) -> io::Result<(SocketAddr, Vec<StdListener>)> {
    let requested = SocketAddr::new(config.bind, port);
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

/// A listening socket. `TCP_NODELAY` is set here, once: Linux copies it to
/// every connection accepted from the listener, which saves a `setsockopt`
/// per connection, one of the four syscalls an accept costs (accept4,
/// epoll_ctl, setsockopt, close). Responses are written whole, one write
/// per batch: Nagle would only delay them.
fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<StdListener> {
    let socket = bound(addr, reuse_port)?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The runtime settings both flavours apply to their tokio runtimes.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    /// tokio's `event_interval` (`--event-interval`).
    event_interval: u32,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning { event_interval: 61 }
    }
}

/// One pinned thread per listener, each with its own `current_thread`
/// runtime. Returns once every thread has pinned itself and is accepting;
/// if any cannot, stops those that started and fails with one line naming
/// the worker and the cause.
fn start_per_core(
    listeners: Vec<Listeners>,
    cores: &[core_affinity::CoreId],
    shared: &Arc<Shared>,
    stats: &Table,
    tuning: Tuning,
) -> io::Result<(Running, Vec<usize>)> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let count = listeners.len();
    let mut threads = Vec::with_capacity(count);
    let stop_started = |threads: Vec<JoinHandle<()>>, error: io::Error| {
        shared.shutdown.begin();
        for thread in threads {
            let _ = thread.join();
        }
        error
    };
    for (i, listener) in listeners.into_iter().enumerate() {
        let name = format!("chopin-worker-{i}");
        let core = cores.get(i).copied();
        let started = start_worker(
            &name,
            listener,
            core,
            shared,
            stats.worker(i),
            tuning,
            &ready_tx,
        );
        match started {
            Ok(thread) => threads.push(thread),
            Err(e) => return Err(stop_started(threads, e)),
        }
    }
    drop(ready_tx);
    // Each worker reports once, when its listener is registered or could
    // not be; a worker that dies first drops its sender and ends the wait
    // early.
    let reports: Vec<Result<Option<usize>, String>> = ready_rx.iter().take(count).collect();
    let failure = match reports.iter().find_map(|report| report.as_ref().err()) {
        Some(failure) => Some(failure.clone()),
        None if reports.len() < count => Some(format!(
            "{} of {count} worker threads ended during start-up, before accepting",
            count - reports.len()
        )),
        None => None,
    };
    if let Some(failure) = failure {
        return Err(stop_started(threads, io::Error::other(failure)));
    }
    let pinned: Vec<Option<usize>> = reports.into_iter().flatten().collect();
    Ok((Running::PerCore(threads), all_pinned(&pinned, cores)))
}

/// One per-core worker: its thread, runtime and timer. It reports on
/// `ready` once: the core it pinned itself to, or why its listener could
/// not be registered with its runtime (it then ends).
fn start_worker(
    name: &str,
    listeners: Listeners,
    core: Option<core_affinity::CoreId>,
    shared: &Arc<Shared>,
    stats: Option<Arc<WorkerStats>>,
    tuning: Tuning,
    ready: &mpsc::Sender<Result<Option<usize>, String>>,
) -> io::Result<JoinHandle<()>> {
    let cannot =
        |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{name} cannot {what}: {e}"));
    let mut builder = runtime::Builder::new_current_thread();
    builder.enable_io().event_interval(tuning.event_interval);
    if stats.is_some() {
        builder.on_thread_unpark(|| connection::with_stats(WorkerStats::woke));
    }
    let runtime = builder
        .build()
        .map_err(|e| cannot("build its runtime", e))?;
    let timer = Timer::start(&runtime, timer_stopped(name, shared))
        .map_err(|e| cannot("start its timer", e))?;
    let shared = Arc::clone(shared);
    let ready = ready.clone();
    let worker = name.to_owned();
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let pinned = pin(core);
            if let Some(stats) = &stats {
                stats.started(pinned);
                connection::count_on_this_thread(Arc::clone(stats));
            }
            runtime.block_on(async move {
                let registered = register(listeners).map_err(|e| {
                    format!("{worker} cannot register its listener with its runtime: {e}")
                });
                let (plain, tls) = match registered {
                    Ok(listeners) => listeners,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(pinned));
                drop(ready);
                if let Some(tls) = tls {
                    tokio::spawn(accept_loop(
                        tls,
                        Transport::Tls,
                        Arc::clone(&shared),
                        Arc::clone(&timer),
                    ));
                }
                accept_loop(
                    plain,
                    Transport::Plain,
                    Arc::clone(&shared),
                    Arc::clone(&timer),
                )
                .await;
                shared.shutdown.drained(&timer, DRAIN_BOUND).await;
            });
            if let Some(stats) = &stats {
                stats.ended();
            }
        })
        .map_err(|e| cannot("start its thread", e))
}

/// What a runtime does when its timer ends: it could time out no head,
/// body or linger any more, so rather than serve on without them the
/// whole server stops, with an error naming `runtime` and the cause.
fn timer_stopped(runtime: &str, shared: &Arc<Shared>) -> impl FnOnce(io::Error) + Send + 'static {
    let runtime = runtime.to_owned();
    let shared = Arc::clone(shared);
    move |e| {
        shared.shutdown.fail(format!(
            "{runtime}'s timer stopped ({e}); its connections' deadlines can no longer \
             fire, so the server stops"
        ))
    }
}

/// One work-stealing runtime; its worker threads pin themselves in turn.
fn start_multithread(
    listeners: Vec<Listeners>,
    workers: usize,
    cores: &[core_affinity::CoreId],
    shared: &Arc<Shared>,
    stats: &Table,
    tuning: Tuning,
) -> io::Result<(Running, Vec<usize>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let pinned = Arc::new((Mutex::new(Vec::with_capacity(workers)), Condvar::new()));
    let cores_for_threads = cores.to_vec();
    let pinned_by_threads = Arc::clone(&pinned);
    let stats_for_threads = stats.clone();
    let mut builder = runtime::Builder::new_multi_thread();
    builder
        .worker_threads(workers)
        .thread_name("chopin-worker")
        .enable_io()
        .event_interval(tuning.event_interval)
        .on_thread_start(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let mut result = None;
            if i < cores_for_threads.len() {
                result = pin(cores_for_threads.get(i).copied());
                let (results, changed) = &*pinned_by_threads;
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(result);
                changed.notify_all();
            }
            if let Some(stats) = stats_for_threads.worker(i) {
                stats.started(result);
                connection::count_on_this_thread(stats);
            }
        });
    if !stats.is_empty() {
        builder
            .on_thread_unpark(|| connection::with_stats(WorkerStats::woke))
            .on_thread_stop(|| connection::with_stats(WorkerStats::ended));
    }
    let runtime = builder.build()?;
    let timer = Timer::start(&runtime, timer_stopped("the multithread runtime", shared))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start the timer: {e}")))?;
    for (i, listener) in listeners.into_iter().enumerate() {
        let shared = Arc::clone(shared);
        let (plain, tls) = {
            let _guard = runtime.enter();
            register(listener).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot register listener {i} with the multithread runtime: {e}"),
                )
            })?
        };
        if let Some(tls) = tls {
            runtime.spawn(accept_loop(
                tls,
                Transport::Tls,
                Arc::clone(&shared),
                Arc::clone(&timer),
            ));
        }
        runtime.spawn(accept_loop(
            plain,
            Transport::Plain,
            shared,
            Arc::clone(&timer),
        ));
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

/// Registers a worker's listeners with the runtime it is running in.
fn register(listeners: Listeners) -> io::Result<(TcpListener, Option<TcpListener>)> {
    let plain = TcpListener::from_std(listeners.plain)?;
    let tls = listeners.tls.map(TcpListener::from_std).transpose()?;
    Ok((plain, tls))
}

/// Accepts until the stop signal, spawning one task per connection.
async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    shared: Arc<Shared>,
    timer: Arc<Timer>,
) {
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
                connection::with_stats(WorkerStats::accepted);
                tokio::spawn(connection::serve(
                    stream,
                    transport,
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
    use rustix::io::Errno;
    // EMFILE: this process; ENFILE: the whole system; ENOBUFS / ENOMEM:
    // socket memory.
    let Some(raw) = e.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|errno| errno.raw_os_error() == raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `bind` relies on: an accepted connection has the listener's
    /// `TCP_NODELAY`, without a `setsockopt` of its own.
    #[test]
    fn accepted_connections_inherit_nodelay() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    /// A per-core worker whose listener cannot be registered with its
    /// runtime fails the start with one line naming it and the cause, and
    /// the worker that did start is stopped. `/dev/null` stands in for the
    /// listener: epoll refuses it (EPERM), as it would a broken socket.
    #[test]
    fn a_worker_that_cannot_register_its_listener_fails_the_start() {
        let shared = Shared::for_unit_tests();
        let good = StdListener::bind("127.0.0.1:0").unwrap();
        good.set_nonblocking(true).unwrap();
        // Non-blocking, as tokio requires of what it registers.
        let null = std::os::unix::fs::OpenOptionsExt::custom_flags(
            std::fs::OpenOptions::new().read(true),
            libc::O_NONBLOCK,
        )
        .open("/dev/null")
        .unwrap();
        let bad = StdListener::from(std::os::fd::OwnedFd::from(null));
        let error = match start_per_core(
            vec![
                Listeners {
                    plain: good,
                    tls: None,
                },
                Listeners {
                    plain: bad,
                    tls: None,
                },
            ],
            &[],
            &shared,
            &Table::default(),
            Tuning::default(),
        ) {
            Ok(_) => panic!("the start succeeded with a listener epoll refuses"),
            Err(e) => e,
        };
        assert_eq!(
            error.to_string(),
            "chopin-worker-1 cannot register its listener with its runtime: \
             Operation not permitted (os error 1)"
        );
        assert!(shared.shutdown.has_begun(), "the started worker is stopped");
    }
}
