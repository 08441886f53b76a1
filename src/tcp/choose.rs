//! Which server of the pool takes a TCP connection: the pool's algorithm
//! over its available servers, narrowed for database endpoints to the
//! single primary (writer) or the fresh replicas (reader).

use std::sync::Arc;

use crate::balancer::{db_no_fallback, db_no_replica, db_readers, db_writer, Backend, PickInput};
use crate::config::model::DbEndpoint;
use crate::runtime::PoolRt;

/// The server (and its index in the pool) for a new connection, never one
/// of `avoid` (servers already tried); or why there is none.
pub(super) fn choose(
    pool: &PoolRt,
    endpoint: Option<DbEndpoint>,
    input: &PickInput<'_>,
    avoid: &[usize],
) -> Result<(Arc<Backend>, usize), String> {
    let servers = pool.balancer.servers();
    match endpoint {
        None => pool
            .balancer
            .pick_avoiding(input, avoid)
            .map(|p| (p.server.clone(), p.index))
            .ok_or_else(|| "no server available".to_string()),
        Some(DbEndpoint::Writer) => primary(servers, avoid),
        Some(DbEndpoint::Reader {
            max_lag,
            fallback_to_primary,
        }) => {
            let fresh = db_readers(servers, max_lag);
            let mut skip: Vec<usize> = (0..servers.len()).filter(|i| !fresh.contains(i)).collect();
            skip.extend_from_slice(avoid);
            if let Some(p) = pool.balancer.pick_avoiding(input, &skip) {
                return Ok((p.server.clone(), p.index));
            }
            if fallback_to_primary {
                primary(servers, avoid).map_err(|why| db_no_fallback(max_lag, &why))
            } else {
                Err(db_no_replica(max_lag))
            }
        }
    }
}

/// The single writable primary, if it can take one more connection.
fn primary(servers: &[Arc<Backend>], avoid: &[usize]) -> Result<(Arc<Backend>, usize), String> {
    let i = db_writer(servers)?;
    let s = &servers[i];
    if avoid.contains(&i) {
        return Err(format!("the primary {} did not accept the connection", s.name));
    }
    if s.saturated() {
        return Err(format!("the primary {} is at its connection limit", s.name));
    }
    Ok((s.clone(), i))
}
