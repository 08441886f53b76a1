//! Limits on a request body as it streams to the backend: a maximum size
//! (bodies without `Content-Length`, or lying about it) and a minimum rate
//! after a grace period (slow POST). A body that breaks a limit ends with an
//! error, which stops the upload, and raises its [`BodyFlag`]: the send
//! that failed because of it reports 413 or 408 instead of 502.

use super::h1::reqbody::ClientBody;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::rescue::ProxyError;
use crate::body::BodyError;

/// Whether, and why, a guarded body was cut off.
#[derive(Debug)]
pub struct BodyFlag {
    state: AtomicU8,
    max: u64,
}

/// What a tripped guard means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tripped {
    TooLarge,
    TooSlow,
}

impl BodyFlag {
    /// The client's error when the body was cut off (413 or 408).
    pub fn error(&self) -> Option<ProxyError> {
        match self.state.load(Relaxed) {
            1 => Some(ProxyError::BodyTooLarge(self.max)),
            2 => Some(ProxyError::BodyTooSlow),
            _ => None,
        }
    }
}

/// The limits a body is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max: Option<u64>,
    /// Bytes per second; 0 = off.
    pub min_rate: u64,
    pub grace: Duration,
}

/// A client body under watch.
#[derive(Debug)]
pub struct GuardedBody {
    inner: ClientBody,
    limits: BodyLimits,
    flag: Arc<BodyFlag>,
    received: u64,
    started: Instant,
    check: Option<Pin<Box<Sleep>>>,
}

impl GuardedBody {
    pub fn new(inner: ClientBody, limits: BodyLimits) -> Self {
        let flag = Arc::new(BodyFlag {
            state: AtomicU8::new(0),
            max: limits.max.unwrap_or(0),
        });
        let started = Instant::now();
        let check = (limits.min_rate > 0).then(|| Box::pin(tokio::time::sleep_until(started + limits.grace)));
        GuardedBody {
            inner,
            limits,
            flag,
            received: 0,
            started,
            check,
        }
    }

    /// The flag a send watches to explain a failure.
    pub fn flag(&self) -> Arc<BodyFlag> {
        self.flag.clone()
    }

    fn trip(&self, why: Tripped) -> BodyError {
        self.flag
            .state
            .store(if why == Tripped::TooLarge { 1 } else { 2 }, Relaxed);
        match why {
            Tripped::TooLarge => "request body larger than allowed".into(),
            Tripped::TooSlow => "request body slower than allowed".into(),
        }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.received += d.len() as u64;
                    if this.limits.max.is_some_and(|m| this.received > m) {
                        return Poll::Ready(Some(Err(this.trip(Tripped::TooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Pending => {
                // Nothing arrived: is the body too slow?
                if let Some(sleep) = this.check.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        let elapsed = this.started.elapsed();
                        let due = this.limits.min_rate as f64 * elapsed.as_secs_f64();
                        if (this.received as f64) < due {
                            return Poll::Ready(Some(Err(this.trip(Tripped::TooSlow))));
                        }
                        sleep.as_mut().reset(Instant::now() + Duration::from_secs(1));
                        let _ = sleep.as_mut().poll(cx);
                    }
                }
                Poll::Pending
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
