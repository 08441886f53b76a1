//! The clock the request path reads: [`precise`] where a latency starts
//! or ends (a request's arrival, a response head's), [`coarse`] for
//! everything that needs milliseconds at best (idle deadlines).
//!
//! A worker thread keeps the time of its last reading: the runtime
//! refreshes it each time the thread wakes from waiting for events
//! ([`refresh`], installed by the CLI as tokio's unpark hook), and every
//! precise reading refreshes it too. On a thread without the hook (tests,
//! embedded runtimes) [`coarse`] reads the clock.
//!
//! A leaf: it knows tokio's `Instant` and nothing of rampart.

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    /// This thread's last reading; `None` where no hook refreshes it.
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Reads the clock into this thread's last reading (the runtime's unpark
/// and thread-start hook).
pub fn refresh() {
    LAST.with(|l| l.set(Some(Instant::now())));
}

/// The time, to within what happened since this thread last woke or read
/// the clock precisely: no system clock read where the hook runs.
pub fn coarse() -> Instant {
    LAST.with(Cell::get).unwrap_or_else(Instant::now)
}

/// The time, read now (a latency's start or end).
pub fn precise() -> Instant {
    let now = Instant::now();
    LAST.with(|l| {
        if l.get().is_some() {
            l.set(Some(now));
        }
    });
    now
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn without_the_hook_coarse_reads_the_clock_and_with_it_keeps_the_last_reading() {
        std::thread::spawn(|| {
            let before = Instant::now();
            assert!(coarse() >= before, "no hook: a fresh reading");
            refresh();
            let kept = coarse();
            std::thread::sleep(Duration::from_millis(5));
            assert_eq!(coarse(), kept, "the hook's reading is kept");
            let p = precise();
            assert!(p >= kept + Duration::from_millis(5));
            assert_eq!(coarse(), p, "a precise reading refreshes it");
        })
        .join()
        .expect("thread");
    }
}
