//! Graceful drain: one signal tells every accept loop to stop and every
//! connection to finish what it is doing; the drain completes when the
//! last connection (each holds a [`DrainWatch`]) has gone.

use tokio::sync::watch;

/// The side that starts a drain and waits for it.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<bool>,
}

/// Held by every accept loop and connection task.
#[derive(Debug, Clone)]
pub struct DrainWatch {
    rx: watch::Receiver<bool>,
}

impl Drain {
    pub fn new() -> (Drain, DrainWatch) {
        let (tx, rx) = watch::channel(false);
        (Drain { tx }, DrainWatch { rx })
    }

    /// A new watch on this drain.
    pub fn watch(&self) -> DrainWatch {
        DrainWatch {
            rx: self.tx.subscribe(),
        }
    }

    /// Signals the drain and waits until every watch has been dropped.
    pub async fn drain(&self) {
        let _ = self.tx.send(true);
        self.tx.closed().await;
    }
}

impl DrainWatch {
    /// Resolves once a drain has been signalled.
    pub async fn signalled(&mut self) {
        let _ = self.rx.wait_for(|s| *s).await;
    }

    /// A drain has been signalled.
    pub fn is_signalled(&self) -> bool {
        *self.rx.borrow()
    }
}

/// Drives a hyper server connection; when a drain is signalled it asks the
/// connection to shut down gracefully (HTTP/1.1: finish the response in
/// flight, then close; HTTP/2: GOAWAY, then finish open streams) and keeps
/// driving it to the end.
#[macro_export]
macro_rules! serve_gracefully {
    ($conn:expr, $watch:expr) => {{
        let mut watch: $crate::listener::DrainWatch = $watch;
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            _ = watch.signalled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}
