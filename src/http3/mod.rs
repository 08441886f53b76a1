//! HTTP/3: QUIC (quinn, with h3) on an https listener's address and port,
//! over UDP, with the listener's TLS configuration (the same certificate
//! resolver: SNI, ACME and reloaded certificates serve both).
//!
//! The connection filter (bans, allow/deny list, per-client connection
//! limits) runs on a connection's first Initial packet, before any
//! handshake work: a refused address costs no crypto. Each request then
//! goes through the proxy's pipeline as an HTTP/2 request does (routing,
//! firewall rules, limits, bans, rewriting, retries, balancing, access
//! log), its body read from the QUIC stream as the backend asks for it.
//! A drain sends GOAWAY and lets the requests in flight finish.
//!
//! Exposes [`bind`], [`serve`] and [`Http3Error`].

mod body;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::fields::Head;
use crate::listener::DrainWatch;
use crate::proxy::h1::reqbody::{ClientBody, OtherBody};
use crate::proxy::message::ClientRequest;
use crate::proxy::rescue::{self, ProxyError};
use crate::proxy::{pipeline, ConnCtx};
use crate::runtime::Runtime;
use crate::stats::ListenerStats;
use std::sync::atomic::Ordering::Relaxed;

/// What can go wrong setting HTTP/3 up.
#[derive(Debug, thiserror::Error)]
pub enum Http3Error {
    #[error("the TLS configuration cannot serve QUIC: {0}")]
    Tls(String),
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Limits of one QUIC connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub max_streams: u32,
    /// The largest request header section (QPACK-decoded) accepted.
    pub max_field_section: u64,
    /// New handshakes per second above which a client gets a Retry first.
    pub retry_above: u32,
    pub retry_always: bool,
}

/// New handshakes in the current one-second window, to decide on Retry.
struct Pace {
    since: tokio::time::Instant,
    count: u32,
}

impl Pace {
    /// Counts one more; whether the window is past `limit`.
    fn over(&mut self, limit: u32) -> bool {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            self.since = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count > limit
    }
}

/// quinn's server configuration from the listener's TLS configuration:
/// the same certificates, ALPN `h3`, TLS 1.3 only (QUIC has no other).
pub fn server_config(tls: &rustls::ServerConfig, limits: Limits) -> Result<quinn::ServerConfig, Http3Error> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    // 0-RTT stays off.
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))
        .map_err(|e| Http3Error::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(limits.max_streams.into())
        // Clients open no unidirectional streams but h3's control and
        // QPACK streams.
        .max_concurrent_uni_streams(3u8.into())
        .max_idle_timeout(quinn::IdleTimeout::try_from(limits.idle).ok());
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The receive and send buffer asked for each HTTP/3 socket: what a
/// busy QUIC server needs so that the kernel does not drop datagrams
/// between two reads.
pub const UDP_BUFFER: usize = 7 << 20;

/// Binds the UDP socket of an https listener's HTTP/3 side, with its
/// buffers raised (the log says what the kernel granted).
pub fn bind(addr: SocketAddr, config: quinn::ServerConfig) -> Result<quinn::Endpoint, Http3Error> {
    use socket2::{Domain, Protocol, Socket, Type};
    let err = |source| Http3Error::Bind { addr, source };
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(err)?;
    }
    // Above the kernel's maximum, the kernel grants its maximum.
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&addr.into()).map_err(err)?;
    let granted = (
        s.recv_buffer_size().unwrap_or(0),
        s.send_buffer_size().unwrap_or(0),
    );
    if granted.0 < UDP_BUFFER {
        tracing::warn!(
            %addr,
            receive = granted.0,
            send = granted.1,
            "HTTP/3: the kernel granted smaller UDP buffers than the {UDP_BUFFER} bytes asked for \
             (raise net.core.rmem_max and net.core.wmem_max)"
        );
    } else {
        tracing::info!(%addr, receive = granted.0, send = granted.1, "HTTP/3: UDP buffers");
    }
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        s.into(),
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(err)
}

/// What `rampart check` says about the host for HTTP/3 listeners: kernel
/// limits below the UDP buffers rampart asks for.
pub fn warnings(m: &crate::config::Model) -> Vec<String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    buffer_warnings(m, &read)
}

fn buffer_warnings(m: &crate::config::Model, read: &dyn Fn(&str) -> Option<usize>) -> Vec<String> {
    use crate::config::model::ListenerKind;
    let quic = m
        .listeners
        .iter()
        .any(|l| matches!(&l.kind, ListenerKind::Https(s) if s.http3));
    if !quic {
        return Vec::new();
    }
    [
        ("net.core.rmem_max", "/proc/sys/net/core/rmem_max"),
        ("net.core.wmem_max", "/proc/sys/net/core/wmem_max"),
    ]
    .into_iter()
    .filter_map(|(key, path)| {
        let v = read(path)?;
        (v < UDP_BUFFER).then(|| {
            format!(
                "HTTP/3: {key} is {v} bytes, below the {UDP_BUFFER} rampart asks for its UDP sockets: \
                     under load the kernel drops QUIC packets (sysctl -w {key}={UDP_BUFFER})"
            )
        })
    })
    .collect()
}

