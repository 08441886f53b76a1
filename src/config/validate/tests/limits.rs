//! `[timeouts]` and `[limits]`.

use std::time::Duration;

use super::{loads, refuses};
use crate::config::defaults as d;
use crate::config::model::{Limits, Timeouts};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn timeouts() {
    loads(
        |m| m.timeouts,
        vec![
            ("defaults", "".into(), Timeouts::default()),
            (
                "every unit",
                "[timeouts]\nconnect = \"250ms\"\nresponse_header = \"2s\"\nclient_idle = \"2m\"\n\
                 request_header = \"1h\"\nbackend_idle = \"1d\"\ntcp_idle = \"30m\"\nrequest = \"0s\"\ndrain = \" 5s \"\n\
                 shutdown_delay = \"3s\"\nrequest_body_idle = \"90s\"\n"
                    .into(),
                Timeouts {
                    connect: ms(250),
                    response_header: ms(2_000),
                    client_idle: ms(120_000),
                    request_header: ms(3_600_000),
                    backend_idle: ms(86_400_000),
                    tcp_idle: ms(1_800_000),
                    request: Duration::ZERO,
                    request_body_idle: ms(90_000),
                    drain: ms(5_000),
                    shutdown_delay: ms(3_000),
                },
            ),
            (
                "one key, the others default",
                "[timeouts]\ndrain = \"1s\"\n".into(),
                Timeouts {
                    drain: ms(1_000),
                    ..Timeouts::default()
                },
            ),
        ],
    );
    assert_eq!(Timeouts::default().connect, d::CONNECT);
}

#[test]
fn timeout_mistakes() {
    refuses(vec![
        (
            "no unit",
            "[timeouts]\nconnect = \"5\"\n".into(),
            "2:11: timeouts.connect: `5` has no unit: write it like \"5s\", \"250ms\" or \"2m\"",
        ),
        (
            "an unknown unit",
            "[timeouts]\ndrain = \"5 parsecs\"\n".into(),
            "2:9: timeouts.drain: unknown duration unit `parsecs` in `5 parsecs`: use ms, s, m, h or d",
        ),
        (
            "no number",
            "[timeouts]\nrequest = \"s\"\n".into(),
            "2:11: timeouts.request: `s` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
        (
            "a number, not a string",
            "[timeouts]\nclient_idle = 30\n".into(),
            "2:15: timeouts.client_idle: invalid type: integer `30`, expected a duration such as \"30s\"",
        ),
        (
            "an unknown timeout",
            "[timeouts]\nidle = \"5s\"\n".into(),
            "2:1: timeouts: unknown field `idle`, expected one of `connect`, `response_header`, \
             `client_idle`, `request_header`, `backend_idle`, `tcp_idle`, `request`, `request_body_idle`, `drain`, `shutdown_delay`",
        ),
    ]);
}

#[test]
fn limits() {
    loads(
        |m| m.limits,
        vec![
            ("defaults", "".into(), Limits::default()),
            (
                "the smallest header size",
                "[limits]\nmax_header_bytes = \"8KiB\"\n".into(),
                Limits {
                    max_header_bytes: 8192,
                    ..Limits::default()
                },
            ),
            (
                "sizes in every unit",
                "[limits]\nmax_header_bytes = \"1MiB\"\nmax_body = \"10MB\"\nmin_body_rate = \"512\"\n"
                    .into(),
                Limits {
                    max_header_bytes: 1 << 20,
                    max_body: Some(10_000_000),
                    min_body_rate: 512,
                    ..Limits::default()
                },
            ),
            (
                "counts and HTTP/2",
                "[limits]\nmax_headers = 1\nmax_uri_length = 1\nbody_grace = \"1s\"\n\
                 http2_max_concurrent_streams = 10\nhttp2_max_pending_resets = 0\n"
                    .into(),
                Limits {
                    max_headers: 1,
                    max_uri_length: 1,
                    body_grace: ms(1_000),
                    http2_max_concurrent_streams: 10,
                    http2_max_pending_resets: 0,
                    ..Limits::default()
                },
            ),
            (
                "0 streams counts as 1, min_body_rate 0 is off",
                "[limits]\nhttp2_max_concurrent_streams = 0\nmin_body_rate = \"0\"\n".into(),
                Limits {
                    http2_max_concurrent_streams: 1,
                    min_body_rate: 0,
                    ..Limits::default()
                },
            ),
        ],
    );
    assert_eq!(Limits::default().max_header_bytes, d::MAX_HEADER_BYTES);
}

#[test]
fn limit_mistakes() {
    refuses(vec![
        (
            "a header size under 8KiB",
            "[limits]\nmax_header_bytes = \"8191\"\n".into(),
            "2:20: limits.max_header_bytes: at least 8KiB (HTTP/1.1's read buffer cannot be smaller)",
        ),
        (
            "no headers allowed",
            "[limits]\nmax_headers = 0\n".into(),
            "2:15: limits.max_headers: must be at least 1",
        ),
        (
            "no target allowed",
            "[limits]\nmax_uri_length = 0\n".into(),
            "2:18: limits.max_uri_length: must be at least 1",
        ),
        (
            "an unknown size unit",
            "[limits]\nmax_body = \"12 furlongs\"\n".into(),
            "2:12: limits.max_body: unknown size unit `furlongs` in `12 furlongs`: use B, KB, KiB, MB, MiB, GB or GiB",
        ),
        (
            "a size too large",
            "[limits]\nmax_body = \"99999999999999GiB\"\n".into(),
            "2:12: limits.max_body: size `99999999999999GiB` is too large",
        ),
        (
            "a size as a number",
            "[limits]\nmin_body_rate = 1024\n".into(),
            "2:17: limits.min_body_rate: invalid type: integer `1024`, expected a size such as \"64KiB\"",
        ),
        (
            "a bad grace",
            "[limits]\nbody_grace = \"soon\"\n".into(),
            "2:14: limits.body_grace: `soon` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
    ]);
}
