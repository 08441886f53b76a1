//! CPU time the Core Rule Set (Debian's modsecurity-crs, paranoia 1) costs
//! per request inside rampart's WAF, on three request shapes: the engine
//! alone (`RuleSet::inspect`), on one thread, the best of five rounds.
//!
//! ```sh
//! cargo run --release --example waf_cost [-- ROUND_SIZE [SHAPE]]
//! ```
//!
//! The end-to-end figure (server CPU per request with the WAF on and off,
//! against Apache with ModSecurity) is `bench/waf-compare/cost.py`.

use std::path::Path;
use std::time::Instant;

use rampart::waf::{load, Request};

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let rules = [
        "/etc/modsecurity/crs/crs-setup.conf".to_string(),
        "/usr/share/modsecurity-crs/rules/*.conf".to_string(),
    ];
    let set = match load(&rules, Path::new("/"), 1) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot load the Core Rule Set: {e} (apt-get install modsecurity-crs)");
            std::process::exit(1);
        }
    };
    let browser: Vec<(&[u8], &[u8])> = vec![
        (b"host", b"shop.example"),
        (
            b"user-agent",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            b"accept",
            b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        (b"accept-language", b"en-US,en;q=0.5"),
        (b"accept-encoding", b"gzip, deflate, br"),
    ];
    let query = format!(
        "/products/list?{}",
        (0..10)
            .map(|i| format!("p{i}=value{i}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let mut with_cookies = browser.clone();
    with_cookies.push((
        b"cookie",
        b"session=3f1c0a9b8e7d6c5b4a39281706f5e4d3; theme=dark; cart=3; lang=en-GB",
    ));
    let mut form = String::new();
    let mut i = 0;
    while form.len() < 4096 {
        form.push_str(&format!(
            "field{i}=Some+ordinary+text+a+customer+would+type+number+{i}&"
        ));
        i += 1;
    }
    form.truncate(4096);
    let mut with_form = browser.clone();
    with_form.push((b"content-type", b"application/x-www-form-urlencoded"));
    let shapes: Vec<(&str, Request<'_>)> = vec![
        (
            "plain GET",
            Request {
                method: "GET",
                uri: "/",
                protocol: "HTTP/1.1",
                headers: browser.clone(),
                remote_addr: "192.0.2.7".into(),
                unique_id: "rid",
                ..Request::default()
            },
        ),
        (
            "GET, 10-parameter query, cookies",
            Request {
                method: "GET",
                uri: &query,
                protocol: "HTTP/1.1",
                headers: with_cookies,
                remote_addr: "192.0.2.7".into(),
                unique_id: "rid",
                ..Request::default()
            },
        ),
        (
            "POST, 4 KiB form",
            Request {
                method: "POST",
                uri: "/contact",
                protocol: "HTTP/1.1",
                headers: with_form,
                remote_addr: "192.0.2.7".into(),
                unique_id: "rid",
                body: form.as_bytes(),
                ..Request::default()
            },
        ),
    ];
    // An optional second argument picks one shape (0, 1, 2), for profiling.
    let only: Option<usize> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    for (k, (name, req)) in shapes.iter().enumerate() {
        if only.is_some_and(|o| o != k) {
            continue;
        }
        let first = set.inspect(req);
        assert!(first.deny.is_none(), "{name}: denied ({first:?})");
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(set.inspect(std::hint::black_box(req)));
            }
            best = best.min(t.elapsed().as_secs_f64() / f64::from(n) * 1e6);
        }
        println!("{name}: {best:.1} µs per request (best of 5 rounds of {n})");
    }
}
