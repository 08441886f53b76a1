//! The demo site embedded in the binary: a landing page and an about page
//! that name the server that answered, their stylesheet and icon, and
//! `/health`. Pages are built once per [`Demo`], with the server's name
//! put in and a colour of its own picked from the name.

use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;

use super::cond::{unix_secs, Validators};
use super::path::ReqPath;

const INDEX: &str = include_str!("demo/index.html");
const ABOUT: &str = include_str!("demo/about.html");
const STYLE: &[u8] = include_bytes!("demo/style.css");
const ICON: &[u8] = include_bytes!("demo/favicon.svg");

/// One file of the demo site, held in memory.
#[derive(Debug)]
pub(super) struct Asset {
    pub body: Bytes,
    pub content_type: &'static str,
    pub validators: Validators,
    pub cache_control: Option<&'static str>,
}

/// The demo site of one server.
pub(super) struct Demo {
    assets: Vec<(&'static str, Asset)>,
}

impl fmt::Debug for Demo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.assets.iter().map(|(name, _)| name))
            .finish()
    }
}

const HTML: &str = "text/html; charset=utf-8";
/// Pages differ from server to server: make browsers ask each time, so
/// a reload shows the balancer at work.
const REVALIDATE: Option<&str> = Some("no-cache");

impl Demo {
    pub fn new(server: &str) -> Demo {
        let modified = unix_secs(SystemTime::now());
        let page = |template: &str| {
            let hue = digest(server.as_bytes()) % 360;
            let text = template
                .replace("{{hue}}", &hue.to_string())
                .replace("{{server}}", &escape_html(server));
            Bytes::from(text)
        };
        let asset = |body: Bytes, content_type, cache_control| Asset {
            validators: Validators {
                etag: format!("{:016x}", digest(&body)),
                modified,
            },
            body,
            content_type,
            cache_control,
        };
        Demo {
            assets: vec![
                ("index.html", asset(page(INDEX), HTML, REVALIDATE)),
                ("about.html", asset(page(ABOUT), HTML, REVALIDATE)),
                (
                    "style.css",
                    asset(Bytes::from_static(STYLE), "text/css; charset=utf-8", None),
                ),
                (
                    "favicon.svg",
                    asset(Bytes::from_static(ICON), "image/svg+xml", None),
                ),
                (
                    "health",
                    asset(
                        Bytes::from_static(b"ok"),
                        "text/plain; charset=utf-8",
                        Some("no-store"),
                    ),
                ),
            ],
        }
    }

    /// The asset a request path names: `/` is the index; there are no
    /// subdirectories.
    pub fn get(&self, path: &ReqPath) -> Option<&Asset> {
        let name = match (path.segments.as_slice(), path.trailing_slash) {
            ([], _) => "index.html",
            ([one], false) => one.as_str(),
            _ => return None,
        };
        self.assets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, asset)| asset)
    }
}

/// A stable content hash for ETags and colours.
fn digest(data: &[u8]) -> u64 {
    crate::hash::hash64(crate::hash::SEED_CONTENT, data)
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
