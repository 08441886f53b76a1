//! A client's request body as the rest of the proxy sees it: fed by the
//! connection loop that reads it ([`Feed`]), one piece at a time, as the
//! backend side asks for more (a channel of one piece: back-pressure
//! reaches the client's socket).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::body::BodyError;

/// The error a body ends with when the client framed it wrongly (a
/// malformed chunk): the request is refused, not the backend blamed.
#[derive(Debug, thiserror::Error)]
#[error("invalid chunked request body")]
pub struct BadChunking;

/// The body of a request from a client: read by rampart's engine, or by
/// hyper (HTTP/2).
#[derive(Debug)]
pub enum ClientBody {
    Hyper(Incoming),
    Engine(RequestBody),
    /// Another transport's body (HTTP/3).
    Boxed(OtherBody),
}

/// A request body from another transport, boxed.
pub struct OtherBody(pub Pin<Box<dyn HttpBody<Data = Bytes, Error = BodyError> + Send + Sync>>);

impl std::fmt::Debug for OtherBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtherBody")
    }
}

impl HttpBody for ClientBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ClientBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            ClientBody::Engine(b) => Pin::new(b).poll_frame(cx),
            ClientBody::Boxed(b) => b.0.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(b) => b.is_end_stream(),
            ClientBody::Engine(b) => b.is_end_stream(),
            ClientBody::Boxed(b) => b.0.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(b) => b.size_hint(),
            ClientBody::Engine(b) => b.size_hint(),
            ClientBody::Boxed(b) => b.0.size_hint(),
        }
    }
}

/// A request body read by the engine's connection loop.
#[derive(Debug)]
pub struct RequestBody {
    rx: Option<mpsc::Receiver<Result<Bytes, BodyError>>>,
    /// Bytes still to come, when the length was declared.
    remaining: Option<u64>,
}

/// The connection loop's end of a [`RequestBody`].
pub type Feed = mpsc::Sender<Result<Bytes, BodyError>>;

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        RequestBody {
            rx: None,
            remaining: Some(0),
        }
    }

    /// A body of `length` bytes (None: chunked) and the sender that feeds it.
    pub fn channel(length: Option<u64>) -> (Self, Feed) {
        let (tx, rx) = mpsc::channel(1);
        (
            RequestBody {
                rx: Some(rx),
                remaining: length,
            },
            tx,
        )
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let Some(rx) = this.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(data))) => {
                if let Some(r) = this.remaining.as_mut() {
                    *r = r.saturating_sub(data.len() as u64);
                    if *r == 0 {
                        this.rx = None;
                    }
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(e))) => {
                this.rx = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.rx = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
