//! The plan as an SVG diagram: one column per tier (the internet, then
//! lb, web, app, db, monitor), a box per host, an arrow per allowed flow
//! labelled with its ports. Scraping by monitor hosts is drawn dashed.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Plan, INTERNET, TIERS};

const BOX_W: i32 = 190;
const GAP_X: i32 = 90;
const LINE: i32 = 15;
const TOP: i32 = 56;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Placed {
    x: i32,
    y: i32,
    h: i32,
    col: usize,
}

/// The diagram, a standalone SVG document.
pub fn svg(p: &Plan) -> String {
    // Which columns are used (the internet only when something is public).
    let public = p.edges.iter().any(|e| e.from == INTERNET);
    let columns = std::iter::once(INTERNET).chain(TIERS.iter().map(|r| r.name()));
    let used: Vec<&str> = columns
        .filter(|c| (*c == INTERNET && public) || p.hosts.iter().any(|h| h.tier == *c))
        .collect();
    let mut placed: BTreeMap<String, Placed> = BTreeMap::new();
    let mut bottom = TOP;
    for (i, col) in used.iter().enumerate() {
        let x = 20 + i as i32 * (BOX_W + GAP_X);
        let mut y = TOP;
        if *col == INTERNET {
            placed.insert(INTERNET.into(), Placed { x, y, h: 40, col: i });
            bottom = bottom.max(y + 40);
            continue;
        }
        for h in p.hosts.iter().filter(|h| h.tier == *col) {
            let height = 28 + LINE * (1 + h.addresses.len() as i32);
            placed.insert(
                h.name.clone(),
                Placed {
                    x,
                    y,
                    h: height,
                    col: i,
                },
            );
            y += height + 40;
        }
        bottom = bottom.max(y);
    }
    let width = (20 + used.len() as i32 * (BOX_W + GAP_X) - GAP_X + 20).max(BOX_W + 40);
    let height = bottom + 30;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, "<title>rampart plan: {} hosts</title>", p.hosts.len());
    let _ = writeln!(
        o,
        r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>"##
    );
    let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    for (i, col) in used.iter().enumerate() {
        let x = 20 + i as i32 * (BOX_W + GAP_X);
        let _ = writeln!(
            o,
            r##"<text x="{}" y="30" text-anchor="middle" font-weight="bold" fill="#374151">{}</text>"##,
            x + BOX_W / 2,
            esc(col)
        );
    }
    // Arrows first, under the boxes: one per (from, to, protocol), ports merged.
    let mut merged: BTreeMap<(String, String, String), Vec<u16>> = BTreeMap::new();
    for e in &p.edges {
        let proto = e.proto.name();
        let ports = merged
            .entry((e.from.clone(), e.to.clone(), proto.into()))
            .or_default();
        ports.extend(&e.ports);
        ports.sort_unstable();
        ports.dedup();
    }
    let monitors: Vec<&str> = p
        .hosts
        .iter()
        .filter(|h| h.roles.contains(&"monitor"))
        .map(|h| h.name.as_str())
        .collect();
    for ((from, to, proto), ports) in &merged {
        let (Some(a), Some(b)) = (placed.get(from), placed.get(to)) else {
            continue;
        };
        // Flows each way between two hosts are drawn apart: forward above
        // the middle of the boxes, backward below.
        let shift = match a.col.cmp(&b.col) {
            std::cmp::Ordering::Less => -7,
            std::cmp::Ordering::Greater => 9,
            std::cmp::Ordering::Equal => 0,
        };
        let (y1, y2) = (a.y + a.h / 2 + shift, b.y + b.h / 2 + shift);
        let (x1, x2) = match a.col.cmp(&b.col) {
            std::cmp::Ordering::Less => (a.x + BOX_W, b.x),
            std::cmp::Ordering::Greater => (a.x, b.x + BOX_W),
            std::cmp::Ordering::Equal => (a.x + BOX_W, b.x + BOX_W),
        };
        // Same column (replication, VRRP): bow out to the right.
        let (cx, cy) = if a.col == b.col {
            (a.x + BOX_W + 60, (y1 + y2) / 2)
        } else {
            ((x1 + x2) / 2, (y1 + y2) / 2)
        };
        let scrape = monitors.contains(&from.as_str());
        let colour = match (scrape, proto.as_str()) {
            (true, _) => "#9ca3af",
            (_, "vrrp") => "#a855f7",
            (_, "udp") => "#0ea5e9",
            _ => "#6b7280",
        };
        let dash = if scrape { r#" stroke-dasharray="4 3""# } else { "" };
        let label = if ports.is_empty() {
            proto.clone()
        } else {
            ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
        };
        let _ = writeln!(
            o,
            r#"<path class="flow" data-from="{}" data-to="{}" d="M{x1},{y1} Q{cx},{cy} {x2},{y2}" fill="none" stroke="{colour}" stroke-width="1.4"{dash} marker-end="url(#arrow)"><title>{} → {}: {} {}</title></path>"#,
            esc(from),
            esc(to),
            esc(from),
            esc(to),
            proto,
            esc(&label)
        );
        if !scrape {
            let _ = writeln!(
                o,
                r##"<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#374151">{}</text>"##,
                (x1 + 2 * cx + x2) / 4,
                (y1 + 2 * cy + y2) / 4 - 3,
                esc(&label)
            );
        }
    }
    if let Some(n) = placed.get(INTERNET) {
        let _ = writeln!(
            o,
            r##"<g class="host" data-name="internet"><rect x="{}" y="{}" width="{BOX_W}" height="{}" rx="20" fill="#f3f4f6" stroke="#9ca3af"/><text x="{}" y="{}" text-anchor="middle">anywhere</text></g>"##,
            n.x,
            n.y,
            n.h,
            n.x + BOX_W / 2,
            n.y + 24
        );
    }
    for h in &p.hosts {
        let Some(n) = placed.get(&h.name) else { continue };
        let fill = match h.tier {
            "lb" => "#dbeafe",
            "web" | "app" => "#dcfce7",
            "db" => "#fef3c7",
            _ => "#f3f4f6",
        };
        let _ = writeln!(o, r#"<g class="host" data-name="{}">"#, esc(&h.name));
        let _ = writeln!(
            o,
            r##"<rect x="{}" y="{}" width="{BOX_W}" height="{}" rx="6" fill="{fill}" stroke="#4b5563"/>"##,
            n.x, n.y, n.h
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            n.x + 10,
            n.y + 18,
            esc(&h.name)
        );
        let _ = writeln!(
            o,
            r##"<text x="{}" y="{}" fill="#374151">{}</text>"##,
            n.x + 10,
            n.y + 18 + LINE,
            esc(&h.roles.join(" + "))
        );
        for (i, a) in h.addresses.iter().enumerate() {
            let _ = writeln!(
                o,
                r##"<text x="{}" y="{}" fill="#6b7280" font-size="11">{a}</text>"##,
                n.x + 10,
                n.y + 18 + LINE * (2 + i as i32)
            );
        }
        let _ = writeln!(o, "</g>");
    }
    if !p.floating_addresses.is_empty() {
        let list: Vec<String> = p.floating_addresses.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            o,
            r##"<text x="20" y="{}" fill="#374151">floating: {}</text>"##,
            height - 10,
            esc(&list.join(", "))
        );
    }
    let _ = writeln!(o, "</svg>");
    o
}
