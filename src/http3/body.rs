//! A request body read from an HTTP/3 stream as the backend side asks for
//! it: DATA frames, then the trailers if the client sent any.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body as HttpBody, Frame};

use crate::body::BodyError;

type Recv = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;

pub struct RequestBody {
    recv: Recv,
    /// The declared length, if any.
    length: Option<u64>,
    /// A frame read ahead (by [`RequestBody::look_ahead`]).
    first: Option<Result<Frame<Bytes>, BodyError>>,
    /// Bytes read from the stream so far.
    read: u64,
    data_done: bool,
    done: bool,
}

impl RequestBody {
    pub fn new(recv: Recv, length: Option<u64>) -> Self {
        RequestBody {
            recv,
            length,
            first: None,
            read: 0,
            data_done: false,
            done: false,
        }
    }

    /// Polls the stream once, without waiting: a request whose stream
    /// ended with its head is then known to have no body (the backend gets
    /// none, not an empty chunked one).
    pub async fn look_ahead(&mut self) {
        let polled = std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *self).poll_frame(cx) {
                Poll::Ready(f) => Some(f),
                Poll::Pending => None,
            })
        })
        .await;
        if let Some(Some(frame)) = polled {
            self.first = Some(frame);
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(f) = this.first.take() {
            return Poll::Ready(Some(f));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if !this.data_done {
            match this.recv.poll_recv_data(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(Some(mut buf))) => {
                    let n = buf.remaining();
                    this.read += n as u64;
                    return Poll::Ready(Some(Ok(Frame::data(buf.copy_to_bytes(n)))));
                }
                Poll::Ready(Ok(None)) => this.data_done = true,
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
        match this.recv.poll_recv_trailers(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                this.done = true;
                match r {
                    Ok(Some(t)) => Poll::Ready(Some(Ok(Frame::trailers(t)))),
                    Ok(None) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let ahead = match &self.first {
            Some(Ok(f)) => f.data_ref().map_or(0, |d| d.len() as u64),
            _ => 0,
        };
        match self.length {
            Some(n) => http_body::SizeHint::with_exact(n.saturating_sub(self.read) + ahead),
            None => http_body::SizeHint::default(),
        }
    }
}
