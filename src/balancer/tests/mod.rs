//! Unit tests for the balancer, one file per concern.

mod algorithms;
mod availability;
mod backend;
mod clock;
mod least;
mod maglev;
mod p2c;
mod sticky;
mod weighted;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::HeaderMap;

use super::{Algorithm, Backend, Balancer, HashKey, PickInput};

/// A backend `name` on a loopback port, with `weight`.
fn backend(name: &str, port: u16, weight: u32) -> Arc<Backend> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    Arc::new(Backend::new(name.to_owned(), addr, weight))
}

/// Servers `s0`, `s1`, … with the given weights.
fn weighted(weights: &[u32]) -> Vec<Arc<Backend>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| backend(&format!("s{i}"), 9000 + i as u16, w))
        .collect()
}

/// `n` servers of weight 1.
fn servers(n: usize) -> Vec<Arc<Backend>> {
    weighted(&vec![1; n])
}

fn pool(algorithm: Algorithm, servers: Vec<Arc<Backend>>) -> Balancer {
    Balancer::new(algorithm, HashKey::ClientIp, None, servers)
}

fn input(headers: &HeaderMap) -> PickInput<'_> {
    PickInput {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        headers,
    }
}

/// The name of the server picked for `input`.
fn pick_name(b: &Balancer, input: &PickInput<'_>) -> String {
    b.pick(input).expect("pool is not empty").server.name.clone()
}

/// Picks `n` times with no headers and counts picks per server name.
fn counts(b: &Balancer, n: usize) -> HashMap<String, usize> {
    let headers = HeaderMap::new();
    let mut out = HashMap::new();
    for _ in 0..n {
        *out.entry(pick_name(b, &input(&headers))).or_insert(0) += 1;
    }
    out
}

/// A deterministic splitmix64 stream for test keys.
struct TestRng(u64);

impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::hash::mix64(self.0)
    }
}
