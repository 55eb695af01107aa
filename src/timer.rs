//! Deadlines on a `timerfd`, in place of tokio's timer driver.
//!
//! tokio's timer driver runs on every park of a worker, whether any timer
//! is set or not: it locks its wheel, reads the clock and polls the wheel
//! before and after the `epoll_wait`, a large share of a `/json` request on
//! one connection (docs/design.md, "Deadlines on a timerfd"). chopin needs
//! deadlines only off the hot path — an unfinished request head or body,
//! `--idle-timeout`, the linger after `Connection: close`, the drain bound
//! and the accept back-off — so the worker runtimes are built without the
//! timer driver (tokio's `time` feature is not even compiled in), and those
//! deadlines wait on one `timerfd` per runtime instead. The I/O driver polls
//! it like any socket: nothing runs per wakeup unless a deadline is due.
//!
//! A [`Timer`] keeps the wakers of the tasks waiting on it ordered by
//! deadline, and its timerfd armed at the earliest of them or before: a
//! deadline that is dropped does not disarm it, the expiry then finds
//! nothing due and re-arms for the next one. [`Timer::run`] is the task
//! that reads the expiries and wakes whoever is due.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One runtime's deadlines. Per-core has one per worker thread, the
/// multithread flavour one for its runtime (hence the lock: its tasks, and
/// so its deadlines, move between threads).
pub struct Timer {
    fd: AsyncFd<OwnedFd>,
    waiting: Mutex<Waiting>,
}

struct Waiting {
    /// Keyed by deadline, then by an id that tells apart equal deadlines.
    wakers: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// When the timerfd expires next; `None` while it is disarmed.
    armed: Option<Instant>,
    /// [`Timer::run`] has ended: nothing would wake a deadline any more,
    /// so every deadline is taken as passed (see there).
    stopped: bool,
}

impl Timer {
    /// A timer on the current runtime's I/O driver; [`Timer::run`] must be
    /// spawned on that runtime for its deadlines to fire.
    pub fn new() -> io::Result<Arc<Timer>> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create a timerfd: {e}")))?;
        // SAFETY: `register_with_interest` requires that the descriptor stay
        // open, and the same, for the `AsyncFd`'s whole life. It is an
        // `OwnedFd`, owned by the `AsyncFd` from here on and closed only when
        // that is dropped; nothing here replaces it (no `get_mut`). tokio
        // has no safe constructor for a descriptor of our own, and the
        // timerfd is the reason this module exists (module docs: tokio's
        // timer driver's cost on every wakeup).
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(Arc::new(Timer {
            fd,
            waiting: Mutex::new(Waiting {
                wakers: BTreeMap::new(),
                next_id: 0,
                armed: None,
                stopped: false,
            }),
        }))
    }

    /// A timer on `runtime`'s I/O driver with its [`Timer::run`] task
    /// spawned there (it runs once the runtime is driven); `stopped` is
    /// called with the error if that task ever ends.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        stopped: impl FnOnce(io::Error) + Send + 'static,
    ) -> io::Result<Arc<Timer>> {
        let timer = {
            let _guard = runtime.enter();
            Timer::new()?
        };
        let run = Arc::clone(&timer).run();
        runtime.spawn(async move { stopped(run.await) });
        Ok(timer)
    }

    /// Wakes every task whose deadline has passed, each time the timerfd
    /// expires; returns only if the runtime's I/O driver fails, with its
    /// error. Every deadline then counts as passed, those waiting and those
    /// to come: a connection whose head, body or linger can no longer be
    /// timed is closed rather than kept without a bound, and a drain ends
    /// at once instead of never.
    pub async fn run(self: Arc<Timer>) -> io::Error {
        loop {
            let mut ready = match self.fd.readable().await {
                Ok(ready) => ready,
                Err(e) => {
                    let all = {
                        let mut waiting = self.lock();
                        waiting.stopped = true;
                        waiting.armed = None;
                        std::mem::take(&mut waiting.wakers)
                    };
                    for waker in all.into_values() {
                        waker.wake();
                    }
                    return e;
                }
            };
            // The read resets the expiry count; it finds nothing (EAGAIN)
            // when the timer was re-armed since the expiry that woke us (a
            // re-arm also drops an expiry not yet read, harmless since it
            // arms at or before every registered deadline). Clearing
            // readiness loses nothing: an expiry after the read reaches
            // epoll as a new event, and the driver sets readiness again.
            let _ = rustix::io::read(self.fd.get_ref(), &mut [0u8; 8]);
            ready.clear_ready();
            let due = self.take_due();
            for waker in due {
                waker.wake();
            }
        }
    }

    /// Resolves at `deadline`.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<'_> {
        Sleep {
            timer: self,
            deadline,
            id: None,
        }
    }

    /// `future`'s output, or `None` if `deadline` comes first. `future`
    /// is `Unpin` (pin it with `pin!` at the call site) so that it is
    /// stored once, in the caller's state: an `async fn` here would hold it
    /// twice and grow every connection's future by its size.
    pub fn timeout_at<F: Future + Unpin>(&self, deadline: Instant, future: F) -> Timeout<'_, F> {
        Timeout {
            future,
            sleep: self.sleep_until(deadline),
        }
    }

    /// Removes the wakers that are due (to be woken outside the lock) and
    /// re-arms for the earliest deadline left, or leaves the timer disarmed.
    fn take_due(&self) -> Vec<Waker> {
        let now = Instant::now();
        let mut waiting = self.lock();
        let mut due = Vec::new();
        while let Some(entry) = waiting.wakers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        waiting.armed = None;
        if let Some(&(next, _)) = waiting.wakers.keys().next() {
            self.arm(&mut waiting, next, now);
        }
        due
    }

    /// Sets the timerfd to expire at `deadline` (relative to `now`; the
    /// kernel reads the same monotonic clock as `Instant`, and later, so it
    /// never expires before the deadline).
    fn arm(&self, waiting: &mut Waiting, deadline: Instant, now: Instant) {
        // A zero value would disarm the timer: a deadline already due gets
        // the shortest wait instead.
        let wait = deadline
            .saturating_duration_since(now)
            .max(Duration::from_nanos(1));
        let value = Itimerspec {
            it_interval: Timespec::default(),
            it_value: Timespec::try_from(wait).expect("timeouts are at most a year"),
        };
        rustix::time::timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &value)
            .expect("timerfd_settime on our own timerfd with a valid time cannot fail");
        waiting.armed = Some(deadline);
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Nothing panics while holding the lock but `arm`, and `armed` is
        // only set after it succeeds: the state is consistent either way.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A wait for one deadline, registered with its [`Timer`] only once it has
