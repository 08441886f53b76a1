//! Alerts: rules from `[[alert]]` evaluated every `[alerts] interval` over
//! the same numbers the dashboard shows (rates, error share, p99, health,
//! certificate expiry). Each rule instance (a rule about "any server of a
//! pool" has one per server) fires once when its condition starts to hold
//! and resolves once when it stops: one notification per episode, not per
//! evaluation. Notifications are logged and, with a webhook, POSTed as JSON
//! (over TLS for an `https://` webhook, its certificate checked against
//! `webhook_ca`) by their own task with a timeout and retries, so a slow webhook never
//! holds anything up (when its queue is full, notifications are dropped and
//! logged).
//!
//! Exposes [`start`] and [`evaluate`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::balancer::{db_writer, DbRole};
use crate::config::model::{AlertKind, AlertRule, Alerts, DbEndpoint};
use crate::metrics::sampler::Sampler;
use crate::runtime::Runtime;

/// One instance of a rule, as evaluated now.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub instance: String,
    pub firing: bool,
    pub value: Option<f64>,
}

/// Starts the evaluator (and the webhook sender); None without rules.
/// `tls`: the client configuration for an `https://` webhook.
pub fn start(
    cfg: &Alerts,
    sampler: Arc<Sampler>,
    runtime: Arc<ArcSwap<Runtime>>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Option<JoinHandle<()>> {
    if cfg.rules.is_empty() {
        return None;
    }
    let cfg = cfg.clone();
    Some(tokio::spawn(async move {
        let (tx, rx) = mpsc::channel::<Value>(256);
        let sender = cfg
            .webhook
            .clone()
            .map(|uri| tokio::spawn(webhook(uri, tls, rx, cfg.webhook_timeout, cfg.webhook_retries)));
        let evaluate_all = |rules: &[AlertRule]| {
            let rt = runtime.load_full();
            let snap = sampler.snapshot(&rt);
            rules
                .iter()
                .enumerate()
                .flat_map(|(i, rule)| evaluate(rule, &snap, &rt).into_iter().map(move |v| (i, v)))
                .collect()
        };
        every(cfg.interval, &cfg.rules, evaluate_all, sender.map(|_| tx)).await;
    }))
}

/// Evaluates `rules` every `interval` (with `eval`, which gives each
/// rule's verdicts by the rule's index), and sends a notification to `tx`
/// when an instance starts or stops firing.
async fn every<E>(interval: Duration, rules: &[AlertRule], mut eval: E, tx: Option<mpsc::Sender<Value>>)
where
    E: FnMut(&[AlertRule]) -> Vec<(usize, Verdict)>,
{
    let mut state: HashMap<(usize, String), bool> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (i, v) in eval(rules) {
            let Some(rule) = rules.get(i) else { continue };
            let was = state.get(&(i, v.instance.clone())).copied().unwrap_or(false);
            if v.firing == was {
                continue;
            }
            state.insert((i, v.instance.clone()), v.firing);
            let status = if v.firing { "firing" } else { "resolved" };
            // The value, or nothing when there is none to show (not "None").
            let value = v.value.map(|x| x.to_string()).unwrap_or_default();
            if v.firing {
                tracing::warn!(alert = %rule.name, instance = %v.instance, %value, "alert firing");
            } else {
                tracing::info!(alert = %rule.name, instance = %v.instance, %value, "alert resolved");
            }
            let note = json!({
                "alert": rule.name,
                "status": status,
                "instance": v.instance,
                "value": v.value,
                "condition": describe(&rule.kind),
                "time": httpdate::fmt_http_date(std::time::SystemTime::now()),
            });
            if tx.as_ref().is_some_and(|tx| tx.try_send(note).is_err()) {
                tracing::warn!(alert = %rule.name, "alert webhook queue is full: notification dropped");
            }
        }
    }
}

/// The rule in words, for notifications.
fn describe(k: &AlertKind) -> String {
    let scope = |p: &Option<String>| {
        p.as_deref()
            .map_or("all traffic".to_string(), |p| format!("pool {p}"))
    };
    match k {
        AlertKind::QpsAbove {
            pool,
            window,
            threshold,
        } => format!("{} above {threshold} req/s over {window}", scope(pool)),
        AlertKind::QpsBelow {
            pool,
            window,
            threshold,
        } => format!("{} below {threshold} req/s over {window}", scope(pool)),
        AlertKind::ErrorRatioAbove { pool, threshold } => {
            format!("{} 5xx share above {threshold} over 10s", scope(pool))
        }
        AlertKind::P99Above { pool, threshold } => {
            format!("{} p99 latency above {threshold} ms over 10s", scope(pool))
        }
        AlertKind::ServerDown { pool, server } => {
            format!(
                "server {} of pool {pool} down",
                server.as_deref().unwrap_or("(any)")
            )
        }
        AlertKind::PoolDown { pool } => format!("pool {pool} has no server available"),
        AlertKind::CertExpiring { days, .. } => format!("certificate expiring within {days} days"),
        AlertKind::WriterUnavailable { listener } => format!(
            "writer endpoint {} refusing connections (no single writable primary)",
            listener.as_deref().unwrap_or("(any)")
        ),
    }
}

