//! HTTP/2 streams run inside their connection's task. hyper hands every
//! stream's future to the executor its HTTP/2 builder holds; a
//! [`StreamExec`] leaves them for the connection's [`Driver`], which polls
//! them in a `FuturesUnordered` beside the connection. No task is spawned
//! per stream, and a stream and its connection wake each other without
//! going through the scheduler.
//!
//! hyper calls the executor only from the connection's own poll, which
//! runs inside [`Driver::poll`] on the worker's thread: a new stream is
//! left in a list of that thread's and adopted by the driver right after
//! (no lock, no shared counter per stream).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};

type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

thread_local! {
    /// Streams handed over during the connection poll running now on
    /// this thread.
    static NEW: RefCell<Vec<StreamFuture>> = const { RefCell::new(Vec::new()) };
}

/// The executor an HTTP/2 connection's builder holds (see the module doc).
#[derive(Clone, Copy, Default, Debug)]
pub struct StreamExec;

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        NEW.with(|n| n.borrow_mut().push(Box::pin(fut)));
    }
}

/// A connection future and the streams its executor received: polls
/// both, and ends with the connection's result once the connection has
/// ended and its last stream is done.
pub struct Driver<C: Future> {
    conn: Pin<Box<C>>,
    done: Option<C::Output>,
    streams: FuturesUnordered<StreamFuture>,
}

impl<C: Future> Driver<C> {
    pub fn new(conn: C) -> Self {
        Driver {
            conn: Box::pin(conn),
            done: None,
            streams: FuturesUnordered::new(),
        }
    }

    /// The connection, for `graceful_shutdown`.
    pub fn conn(&mut self) -> Pin<&mut C> {
        self.conn.as_mut()
    }
}

impl<C: Future> Future for Driver<C>
where
    C::Output: Unpin,
{
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        if this.done.is_none() {
            if let Poll::Ready(r) = this.conn.as_mut().poll(cx) {
                this.done = Some(r);
            }
        }
        // Streams the connection just accepted (hyper calls the executor
        // only from the connection's own poll, just above, on this
        // thread); drained, so the list keeps its room.
        NEW.with(|n| {
            let mut n = n.borrow_mut();
            if !n.is_empty() {
                this.streams.extend(n.drain(..));
            }
        });
        while let Poll::Ready(Some(())) = this.streams.poll_next_unpin(cx) {}
        if this.streams.is_empty() {
            if let Some(r) = this.done.take() {
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    }
}

impl<C: Future> std::fmt::Debug for Driver<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("streams", &self.streams.len())
            .field("ended", &self.done.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    #[tokio::test]
    async fn streams_run_in_the_connection_task_and_the_driver_waits_for_them() {
        let exec = StreamExec;
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (e, r) = (exec, ran.clone());
        // A "connection" that hands over two streams, then ends at once.
        let conn = async move {
            let r2 = r.clone();
            e.execute(async move {
                r2.fetch_add(1, SeqCst);
            });
            e.execute(async move {
                let _ = rx.await;
                r.fetch_add(1, SeqCst);
            });
            7
        };
        let driver = tokio::spawn(Driver::new(conn));
        tokio::task::yield_now().await;
        assert_eq!(ran.load(SeqCst), 1, "the first stream ran, the second waits");
        assert!(!driver.is_finished(), "a stream is still open");
        tx.send(()).expect("send");
        assert_eq!(driver.await.expect("join"), 7);
        assert_eq!(ran.load(SeqCst), 2);
    }
}
