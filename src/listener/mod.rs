//! Listening sockets and accept loops: binding (with `SO_REUSEADDR` and a
//! deep backlog), accepting until told to stop and handing each connection
//! to the caller's function (the application runs admission, the TLS step
//! and the proxy's server there), byte counting per connection, and the
//! drain every connection watches.
//!
//! Exposes [`bind`], [`accept_loop`] and the drain ([`Drain`],
//! [`DrainWatch`], [`serve_gracefully!`](crate::serve_gracefully)).

mod counting;
mod drain;
pub use counting::Counting;
pub use drain::{Drain, DrainWatch};

use std::future::Future;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Binds a TCP listener.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    TcpListener::from_std(s.into())
}

/// Accepts connections until a drain is signalled, spawning `serve` for each.
/// Accept errors (such as running out of file descriptors) are logged and
/// retried after a short pause instead of ending the loop.
pub async fn accept_loop<F, Fut>(listener: TcpListener, mut stop: DrainWatch, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            biased;
            _ = stop.signalled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}
