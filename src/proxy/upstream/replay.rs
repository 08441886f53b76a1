//! A request's body kept while it goes out on a reused backend
//! connection, so that the request can go out again on a new one when the
//! backend had closed the reused one (the keep-alive race). Only requests
//! that may be sent twice are kept (`Outgoing::repeatable`), and only up to
//! [`KEEP`] bytes of body; the pieces are shared with what was sent, not
//! copied.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::UpBody;
use crate::body::BodyError;

/// The most body kept for a replay.
pub const KEEP: usize = 64 * 1024;

/// The body pieces sent so far.
#[derive(Debug, Default)]
pub struct Kept {
    pieces: VecDeque<Bytes>,
    len: usize,
    /// More was sent than is kept: the request cannot go out again.
    overflow: bool,
}

impl Kept {
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Everything sent so far is kept.
    pub fn whole(&self) -> bool {
        !self.overflow
    }

    /// A body that sends what was kept, then the rest of `rest`; when
    /// `keep`, everything it sends is kept again.
    pub fn replaying(self, rest: &mut UpBody, keep: bool) -> Replaying<'_> {
        Replaying {
            queue: self.pieces,
            rest,
            kept: keep.then(Kept::default),
            lost: false,
        }
    }

    fn push(&mut self, piece: &Bytes) {
        if self.overflow {
            return;
        }
        if self.len + piece.len() > KEEP {
            self.overflow = true;
            self.pieces.clear();
            return;
        }
        self.len += piece.len();
        self.pieces.push_back(piece.clone());
    }
}

/// See [`Kept::replaying`].
#[derive(Debug)]
pub struct Replaying<'a> {
    queue: VecDeque<Bytes>,
    rest: &'a mut UpBody,
    kept: Option<Kept>,
    /// Something was sent and not kept.
    lost: bool,
}

impl Replaying<'_> {
    /// What was kept, and what was not sent yet of what had been: all
    /// that must go out again, whole unless something was sent unkept.
    pub fn finish(self) -> Kept {
        let mut k = self.kept.unwrap_or_default();
        for piece in &self.queue {
            k.push(piece);
        }
        k.overflow |= self.lost;
        if k.overflow {
            k.pieces.clear();
        }
        k
    }
}

impl HttpBody for Replaying<'_> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(piece) = this.queue.pop_front() {
            match this.kept.as_mut() {
                Some(k) => k.push(&piece),
                None => this.lost = true,
            }
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        let polled = Pin::new(&mut *this.rest).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled {
            match (f.data_ref(), this.kept.as_mut()) {
                (Some(d), Some(k)) => k.push(d),
                (Some(_), None) => this.lost = true,
                (None, _) => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.queue.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let queued: u64 = self.queue.iter().map(|p| p.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut h = SizeHint::new();
        h.set_lower(rest.lower() + queued);
        if let Some(u) = rest.upper() {
            h.set_upper(u + queued);
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    async fn frame(b: &mut Replaying<'_>) -> Option<Bytes> {
        poll_fn(|cx| Pin::new(&mut *b).poll_frame(cx))
            .await
            .map(|r| r.expect("frame").into_data().expect("data"))
    }

    #[tokio::test]
    async fn what_was_sent_is_sent_again_then_the_rest() {
        let (rx, tx) = crate::proxy::h1::reqbody::RequestBody::channel(Some(6));
        let mut up = UpBody::Client(crate::proxy::h1::reqbody::ClientBody::Engine(rx));
        tx.send(Ok(Bytes::from_static(b"abc"))).await.expect("send");
        let mut first = Kept::default().replaying(&mut up, true);
        assert_eq!(first.size_hint().exact(), Some(6));
        assert_eq!(frame(&mut first).await.as_deref(), Some(&b"abc"[..]));
        let kept = first.finish();
        assert!(kept.whole() && !kept.is_empty());
        // Nothing sent yet of a replay: all of it is still there.
        let kept = kept.replaying(&mut up, false).finish();
        assert!(kept.whole() && !kept.is_empty());
        tx.send(Ok(Bytes::from_static(b"def"))).await.expect("send");
        let mut again = kept.replaying(&mut up, false);
        assert_eq!(again.size_hint().exact(), Some(6));
        assert_eq!(frame(&mut again).await.as_deref(), Some(&b"abc"[..]));
        assert_eq!(frame(&mut again).await.as_deref(), Some(&b"def"[..]));
        assert!(again.is_end_stream());
    }

    #[test]
    fn more_than_keep_is_not_kept() {
        let mut k = Kept::default();
        k.push(&Bytes::from(vec![0u8; KEEP]));
        assert!(k.whole());
        k.push(&Bytes::from_static(b"x"));
        assert!(!k.whole() && k.is_empty());
    }
}
