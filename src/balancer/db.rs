//! What a database server is, as its last `mysql` health check found it:
//! the writable primary, a replica (with its replication state and lag),
//! or down, each with the reason. The check writes it; the TCP writer and
//! reader endpoints read it to choose a server, and a writer session
//! watches its server's role so that it closes when the server stops being
//! the primary.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// A database server's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbRole {
    /// No check has run yet.
    Unknown,
    /// Writable (`read_only` off).
    Primary,
    /// Read-only, both replication threads running, lag known.
    Replica,
    /// Unreachable, or read-only without working replication.
    Down,
}

impl DbRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DbRole::Unknown => "unknown",
            DbRole::Primary => "primary",
            DbRole::Replica => "replica",
            DbRole::Down => "down",
        }
    }
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbStatus {
    pub role: DbRole,
    /// Replication lag (`Seconds_Behind_Master`), when replicating.
    pub lag: Option<Duration>,
    /// Why the server has this role, in words.
    pub reason: String,
}

impl Default for DbStatus {
    fn default() -> Self {
        DbStatus {
            role: DbRole::Unknown,
            lag: None,
            reason: "not checked yet".into(),
        }
    }
}

/// The latest [`DbStatus`] of a server, readable and watchable.
#[derive(Debug)]
pub struct DbState {
    tx: watch::Sender<Arc<DbStatus>>,
}

impl Default for DbState {
    fn default() -> Self {
        DbState {
            tx: watch::Sender::new(Arc::new(DbStatus::default())),
        }
    }
}

impl DbState {
    pub fn get(&self) -> Arc<DbStatus> {
        self.tx.borrow().clone()
    }

    pub fn role(&self) -> DbRole {
        self.tx.borrow().role
    }

    /// Records a finding; watchers wake only when it differs.
    pub fn set(&self, status: DbStatus) {
        self.tx.send_if_modified(|cur| {
            if **cur == status {
                return false;
            }
            *cur = Arc::new(status);
            true
        });
    }

    /// Wakes on every change of the finding.
    pub fn watch(&self) -> watch::Receiver<Arc<DbStatus>> {
        self.tx.subscribe()
    }
}

/// The writer endpoint's choice among `servers`: the index of the single
/// writable primary (not drained by an operator), or why there is none.
/// Two writable servers are refused too: writing to either risks a split
/// brain.
pub fn writer(servers: &[std::sync::Arc<super::Backend>]) -> Result<usize, String> {
    let primaries: Vec<usize> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.db.role() == DbRole::Primary && s.state.admin() == super::AdminState::Active)
        .map(|(i, _)| i)
        .collect();
    match primaries.as_slice() {
        [one] => Ok(*one),
        [] if servers.iter().any(|s| s.db.role() == DbRole::Unknown) => {
            Err("no server is writable yet (waiting for the first mysql checks)".into())
        }
        [] => Err("no server is writable".into()),
        many => {
            let names: Vec<&str> = many.iter().map(|i| servers[*i].name.as_str()).collect();
            Err(format!(
                "{} servers are writable ({}): refusing writes rather than risk a split brain",
                many.len(),
                names.join(", ")
            ))
        }
    }
}

/// Indices of the replicas the reader endpoint may use: replicating, with
/// a lag of at most `max_lag`.
pub fn readers(servers: &[std::sync::Arc<super::Backend>], max_lag: Duration) -> Vec<usize> {
    servers
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let st = s.db.get();
            st.role == DbRole::Replica && st.lag.is_some_and(|l| l <= max_lag)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Why a reader endpoint has no replica.
pub fn no_replica(max_lag: Duration) -> String {
    format!("no replica is replicating within max_lag ({max_lag:?})")
}

/// Why a reader endpoint has neither a replica nor the primary to fall back to.
pub fn no_fallback(max_lag: Duration, why: &str) -> String {
    format!("{}, and no primary to fall back to: {why}", no_replica(max_lag))
}

/// The servers a database endpoint would use now (indices into
/// `servers`), or why it refuses connections: what the admin API, the
/// dashboard and `rampart top` show. (The TCP relay's choice among them
/// also skips servers at their connection limit.)
pub fn eligible(
    servers: &[std::sync::Arc<super::Backend>],
    endpoint: crate::config::model::DbEndpoint,
) -> Result<Vec<usize>, String> {
    use crate::config::model::DbEndpoint;
    match endpoint {
        DbEndpoint::Writer => writer(servers).map(|i| vec![i]),
        DbEndpoint::Reader {
            max_lag,
            fallback_to_primary,
        } => {
            let fresh = readers(servers, max_lag);
            if !fresh.is_empty() {
                Ok(fresh)
            } else if fallback_to_primary {
                writer(servers)
                    .map(|i| vec![i])
                    .map_err(|why| no_fallback(max_lag, &why))
            } else {
                Err(no_replica(max_lag))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::Backend;

    fn server(name: &str, role: DbRole, lag: Option<u64>) -> Arc<Backend> {
        let b = Backend::new(name.into(), "127.0.0.1:1".parse().expect("addr"), 1);
        b.db.set(DbStatus {
            role,
            lag: lag.map(Duration::from_secs),
            reason: String::new(),
        });
        Arc::new(b)
    }

    #[test]
    fn the_writer_is_the_single_primary_or_nobody() {
        let a = server("a", DbRole::Primary, None);
        let b = server("b", DbRole::Replica, Some(0));
        assert_eq!(writer(&[b.clone(), a.clone()]), Ok(1));
        let c = server("c", DbRole::Primary, None);
        let two = writer(&[a.clone(), b.clone(), c]).expect_err("split brain refused");
        assert!(two.contains("2 servers are writable (a, c)"), "{two}");
        assert_eq!(writer(&[b]), Err("no server is writable".into()));
        a.state.set_admin(crate::balancer::AdminState::Draining);
        assert!(
            writer(&[a]).is_err(),
            "a drained primary takes no new writer connections"
        );
    }

    #[test]
    fn readers_are_replicas_within_the_lag() {
        let s = [
            server("p", DbRole::Primary, None),
            server("fresh", DbRole::Replica, Some(2)),
            server("late", DbRole::Replica, Some(30)),
            server("down", DbRole::Down, None),
        ];
        assert_eq!(readers(&s, Duration::from_secs(10)), vec![1]);
        assert_eq!(readers(&s, Duration::from_secs(30)), vec![1, 2]);
    }

    #[test]
    fn what_each_endpoint_would_use_or_why_not() {
        use crate::config::model::DbEndpoint;
        let reader = |fallback_to_primary| DbEndpoint::Reader {
            max_lag: Duration::from_secs(10),
            fallback_to_primary,
        };
        let s = [
            server("p", DbRole::Primary, None),
            server("late", DbRole::Replica, Some(30)),
        ];
        assert_eq!(eligible(&s, DbEndpoint::Writer), Ok(vec![0]));
        assert_eq!(
            eligible(&s, reader(true)),
            Ok(vec![0]),
            "falls back to the primary"
        );
        assert_eq!(
            eligible(&s, reader(false)),
            Err("no replica is replicating within max_lag (10s)".into())
        );
        let none = [server("late", DbRole::Replica, Some(30))];
        assert_eq!(
            eligible(&none, reader(true)),
            Err("no replica is replicating within max_lag (10s), and no primary to fall back to: no server is writable".into())
        );
    }
}