/// Evaluates a rule over a `/api/stats` document and the runtime.
pub fn evaluate(rule: &AlertRule, snap: &Value, rt: &Runtime) -> Vec<Verdict> {
    let scope = |pool: &Option<String>| -> Value {
        match pool {
            None => snap["totals"].clone(),
            Some(p) => snap["pools"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == *p))
                .cloned()
                .unwrap_or_default(),
        }
    };
    let one = |instance: String, value: Option<f64>, firing: bool| {
        vec![Verdict {
            instance,
            firing,
            value,
        }]
    };
    // A rule on one number: firing when there is a value and it crosses the threshold.
    let measured = |pool: &Option<String>, value: Option<f64>, crosses: &dyn Fn(f64) -> bool| {
        one(
            pool.clone().unwrap_or_default(),
            value,
            value.is_some_and(crosses),
        )
    };
    match &rule.kind {
        AlertKind::QpsAbove {
            pool,
            window,
            threshold,
        } => measured(pool, scope(pool)["qps"][*window].as_f64(), &|v| v > *threshold),
        AlertKind::QpsBelow {
            pool,
            window,
            threshold,
        } => measured(pool, scope(pool)["qps"][*window].as_f64(), &|v| v < *threshold),
        AlertKind::ErrorRatioAbove { pool, threshold } => {
            measured(pool, scope(pool)["error_ratio_10s"].as_f64(), &|v| v > *threshold)
        }
        AlertKind::P99Above { pool, threshold } => {
            measured(pool, scope(pool)["latency_ms"]["p99"].as_f64(), &|v| {
                v > *threshold
            })
        }
        AlertKind::ServerDown { pool, server } => scope(&Some(pool.clone()))["servers"]
            .as_array()
            .map(|servers| {
                servers
                    .iter()
                    .filter(|s| server.as_ref().is_none_or(|n| s["name"] == *n))
                    .map(|s| {
                        let down = s["health"] == "down" || s["ejected"] == true;
                        Verdict {
                            instance: s["name"].as_str().unwrap_or("").to_string(),
                            firing: down,
                            value: None,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        AlertKind::PoolDown { pool } => {
            let available = rt.pool(pool).map_or(0, |p| p.balancer.available_count());
            one(pool.clone(), Some(available as f64), available == 0)
        }
        AlertKind::CertExpiring { listener, days } => {
            let limit = i64::from(*days) * 86_400;
            let mut out = Vec::new();
            for l in snap["listeners"].as_array().into_iter().flatten() {
                if listener.as_ref().is_some_and(|n| l["name"] != *n) {
                    continue;
                }
                for c in l["certificates"].as_array().into_iter().flatten() {
                    let left = c["expires_in_seconds"].as_i64().unwrap_or(i64::MAX);
                    out.push(Verdict {
                        instance: format!(
                            "{}/{}",
                            l["name"].as_str().unwrap_or(""),
                            c["name"].as_str().unwrap_or("")
                        ),
                        firing: left < limit,
                        value: Some(left as f64 / 86_400.0),
                    });
                }
            }
            out
        }
        AlertKind::WriterUnavailable { listener } => rt
            .listeners
            .iter()
            .flatten()
            .filter(|l| l.db_endpoint == Some(DbEndpoint::Writer))
            .filter(|l| listener.as_ref().is_none_or(|n| &l.name == n))
            .map(|l| {
                let servers = l
                    .tcp_pool
                    .as_deref()
                    .and_then(|p| rt.pool(p))
                    .map(|p| p.balancer.servers());
                let servers = servers.unwrap_or(&[]);
                let writable = servers.iter().filter(|s| s.db.role() == DbRole::Primary).count();
                // Not before every server has had its first check: a
                // starting instance knows no primary yet.
                let checked = servers.iter().all(|s| s.db.role() != DbRole::Unknown);
                Verdict {
                    instance: l.name.clone(),
                    firing: checked && db_writer(servers).is_err(),
                    value: Some(writable as f64),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;

/// POSTs notifications to the webhook, one at a time, with retries.
async fn webhook(
    uri: http::Uri,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut rx: mpsc::Receiver<Value>,
    timeout: Duration,
    retries: u32,
) {
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().map_or(host.clone(), |a| a.as_str().to_string());
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    while let Some(note) = rx.recv().await {
        let body = Bytes::from(note.to_string());
        let mut delivered = false;
        for attempt in 0..=retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            let sent = tokio::time::timeout(timeout, async {
                let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{host} has no address"))?;
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect to {addr}: {e}"))?;
                if !https {
                    return post(tcp, &authority, &path, body.clone()).await;
                }
                let cfg = tls
                    .clone()
                    .ok_or("no TLS client configuration for an https:// webhook")?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
                let stream = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {host}: {e}"))?;
                post(stream, &authority, &path, body.clone()).await
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
            match sent {
                Ok(s) if (200..300).contains(&s) => {
                    delivered = true;
                    break;
                }
                Ok(s) => tracing::warn!(status = s, attempt, "alert webhook refused the notification"),
                Err(e) => tracing::warn!(attempt, "alert webhook failed: {e}"),
            }
        }
        if !delivered {
            tracing::error!(notification = %note, "alert notification not delivered after {} attempts", retries + 1);
        }
    }
}

/// One JSON POST over `io`; the answer's status.
async fn post<IO>(io: IO, authority: &str, path: &str, body: Bytes) -> Result<u16, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, http_body_util::Full<Bytes>>(
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let req = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "rampart-alerts")
        .body(http_body_util::Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string());
    driver.abort();
    Ok(resp?.status().as_u16())
}