/// been polled before the deadline (the common case, a deadline that is
/// never reached before the awaited thing happens, costs one clock read and
/// one insert and remove under the lock).
pub struct Sleep<'a> {
    timer: &'a Timer,
    deadline: Instant,
    /// The key's second half while registered.
    id: Option<u64>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let now = Instant::now();
        if now >= this.deadline {
            this.deregister();
            return Poll::Ready(());
        }
        let mut waiting = this.timer.lock();
        if waiting.stopped {
            this.id = None;
            return Poll::Ready(());
        }
        let id = *this.id.get_or_insert_with(|| {
            waiting.next_id += 1;
            waiting.next_id
        });
        waiting
            .wakers
            .entry((this.deadline, id))
            .and_modify(|waker| waker.clone_from(cx.waker()))
            .or_insert_with(|| cx.waker().clone());
        if waiting.armed.is_none_or(|armed| this.deadline < armed) {
            this.timer.arm(&mut waiting, this.deadline, now);
        }
        Poll::Pending
    }
}

/// See [`Timer::timeout_at`].
pub struct Timeout<'a, F> {
    future: F,
    sleep: Sleep<'a>,
}

impl<F: Future + Unpin> Future for Timeout<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(output) = Pin::new(&mut this.future).poll(cx) {
            return Poll::Ready(Some(output));
        }
        Pin::new(&mut this.sleep).poll(cx).map(|()| None)
    }
}

