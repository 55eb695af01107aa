//! Per-worker accounting (`--stats`): what each worker thread accepted,
//! answered, read and how often it woke, with its CPU time, as one table.
//!
//! It shows how evenly the kernel's `SO_REUSEPORT` spreads connections over
//! per-core workers, against work-stealing's spreading of tasks. Each
//! counter has one writer, its own thread, which adds to it with a relaxed
//! load and store: not a read-modify-write, so on x86 the same `add` to
//! memory a plain counter costs, and the table can be read from any thread
//! without a lock. Counts are taken once per read batch (and per accept,
//! per wakeup), not per request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// One worker thread's counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    accepted: AtomicU64,
    closed: AtomicU64,
    requests: AtomicU64,
    reads: AtomicU64,
    wakeups: AtomicU64,
    /// Set by the thread itself when it starts and before it ends: which
    /// thread, which core, and its CPU time when it ended (its
    /// `/proc/self/task/TID` entry goes with it).
    thread: Mutex<ThreadInfo>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ThreadInfo {
    tid: Option<u32>,
    core: Option<usize>,
    /// (user, system) milliseconds, once the thread has ended.
    final_cpu: Option<(u64, u64)>,
}

/// Adds `n` to a counter only this thread writes.
#[inline]
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed) + n, Relaxed);
}

impl WorkerStats {
    /// One read that answered `requests` requests.
    #[inline]
    pub fn read(&self, requests: u64) {
        add(&self.reads, 1);
        add(&self.requests, requests);
    }

    #[inline]
    pub fn accepted(&self) {
        add(&self.accepted, 1);
    }

    /// A connection ended and everything it held (buffers, answers waiting
    /// for their deadline, their timers) went with it; counted by the
    /// thread that dropped it, which need not be the one that accepted it.
    #[inline]
    pub fn closed(&self) {
        add(&self.closed, 1);
    }

    /// The worker thread woke from waiting for events.
    #[inline]
    pub fn woke(&self) {
        add(&self.wakeups, 1);
    }

    /// Called on the worker thread as it starts.
    pub fn started(&self, core: Option<usize>) {
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        thread.tid = current_tid();
        thread.core = core;
    }

    /// Called on the worker thread as it ends: its CPU time, kept for the
    /// table printed at exit.
    pub fn ended(&self) {
        let cpu = current_tid().and_then(thread_cpu_ms);
        self.thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .final_cpu = cpu;
    }

    fn row(&self) -> Row {
        let thread = *self.thread.lock().unwrap_or_else(|e| e.into_inner());
        Row {
            core: thread.core,
            accepted: self.accepted.load(Relaxed),
            closed: self.closed.load(Relaxed),
            requests: self.requests.load(Relaxed),
            reads: self.reads.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
            cpu_ms: thread
                .final_cpu
                .or_else(|| thread.tid.and_then(thread_cpu_ms)),
        }
    }
}

/// One worker's line of the table, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub core: Option<usize>,
    pub accepted: u64,
    /// Connections ended; `accepted - closed`, summed over the workers, is
    /// how many are open.
    pub closed: u64,
    pub requests: u64,
    pub reads: u64,
    pub wakeups: u64,
    /// (user, system) CPU milliseconds; `None` where /proc cannot tell.
    pub cpu_ms: Option<(u64, u64)>,
}

/// Every worker's counters, in worker order; empty without `--stats`.
#[derive(Clone, Debug, Default)]
pub struct Table(Vec<Arc<WorkerStats>>);

impl Table {
    pub fn new(workers: usize) -> Table {
        Table((0..workers).map(|_| Arc::default()).collect())
    }

    /// Worker `i`'s counters, for its thread to count into.
    pub fn worker(&self, i: usize) -> Option<Arc<WorkerStats>> {
        self.0.get(i).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every worker's row now.
    pub fn rows(&self) -> Vec<Row> {
        self.0.iter().map(|w| w.row()).collect()
    }

    /// The table as printed on stderr.
    pub fn render(&self) -> String {
        render(&self.rows())
    }
}

/// The table: a header, one line per worker, a total; every line starts
/// with `stats:` so it can be picked out of the server's stderr.
fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "stats: worker core accepted requests reads wakeups user_ms system_ms closed\n",
    );
    let mut total = Row {
        core: None,
        accepted: 0,
        closed: 0,
        requests: 0,
        reads: 0,
        wakeups: 0,
        cpu_ms: Some((0, 0)),
    };
    for (i, row) in rows.iter().enumerate() {
        line(&mut out, &i.to_string(), row);
        total.accepted += row.accepted;
        total.closed += row.closed;
        total.requests += row.requests;
        total.reads += row.reads;
        total.wakeups += row.wakeups;
        total.cpu_ms = match (total.cpu_ms, row.cpu_ms) {
            (Some((u, s)), Some((du, ds))) => Some((u + du, s + ds)),
            _ => None,
        };
    }
    line(&mut out, "total", &total);
    out
}

/// One line of the table: `label`, then the row's numbers, `-` for what
/// is not known.
fn line(out: &mut String, label: &str, row: &Row) {
    let dash = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let _ = writeln!(
        out,
        "stats: {label} {} {} {} {} {} {} {} {}",
        dash(row.core.map(|c| c as u64)),
        row.accepted,
        row.requests,
        row.reads,
        row.wakeups,
        dash(row.cpu_ms.map(|c| c.0)),
        dash(row.cpu_ms.map(|c| c.1)),
        row.closed,
    );
}

/// The calling thread's id, from the `/proc/thread-self` link
/// (`PID/task/TID`).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// A thread's (user, system) CPU time in milliseconds, from fields 14 and
/// 15 of `/proc/self/task/TID/stat` (in clock ticks, 100 a second on Linux
/// for every architecture it reports them in).
fn thread_cpu_ms(tid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split(' ').skip(11);
    let ticks = |f: Option<&str>| f?.parse::<u64>().ok();
    const MS_PER_TICK: u64 = 10;
    Some((
        ticks(fields.next())? * MS_PER_TICK,
        ticks(fields.next())? * MS_PER_TICK,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_table() {
        let workers = Table::new(2);
        std::thread::scope(|scope| {
            for core in 0..2 {
                let stats = workers.worker(core).unwrap();
                scope.spawn(move || {
                    stats.started(Some(core));
                    stats.accepted();
                    stats.closed();
                    stats.read(16);
                    stats.read(3);
                    stats.woke();
                    stats.ended();
                });
            }
        });
        let rows = workers.rows();
        assert_eq!(
            (
                rows[1].core,
                rows[1].accepted,
                rows[1].closed,
                rows[1].requests,
                rows[1].reads,
                rows[1].wakeups
            ),
            (Some(1), 1, 1, 19, 2, 1)
        );
        assert!(
            rows[0].cpu_ms.is_some(),
            "/proc gives an ended thread's CPU time"
        );
        let table = workers.render();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "stats: worker core accepted requests reads wakeups user_ms system_ms closed"
        );
        assert!(lines[3].ends_with(" 2"), "two closed: {table}");
        assert!(lines[1].starts_with("stats: 0 0 1 19 2 1 "), "{table}");
        assert!(lines[3].starts_with("stats: total - 2 38 4 2 "), "{table}");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn this_threads_cpu_time_is_read() {
        let tid = current_tid().expect("/proc/thread-self");
        assert_ne!(tid, 0);
        assert!(thread_cpu_ms(tid).is_some());
    }
}
