//! `rampart top`: a terminal view of a running instance, refreshed every
//! second from its admin API (`GET /api/stats`): totals, every pool and
//! server with health, state, weight, in-flight, rates and latencies,
//! listeners and certificates, and TCP listeners with their sessions,
//! bytes and database roles.
//!
//! In a terminal it fits the terminal's width (columns dropped by
//! priority, every line cut to the width), colours server states (down
//! red, unknown yellow, draining, drained and removing blue; none with `NO_COLOR` or
//! when not a terminal), quits on `q`, and when the admin API goes away
//! keeps the last screen with a "disconnected for N s" line.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

/// Runs the view until interrupted (or once, with `once`). Exits 1 with a
/// message on stderr when the admin API cannot be reached or refuses the
/// first request (any request, with `once`).
pub fn run(admin: SocketAddr, token: Option<String>, once: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tty = std::io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Keys (`q`) are read in raw mode, only when both ends are a terminal.
    let keys = (tty && !once && std::io::stdin().is_terminal())
        .then(Keys::start)
        .flatten();
    let keys = &keys;
    let code = rt.block_on(async move {
        let auth = token.map(|t| format!("Bearer {t}"));
        // Until one frame has been shown, a failure ends the command (with
        // --once, every failure does); afterwards the view shows it below
        // the last frame and keeps trying, so that it outlives a restart of
        // the instance.
        let mut last: Option<(Value, Instant)> = None;
        loop {
            let width = if tty {
                crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w))
            } else {
                std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(usize::MAX)
            };
            let got = match crate::client::send(
                admin,
                "GET",
                "/api/stats",
                auth.as_deref(),
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            {
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .map_err(|e| format!("unexpected answer from the admin API at {admin}: {e}")),
                Ok((401, _)) => Err(format!(
                    "the admin API at {admin} refused the token (401): check [admin] token in the config"
                )),
                Ok((status, body)) => Err(format!(
                    "the admin API at {admin} answered {status}: {}",
                    body.trim_end()
                )),
                Err(e) => Err(format!(
                    "cannot reach the admin API at {admin}: {e} (is rampart running, with its admin API there?)"
                )),
            };
            let frame = match got {
                Ok(v) => {
                    let f = render_fit(&v, admin, width, color);
                    last = Some((v, Instant::now()));
                    f
                }
                Err(e) if once || last.is_none() => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    let (v, at) = last.as_ref().map_or((&Value::Null, Instant::now()), |(v, at)| (v, *at));
                    let mut f = render_fit(v, admin, width, color);
                    let gone = format!("disconnected for {} s: {e}", at.elapsed().as_secs());
                    let _ = writeln!(f, "{}", fit(&paint(&gone, "31", color), width));
                    f
                }
            };
            let mut out = std::io::stdout().lock();
            if once {
                let _ = out.write_all(frame.as_bytes());
                return ExitCode::SUCCESS;
            }
            // Home, clear, frame (raw mode: lines end with CR LF).
            let frame = if keys.is_some() { frame.replace('\n', "\r\n") } else { frame };
            let _ = write!(out, "\x1b[H\x1b[2J{frame}");
            let _ = out.flush();
            drop(out);
            let quit = match keys {
                Some(k) => k.quit_within(Duration::from_secs(1)).await,
                None => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    false
                }
            };
            if quit {
                return ExitCode::SUCCESS;
            }
        }
    });
    code
}

