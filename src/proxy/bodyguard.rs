//! A request body on its way to the backend, under watch: a maximum size
//! (bodies without `Content-Length`, or lying about it), a minimum rate
//! after a grace period (slow POST), and an idle timeout between two pieces
//! of the body (`timeouts.request_body_idle`). A body that breaks a limit
//! ends with an error, which stops the upload, and raises its [`BodyFlag`]:
//! the send that failed because of it reports 413 or 408 instead of a
//! backend failure, and the server is not blamed. A client that goes away
//! mid-body is flagged the same way (a client abort, not a server failure).
//!
//! The flag also tells when the body has been sent whole
//! ([`BodyFlag::sent`]): a backend's response time counts from there, so
//! an upload may last longer than `timeouts.response_header`.

use super::h1::reqbody::ClientBody;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::rescue::ProxyError;
use crate::body::BodyError;

/// Whether, and why, a guarded body was cut off; and whether it was sent
/// whole.
#[derive(Debug)]
pub struct BodyFlag {
    state: AtomicU8,
    max: u64,
    idle: Duration,
    /// Raised once, when the body's end has been handed on.
    ended: Notify,
}

/// Why a body was cut off (the flag's state; 0: it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Tripped {
    TooLarge = 1,
    TooSlow = 2,
    Idle = 3,
    /// The client's side of the body failed: the client went away.
    Aborted = 4,
    /// The client framed the body wrongly (a malformed chunk).
    Malformed = 5,
}

impl BodyFlag {
    /// The client's error when its body was cut off (413, 408) or broke
    /// off (a client abort).
    pub fn error(&self) -> Option<ProxyError> {
        match self.state.load(Relaxed) {
            1 => Some(ProxyError::BodyTooLarge(self.max)),
            2 => Some(ProxyError::BodyTooSlow),
            3 => Some(ProxyError::BodyIdle(self.idle)),
            4 => Some(ProxyError::ClientAborted),
            5 => Some(ProxyError::BadChunking),
            _ => None,
        }
    }

    /// Resolves once the whole body has been handed on (at once if it
    /// already has). One waiter.
    pub async fn sent(&self) {
        self.ended.notified().await;
    }
}

/// The limits a body is held to.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max: Option<u64>,
    /// Bytes per second; 0 = off.
    pub min_rate: u64,
    pub grace: Duration,
    /// Longest wait for the next piece of the body.
    pub idle: Duration,
}

/// A client body under watch.
#[derive(Debug)]
pub struct GuardedBody {
    inner: ClientBody,
    limits: BodyLimits,
    flag: Arc<BodyFlag>,
    received: u64,
    started: Instant,
    /// When the rate is next checked (None: no minimum rate).
    rate_at: Option<Instant>,
    /// When the current wait for the client's next piece ends (None: not
    /// waiting; a wait starts when a poll finds nothing, so time spent
    /// waiting on the backend's side is not the client's).
    idle_at: Option<Instant>,
    /// One timer for both, armed only while waiting on the client.
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl GuardedBody {
    pub fn new(inner: ClientBody, limits: BodyLimits) -> Self {
        let flag = Arc::new(BodyFlag {
            state: AtomicU8::new(0),
            max: limits.max.unwrap_or(0),
            idle: limits.idle,
            ended: Notify::new(),
        });
        let started = Instant::now();
        GuardedBody {
            inner,
            limits,
            flag,
            received: 0,
            started,
            rate_at: (limits.min_rate > 0).then(|| started + limits.grace),
            idle_at: None,
            timer: None,
            ended: false,
        }
    }

    /// The flag a send watches to explain a failure.
    pub fn flag(&self) -> Arc<BodyFlag> {
        self.flag.clone()
    }

    fn trip(&self, why: Tripped) -> BodyError {
        self.flag.state.store(why as u8, Relaxed);
        match why {
            Tripped::TooLarge => "request body larger than allowed".into(),
            Tripped::TooSlow => "request body slower than allowed".into(),
            Tripped::Idle => "request body idle for longer than allowed".into(),
            Tripped::Aborted => "the client's request body broke off".into(),
            Tripped::Malformed => "the client's request body is malformed".into(),
        }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.flag.ended.notify_one();
        }
    }

    /// Nothing came: checks the limits that time decides, and arms the
    /// timer for the next check.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Option<BodyError> {
        let now = Instant::now();
        let idle_at = *self.idle_at.get_or_insert(now + self.limits.idle);
        loop {
            if now >= idle_at {
                return Some(self.trip(Tripped::Idle));
            }
            if let Some(at) = self.rate_at.filter(|at| now >= *at) {
                let elapsed = now.saturating_duration_since(self.started);
                let due = self.limits.min_rate as f64 * elapsed.as_secs_f64();
                if (self.received as f64) < due {
                    return Some(self.trip(Tripped::TooSlow));
                }
                self.rate_at = Some(at.max(now) + Duration::from_secs(1));
            }
            let next = self.rate_at.map_or(idle_at, |r| r.min(idle_at));
            let timer = match self.timer.as_mut() {
                Some(t) => {
                    if t.deadline() != next {
                        t.as_mut().reset(next);
                    }
                    t
                }
                None => self.timer.insert(Box::pin(tokio::time::sleep_until(next))),
            };
            if timer.as_mut().poll(cx).is_pending() {
                return None;
            }
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
                this.idle_at = None;
                if let Some(d) = f.data_ref() {
                    this.received += d.len() as u64;
                    if this.limits.max.is_some_and(|m| this.received > m) {
                        return Poll::Ready(Some(Err(this.trip(Tripped::TooLarge))));
                    }
                }
                if this.inner.is_end_stream() {
                    this.end();
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Pending => match this.waiting(cx) {
                Some(e) => Poll::Ready(Some(Err(e))),
                None => Poll::Pending,
            },
            Poll::Ready(Some(Err(e))) => {
                let why = if e.is::<super::h1::reqbody::BadChunking>() {
                    Tripped::Malformed
                } else {
                    Tripped::Aborted
                };
                let _ = this.flag.state.compare_exchange(0, why as u8, Relaxed, Relaxed);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
