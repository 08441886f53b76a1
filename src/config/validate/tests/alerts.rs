//! `[alerts]` and `[[alert]]`.

use std::time::Duration;

use super::{loads, refuses, POOL};
use crate::config::model::{AlertKind, Alerts};

fn alert(more: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:8080\"\n{POOL}[[route]]\npool = \"p\"\n\
         [[alert]]\nname = \"a\"\n{more}"
    )
}

#[test]
fn alert_settings() {
    let settings = |m: &crate::config::Model| {
        let a = &m.alerts;
        let webhook = a.webhook.as_ref().map(|u| u.to_string());
        (webhook, a.webhook_timeout, a.webhook_retries, a.interval)
    };
    loads(
        settings,
        vec![
            (
                "defaults",
                "".into(),
                (None, Duration::from_secs(2), 3, Duration::from_secs(1)),
            ),
            (
                "every key",
                "[alerts]\nwebhook = \"http://127.0.0.1:9000/hook\"\nwebhook_timeout = \"500ms\"\n\
                 webhook_retries = 0\ninterval = \"10s\"\n"
                    .into(),
                (
                    Some("http://127.0.0.1:9000/hook".into()),
                    Duration::from_millis(500),
                    0,
                    Duration::from_secs(10),
                ),
            ),
        ],
    );
    let d = Alerts::default();
    assert_eq!(
        (d.webhook_timeout, d.webhook_retries, d.interval),
        (Duration::from_secs(2), 3, Duration::from_secs(1))
    );
}

#[test]
fn alert_kinds() {
    let pool = Some("p".to_string());
    loads(
        |m| m.alerts.rules.iter().map(|r| r.kind.clone()).collect::<Vec<_>>(),
        vec![
            (
                "qps over 10 s by default, of everything",
                alert("kind = \"qps_above\"\nthreshold = 100.0\n"),
                vec![AlertKind::QpsAbove {
                    pool: None,
                    window: "10s",
                    threshold: 100.0,
                }],
            ),
            (
                "qps below, 60 s, of a pool",
                alert("kind = \"qps_below\"\nthreshold = 1.0\nwindow = \"60s\"\npool = \"p\"\n"),
                vec![AlertKind::QpsBelow {
                    pool: pool.clone(),
                    window: "60s",
                    threshold: 1.0,
                }],
            ),
            (
                "qps over 1 s",
                alert("kind = \"qps_above\"\nthreshold = 5.0\nwindow = \"1s\"\n"),
                vec![AlertKind::QpsAbove {
                    pool: None,
                    window: "1s",
                    threshold: 5.0,
                }],
            ),
            (
                "error ratio",
                alert("kind = \"error_ratio_above\"\nthreshold = 0.5\n"),
                vec![AlertKind::ErrorRatioAbove {
                    pool: None,
                    threshold: 0.5,
                }],
            ),
            (
                "p99",
                alert("kind = \"p99_above\"\nthreshold = 250.0\npool = \"p\"\n"),
                vec![AlertKind::P99Above {
                    pool: pool.clone(),
                    threshold: 250.0,
                }],
            ),
            (
                "any server of a pool down",
                alert("kind = \"server_down\"\npool = \"p\"\n"),
                vec![AlertKind::ServerDown {
                    pool: "p".into(),
                    server: None,
                }],
            ),
            (
                "one server down",
                alert("kind = \"server_down\"\npool = \"p\"\nserver = \"192.0.2.1:80\"\n"),
                vec![AlertKind::ServerDown {
                    pool: "p".into(),
                    server: Some("192.0.2.1:80".into()),
                }],
            ),
            (
                "a pool down",
                alert("kind = \"pool_down\"\npool = \"p\"\n"),
                vec![AlertKind::PoolDown { pool: "p".into() }],
            ),
            (
                "any certificate expiring",
                alert("kind = \"cert_expiring\"\ndays = 14\n"),
                vec![AlertKind::CertExpiring {
                    listener: None,
                    days: 14,
                }],
            ),
            (
                "a listener's certificate expiring",
                alert("kind = \"cert_expiring\"\ndays = 0\nlistener = \"web\"\n"),
                vec![AlertKind::CertExpiring {
                    listener: Some("web".into()),
                    days: 0,
                }],
            ),
        ],
    );
}