/// `q` (or Ctrl-C) read from the terminal in raw mode; the terminal is
/// restored when dropped.
struct Keys {
    quit: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Keys {
    fn start() -> Option<Keys> {
        crossterm::terminal::enable_raw_mode().ok()?;
        let quit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let q = quit.clone();
        std::thread::spawn(move || {
            use crossterm::event::{read, Event, KeyCode, KeyEvent, KeyModifiers};
            while let Ok(e) = read() {
                if let Event::Key(KeyEvent { code, modifiers, .. }) = e {
                    let ctrl_c = code == KeyCode::Char('c') && modifiers.contains(KeyModifiers::CONTROL);
                    if matches!(code, KeyCode::Char('q' | 'Q') | KeyCode::Esc) || ctrl_c {
                        q.store(true, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
        Some(Keys { quit })
    }

    /// Waits up to `d`; whether a quit key came.
    async fn quit_within(&self, d: Duration) -> bool {
        let end = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < end {
            if self.quit.load(std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.quit.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
        println!();
    }
}

/// `text` in an ANSI colour (`31` red, …) when `on`.
fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `line` cut to `width` visible characters (colour codes do not count).
fn fit(line: &str, width: usize) -> String {
    let mut out = String::new();
    let (mut seen, mut in_escape, mut cut) = (0, false, false);
    for c in line.chars() {
        if in_escape {
            out.push(c);
            in_escape = c != 'm';
            continue;
        }
        if c == '\x1b' {
            in_escape = true;
            out.push(c);
            continue;
        }
        if seen == width {
            cut = true;
            continue;
        }
        seen += 1;
        out.push(c);
    }
    if cut && line.contains('\x1b') {
        out.push_str("\x1b[0m");
    }
    out
}

/// Bytes in binary units (`12.3 MiB`).
fn bytes_h(v: &Value) -> String {
    let Some(mut x) = v.as_f64() else {
        return "-".to_string();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut i = 0;
    while x >= 1024.0 && i < units.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{x:.0} B")
    } else {
        format!("{x:.1} {}", units[i])
    }
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_string(),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"))
}

/// One screen of text, lines as long as they need.
pub fn render(s: &Value, admin: SocketAddr) -> String {
    render_fit(s, admin, usize::MAX, false)
}

/// A column of the servers' table: its title, width, whether numbers
/// (right-aligned), and its rank (1 kept longest, dropped last).
struct Column {
    title: &'static str,
    width: usize,
    right: bool,
    rank: u8,
}

const COLUMNS: [Column; 12] = [
    Column {
        title: "POOL",
        width: 10,
        right: false,
        rank: 4,
    },
    Column {
        title: "SERVER",
        width: 14,
        right: false,
        rank: 1,
    },
    Column {
        title: "HEALTH",
        width: 8,
        right: false,
        rank: 1,
    },
    Column {
        title: "STATE",
        width: 9,
        right: false,
        rank: 3,
    },
    Column {
        title: "WEIGHT",
        width: 6,
        right: true,
        rank: 6,
    },
    Column {
        title: "INFLIGHT",
        width: 8,
        right: true,
        rank: 5,
    },
    Column {
        title: "REQ/S",
        width: 9,
        right: true,
        rank: 1,
    },
    Column {
        title: "P50 ms",
        width: 9,
        right: true,
        rank: 5,
    },
    Column {
        title: "P99 ms",
        width: 9,
        right: true,
        rank: 2,
    },
    Column {
        title: "REQUESTS",
        width: 10,
        right: true,
        rank: 4,
    },
    Column {
        title: "4XX",
        width: 7,
        right: true,
        rank: 3,
    },
    Column {
        title: "5XX",
        width: 7,
        right: true,
        rank: 1,
    },
];

/// Which columns fit in `width`: the lowest ranks go first.
fn columns_for(width: usize) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..COLUMNS.len()).collect();
    let total = |k: &[usize]| k.iter().map(|&i| COLUMNS[i].width + 1).sum::<usize>();
    for rank in (2..=6).rev() {
        if total(&keep) <= width.saturating_add(1) {
            break;
        }
        keep.retain(|&i| COLUMNS[i].rank != rank);
    }
    keep
}

/// `text` padded to `c`'s width (cut if longer), coloured by `code`.
fn cell(c: &Column, text: &str, code: Option<&str>, color: bool) -> String {
    let text: String = text.chars().take(c.width).collect();
    let padded = if c.right {
        format!("{text:>w$}", w = c.width)
    } else {
        format!("{text:<w$}", w = c.width)
    };
    match code {
        Some(code) => paint(&padded, code, color),
        None => padded,
    }
}

/// One screen of text at most `width` columns wide, coloured when `color`.
pub fn render_fit(s: &Value, admin: SocketAddr, width: usize, color: bool) -> String {
    let mut o = String::new();
    let t = &s["totals"];
    let _ = writeln!(o, "rampart top — {admin}   q to quit");
    let _ = writeln!(
        o,
        "req/s {} (10s {}, 60s {})  p50 {} ms  p99 {} ms  5xx {:.2}%  requests {}",
        num(&t["qps"]["1s"]),
        num(&t["qps"]["10s"]),
        num(&t["qps"]["60s"]),
        ms(&t["latency_ms"]["p50"]),
        ms(&t["latency_ms"]["p99"]),
        t["error_ratio_10s"].as_f64().unwrap_or(0.0) * 100.0,
        num(&t["requests"]),
    );
    let _ = writeln!(o);
    let cols = columns_for(width);
    let head: Vec<String> = cols
        .iter()
        .map(|&i| cell(&COLUMNS[i], COLUMNS[i].title, None, false))
        .collect();
    let _ = writeln!(o, "{}", head.join(" ").trim_end());
    for p in s["pools"].as_array().into_iter().flatten() {
        for v in p["servers"].as_array().into_iter().flatten() {
            let health = format!(
                "{}{}",
                v["health"].as_str().unwrap_or("?"),
                if v["ejected"] == true { "*" } else { "" }
            );
            let state = v["state"].as_str().unwrap_or("");
            let values: [(String, Option<&str>); 12] = [
                (p["name"].as_str().unwrap_or("").to_string(), None),
                (v["name"].as_str().unwrap_or("").to_string(), None),
                (
                    health.clone(),
                    match v["health"].as_str() {
                        Some("down") => Some("31"),
                        Some("unknown") => Some("33"),
                        Some("up") if v["ejected"] == true => Some("33"),
                        Some("up") => Some("32"),
                        _ => None,
                    },
                ),
                (
                    state.to_string(),
                    (state == "draining" || state == "drained" || state == "removing").then_some("34"),
                ),
                (num(&v["weight"]), None),
                (num(&v["in_flight"]), None),
                (num(&v["qps"]["10s"]), None),
                (ms(&v["latency_ms"]["p50"]), None),
                (ms(&v["latency_ms"]["p99"]), None),
                (num(&v["requests"]), None),
                (num(&v["by_class"]["4xx"]), None),
                (num(&v["by_class"]["5xx"]), None),
            ];
            let row: Vec<String> = cols
                .iter()
                .map(|&i| cell(&COLUMNS[i], &values[i].0, values[i].1, color))
                .collect();
            let _ = writeln!(o, "{}", row.join(" ").trim_end());
            if let Some(why) = v["reason"].as_str() {
                let _ = writeln!(o, "  {}: {why}", v["name"].as_str().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<16} {:>11} {:>9} {:>11} {:>11}",
        "LISTENER", "CONNECTIONS", "REQ/S", "BYTES IN", "BYTES OUT"
    );
    for l in s["listeners"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "{:<16} {:>11} {:>9} {:>11} {:>11}",
            l["name"].as_str().unwrap_or(""),
            num(&l["connections"]),
            num(&l["qps"]["10s"]),
            bytes_h(&l["bytes_in"]),
            bytes_h(&l["bytes_out"]),
        );
        for c in l["certificates"].as_array().into_iter().flatten() {
            let days = c["expires_in_seconds"].as_f64().unwrap_or(0.0) / 86_400.0;
            let _ = writeln!(
                o,
                "  certificate {} expires in {days:.1} days",
                c["name"].as_str().unwrap_or("")
            );
        }
    }
    tcp(&mut o, s);
    if let Some(f) = s["fleet_sync"].as_object() {
        let _ = writeln!(
            o,
            "\nfleet node {}: revision {}, etcd {}",
            f.get("node").and_then(Value::as_str).unwrap_or(""),
            f.get("revision").and_then(Value::as_u64).unwrap_or(0),
            if f.get("etcd_up") == Some(&Value::Bool(true)) {
                "up"
            } else {
                "DOWN (serving the last revision)"
            }
        );
    }
    fleet(&mut o, s);
    let _ = writeln!(o, "\n(* = ejected)");
    if width == usize::MAX {
        return o;
    }
    let mut cut = String::with_capacity(o.len());
    for line in o.lines() {
        let _ = writeln!(cut, "{}", fit(line, width));
    }
    cut
}

/// The fleet (`[cluster] peers`): each instance and the totals.
fn fleet(o: &mut String, s: &Value) {
    let Some(instances) = s["fleet"]["instances"].as_array() else {
        return;
    };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<28} {:<8} {:>9} {:>7} {:>9} {:>10} {:>10} {:>5}",
        "FLEET", "STATUS", "REQ/S", "5XX %", "P99 ms", "SERVERS UP", "REQUESTS", "REV"
    );
    let row = |o: &mut String, name: &str, status: &str, v: &Value| {
        let servers = match (v["servers_up"].as_f64(), v["servers"].as_f64()) {
            (Some(u), Some(t)) => format!("{u:.0}/{t:.0}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            o,
            "{:<28} {:<8} {:>9} {:>7} {:>9} {:>10} {:>10} {:>5}",
            name,
            status,
            num(&v["qps"]["10s"]),
            v["error_ratio_10s"]
                .as_f64()
                .map_or("-".to_string(), |r| format!("{:.2}", r * 100.0)),
            ms(&v["latency_ms"]["p99"]),
            servers,
            num(&v["requests"]),
            v["revision"].as_u64().map_or("-".to_string(), |r| r.to_string()),
        );
    };
    for i in instances {
        let name = match i["address"].as_str() {
            Some(a) => format!("{} ({a})", i["name"].as_str().unwrap_or("")),
            None => i["name"].as_str().unwrap_or("").to_string(),
        };
        let status = if i["up"] == true { "up" } else { "DOWN" };
        row(o, &name, status, i);
        if let Some(e) = i["error"].as_str() {
            let _ = writeln!(o, "  {e}");
        }
    }
    let t = &s["fleet"]["totals"];
    let up = format!("{}/{}", num(&t["instances_up"]), num(&t["instances"]));
    row(o, "fleet total", &up, t);
}

/// TCP listeners (with what a database endpoint uses or why it refuses),
/// then the servers of their pools with their sessions and database role.
fn tcp(o: &mut String, s: &Value) {
    let tcp: Vec<&Value> = s["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["tcp"].is_object())
        .collect();
    if tcp.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<16} {:<10} {:<7} {:>7} {:>9} {:>12} {:>12} {:>8} {:>8}  USING",
        "TCP LISTENER", "POOL", "ROLE", "ACTIVE", "SESSIONS", "BYTES UP", "BYTES DOWN", "CONNFAIL", "REFUSED"
    );
    for l in tcp {
        let (t, e) = (&l["tcp"], &l["endpoint"]);
        let using = match e["refusing"].as_str() {
            Some(why) => format!("REFUSING: {why}"),
            None => e["using"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        };
        let _ = writeln!(
            o,
            "{:<16} {:<10} {:<7} {:>7} {:>9} {:>12} {:>12} {:>8} {:>8}  {using}",
            l["name"].as_str().unwrap_or(""),
            e["pool"].as_str().unwrap_or(""),
            e["role"].as_str().unwrap_or("-"),
            num(&t["active"]),
            num(&t["sessions"]),
            num(&t["bytes_up"]),
            num(&t["bytes_down"]),
            num(&t["connect_failures"]),
            num(&t["refused"]),
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<12} {:<14} {:<8} {:>7} {:>9} {:>12} {:>12} {:>8}  DATABASE",
        "POOL", "SERVER", "HEALTH", "ACTIVE", "SESSIONS", "BYTES UP", "BYTES DOWN", "CONNFAIL"
    );
    for p in s["pools"].as_array().into_iter().flatten() {
        for v in p["servers"].as_array().into_iter().flatten() {
            let (t, d) = (&v["tcp"], &v["database"]);
            if !t.is_object() && !d.is_object() {
                continue;
            }
            let db = match d["role"].as_str() {
                Some(role) => format!("{role}: {}", d["reason"].as_str().unwrap_or("")),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "{:<12} {:<14} {:<8} {:>7} {:>9} {:>12} {:>12} {:>8}  {db}",
                p["name"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or(""),
                v["health"].as_str().unwrap_or("?"),
                num(&t["active"]),
                num(&t["sessions"]),
                num(&t["bytes_up"]),
                num(&t["bytes_down"]),
                num(&t["connect_failures"]),
            );
        }
    }
}
