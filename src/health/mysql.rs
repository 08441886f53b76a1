//! The `mysql` check: connect as the monitor user, read whether the server
//! is writable and, when it is not, how its replication stands, and say
//! what the server is ([`DbStatus`]). Works with MariaDB (10.5 and later
//! name the statement `SHOW REPLICA STATUS`; the columns keep the `Slave_`
//! and `Master` words) and MySQL 8 (whose columns say `Replica_` and
//! `Source`), and falls back to `SHOW SLAVE STATUS` for older servers.

use std::net::SocketAddr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value};

use crate::balancer::{DbRole, DbStatus};

/// Checks the server at `addr`; an error when it cannot be reached, logged
/// into, or queried.
pub async fn check(addr: SocketAddr, user: &str, password: &str) -> Result<DbStatus, String> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some(user))
        .pass((!password.is_empty()).then_some(password))
        .prefer_socket(false)
        .stmt_cache_size(0);
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let result = classify(&mut conn).await;
    // A polite goodbye; the verdict does not depend on it.
    let _ = conn.disconnect().await;
    result
}

async fn classify(conn: &mut Conn) -> Result<DbStatus, String> {
    let vars: Vec<(String, String)> = conn
        .query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'super_read_only')")
        .await
        .map_err(|e| format!("reading read_only: {e}"))?;
    let on = |name: &str| {
        vars.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && (v == "ON" || v == "1"))
    };
    if !vars.iter().any(|(k, _)| k.eq_ignore_ascii_case("read_only")) {
        return Err("the server did not report read_only".into());
    }
    let (read_only, super_read_only) = (on("read_only"), on("super_read_only"));
    let replication = replication(conn).await?;
    Ok(verdict(read_only || super_read_only, replication.as_ref()))
}

/// What `SHOW REPLICA STATUS` says, in the words both servers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub io_running: String,
    pub sql_running: String,
    /// `Seconds_Behind_Master` (NULL when not connected).
    pub lag: Option<u64>,
    pub last_error: String,
}

/// The replication state, None when the server replicates from nothing.
async fn replication(conn: &mut Conn) -> Result<Option<Replication>, String> {
    let rows: Vec<Row> = match conn.query("SHOW REPLICA STATUS").await {
        Ok(rows) => rows,
        Err(mysql_async::Error::Server(_)) => conn
            .query("SHOW SLAVE STATUS")
            .await
            .map_err(|e| format!("reading the replication state: {e}"))?,
        Err(e) => return Err(format!("reading the replication state: {e}")),
    };
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let text = |names: &[&str]| -> Option<String> {
        let cols = row.columns_ref();
        let i = cols
            .iter()
            .position(|c| names.iter().any(|n| c.name_str().eq_ignore_ascii_case(n)))?;
        match row.as_ref(i)? {
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(n) => Some(n.to_string()),
            Value::UInt(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(Some(Replication {
        io_running: text(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default(),
        sql_running: text(&["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or_default(),
        lag: text(&["Seconds_Behind_Master", "Seconds_Behind_Source"]).and_then(|s| s.parse().ok()),
        last_error: [text(&["Last_IO_Error"]), text(&["Last_SQL_Error"])]
            .into_iter()
            .flatten()
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }))
}

/// The role a server's answers give it.
pub fn verdict(read_only: bool, replication: Option<&Replication>) -> DbStatus {
    if !read_only {
        return DbStatus {
            role: DbRole::Primary,
            lag: None,
            reason: "writable (read_only is off)".into(),
        };
    }
    let Some(r) = replication else {
        return DbStatus {
            role: DbRole::Down,
            lag: None,
            reason: "read-only and not replicating from any server".into(),
        };
    };
    let running = r.io_running.eq_ignore_ascii_case("Yes") && r.sql_running.eq_ignore_ascii_case("Yes");
    match (running, r.lag) {
        (true, Some(lag)) => DbStatus {
            role: DbRole::Replica,
            lag: Some(Duration::from_secs(lag)),
            reason: format!("read-only, replicating, {lag} s behind"),
        },
        _ => {
            let mut reason = format!(
                "read-only, replication not working (IO thread: {}, SQL thread: {}, lag: {})",
                word(&r.io_running),
                word(&r.sql_running),
                r.lag.map_or("unknown".to_string(), |l| format!("{l} s")),
            );
            if !r.last_error.is_empty() {
                reason.push_str(": ");
                reason.push_str(&r.last_error);
            }
            DbStatus {
                role: DbRole::Down,
                lag: None,
                reason,
            }
        }
    }
}

fn word(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repl(io: &str, sql: &str, lag: Option<u64>) -> Replication {
        Replication {
            io_running: io.into(),
            sql_running: sql.into(),
            lag,
            last_error: String::new(),
        }
    }

    #[test]
    fn roles_from_read_only_and_replication() {
        type Case = (bool, Option<Replication>, DbRole, Option<u64>, &'static str);
        let cases: &[Case] = &[
            (false, None, DbRole::Primary, None, "writable"),
            // Writable wins even with replication configured: it takes writes.
            (
                false,
                Some(repl("Yes", "Yes", Some(0))),
                DbRole::Primary,
                None,
                "writable",
            ),
            (
                true,
                Some(repl("Yes", "Yes", Some(3))),
                DbRole::Replica,
                Some(3),
                "3 s behind",
            ),
            (
                true,
                Some(repl("No", "Yes", None)),
                DbRole::Down,
                None,
                "IO thread: No",
            ),
            (
                true,
                Some(repl("Yes", "No", Some(0))),
                DbRole::Down,
                None,
                "SQL thread: No",
            ),
            // Threads up but the source not reached yet: lag unknown.
            (
                true,
                Some(repl("Connecting", "Yes", None)),
                DbRole::Down,
                None,
                "lag: unknown",
            ),
            (
                true,
                Some(repl("Yes", "Yes", None)),
                DbRole::Down,
                None,
                "lag: unknown",
            ),
            (true, None, DbRole::Down, None, "not replicating"),
        ];
        for (read_only, r, role, lag, says) in cases {
            let v = verdict(*read_only, r.as_ref());
            assert_eq!(v.role, *role, "{read_only} {r:?}");
            assert_eq!(v.lag, lag.map(Duration::from_secs), "{read_only} {r:?}");
            assert!(v.reason.contains(says), "{} lacks {says}", v.reason);
        }
    }
}
