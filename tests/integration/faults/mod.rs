//! The request path under the faults real clients and backends cause:
//! uploads broken off or stalled, servers that go dark, keep-alive races,
//! backend connections that pile up, refusals that must be counted.

mod balancing;
mod blackhole;
mod pooling;
mod refusals;
mod stale;
mod uploads;

use std::net::SocketAddr;

use crate::support::*;

/// One `[[pool.server]]` per (name, address).
pub fn servers(addrs: &[(&str, SocketAddr)]) -> String {
    addrs
        .iter()
        .map(|(n, a)| format!("[[pool.server]]\nname = \"{n}\"\naddress = \"{a}\"\n"))
        .collect()
}

/// `/api/pools`' entry for a server is up-to-date and not ejected (health
/// as given).
pub async fn in_rotation(admin: SocketAddr, pool: &str, server: &str) -> bool {
    server_info(admin, pool, server)
        .await
        .is_some_and(|s| s["ejected"] == false && s["health"] != "down")
}
