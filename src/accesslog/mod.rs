//! The access log: one line per request, JSON or the combined log format,
//! to stdout or a file.
//!
//! Requests never wait for it: the request path hands a small record to a
//! bounded queue with `try_send`; when the queue is full the line is
//! dropped and counted. A task formats and writes the lines (buffered,
//! flushed whenever the queue runs dry). `SIGUSR1` reopens the file, for
//! log rotation.
//!
//! Exposes [`AccessLog`] and [`Record`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, Uri, Version};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Notify};

use crate::config::model;

/// What is known of one request when its response header goes out.
#[derive(Debug)]
pub struct Record {
    pub time: SystemTime,
    pub client: IpAddr,
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub host: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
    pub referer: Option<HeaderValue>,
    pub status: u16,
    /// The response's `Content-Length`, when it has one.
    pub bytes: Option<u64>,
    pub duration: Duration,
    pub request_id: HeaderValue,
    pub listener: Arc<str>,
    pub server: Option<String>,
    /// What went wrong, when something did (`client_aborted`,
    /// `response_timeout`, ...: `ProxyError::code`).
    pub error: Option<&'static str>,
    /// What the web application firewall's rules matched, when any did.
    pub waf: Option<Box<WafFields>>,
}

/// The WAF's part of an access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafFields {
    /// The ids of the rules that matched (and report), in order.
    pub rules: Vec<u64>,
    /// Their messages, in the same order.
    pub messages: Vec<String>,
    /// The inbound anomaly score the rules added up.
    pub anomaly_score: i64,
    /// Whether the request was denied (not only matched, or in detect mode).
    pub denied: bool,
}

/// The log's queue and counters.
#[derive(Debug)]
pub struct AccessLog {
    tx: mpsc::Sender<Record>,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    reopen: Notify,
}

impl AccessLog {
    /// Starts the writer task.
    pub fn start(cfg: &model::AccessLog) -> Arc<AccessLog> {
        let (tx, rx) = mpsc::channel(cfg.buffer);
        let log = Arc::new(AccessLog {
            tx,
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reopen: Notify::new(),
        });
        tokio::spawn(writer(log.clone(), rx, cfg.path.clone(), cfg.json));
        log
    }

    /// Queues a line; never waits.
    pub fn log(&self, r: Record) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Closes and opens the file again (after it was rotated).
    pub fn reopen(&self) {
        self.reopen.notify_one();
    }
}

enum Out {
    Stdout(tokio::io::BufWriter<tokio::io::Stdout>),
    File(tokio::io::BufWriter<tokio::fs::File>),
}

async fn open(path: &Option<PathBuf>) -> std::io::Result<Out> {
    Ok(match path {
        None => Out::Stdout(tokio::io::BufWriter::new(tokio::io::stdout())),
        Some(p) => {
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .await?;
            Out::File(tokio::io::BufWriter::new(f))
        }
    })
}

impl Out {
    async fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Stdout(w) => w.write_all(b).await,
            Out::File(w) => w.write_all(b).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Stdout(w) => w.flush().await,
            Out::File(w) => w.flush().await,
        }
    }
}

async fn writer(log: Arc<AccessLog>, mut rx: mpsc::Receiver<Record>, path: Option<PathBuf>, json: bool) {
    let mut out = match open(&path).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(path = ?path, "cannot open the access log: {e}");
            return;
        }
    };
    let mut line = String::with_capacity(512);
    loop {
        tokio::select! {
            r = rx.recv() => {
                let Some(r) = r else { break };
                line.clear();
                format_line(&mut line, &r, json);
                if let Err(e) = out.write(line.as_bytes()).await {
                    tracing::error!("writing the access log failed: {e}");
                }
                log.written.fetch_add(1, Relaxed);
                if rx.is_empty() {
                    let _ = out.flush().await;
                }
            }
            _ = log.reopen.notified() => {
                let _ = out.flush().await;
                match open(&path).await {
                    Ok(o) => {
                        out = o;
                        tracing::info!(path = ?path, "access log reopened");
                    }
                    Err(e) => tracing::error!(path = ?path, "cannot reopen the access log: {e}"),
                }
            }
        }
    }
    let _ = out.flush().await;
}

