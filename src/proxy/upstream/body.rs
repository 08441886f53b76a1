//! A backend's response body on its way to the client: read from the
//! HTTP/1.1 connection by whoever polls it (the connection goes back to
//! its pool once the body has ended cleanly), or an HTTP/2 stream's body.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;

use crate::balancer::budget::PoolGuard;
use crate::body::BodyError;
use crate::conns::{BackendStream, Lease};
use crate::proxy::attempt::InFlight;
use crate::proxy::h1::client::BodyReader;

enum Inner {
    /// Read from an HTTP/1.1 connection; its lease until it is given back;
    /// when its head arrived (the connection is idle from its body's end,
    /// which is no later than the client's next use of it: close enough
    /// for `backend_idle`, without a clock read).
    H1 {
        reader: BodyReader,
        lease: Option<Lease>,
        at: tokio::time::Instant,
    },
    H2(Incoming),
}

/// A backend response body that returns its connection to the pool once
/// it has been read to the end. A body dropped before its end closes the
/// connection, since unread bytes would corrupt the next response.
pub struct PooledBody {
    inner: Inner,
    /// Keeps the server's (and pool's) in-flight counts up until the body is done.
    in_flight: Option<InFlight>,
    pool_guard: Option<PoolGuard>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h1 = matches!(self.inner, Inner::H1 { .. });
        f.debug_struct("PooledBody").field("h1", &h1).finish()
    }
}

impl PooledBody {
    /// A body read from an HTTP/1.1 connection held under `lease`.
    pub(super) fn h1(reader: BodyReader, lease: Lease, at: tokio::time::Instant) -> Self {
        PooledBody {
            inner: Inner::H1 {
                reader,
                lease: Some(lease),
                at,
            },
            in_flight: None,
            pool_guard: None,
        }
    }

    /// A body on a connection that is not pooled (an HTTP/2 stream): it
    /// only carries the in-flight accounting.
    pub fn stream(inner: Incoming) -> Self {
        PooledBody {
            inner: Inner::H2(inner),
            in_flight: None,
            pool_guard: None,
        }
    }

    /// Ties the server's in-flight accounting to this body's life.
    pub fn with_in_flight(mut self, f: InFlight) -> Self {
        self.in_flight = Some(f);
        self
    }

    /// Ties the pool's in-flight accounting to this body's life.
    pub fn keep_pool_guard(&mut self, g: PoolGuard) {
        self.pool_guard = Some(g);
    }

    /// For a 101 answer: the backend connection (now the new protocol's)
    /// and the bytes that came after the head.
    pub fn take_upgrade(&mut self) -> Option<(BackendStream, Bytes)> {
        match &mut self.inner {
            Inner::H1 { reader, lease, .. } => {
                // A tunnel now: no longer the pool's.
                lease.take();
                reader.take_upgraded()
            }
            Inner::H2(_) => None,
        }
    }

    fn release(&mut self) {
        if let Inner::H1 { reader, lease, at } = &mut self.inner {
            if let (Some(stream), Some(lease)) = (reader.take_reusable(), lease.take()) {
                lease.checkin_at(stream, *at);
            }
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::H1 { reader, lease, .. } => match ready!(reader.poll_data(cx)) {
                Some(Ok(data)) => {
                    if reader.is_done() {
                        this.release();
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Some(Err(e)) => {
                    lease.take();
                    Poll::Ready(Some(Err(e.into())))
                }
                None => {
                    this.release();
                    Poll::Ready(None)
                }
            },
            Inner::H2(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::H1 { reader, .. } => reader.is_done(),
            Inner::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::H1 { reader, .. } => reader
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
            Inner::H2(b) => b.size_hint(),
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left to read (HEAD, 204, 304, or fully read)
        // leaves a clean connection behind; anything else is closed.
        self.release();
    }
}
