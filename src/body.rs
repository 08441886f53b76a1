//! The response body type shared by every answer rampart gives: proxied
//! backend bodies (streamed), small fixed bodies (errors, redirects, small
//! files) and file streams from the origin role.
//!
//! One enum instead of a boxed trait object keeps the hot path free of an
//! allocation per response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::proxy::upstream::PooledBody;

/// Errors a body can end with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body rampart sends.
#[derive(Debug)]
pub enum Body {
    /// Nothing (HEAD, 304, 204).
    Empty,
    /// A body held in memory, sent in one frame.
    Full(Option<Bytes>),
    /// A backend's body relayed as it arrives (an HTTP/1.1 connection goes
    /// back to its pool once the body has been read to the end; an h2c
    /// stream just ends); the server's in-flight count lasts as long.
    Upstream(PooledBody),
    /// A file (or part of one) streamed from disk.
    File(crate::origin::FileStream),
    /// Chunks produced by a task (server-sent events).
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body {
    /// A body held in memory.
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            Body::Empty
        } else {
            Body::Full(Some(b))
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Upstream(p) => Pin::new(p).poll_frame(cx).map_err(Into::into),
            Body::File(f) => Pin::new(f).poll_frame(cx),
            Body::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Upstream(p) => p.is_end_stream(),
            Body::File(f) => f.is_end_stream(),
            Body::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Upstream(p) => p.size_hint(),
            Body::File(f) => f.size_hint(),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}