#[test]
fn alert_mistakes() {
    refuses(vec![
        (
            "a webhook that is no URL",
            "[alerts]\nwebhook = \"not a url\"\n".into(),
            "2:11: alerts.webhook: not a URL: write it like \"http://127.0.0.1:9000/hook\"",
        ),
        (
            "an ftp webhook",
            "[alerts]\nwebhook = \"ftp://hooks.test/x\"\n".into(),
            "2:11: alerts.webhook: an http:// or https:// URL with a host is needed",
        ),
        (
            "a webhook without a host",
            "[alerts]\nwebhook = \"/hook\"\n".into(),
            "2:11: alerts.webhook: an http:// or https:// URL with a host is needed",
        ),
        (
            "a CA for a plain webhook",
            "[alerts]\nwebhook = \"http://127.0.0.1:9/x\"\nwebhook_ca = \"system\"\n".into(),
            "3:14: alerts.webhook_ca: webhook_ca is for an https:// webhook",
        ),
        (
            "interval zero",
            "[alerts]\ninterval = \"0ms\"\n".into(),
            "2:12: alerts.interval: the interval must be above zero",
        ),
        (
            "a bad webhook timeout",
            "[alerts]\nwebhook_timeout = \"2\"\n".into(),
            "2:19: alerts.webhook_timeout: `2` has no unit: write it like \"5s\", \"250ms\" or \"2m\"",
        ),
        ("no threshold", alert("kind = \"qps_above\"\n"), "12:8: alert[0].threshold: this kind of alert needs a threshold"),
        (
            "an unknown window",
            alert("kind = \"qps_above\"\nthreshold = 1.0\nwindow = \"5m\"\n"),
            "14:10: alert[0].window: window `5m`: use 1s, 10s or 60s",
        ),
        ("no pool", alert("kind = \"pool_down\"\n"), "12:8: alert[0].pool: this kind of alert needs a pool"),
        (
            "an unknown pool",
            alert("kind = \"pool_down\"\npool = \"q\"\n"),
            "13:8: alert[0].pool: no pool is named `q`",
        ),
        (
            "an unknown server",
            alert("kind = \"server_down\"\npool = \"p\"\nserver = \"s\"\n"),
            "14:10: alert[0].server: pool `p` has no server `s`",
        ),
        ("no days", alert("kind = \"cert_expiring\"\n"), "12:8: alert[0].days: cert_expiring needs `days`"),
        (
            "an unknown listener",
            alert("kind = \"cert_expiring\"\ndays = 3\nlistener = \"tls\"\n"),
            "14:12: alert[0].listener: no listener is named `tls`",
        ),
        (
            "writer_unavailable without a writer endpoint",
            alert("kind = \"writer_unavailable\"\n"),
            "12:8: alert[0].kind: no listener has `role = \"writer\"`",
        ),
        (
            "an unknown kind",
            alert("kind = \"disk_full\"\n"),
            "12:8: alert[0].kind: unknown alert kind `disk_full`: use qps_above, qps_below, error_ratio_above, \
             p99_above, server_down, pool_down, cert_expiring or writer_unavailable",
        ),
        (
            "a name twice",
            format!("{}[[alert]]\nname = \"a\"\nkind = \"pool_down\"\npool = \"p\"\n", alert("kind = \"pool_down\"\npool = \"p\"\n")),
            "15:8: alert[1].name: alert names must be unique",
        ),
    ]);
}

#[test]
fn an_https_webhook_and_whom_its_certificate_must_chain_to() {
    use crate::config::model::TlsRoots;
    let https = |ca: &str| format!("[alerts]\nwebhook = \"https://hooks.test/x\"\n{ca}");
    loads(
        |m| {
            (
                m.alerts.webhook.as_ref().map(|u| u.to_string()),
                m.alerts.webhook_roots.clone(),
            )
        },
        vec![
            (
                "the system's store by default",
                https(""),
                (Some("https://hooks.test/x".into()), TlsRoots::System),
            ),
            (
                "rampart's internal CA",
                https("webhook_ca = \"internal\"\n"),
                (Some("https://hooks.test/x".into()), TlsRoots::Internal),
            ),
        ],
    );
}