/// Accepts QUIC connections on `endpoint` for the listener at `slot` until
/// the drain is signalled.
pub async fn serve(
    endpoint: quinn::Endpoint,
    runtime: Arc<ArcSwap<Runtime>>,
    slot: usize,
    limits: Limits,
    mut watch: DrainWatch,
) {
    let mut pace = Pace {
        since: tokio::time::Instant::now(),
        count: 0,
    };
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => return,
            },
            _ = watch.signalled() => return,
        };
        let peer = incoming.remote_address();
        let (filter, stats) = match runtime.load().listeners.get(slot) {
            Some(Some(l)) => (l.admission.clone(), l.stats.clone()),
            _ => return,
        };
        // Before any handshake work: the address alone decides.
        let admitted = match filter.admit_client(peer, false) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(%peer, "QUIC connection refused at admission: {why}");
                incoming.refuse();
                continue;
            }
        };
        let cx = Arc::new(ConnCtx::with_client(
            slot,
            admitted.client,
            admitted.via_trusted,
            true,
            runtime.clone(),
        ));
        // Address validation: past the pace (or always, when set), a new
        // client first gets a Retry and comes back with its token; the
        // amplification limit (three times what the client sent) holds
        // until then either way.
        if !incoming.remote_address_validated()
            && incoming.may_retry()
            && (limits.retry_always || pace.over(limits.retry_above))
        {
            stats.quic_retries.fetch_add(1, Relaxed);
            let _ = incoming.retry();
            continue;
        }
        stats.quic_handshakes.fetch_add(1, Relaxed);
        let w = watch.clone();
        tokio::spawn(async move {
            connection(incoming, cx, limits, w, stats).await;
            // The per-client connection slot is given back here.
            drop(admitted.slot);
        });
    }
}

async fn connection(
    incoming: quinn::Incoming,
    cx: Arc<ConnCtx>,
    limits: Limits,
    mut watch: DrainWatch,
    stats: Arc<ListenerStats>,
) {
    let peer = cx.peer;
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            stats.tls_failures.fetch_add(1, Relaxed);
            tracing::debug!(%peer, "QUIC handshake failed: {e}");
            return;
        }
    };
    // QUIC's handshake is TLS 1.3's.
    stats.tls_handshakes[1].fetch_add(1, Relaxed);
    stats.protocols[2].fetch_add(1, Relaxed);
    if let Some(name) = conn
        .handshake_data()
        .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|h| h.server_name)
    {
        let _ = cx.sni.set(name.into_boxed_str());
    }
    let mut h3 = match h3::server::builder()
        .max_field_section_size(limits.max_field_section)
        .build::<_, Bytes>(h3_quinn::Connection::new(conn))
        .await
    {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(%peer, "HTTP/3 connection set-up failed: {e}");
            return;
        }
    };
    loop {
        let next = tokio::select! {
            r = h3.accept() => r,
            _ = watch.signalled() => {
                // GOAWAY; the requests already accepted finish.
                let _ = h3.shutdown(0).await;
                return;
            }
        };
        match next {
            Ok(Some(resolver)) => {
                let cx = cx.clone();
                tokio::spawn(async move {
                    match resolver.resolve_request().await {
                        Ok((req, stream)) => request(req, stream, cx).await,
                        Err(e) => tracing::debug!(%peer, "HTTP/3 request refused: {e}"),
                    }
                });
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(%peer, "HTTP/3 connection ended: {e}");
                return;
            }
        }
    }
}

type Stream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

/// One request: through the pipeline, and its answer back on the stream.
async fn request(req: http::Request<()>, stream: Stream, cx: Arc<ConnCtx>) {
    let arrived = tokio::time::Instant::now();
    let (mut send, recv) = stream.split();
    let (parts, ()) = req.into_parts();
    let length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let mut body = body::RequestBody::new(recv, length);
    // A request whose stream ended with its head is known to have no body.
    body.look_ahead().await;
    let req = ClientRequest {
        method: parts.method,
        uri: parts.uri,
        version: http::Version::HTTP_3,
        head: Head::Map(parts.headers),
        body: ClientBody::Boxed(OtherBody(Box::pin(body))),
    };
    let rt = cx.runtime.load_full();
    let answer = pipeline::handle(req, &cx, &rt, arrived).await;
    let resp = answer
        .into_response(crate::proxy::server::NOT_IN_H2)
        .unwrap_or_else(|| {
            let e = ProxyError::BadResponse {
                server: "-".into(),
                what: "a response field that HTTP/3 cannot carry",
            };
            rescue::answer(&e, None)
                .into_response(crate::proxy::server::NOT_IN_H2)
                .unwrap_or_else(|| http::Response::new(crate::proxy::Body::Empty))
        });
    let (parts, mut body) = resp.into_parts();
    if let Err(e) = send.send_response(http::Response::from_parts(parts, ())).await {
        tracing::debug!(peer = %cx.peer, "HTTP/3 response not sent: {e}");
        return;
    }
    while let Some(frame) = body.frame().await {
        let sent = match frame {
            Ok(f) => match f.into_data() {
                Ok(data) => send.send_data(data).await,
                Err(f) => match f.into_trailers() {
                    Ok(t) => send.send_trailers(t).await,
                    Err(_) => Ok(()),
                },
            },
            Err(e) => {
                // The backend broke off: so does the stream.
                tracing::debug!(peer = %cx.peer, "HTTP/3 response body broke off: {e}");
                send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = send.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_warns_when_the_kernel_caps_udp_buffers_below_the_ask() {
        let toml = |http3: bool| {
            format!(
                "[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:8443\"\nprotocol = \"https\"\nhttp3 = {http3}\n\
                 [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\n[[route]]\npool = \"p\"\n"
            )
        };
        let load = |t: &str| {
            crate::config::load_str(
                t,
                "rampart.toml",
                std::path::Path::new("/tmp"),
                &crate::config::fake_env::FakeEnv::default(),
            )
            .expect("loads")
        };
        let small = |_: &str| Some(212_992);
        let big = |_: &str| Some(16 << 20);
        let with = load(&toml(true));
        let w = buffer_warnings(&with, &small);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("net.core.rmem_max is 212992"), "{w:?}");
        assert!(buffer_warnings(&with, &big).is_empty());
        assert!(buffer_warnings(&load(&toml(false)), &small).is_empty());
    }
}
