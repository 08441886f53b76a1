//! TCP mode (`mode = "tcp"` listeners): each connection, once admitted
//! (and past TLS on https listeners), is relayed to a server of the
//! listener's pool, bytes copied both ways without interpretation. A half
//! close on one side is passed to the other; a server that cannot be
//! reached within the connect timeout is skipped for another. The pool's
//! algorithm picks the server (`least_requests` counts open connections;
//! `hash` on the client address).
//!
//! Exposes [`relay`] and [`is_tcp`].

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::balancer::PickInput;
use crate::runtime::Runtime;

/// Whether the listener at `slot` relays TCP.
pub fn is_tcp(runtime: &ArcSwap<Runtime>, slot: usize) -> bool {
    matches!(runtime.load().listeners.get(slot), Some(Some(l)) if l.tcp_pool.is_some())
}

/// Relays `client` (of the listener at `slot`, from `peer`) to a server of
/// the listener's pool until both sides have closed.
pub async fn relay<S>(mut client: S, runtime: &Arc<ArcSwap<Runtime>>, slot: usize, peer: IpAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let rt = runtime.load_full();
    let Some(Some(l)) = rt.listeners.get(slot) else {
        return;
    };
    let Some(pool) = l.tcp_pool.as_deref().and_then(|p| rt.pool(p)) else {
        return;
    };
    let headers = http::HeaderMap::new();
    let input = PickInput {
        client_ip: peer,
        headers: &headers,
    };
    let mut avoid = Vec::new();
    for _ in 0..=pool.retries {
        let Some(pick) = pool.balancer.pick_avoiding(&input, &avoid) else {
            tracing::debug!(listener = %l.name, pool = %pool.name, %peer, "no server available: connection closed");
            return;
        };
        let (server, index) = (pick.server.clone(), pick.index);
        avoid.push(index);
        // Counted in flight for as long as the connection lasts.
        let _open = server.begin();
        let connected = tokio::time::timeout(rt.timeouts.connect, TcpStream::connect(server.addr)).await;
        let mut upstream = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(server = %server.name, error = %e, "TCP connect failed: trying another server");
                continue;
            }
            Err(_) => {
                tracing::debug!(server = %server.name, "TCP connect timed out: trying another server");
                continue;
            }
        };
        let _ = upstream.set_nodelay(true);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => {
                tracing::debug!(server = %server.name, bytes_up = up, bytes_down = down, "TCP session ended");
            }
            Err(e) => tracing::debug!(server = %server.name, error = %e, "TCP session ended with an error"),
        }
        return;
    }
}
