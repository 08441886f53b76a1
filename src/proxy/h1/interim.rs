//! Interim answers (1xx other than 100 and 101, such as 103 Early Hints)
//! passed from a backend to an HTTP/1.1 client.
//!
//! The engine's client half reads them while it waits for the final
//! answer, inside the poll of the request's pipeline, which the client
//! connection's task drives. So no channel is needed: the server half arms
//! this worker's slot around each poll of its pipeline ([`poll_armed`]),
//! the client half [`offer`]s what it reads into the armed slot, and the
//! server half takes all of it out right after the poll. A backend's interim answer to
//! a request served any other way (HTTP/2 clients) finds the slot unarmed
//! and is dropped.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

/// At most this many interim answers are kept per request (a backend that
/// sends more gets the rest dropped).
const MAX_QUEUED: usize = 8;

#[derive(Default)]
struct Slot {
    armed: bool,
    queue: Vec<Response<()>>,
}

thread_local! {
    static SLOT: RefCell<Slot> = RefCell::new(Slot::default());
}

/// Offers an interim answer read from a backend: kept when an engine
/// client's pipeline is being polled on this worker, dropped otherwise.
pub fn offer(resp: Response<()>) {
    SLOT.with(|s| {
        let mut s = s.borrow_mut();
        if s.armed && s.queue.len() < MAX_QUEUED {
            s.queue.push(resp);
        }
    });
}

/// What one poll of a pipeline gave, with the interim answers the poll
/// read (in order; all of them are taken out of the slot at once, so that
/// nothing waits there while other tasks poll on this worker).
#[derive(Debug)]
pub enum Polled<T> {
    /// The final answer; interim answers read in the same poll go first.
    Done(T, Vec<Response<()>>),
    /// Interim answers to pass on before polling again.
    Interim(Vec<Response<()>>),
}

/// Polls `fut` with this worker's slot armed.
pub fn poll_armed<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<Polled<F::Output>> {
    SLOT.with(|s| s.borrow_mut().armed = true);
    let polled = fut.poll(cx);
    let queued = SLOT.with(|s| {
        let mut s = s.borrow_mut();
        s.armed = false;
        std::mem::take(&mut s.queue)
    });
    match polled {
        Poll::Ready(out) => Poll::Ready(Polled::Done(out, queued)),
        Poll::Pending if queued.is_empty() => Poll::Pending,
        Poll::Pending => Poll::Ready(Polled::Interim(queued)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn answers_offered_while_armed_come_out_in_order_and_others_are_dropped() {
        offer(Response::new(())); // not armed: dropped
        let mut step = 0;
        let mut fut = std::pin::pin!(poll_fn(|_| {
            step += 1;
            match step {
                1 => {
                    for code in [102u16, 103] {
                        let mut r = Response::new(());
                        *r.status_mut() = http::StatusCode::from_u16(code).expect("status");
                        offer(r);
                    }
                    Poll::Pending
                }
                _ => Poll::Ready("final"),
            }
        }));
        let mut seen = Vec::new();
        loop {
            match poll_fn(|cx| poll_armed(fut.as_mut(), cx)).await {
                Polled::Interim(rs) => seen.extend(rs.iter().map(|r| r.status().as_u16())),
                Polled::Done(out, rs) => {
                    assert_eq!(out, "final");
                    assert!(rs.is_empty());
                    break;
                }
            }
        }
        assert_eq!(seen, [102, 103]);
        assert!(SLOT.with(|s| s.borrow().queue.is_empty()));
    }
}
