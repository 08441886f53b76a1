//! The response body type every answer rampart gives is built on: nothing,
//! a small body held in memory (errors, redirects, small files), chunks
//! from a task (server-sent events), or a stream of the producer's own type
//! (`S`: the proxy's backend bodies, the origin's file streams).
//!
//! An enum generic over the stream instead of a boxed trait object keeps the
//! hot path free of an allocation per response, and this module free of
//! any dependency on the modules that produce bodies.
//!
//! Exposes [`Body`], [`NoStream`] and [`BodyError`].

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// Errors a body can end with.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A response body; `S` is the stream type of whoever produces it.
#[derive(Debug)]
pub enum Body<S = NoStream> {
    /// Nothing (HEAD, 304, 204).
    Empty,
    /// A body held in memory, sent in one frame.
    Full(Option<Bytes>),
    /// A body streamed by its producer (a backend's body relayed as it
    /// arrives, a file read from disk).
    Stream(S),
    /// Chunks produced by a task (server-sent events).
    Channel(tokio::sync::mpsc::Receiver<Bytes>),
}

/// The stream type of bodies that never stream.
#[derive(Debug)]
pub enum NoStream {}

impl HttpBody for NoStream {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match *self.get_mut() {}
    }
}

impl<S> Body<S> {
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

impl<S> HttpBody for Body<S>
where
    S: HttpBody<Data = Bytes> + Unpin,
    S::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(s) => Pin::new(s).poll_frame(cx).map_err(Into::into),
            Body::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Stream(s) => s.is_end_stream(),
            Body::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(s) => s.size_hint(),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}