fn hv(v: &Option<HeaderValue>) -> &str {
    v.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A version as logs (and the WAF's `REQUEST_PROTOCOL`) write it.
pub fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// One line, with its newline.
pub fn format_line(out: &mut String, r: &Record, json: bool) {
    use std::fmt::Write;
    let version = protocol(r.version);
    if json {
        let v = serde_json::json!({
            "time": httpdate::fmt_http_date(r.time),
            "client": r.client.to_string(),
            "method": r.method.as_str(),
            "uri": r.uri.to_string(),
            "protocol": version,
            "host": hv(&r.host),
            "status": r.status,
            "bytes": r.bytes,
            "duration_ms": (r.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "user_agent": hv(&r.user_agent),
            "referer": hv(&r.referer),
            "request_id": r.request_id.to_str().unwrap_or(""),
            "listener": &*r.listener,
            "server": r.server,
            "error": r.error,
        });
        let mut v = v;
        if let (Some(w), Some(o)) = (&r.waf, v.as_object_mut()) {
            o.insert("waf_rules".into(), serde_json::json!(w.rules));
            o.insert("waf_messages".into(), serde_json::json!(w.messages));
            o.insert("waf_anomaly_score".into(), serde_json::json!(w.anomaly_score));
            o.insert("waf_denied".into(), serde_json::json!(w.denied));
        }
        let _ = writeln!(out, "{v}");
    } else {
        let time = combined_time(r.time);
        let bytes = r.bytes.map_or("-".to_string(), |b| b.to_string());
        let q = |s: &str| s.replace('"', "\\\"");
        let _ = writeln!(
            out,
            "{} - - [{time}] \"{} {} {version}\" {} {bytes} \"{}\" \"{}\"",
            r.client,
            r.method,
            q(&r.uri.to_string()),
            r.status,
            q(hv(&r.referer)),
            q(hv(&r.user_agent)),
        );
        // The combined format's fields stay as they are; the WAF's come
        // after them, when it matched.
        if let Some(w) = &r.waf {
            out.pop();
            let ids: Vec<String> = w.rules.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                " \"waf {} rules={} score={}\"",
                if w.denied { "denied" } else { "matched" },
                ids.join(","),
                w.anomaly_score
            );
        }
    }
}

/// `10/Oct/2000:13:55:36 +0000`
fn combined_time(t: SystemTime) -> String {
    let d = httpdate::fmt_http_date(t); // "Tue, 10 Oct 2000 13:55:36 GMT"
    let p: Vec<&str> = d.split(' ').collect();
    match p.as_slice() {
        [_, day, mon, year, hms, _] => format!("{day}/{mon}/{year}:{hms} +0000"),
        _ => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136),
            client: "192.0.2.7".parse().expect("ip"),
            method: Method::GET,
            uri: Uri::from_static("/a?b=c"),
            version: Version::HTTP_11,
            host: Some(HeaderValue::from_static("shop.test")),
            user_agent: Some(HeaderValue::from_static("curl \"8\"")),
            referer: None,
            status: 200,
            bytes: Some(12),
            duration: Duration::from_micros(1500),
            request_id: HeaderValue::from_static("abc"),
            listener: Arc::from("web"),
            server: Some("web-01".into()),
            error: None,
            waf: None,
        }
    }

    #[test]
    fn combined_format() {
        let mut s = String::new();
        format_line(&mut s, &record(), false);
        assert_eq!(s, "192.0.2.7 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 \"\" \"curl \\\"8\\\"\"\n");
    }

    #[test]
    fn json_format() {
        let mut s = String::new();
        format_line(&mut s, &record(), true);
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).expect("json");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["server"], "web-01");
        assert_eq!(v["uri"], "/a?b=c");
        assert_eq!(v["user_agent"], "curl \"8\"");
        assert!(v.get("waf_rules").is_none());
    }

    #[test]
    fn the_waf_s_matches_are_in_both_formats() {
        let mut r = record();
        r.status = 403;
        r.waf = Some(Box::new(WafFields {
            rules: vec![941100, 949110],
            messages: vec![
                "XSS Attack Detected via libinjection".into(),
                "Inbound Anomaly Score Exceeded (Total Score: 5)".into(),
            ],
            anomaly_score: 5,
            denied: true,
        }));
        let mut s = String::new();
        format_line(&mut s, &r, true);
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).expect("json");
        assert_eq!(v["waf_rules"], serde_json::json!([941100, 949110]));
        assert_eq!(v["waf_anomaly_score"], 5);
        assert_eq!(v["waf_denied"], true);
        assert_eq!(v["waf_messages"][0], "XSS Attack Detected via libinjection");
        s.clear();
        format_line(&mut s, &r, false);
        assert!(
            s.ends_with("\"curl \\\"8\\\"\" \"waf denied rules=941100,949110 score=5\"\n"),
            "{s}"
        );
    }
}
