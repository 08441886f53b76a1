//! The HTTP proxy: what happens to a request between a client connection
//! and a backend.
//!
//! ```text
//! client ──TLS/TCP──▶ server::serve_* ──▶ pipeline::handle ──▶ upstream::send_* ──▶ backend
//!                       (hyper h1/h2)       1 framing checks     (per-worker pool)
//!                                           2 request id
//!                                           3 redirect listener?
//!                                           4 route (host, path)
//!                                           5 pick a server (balancer)
//!                                           6 rewrite headers
//!                                           7 forward, with timeouts
//!                                           8 rewrite the response, relay upgrades
//!                      errors anywhere ───▶ rescue::answer (the one error → HTTP mapping)
//! ```
//!
//! Exposes [`Runtime`] (the per-config state the pipeline reads, swapped
//! atomically on reload), [`ConnCtx`] and the connection servers.

pub mod framing;
pub mod headers;
pub mod pipeline;
pub mod rescue;
pub mod router;
pub mod server;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::balancer::{Backend, Balancer};
use crate::config::model::{ListenerKind, Model, Timeouts, UpstreamProtocol};
use router::Router;

/// Everything the pipeline needs from one configuration.
#[derive(Debug)]
pub struct Runtime {
    pub timeouts: Timeouts,
    pub pools: Vec<PoolRt>,
    pub listeners: Vec<ListenerRt>,
}

/// A pool as the proxy uses it.
#[derive(Debug)]
pub struct PoolRt {
    pub name: String,
    pub balancer: Balancer,
    pub protocol: UpstreamProtocol,
    pub max_idle: usize,
}

/// Per-listener request handling settings.
#[derive(Debug)]
pub struct ListenerRt {
    pub name: String,
    pub https: bool,
    pub router: Router,
    /// Plain listeners that only redirect: the HTTPS port to send clients to.
    pub redirect_port: Option<u16>,
    pub hsts: Option<HeaderValue>,
}

impl Runtime {
    /// Builds from a model; `bound[i]` is the address listener `i` really
    /// bound (it differs from the model's when the model says port 0).
    /// `origins` maps each built-in origin's name to its bound address.
    pub fn build(model: &Model, bound: &[SocketAddr], origins: &[(String, SocketAddr)]) -> Self {
        let pools = model
            .pools
            .iter()
            .map(|p| {
                let servers = p
                    .servers
                    .iter()
                    .map(|s| {
                        let addr = s
                            .origin
                            .as_ref()
                            .and_then(|o| origins.iter().find(|(n, _)| n == o))
                            .map_or(s.addr, |(_, a)| *a);
                        Arc::new(Backend::new(s.name.clone(), addr, s.weight))
                    })
                    .collect();
                PoolRt {
                    name: p.name.clone(),
                    balancer: Balancer::new(
                        p.algorithm,
                        p.hash_key.clone(),
                        p.sticky_cookie.clone(),
                        servers,
                    ),
                    protocol: p.protocol,
                    max_idle: p.max_idle_per_server,
                }
            })
            .collect();
        let port_of = |name: &str| {
            model
                .listeners
                .iter()
                .position(|l| l.name == name)
                .and_then(|i| bound.get(i))
                .map(|a| a.port())
        };
        let listeners = model
            .listeners
            .iter()
            .map(|l| {
                let (https, redirect_port, hsts) = match &l.kind {
                    ListenerKind::Http { redirect_to } => {
                        (false, redirect_to.as_deref().and_then(port_of), None)
                    }
                    ListenerKind::Https(s) => (true, None, s.hsts.clone()),
                };
                ListenerRt {
                    name: l.name.clone(),
                    https,
                    router: Router::new(&model.routes, &l.name),
                    redirect_port,
                    hsts,
                }
            })
            .collect();
        Runtime {
            timeouts: model.timeouts,
            pools,
            listeners,
        }
    }
}

/// What a connection task knows about its connection.
#[derive(Debug)]
pub struct ConnCtx {
    /// Index of the listener in [`Runtime::listeners`].
    pub listener: usize,
    pub peer: SocketAddr,
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// Raised by the HTTP/1.1 head watch when a request was ambiguous.
    pub framing: Arc<framing::FramingFlag>,
    /// Forwarding header values for this client.
    pub client: headers::ClientHeaders,
}

impl ConnCtx {
    pub fn new(listener: usize, peer: SocketAddr, https: bool, runtime: Arc<ArcSwap<Runtime>>) -> Self {
        let client = headers::ClientHeaders::new(peer.ip(), https);
        ConnCtx {
            listener,
            peer,
            runtime,
            framing: Arc::default(),
            client,
        }
    }
}