impl Sleep<'_> {
    fn deregister(&mut self) {
        if let Some(id) = self.id.take() {
            self.timer.lock().wakers.remove(&(self.deadline, id));
        }
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        self.deregister();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap()
    }

    /// A timer on the current runtime, with its `run` task spawned.
    fn running_timer() -> Arc<Timer> {
        let timer = Timer::new().unwrap();
        tokio::spawn(Arc::clone(&timer).run());
        timer
    }

    /// Polls `sleep` once, which registers it if its deadline is ahead.
    async fn poll_once(sleep: &mut Sleep<'_>) -> Poll<()> {
        poll_fn(|cx| Poll::Ready(Pin::new(&mut *sleep).poll(cx))).await
    }

    /// Runs `test` on a runtime without tokio's timer driver; a deadline
    /// that never fires fails the test instead of hanging it.
    fn on_runtime<F: Future<Output = ()> + 'static>(test: impl FnOnce() -> F + Send + 'static) {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime().block_on(test());
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(5)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("a deadline did not fire within 5 s")
            }
            // Disconnected: the test panicked on its thread; say so here.
            Err(_) => panic!("the test failed on its runtime's thread (see above)"),
            Ok(()) => {}
        }
    }

    /// Deadlines registered out of order fire in deadline order, on a
    /// runtime without tokio's timer driver, and leave nothing registered.
    /// (`Sleep` itself never returns before its deadline: it checks the
    /// clock on every poll. That the timerfd is re-armed for an earlier
    /// deadline is `an_earlier_deadline_re_arms`'s job: here everything
    /// could fire at the last deadline and still come out in order.)
    #[test]
    fn deadlines_fire_in_deadline_order() {
        on_runtime(|| async {
            let timer = running_timer();
            let start = Instant::now();
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for ms in [60u64, 20, 40, 20] {
                let timer = Arc::clone(&timer);
                let order = Arc::clone(&order);
                tasks.push(tokio::spawn(async move {
                    let deadline = start + Duration::from_millis(ms);
                    timer.sleep_until(deadline).await;
                    order.lock().unwrap().push(ms);
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            assert_eq!(*order.lock().unwrap(), [20, 20, 40, 60]);
            assert!(timer.lock().wakers.is_empty());
        });
    }

    /// A deadline earlier than the armed one re-arms the timerfd: here the
    /// armed one is an hour away, so a missed re-arm trips the 5 s bound.
    #[test]
    fn an_earlier_deadline_re_arms() {
        on_runtime(|| async {
            let timer = running_timer();
            let far = Instant::now() + Duration::from_secs(3600);
            let mut far_sleep = timer.sleep_until(far);
            assert!(poll_once(&mut far_sleep).await.is_pending());
            assert_eq!(timer.lock().armed, Some(far));
            let near = Instant::now() + Duration::from_millis(20);
            timer.sleep_until(near).await;
            assert!(Instant::now() >= near);
            assert_eq!(timer.lock().wakers.len(), 1, "the far deadline still waits");
        });
    }

    /// `timeout_at`: the future's output if it is first, `None` at the
    /// deadline otherwise; either way nothing stays registered.
    #[test]
    fn timeout_at_returns_whichever_comes_first() {
        on_runtime(|| async {
            let timer = running_timer();
            let soon = Instant::now() + Duration::from_millis(30);
            let later = Instant::now() + Duration::from_secs(3600);
            let sleeper = timer.sleep_until(soon);
            assert_eq!(timer.timeout_at(later, sleeper).await, Some(()));
            assert_eq!(
                timer.timeout_at(soon, std::future::pending::<()>()).await,
                None
            );
            assert!(Instant::now() >= soon);
            assert!(timer.lock().wakers.is_empty());
        });
    }

    /// A dropped deadline leaves the timerfd armed at its time; that expiry
    /// finds nothing due and must re-arm for the later deadline, not lose it.
    #[test]
    fn a_dropped_deadline_does_not_lose_the_next() {
        on_runtime(|| async {
            let timer = running_timer();
            let start = Instant::now();
            let mut abandoned = timer.sleep_until(start + Duration::from_millis(20));
            assert!(poll_once(&mut abandoned).await.is_pending());
            drop(abandoned);
            assert_eq!(timer.lock().armed, Some(start + Duration::from_millis(20)));
            let deadline = start + Duration::from_millis(60);
            timer.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
            assert!(timer.lock().wakers.is_empty());
        });
    }

    /// When the I/O driver that holds the timerfd goes away, `run` ends
    /// with its error, and every deadline, waiting or new, counts as passed
    /// instead of never firing.
    #[test]
    fn a_stopped_timer_lets_every_deadline_pass() {
        let driver = runtime();
        let timer = driver.block_on(async { Timer::new().unwrap() });
        let (registered, wait_registered) = std::sync::mpsc::channel();
        let (result, wait_result) = std::sync::mpsc::channel();
        let far = Instant::now() + Duration::from_secs(3600);
        std::thread::spawn({
            let timer = Arc::clone(&timer);
            move || {
                runtime().block_on(async move {
                    let run = tokio::spawn(Arc::clone(&timer).run());
                    let mut waiting = timer.sleep_until(far);
                    assert!(poll_once(&mut waiting).await.is_pending());
                    registered.send(()).unwrap();
                    waiting.await;
                    timer.sleep_until(far).await;
                    let error = run.await.unwrap();
                    let _ = result.send((error.kind(), timer.lock().wakers.len()));
                })
            }
        });
        wait_registered
            .recv_timeout(Duration::from_secs(5))
            .expect("the deadline was registered");
        drop(driver);
        let (kind, left) = wait_result
            .recv_timeout(Duration::from_secs(5))
            .expect("the deadlines passed once the timer stopped");
        assert_ne!(kind, io::ErrorKind::WouldBlock);
        assert_eq!(left, 0);
        assert!(Instant::now() < far);
    }

    /// A deadline polled from another thread than the timer's runtime (as
    /// the multithread flavour's tasks are) is woken through its waker.
    #[test]
    fn wakes_a_task_on_another_runtime() {
        let timer_runtime = runtime();
        let timer = timer_runtime.block_on(async { Timer::new().unwrap() });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let driver = std::thread::spawn({
            let timer = Arc::clone(&timer);
            move || {
                timer_runtime.block_on(async move {
                    tokio::select! {
                        _ = timer.run() => {}
                        _ = stopped => {}
                    }
                })
            }
        });
        let deadline = Instant::now() + Duration::from_millis(20);
        let sleeper = Arc::clone(&timer);
        on_runtime(move || async move { sleeper.sleep_until(deadline).await });
        assert!(Instant::now() >= deadline);
        stop.send(()).unwrap();
        // Bounded: a `run` that never yields would hold its thread forever.
        let (joined, join_done) = std::sync::mpsc::channel();
        std::thread::spawn(move || joined.send(driver.join().is_ok()));
        let joined = join_done.recv_timeout(Duration::from_secs(5));
        assert_eq!(joined, Ok(true), "the timer's runtime did not stop");
    }
}
