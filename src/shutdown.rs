//! The stop signal and the bounded drain that follows it.
//!
//! On SIGINT/SIGTERM the server stops accepting, lets every response it has
//! started finish (bounded by [`DRAIN_BOUND`]) and exits. "Started" means
//! output a connection could not write in one go: a connection registers as
//! a writer while it holds such output, which happens only on the slow path,
//! so the counter is never touched per request. Connections close after
//! their next flush once the stop has begun; idle ones hold nothing in
//! flight and are simply dropped with their runtime.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

use crate::timer::Timer;

/// How long in-flight responses get to finish after the stop signal.
pub const DRAIN_BOUND: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Shutdown {
    begun: AtomicBool,
    begun_notify: Notify,
    /// Connections holding output the socket has not taken yet.
    writers: AtomicUsize,
    writers_notify: Notify,
    /// Why the server stopped itself ([`Shutdown::fail`]), if it did.
    failure: Mutex<Option<String>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the stop: accept loops return, connections close after their
    /// next flush.
    pub fn begin(&self) {
        self.begun.store(true, Ordering::SeqCst);
        self.begun_notify.notify_waiters();
    }

    /// Stops the server because a part of it cannot go on: `reason` is one
    /// line naming the part and the cause. It is written to stderr now
    /// (the drain that follows may take [`DRAIN_BOUND`]) and kept for
    /// [`Shutdown::failure`], so that the process exits with an error
    /// instead of serving on without, say, its deadlines.
    pub fn fail(&self, reason: String) {
        eprintln!("chopin: {reason}");
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(reason);
        self.begin();
    }

    /// The first [`Shutdown::fail`] reason, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn has_begun(&self) -> bool {
        self.begun.load(Ordering::Relaxed)
    }

    /// Resolves once [`Shutdown::begin`] has been called.
    pub async fn begun(&self) {
        loop {
            // Created before the check, so a `begin` in between still wakes it.
            let notified = self.begun_notify.notified();
            if self.begun.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub fn writer_started(&self) {
        self.writers.fetch_add(1, Ordering::SeqCst);
    }

    pub fn writer_finished(&self) {
        if self.writers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.writers_notify.notify_waiters();
        }
    }

    /// Waits until no connection holds unwritten output, or `bound` passes.
    pub async fn drained(&self, timer: &Timer, bound: Duration) {
        let all_written = async {
            loop {
                let notified = self.writers_notify.notified();
                if self.writers.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = timer
            .timeout_at(
                std::time::Instant::now() + bound,
                std::pin::pin!(all_written),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_begins_the_stop_and_keeps_the_first_reason() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.failure(), None);
        shutdown.fail("worker 1's timer stopped".to_owned());
        shutdown.fail("worker 2's timer stopped".to_owned());
        assert!(shutdown.has_begun());
        assert_eq!(
            shutdown.failure().as_deref(),
            Some("worker 1's timer stopped")
        );
    }
}
