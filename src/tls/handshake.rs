//! The TLS step of a client connection: the handshake within a time limit,
//! counted on the listener (handshakes by version, failures), and what it
//! decided (ALPN `h2`, the server name asked for).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::stats::ListenerStats;

/// A finished handshake.
#[derive(Debug)]
pub struct Accepted<S> {
    pub stream: TlsStream<S>,
    /// ALPN chose HTTP/2.
    pub h2: bool,
    /// The server name the client asked for (SNI).
    pub sni: Option<Box<str>>,
    /// The client certificate the handshake verified (listeners with
    /// `client_auth`).
    pub peer: Option<PeerCert>,
}

/// What a verified client certificate says.
#[derive(Debug, Clone)]
pub struct PeerCert {
    pub subject: String,
    /// DNS names, IP addresses, e-mail addresses and URIs.
    pub sans: Vec<String>,
    /// SHA-256 of the certificate (DER), hex.
    pub sha256: String,
}

/// Why a handshake did not finish.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake failed: {0}")]
    Failed(#[from] std::io::Error),
    #[error("TLS handshake timed out")]
    TimedOut,
}

/// Runs the server side of a handshake on `stream`, for at most `timeout`.
pub async fn accept<S>(
    config: Arc<ServerConfig>,
    stream: S,
    timeout: Duration,
    stats: &ListenerStats,
) -> Result<Accepted<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let done = match tokio::time::timeout(timeout, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            stats.tls_failures.fetch_add(1, Relaxed);
            return Err(e.into());
        }
        Err(_) => {
            stats.tls_failures.fetch_add(1, Relaxed);
            return Err(HandshakeError::TimedOut);
        }
    };
    let conn = done.get_ref().1;
    let v13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    stats.tls_handshakes[usize::from(v13)].fetch_add(1, Relaxed);
    let h2 = conn.alpn_protocol() == Some(b"h2");
    stats.protocols[usize::from(h2)].fetch_add(1, Relaxed);
    let sni = conn.server_name().map(Box::from);
    let peer = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| super::cert::peer_identity(c.as_ref()));
    Ok(Accepted {
        stream: done,
        h2,
        sni,
        peer,
    })
}
