//! Real MariaDB servers for the database tests: each one gets its own data
//! directory (a temporary folder), a free port on 127.0.0.1 and its own
//! socket, and is killed when dropped. [`Pair`] sets up a primary and a
//! replica replicating from it, with the users rampart and the tests use:
//! `monitor` (rampart's check), `app` (rows in database `app` only, so
//! `read_only` applies to it) and root over the socket.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

/// The password of `monitor`, `app` and `repl`.
pub const PASSWORD: &str = "secret-pw";

pub struct Mariadb {
    pub id: u32,
    pub port: u16,
    socket: PathBuf,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Mariadb {
    /// A fresh server with `server_id = id`, binary log on; read-only
    /// when `read_only`.
    pub async fn start(id: u32, read_only: bool) -> Mariadb {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Its own temporary folder: servers installed side by side must not
        // share /tmp's temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp");
        let common = [
            "--innodb-log-file-size=8M".to_string(),
            "--innodb-buffer-pool-size=16M".to_string(),
            format!("--user={}", whoami()),
            format!("--tmpdir={}", tmp.display()),
        ];
        let out = std::process::Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .args(&common)
            .output()
            .expect("mariadb-install-db runs (apt install mariadb-server)");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let socket = dir.path().join("sock");
        let mut last = String::new();
        // A free port, picked by the kernel; tried again in the unlikely
        // case another process takes it before the server binds it.
        for _ in 0..5 {
            let port = crate::support::free_port();
            let log = dir.path().join("error.log");
            let mut cmd = tokio::process::Command::new("mariadbd");
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--port={port}"))
                .arg("--bind-address=127.0.0.1")
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.path().join("pid").display()))
                .arg(format!("--log-error={}", log.display()))
                .arg(format!("--log-bin={}", dir.path().join("bin").display()))
                .arg(format!("--server-id={id}"))
                .arg("--skip-name-resolve")
                .arg("--binlog-format=ROW")
                .args(&common)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            if read_only {
                cmd.arg("--read-only");
            }
            let mut child = cmd.spawn().expect("mariadbd starts");
            let mut db = None;
            for _ in 0..300 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if socket.exists() {
                    db = Some(());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if db.is_some() {
                let m = Mariadb {
                    id,
                    port,
                    socket,
                    child,
                    _dir: dir,
                };
                // Ready once it answers.
                for _ in 0..100 {
                    if Conn::new(m.root_opts()).await.is_ok() {
                        return m;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                panic!("mariadbd {id} does not answer");
            }
            let _ = child.kill().await;
            last = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("mariadbd {id} did not start: {last}");
    }

    fn root_opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .socket(Some(self.socket.display().to_string()))
            .prefer_socket(true)
            .user(Some("root"))
    }

    /// root, over the server's own socket (never through rampart).
    pub async fn root(&self) -> Conn {
        Conn::new(self.root_opts()).await.expect("root connects")
    }

    /// Runs statements as root.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.root().await;
        c.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql} on server {}: {e}", self.id));
        let _ = c.disconnect().await;
    }

    /// One value as root.
    pub async fn value<T: mysql_async::prelude::FromValue + Send + 'static>(&self, sql: &str) -> Option<T> {
        let mut c = self.root().await;
        let v = c.query_first(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
        v
    }

    /// Stops the server (SIGKILL: a crash, as far as rampart can tell).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn whoami() -> String {
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "root".to_string())
}

/// A primary (server id 1) and a replica (server id 2) replicating from it.
pub struct Pair {
    pub primary: Mariadb,
    pub replica: Mariadb,
}

impl Pair {
    pub async fn start() -> Pair {
        let (primary, replica) = tokio::join!(Mariadb::start(1, false), Mariadb::start(2, true));
        // Made on the primary and replicated: the replica gets the same
        // users, database and table.
        primary
            .exec(&format!(
                "CREATE USER repl@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
                 GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.1';
                 CREATE USER monitor@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
                 GRANT REPLICA MONITOR ON *.* TO monitor@'127.0.0.1';
                 CREATE DATABASE app;
                 CREATE TABLE app.t (id INT PRIMARY KEY, who INT NOT NULL);
                 CREATE USER app@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';
                 GRANT ALL ON app.* TO app@'127.0.0.1';"
            ))
            .await;
        replica.follow(&primary).await;
        let pair = Pair { primary, replica };
        pair.replica.caught_up(&pair.primary).await;
        pair
    }
}

impl Mariadb {
    /// Replicates from `source` (GTID, from the start of its binary log).
    pub async fn follow(&self, source: &Mariadb) {
        self.exec(&format!(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
             MASTER_PASSWORD='{PASSWORD}', MASTER_USE_GTID=slave_pos; START SLAVE;",
            source.port
        ))
        .await;
    }

    /// Waits until this replica has applied everything `source` has written.
    pub async fn caught_up(&self, source: &Mariadb) {
        let pos: String = source.value("SELECT @@gtid_binlog_pos").await.unwrap_or_default();
        let waited: Option<i64> = self.value(&format!("SELECT MASTER_GTID_WAIT('{pos}', 20)")).await;
        assert_eq!(waited, Some(0), "replica {} did not catch up to {pos}", self.id);
    }
}

/// Connects through rampart (or anywhere) as `app`.
pub async fn app_conn(addr: std::net::SocketAddr) -> Result<Conn, mysql_async::Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(addr.ip().to_string())
        .tcp_port(addr.port())
        .user(Some("app"))
        .pass(Some(PASSWORD))
        .db_name(Some("app"))
        .prefer_socket(false);
    tokio::time::timeout(Duration::from_secs(5), Conn::new(opts))
        .await
        .unwrap_or_else(|_| {
            Err(mysql_async::Error::Io(
                std::io::Error::from(std::io::ErrorKind::TimedOut).into(),
            ))
        })
}
