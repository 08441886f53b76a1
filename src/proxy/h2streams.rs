//! HTTP/2 streams run inside their connection's task. hyper hands every
//! stream's future to the executor its HTTP/2 builder holds; a
//! [`StreamExec`] keeps them for the connection's [`Driver`], which polls
//! them in a `FuturesUnordered` beside the connection. No task is spawned
//! per stream, and a stream and its connection wake each other without
//! going through the scheduler.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::stream::{FuturesUnordered, StreamExt};

type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// New stream futures, handed over by hyper during the connection's poll.
#[derive(Clone, Default)]
pub struct StreamExec {
    new: Arc<Mutex<Vec<StreamFuture>>>,
}

impl std::fmt::Debug for StreamExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamExec")
    }
}

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        self.new
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::pin(fut));
    }
}

/// A connection future and the streams its executor received: polls
/// both, and ends with the connection's result once the connection has
/// ended and its last stream is done.
pub struct Driver<C: Future> {
    conn: Pin<Box<C>>,
    done: Option<C::Output>,
    streams: FuturesUnordered<StreamFuture>,
    exec: StreamExec,
}

impl<C: Future> Driver<C> {
    pub fn new(conn: C, exec: StreamExec) -> Self {
        Driver {
            conn: Box::pin(conn),
            done: None,
            streams: FuturesUnordered::new(),
            exec,
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
        // Streams the connection just accepted; hyper calls the executor
        // only from the connection's own poll, just above.
        let new = std::mem::take(&mut *this.exec.new.lock().unwrap_or_else(|p| p.into_inner()));
        this.streams.extend(new);
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

    #[tokio::test]
    async fn streams_run_in_the_connection_task_and_the_driver_waits_for_them() {
        let exec = StreamExec::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (e, r) = (exec.clone(), ran.clone());
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
        let driver = tokio::spawn(Driver::new(conn, exec));
        tokio::task::yield_now().await;
        assert_eq!(ran.load(SeqCst), 1, "the first stream ran, the second waits");
        assert!(!driver.is_finished(), "a stream is still open");
        tx.send(()).expect("send");
        assert_eq!(driver.await.expect("join"), 7);
        assert_eq!(ran.load(SeqCst), 2);
    }
}
