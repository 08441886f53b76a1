//! The HTTP proxy: what happens to a request between a client connection
//! and a backend.
//!
//! ```text
//! client ──TLS/TCP──▶ server::serve ──▶ pipeline::handle ─────────────────────────▶ attempt::send ──▶ upstream::send_h1/h2 ──▶ backend
//!                     HTTP/1.1: h1::server  1 framing         6 body limits         8 pick a server     (h1::client over
//!                     (rampart's engine)    2 request id      7 forward headers       and send; retry    conns::IdleConns, or
//!                     HTTP/2: hyper,        3 normalise                               when safe          one HTTP/2 connection
//!                     h2streams             4 route                              9 response rewrite      per server and worker)
//!                                           5 firewall rules                    10 account
//!                      errors anywhere ───▶ rescue::answer (the one error → HTTP mapping);
//!                                           refusals::record (counted, an event, a strike)
//! ```
//!
//! The steps are numbered the same way in `pipeline.rs`, `attempt.rs` and
//! `docs/ARCHITECTURE.md`.
//!
//! Reads the running state ([`crate::runtime::Runtime`], swapped atomically
//! on reload). Exposes [`ConnCtx`] and the connection servers.

pub mod attempt;
pub mod bodyguard;
pub mod h1;
pub mod h2streams;
pub mod headers;
pub mod message;
pub mod pipeline;
pub mod refusals;
pub mod rescue;
pub mod server;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::runtime::Runtime;

/// The body of every answer the proxy gives: a backend's body relayed as
/// it arrives (an HTTP/1.1 connection goes back to its pool once the body
/// has been read to the end; an h2c stream just ends), or one made here.
pub type Body = crate::body::Body<upstream::PooledBody>;

/// What a connection task knows about its connection.
#[derive(Debug)]
pub struct ConnCtx {
    /// Index of the listener in [`Runtime::listeners`].
    pub listener: usize,
    /// The client: the socket's peer, or the address a trusted proxy's
    /// PROXY protocol header gave.
    pub peer: SocketAddr,
    /// The socket's peer was a trusted proxy.
    pub via_trusted: bool,
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Forwarding header values for this client.
    pub client: headers::ClientHeaders,
    /// The TLS server name the client asked for.
    pub sni: std::sync::OnceLock<Box<str>>,
    /// The client certificate the TLS handshake verified, if any.
    /// Boxed: most connections have none, and the context stays small.
    pub client_cert: std::sync::OnceLock<Box<headers::ClientCertId>>,
}

impl ConnCtx {
    pub fn new(listener: usize, peer: SocketAddr, https: bool, runtime: Arc<ArcSwap<Runtime>>) -> Self {
        Self::with_client(listener, peer, false, https, runtime)
    }

    /// A connection whose client is `peer`; `via_trusted`: the socket's
    /// peer was a trusted proxy (its `X-Forwarded-For` is believed).
    pub fn with_client(
        listener: usize,
        peer: SocketAddr,
        via_trusted: bool,
        https: bool,
        runtime: Arc<ArcSwap<Runtime>>,
    ) -> Self {
        let client = headers::ClientHeaders::new(peer.ip(), https);
        ConnCtx {
            listener,
            peer,
            via_trusted,
            runtime,
            client,
            sni: std::sync::OnceLock::new(),
            client_cert: std::sync::OnceLock::new(),
        }
    }
}
