//! `[pool.health_check]` and `[pool.outlier]`.

use std::time::Duration;

use super::{loads, refuses, POOL};
use crate::config::model::{CheckKind, HealthCheck, Outlier, Password};

fn check(more: &str) -> String {
    format!("{POOL}[pool.health_check]\n{more}")
}

fn outlier(more: &str) -> String {
    format!("{POOL}[pool.outlier]\n{more}")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn http_defaults() -> CheckKind {
    CheckKind::Http {
        method: http::Method::GET,
        path: "/".into(),
        host: None,
        expect: vec![(200, 399)],
        body_contains: None,
    }
}

fn defaults() -> HealthCheck {
    HealthCheck {
        kind: http_defaults(),
        interval: secs(2),
        timeout: secs(1),
        jitter: Duration::ZERO,
        rise: 2,
        fall: 3,
        traffic_when_unknown: false,
    }
}

#[test]
fn health_checks() {
    loads(
        |m| m.pools[0].health_check.clone(),
        vec![
            ("none", POOL.into(), None),
            ("defaults", check(""), Some(defaults())),
            (
                "tcp, timing and thresholds at their bounds",
                check("type = \"tcp\"\ninterval = \"1s\"\ntimeout = \"1s\"\njitter = \"500ms\"\nrise = 1\nfall = 100\n"),
                Some(HealthCheck {
                    kind: CheckKind::Tcp,
                    interval: secs(1),
                    timeout: secs(1),
                    jitter: Duration::from_millis(500),
                    rise: 1,
                    fall: 100,
                    ..defaults()
                }),
            ),
            (
                "mysql, password inline",
                check("type = \"mysql\"\nuser = \"monitor\"\npassword = \"pw\"\n"),
                Some(HealthCheck {
                    kind: CheckKind::Mysql {
                        user: "monitor".into(),
                        password: Password("pw".into()),
                    },
                    ..defaults()
                }),
            ),
            (
                "mysql, password from the first line of a file",
                check("type = \"mysql\"\nuser = \"monitor\"\npassword_file = \"monitor.pw\"\n"),
                Some(HealthCheck {
                    kind: CheckKind::Mysql {
                        user: "monitor".into(),
                        password: Password("s3cret".into()),
                    },
                    ..defaults()
                }),
            ),
            (
                "what an http check sends and expects",
                check(
                    "method = \"HEAD\"\npath = \"/health?full=1\"\nhost = \"app.test\"\n\
                     expect_status = [\"204\", \"300 - 302\"]\nbody_contains = \"ok\"\ntraffic_when_unknown = true\n",
                ),
                Some(HealthCheck {
                    kind: CheckKind::Http {
                        method: http::Method::HEAD,
                        path: "/health?full=1".into(),
                        host: Some("app.test".into()),
                        expect: vec![(204, 204), (300, 302)],
                        body_contains: Some("ok".into()),
                    },
                    traffic_when_unknown: true,
                    ..defaults()
                }),
            ),
        ],
    );
}

#[test]
fn health_check_mistakes() {
    refuses(vec![
        (
            "an unknown type",
            check("type = \"icmp\"\n"),
            "6:8: pool[0].health_check.type: unknown check type `icmp`: use http, tcp or mysql",
        ),
        (
            "mysql without a user",
            check("type = \"mysql\"\n"),
            "6:8: pool[0].health_check.user: a mysql check needs `user` (the monitor user)",
        ),
        (
            "mysql with both passwords",
            check("type = \"mysql\"\nuser = \"m\"\npassword = \"a\"\npassword_file = \"monitor.pw\"\n"),
            "9:17: pool[0].health_check.password_file: set either `password` or `password_file`, not both",
        ),
        (
            "mysql with a missing password file",
            check("type = \"mysql\"\nuser = \"m\"\npassword_file = \"nope.pw\"\n"),
            "8:17: pool[0].health_check.password_file: cannot read /etc/rampart/nope.pw: No such file or directory (os error 2)",
        ),
        (
            "a user on an http check",
            check("user = \"m\"\n"),
            "6:8: pool[0].health_check.user: only `type = \"mysql\"` checks take this key",
        ),
        (
            "a path on a mysql check",
            check("type = \"mysql\"\nuser = \"m\"\npath = \"/\"\n"),
            "8:8: pool[0].health_check.path: only `type = \"http\"` checks take this key",
        ),
        (
            "body_contains on a tcp check",
            check("type = \"tcp\"\nbody_contains = \"ok\"\n"),
            "6:8: pool[0].health_check.body_contains: only `type = \"http\"` checks take this key",
        ),
        (
            "interval zero",
            check("interval = \"0s\"\n"),
            "6:12: pool[0].health_check.interval: the interval must be above zero",
        ),
        (
            "timeout zero",
            check("timeout = \"0s\"\n"),
            "6:11: pool[0].health_check.timeout: the timeout must be above zero and at most the interval, \
             which is 2s by default: shorten the timeout or set `interval`",
        ),
        (
            "timeout over the default interval",
            check("timeout = \"3s\"\n"),
            "6:11: pool[0].health_check.timeout: the timeout must be above zero and at most the interval, \
             which is 2s by default: shorten the timeout or set `interval`",
        ),
        (
            "interval under the default timeout",
            check("interval = \"500ms\"\n"),
            "6:12: pool[0].health_check.interval: the interval must be at least the timeout, which is 1s \
             by default: lengthen the interval or set `timeout` to at most 500ms",
        ),
        (
            "both written, timeout over interval",
            check("interval = \"1s\"\ntimeout = \"2s\"\n"),
            "7:11: pool[0].health_check.timeout: the timeout must be above zero and at most the interval",
        ),
        (
            "rise zero",
            check("rise = 0\n"),
            "6:8: pool[0].health_check.rise: a count from 1 to 100",
        ),
        (
            "fall above 100",
            check("fall = 101\n"),
            "6:8: pool[0].health_check.fall: a count from 1 to 100",
        ),
        (
            "a bad method",
            check("method = \"GE T\"\n"),
            "6:10: pool[0].health_check.method: not an HTTP method",
        ),
        (
            "a path without a slash",
            check("path = \"health\"\n"),
            "6:8: pool[0].health_check.path: a path such as \"/health\"",
        ),
        (
            "a status class",
            check("expect_status = [\"200\", \"2xx\"]\n"),
            "6:17: pool[0].health_check.expect_status: `2xx` is not a status or range like \"200-299\"",
        ),
        (
            "a reversed range",
            check("expect_status = [\"299-200\"]\n"),
            "6:17: pool[0].health_check.expect_status: `299-200` is not a status or range like \"200-299\"",
        ),
        (
            "a status out of range",
            check("expect_status = [\"99\"]\n"),
            "6:17: pool[0].health_check.expect_status: `99` is not a status or range like \"200-299\"",
        ),
        (
            "a host that is no header value",
            check("host = \"a\\u0007b\"\n"),
            "6:8: pool[0].health_check.host: not a valid Host header value",
        ),
        (
            "a bad jitter",
            check("jitter = \"some\"\n"),
            "6:10: pool[0].health_check.jitter: `some` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
    ]);
}

#[test]
fn outliers() {
    loads(
        |m| m.pools[0].outlier,
        vec![
            ("no table: defaults", POOL.into(), Outlier::default()),
            ("an empty table: defaults", outlier(""), Outlier::default()),
            (
                "every key, at the bounds",
                outlier("consecutive_failures = 0\nbase_ejection_time = \"1m\"\nmax_ejected_percent = 100\non_5xx = true\n"),
                Outlier {
                    consecutive_failures: 0,
                    base_ejection_time: secs(60),
                    max_ejected_percent: 100,
                    on_5xx: true,
                },
            ),
        ],
    );
    refuses(vec![
        (
            "more than all servers",
            outlier("max_ejected_percent = 101\n"),
            "6:23: pool[0].outlier.max_ejected_percent: a percentage from 0 to 100",
        ),
        (
            "a bad ejection time",
            outlier("base_ejection_time = \"30\"\n"),
            "6:22: pool[0].outlier.base_ejection_time: `30` has no unit: write it like \"5s\", \"250ms\" or \"2m\"",
        ),
    ]);
}
