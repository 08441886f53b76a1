//! Database endpoints against real MariaDB servers (a primary and a
//! replica, started by the tests): the writer endpoint reaches only the
//! single writable primary and follows a switchover; the reader endpoint
//! reaches replicas within `max_lag`, falling back to the primary when
//! configured; two writable servers make the writer refuse and alert.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::mariadb::{app_conn, Pair, PASSWORD};
use crate::support::*;

/// Check interval of these tests' `mysql` checks.
const INTERVAL: Duration = Duration::from_millis(500);

fn config(pair: &Pair, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"writer\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"db\"\nrole = \"writer\"\n\
         [[listener]]\nname = \"reader\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"db\"\nrole = \"reader\"\nmax_lag = \"2s\"\n\
         [[listener]]\nname = \"reader-or-primary\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"db\"\n\
         role = \"reader\"\nmax_lag = \"2s\"\nfallback_to_primary = true\n\
         [[pool]]\nname = \"db\"\n\
         [pool.health_check]\ntype = \"mysql\"\nuser = \"monitor\"\npassword = \"{PASSWORD}\"\n\
         interval = \"{}ms\"\ntimeout = \"{}ms\"\nrise = 1\nfall = 2\n\
         [[pool.server]]\nname = \"db1\"\naddress = \"127.0.0.1:{}\"\n\
         [[pool.server]]\nname = \"db2\"\naddress = \"127.0.0.1:{}\"\n{extra}",
        INTERVAL.as_millis(),
        INTERVAL.as_millis(),
        pair.primary.port,
        pair.replica.port
    )
}

/// The role rampart gives a server.
async fn role(admin: SocketAddr, server: &str) -> String {
    server_info(admin, "db", server)
        .await
        .and_then(|s| s["database"]["role"].as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn wait_role(admin: SocketAddr, server: &str, want: &str) {
    let seen = wait_until(Duration::from_secs(20), || async {
        role(admin, server).await == want
    })
    .await;
    let info = server_info(admin, "db", server).await;
    assert!(seen.is_some(), "{server} never became {want}: {info:?}");
}

/// A listener's entry in `GET /api/stats`.
async fn listener_stats(admin_addr: SocketAddr, name: &str) -> serde_json::Value {
    let (_, stats) = admin(admin_addr, "GET", "/api/stats", None).await;
    stats["listeners"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["name"] == name).cloned())
        .unwrap_or_default()
}

/// `@@server_id` of the server a new connection through `addr` reaches.
async fn server_id(addr: SocketAddr) -> Result<u32, String> {
    let mut c = app_conn(addr).await.map_err(|e| e.to_string())?;
    let id: Option<u32> = c
        .query_first("SELECT @@server_id")
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    id.ok_or_else(|| "no row".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_the_primary_and_reads_a_fresh_replica() {
    let pair = Pair::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(&pair, ""), dir.path()).await;
    let ad = app.admin().expect("admin");
    let (writer, reader, either) = (
        listener(&app, "writer"),
        listener(&app, "reader"),
        listener(&app, "reader-or-primary"),
    );
    wait_role(ad, "db1", "primary").await;
    wait_role(ad, "db2", "replica").await;

    // 1. Writes through the writer land on the primary; reads through the
    // reader come from the replica.
    let mut w = app_conn(writer).await.expect("writer connects");
    let id: Option<u32> = w.query_first("SELECT @@server_id").await.expect("query");
    assert_eq!(id, Some(1), "the writer reaches the primary");
    w.query_drop("INSERT INTO t (id, who) VALUES (1, @@server_id)")
        .await
        .expect("write accepted");
    let on_primary: Option<u32> = pair.primary.value("SELECT who FROM app.t WHERE id = 1").await;
    assert_eq!(on_primary, Some(1));
    assert_eq!(server_id(reader).await, Ok(2), "the reader reaches the replica");
    assert_eq!(server_id(either).await, Ok(2));
    pair.replica.caught_up(&pair.primary).await;
    let mut r = app_conn(reader).await.expect("reader connects");
    let replicated: Option<u32> = r
        .query_first("SELECT who FROM t WHERE id = 1")
        .await
        .expect("read");
    assert_eq!(
        replicated,
        Some(1),
        "the write reached the replica through replication"
    );
    let refused = r.query_drop("INSERT INTO t (id, who) VALUES (2, 0)").await;
    assert!(
        matches!(&refused, Err(mysql_async::Error::Server(e)) if e.code == 1290),
        "the replica is read-only: {refused:?}"
    );
    drop(r);

    // 2a. Replication stopped: the reader stops using the replica, the
    // fallback listener uses the primary.
    pair.replica.exec("STOP SLAVE").await;
    wait_role(ad, "db2", "down").await;
    let why = server_info(ad, "db", "db2").await.expect("db2")["database"]["reason"].clone();
    assert!(why.as_str().is_some_and(|w| w.contains("IO thread: No")), "{why}");
    assert!(
        server_id(reader).await.is_err(),
        "no replica qualifies: the reader refuses"
    );
    assert_eq!(server_id(either).await, Ok(1), "the fallback reaches the primary");
    let l = listener_stats(ad, "reader").await;
    let refusing = l["endpoint"]["refusing"].as_str().unwrap_or("");
    assert!(refusing.contains("max_lag"), "{l}");
    assert!(l["tcp"]["refused"].as_u64() >= Some(1), "{l}");

    pair.replica.exec("START SLAVE").await;
    wait_role(ad, "db2", "replica").await;
    assert_eq!(server_id(reader).await, Ok(2), "the replica is used again");

    // 2b. Lag beyond max_lag (2 s): a delayed replica falls behind a write.
    pair.replica
        .exec("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 60; START SLAVE")
        .await;
    pair.primary
        .exec("INSERT INTO app.t (id, who) VALUES (3, @@server_id)")
        .await;
    let lagging = wait_until(Duration::from_secs(20), || async {
        server_info(ad, "db", "db2")
            .await
            .and_then(|s| s["database"]["lag_seconds"].as_u64())
            > Some(2)
    })
    .await;
    let info = server_info(ad, "db", "db2").await;
    assert!(lagging.is_some(), "the replica never lagged: {info:?}");
    assert_eq!(
        role(ad, "db2").await,
        "replica",
        "a lagging replica is still a replica"
    );
    assert!(
        server_id(reader).await.is_err(),
        "a replica beyond max_lag is not used"
    );
    assert_eq!(server_id(either).await, Ok(1), "the fallback reaches the primary");
    let metrics = crate::support::metrics(ad).await;
    assert!(
        metrics.contains("rampart_db_role{pool=\"db\",server=\"db1\",role=\"primary\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("rampart_db_replication_lag_seconds{pool=\"db\",server=\"db2\"}"));
    assert!(metrics.contains("rampart_tcp_sessions_total{listener=\"writer\"}"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_follows_a_switchover_and_loses_no_acknowledged_write() {
    let pair = Pair::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(&pair, ""), dir.path()).await;
    let ad = app.admin().expect("admin");
    let writer = listener(&app, "writer");
    wait_role(ad, "db1", "primary").await;
    wait_role(ad, "db2", "replica").await;

    // A session opened before the switch, to the old primary.
    let mut old = app_conn(writer).await.expect("writer connects");
    let first: Option<u32> = old.query_first("SELECT @@server_id").await.expect("query");
    assert_eq!(first, Some(1));

    // A bounded write loop through the writer endpoint: each row's id is
    // acknowledged only when the server said OK.
    let log = Arc::new(Mutex::new(WriteLog::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loop_task = tokio::spawn(write_loop(writer, log.clone(), stop.clone()));
    wait_until(Duration::from_secs(10), || async {
        log.lock().expect("lock").acked.len() >= 20
    })
    .await
    .expect("writes flow before the switch");

    // The switchover, as an operator does it: demote the primary, let the
    // replica apply everything, promote it, and make the old primary
    // replicate from it.
    let demoted = Instant::now();
    pair.primary.exec("SET GLOBAL read_only = 1").await;
    pair.replica.caught_up(&pair.primary).await;
    pair.replica
        .exec("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0")
        .await;
    let promoted = Instant::now();
    // Old sessions to the demoted server are closed by rampart.
    let mut closed = false;
    for _ in 0..1000 {
        if old.ping().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the session to the demoted primary stayed open");
    let closed_after = demoted.elapsed();
    // New writer connections reach the new primary.
    let followed = wait_until(Duration::from_secs(10), || async {
        server_id(writer).await == Ok(2)
    })
    .await;
    let followed_after = promoted.elapsed();
    assert!(followed.is_some(), "the writer never reached the new primary");
    assert!(
        followed_after <= 2 * INTERVAL + Duration::from_millis(200),
        "the writer followed {followed_after:?} after the promotion (interval {INTERVAL:?})"
    );
    assert!(
        closed_after <= 2 * INTERVAL + Duration::from_millis(200) + (promoted - demoted),
        "old session closed {closed_after:?} after the demotion"
    );
    pair.primary.follow(&pair.replica).await;
    wait_role(ad, "db1", "replica").await;

    // Let the loop write to the new primary for a while, then stop it.
    let before = log.lock().expect("lock").acked.len();
    wait_until(Duration::from_secs(10), || async {
        log.lock().expect("lock").acked.len() >= before + 20
    })
    .await
    .expect("writes flow after the switch");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    loop_task.await.expect("write loop");
    let log = log.lock().expect("lock").clone();

    // Every acknowledged write is on the new primary, and was accepted by
    // a writable server (who = the server id that took it).
    let mut c = pair.replica.root().await;
    let rows: Vec<(i64, u32)> = c.query("SELECT id, who FROM app.t").await.expect("rows");
    for id in &log.acked {
        let row = rows.iter().find(|(r, _)| r == id);
        assert!(
            row.is_some(),
            "acknowledged write {id} is missing from the new primary"
        );
    }
    // The only server errors: the demoted server refusing a write as
    // read-only (1290) on a session opened before the switch, before
    // rampart's next check closed it. Nothing else, and never an OK.
    assert!(
        log.server_errors.iter().all(|code| *code == 1290),
        "unexpected server errors: {:?}",
        log.server_errors
    );
    assert!(
        log.server_errors.len() <= 2 * (INTERVAL.as_millis() as usize / 10 + 1),
        "{:?}",
        log.server_errors
    );
    eprintln!(
        "switchover: {} writes acknowledged, {} connection errors, {} read-only refusals; \
         old session closed {closed_after:?} after the demotion, writer on the new primary {followed_after:?} after the promotion",
        log.acked.len(),
        log.connection_errors,
        log.server_errors.len()
    );
    app.shutdown().await;
}

#[derive(Debug, Default, Clone)]
struct WriteLog {
    acked: Vec<i64>,
    connection_errors: u32,
    server_errors: Vec<u16>,
}

/// Inserts rows 1, 2, 3… through `writer` until `stop` (or 60 s, or 20,000
/// rows), reconnecting after a connection error.
async fn write_loop(writer: SocketAddr, log: Arc<Mutex<WriteLog>>, stop: Arc<std::sync::atomic::AtomicBool>) {
    let started = Instant::now();
    let mut conn: Option<Conn> = None;
    let mut next = 1000i64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed)
        && started.elapsed() < Duration::from_secs(60)
        && next < 21_000
    {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match app_conn(writer).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    log.lock().expect("lock").connection_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let id = next;
        next += 1;
        match c
            .query_drop(format!("INSERT INTO t (id, who) VALUES ({id}, @@server_id)"))
            .await
        {
            Ok(()) => log.lock().expect("lock").acked.push(id),
            Err(mysql_async::Error::Server(e)) => log.lock().expect("lock").server_errors.push(e.code),
            Err(_) => {
                log.lock().expect("lock").connection_errors += 1;
                conn = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writable_servers_make_the_writer_refuse_and_alert() {
    let (hook, notes) = webhook_sink().await;
    let pair = Pair::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let alert = format!(
        "[alerts]\nwebhook = \"http://{}/hook\"\ninterval = \"100ms\"\n\
         [[alert]]\nname = \"no single writer\"\nkind = \"writer_unavailable\"\n",
        hook.addr
    );
    let app = start_app(&format!("{alert}{}", config(&pair, "")), dir.path()).await;
    let ad = app.admin().expect("admin");
    let writer = listener(&app, "writer");
    wait_role(ad, "db1", "primary").await;
    wait_role(ad, "db2", "replica").await;
    assert_eq!(server_id(writer).await, Ok(1));

    // Split brain: the replica made writable while the primary still is.
    pair.replica.exec("STOP SLAVE; SET GLOBAL read_only = 0").await;
    wait_role(ad, "db2", "primary").await;
    let refused = server_id(writer).await;
    assert!(
        refused.is_err(),
        "the writer must refuse with two writable servers: {refused:?}"
    );
    let fired = wait_until(Duration::from_secs(10), || async {
        notes
            .lock()
            .expect("lock")
            .iter()
            .any(|n| n["status"] == "firing")
    })
    .await;
    assert!(fired.is_some(), "no alert: {:?}", notes.lock().expect("lock"));
    let w = listener_stats(ad, "writer").await;
    let refusing = w["endpoint"]["refusing"].as_str().unwrap_or("");
    assert!(refusing.contains("2 servers are writable (db1, db2)"), "{w}");
    let (_, stats) = admin(ad, "GET", "/api/stats", None).await;
    let top = rampart::top::render(&stats, ad);
    assert!(top.contains("REFUSING: 2 servers are writable"), "{top}");
    assert!(crate::support::metrics(ad)
        .await
        .contains("rampart_db_writer_available{listener=\"writer\"} 0"));

    // One demoted: the writer recovers, and the alert resolves.
    pair.primary.exec("SET GLOBAL read_only = 1").await;
    let back = wait_until(Duration::from_secs(10), || async {
        server_id(writer).await == Ok(2)
    })
    .await;
    assert!(back.is_some(), "the writer did not recover");
    let resolved = wait_until(Duration::from_secs(10), || async {
        notes
            .lock()
            .expect("lock")
            .iter()
            .any(|n| n["status"] == "resolved")
    })
    .await;
    let notes = notes.lock().expect("lock").clone();
    assert!(resolved.is_some(), "{notes:?}");
    assert_eq!(notes[0]["alert"], "no single writer");
    assert_eq!(notes[0]["instance"], "writer");
    assert_eq!(notes[0]["value"], 2.0, "two writable servers");
    assert!(crate::support::metrics(ad)
        .await
        .contains("rampart_db_writer_available{listener=\"writer\"} 1"));

    // The only writable server dies: nothing is writable, the writer refuses.
    let mut pair = pair;
    pair.replica.kill().await;
    wait_role(ad, "db2", "down").await;
    assert!(
        server_id(writer).await.is_err(),
        "no writable server: the writer refuses"
    );
    let w = listener_stats(ad, "writer").await;
    assert_eq!(w["endpoint"]["refusing"], "no server is writable", "{w}");
    app.shutdown().await;
}

/// Runs `examples/db/lab.sh ARG` with the lab's ports moved to free ones.
fn lab(arg: &str, dir: &std::path::Path, ports: &[u16; 5]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/db/lab.sh");
    let env = [
        ("LAB_DIR", dir.display().to_string()),
        ("RAMPART_BIN", env!("CARGO_BIN_EXE_rampart").to_string()),
        ("LAB_PRIMARY_PORT", ports[0].to_string()),
        ("LAB_REPLICA_PORT", ports[1].to_string()),
        ("LAB_WRITER_PORT", ports[2].to_string()),
        ("LAB_READER_PORT", ports[3].to_string()),
        ("LAB_ADMIN_PORT", ports[4].to_string()),
    ];
    let (ok, text) = run_script(&script, &[arg], &env);
    assert!(ok, "lab.sh {arg}: {text}");
    text
}

/// The endpoint line of `lab.sh status` for `name`: which server it uses.
fn using(status: &str, name: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_lab_script_starts_switches_over_and_stops_what_it_started() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("lab");
    let held: Vec<std::net::TcpListener> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("port"))
        .collect();
    let ports: [u16; 5] = std::array::from_fn(|i| held[i].local_addr().expect("addr").port());
    drop(held);
    // Whatever happens below, what `up` started is stopped.
    struct Down<'a>(&'a std::path::Path, [u16; 5]);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            if self.0.exists() {
                let _ = std::panic::catch_unwind(|| lab("down", self.0, &self.1));
            }
        }
    }
    let _down = Down(&dir, ports);
    let up = lab("up", &dir, &ports);
    assert!(up.contains("-> server 1") && up.contains("-> server 2"), "{up}");
    let pids: Vec<String> = ["rampart.pid", "db0/pid", "db1/pid"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f))
                .expect("pid file")
                .trim()
                .to_string()
        })
        .collect();
    let status = lab("status", &dir, &ports);
    assert_eq!(using(&status, "db-writer"), "db1", "{status}");
    assert_eq!(using(&status, "db-reader"), "db2", "{status}");
    lab("switchover", &dir, &ports);
    let mut after = String::new();
    for _ in 0..100 {
        after = lab("status", &dir, &ports);
        if using(&after, "db-writer") == "db2" && using(&after, "db-reader") == "db1" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(using(&after, "db-writer"), "db2", "{after}");
    assert_eq!(using(&after, "db-reader"), "db1", "{after}");
    lab("down", &dir, &ports);
    assert!(!dir.exists(), "down removes the lab's folder");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} still runs"
        );
    }
}
