//! The module graph: which top-level modules of `src/` use which, read
//! from the source's `crate::` paths (and `super::` paths that climb to the
//! crate root, and exported macros). Fails on a dependency cycle among
//! top-level modules and on any edge the table below does not allow,
//! naming the file and line of each offending path.
//!
//! `cargo test --test integration architecture -- --nocapture` prints the
//! graph (the one drawn in `docs/ARCHITECTURE.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may use. Leaves first; every module may use
/// only modules listed before it, so the table itself has no cycle. A new
/// module, or a new edge, is a decision made here.
const ALLOWED: &[(&str, &[&str])] = &[
    // Leaves: value types and small helpers with no rampart dependency.
    ("units", &[]),
    ("body", &[]),
    ("stats", &[]),
    // A stable hash, the same in every process and build.
    ("hash", &[]),
    // systemd's notify protocol.
    ("daemon", &[]),
    // Connections to backends that outlive a request (streams, idle sets).
    ("conns", &[]),
    // Header fields as the request path reads and rewrites them.
    ("fields", &[]),
    // The precise and the coarse clock of the request path.
    ("clock", &[]),
    // The web application firewall: ModSecurity-language rules and their engine.
    ("waf", &[]),
    // The validated model (what the code runs) and its loader.
    ("config", &["units", "waf"]),
    ("client", &["config"]),
    ("top", &["client"]),
    ("accesslog", &["config"]),
    ("listener", &["stats"]),
    // Runtime pieces built from the model.
    (
        "balancer",
        &["config", "conns", "fields", "hash", "stats", "units"],
    ),
    ("firewall", &["config", "fields", "hash", "stats", "units"]),
    ("tls", &["config", "stats", "units"]),
    ("origin", &["body", "config", "hash", "listener", "units"]),
    // The fleet's configuration revisions in etcd.
    ("fleet", &["config", "units"]),
    // State shared with the other instances of a fleet (Redis).
    ("cluster", &["client", "config", "firewall", "stats"]),
    // The running state: one snapshot per configuration, swapped on reload.
    (
        "runtime",
        &[
            "accesslog",
            "balancer",
            "cluster",
            "config",
            "firewall",
            "stats",
            "waf",
            "units",
        ],
    ),
    // Readers of the running state.
    ("metrics", &["balancer", "config", "runtime", "stats", "units"]),
    ("health", &["balancer", "config", "runtime", "units"]),
    (
        "alerts",
        &["balancer", "client", "config", "metrics", "runtime", "units"],
    ),
    // Reviews of the described infrastructure (reads the model and the host firewalls).
    ("audit", &["config", "firewall", "stats"]),
    // The described infrastructure, host by host (text, JSON, SVG).
    ("plan", &["config", "firewall"]),
    // TCP mode: connections relayed to a pool's servers.
    ("tcp", &["balancer", "config", "firewall", "listener", "runtime"]),
    // The request path.
    (
        "proxy",
        &[
            "accesslog",
            "balancer",
            "body",
            "clock",
            "config",
            "conns",
            "fields",
            "firewall",
            "listener",
            "runtime",
            "stats",
            "units",
            "waf",
        ],
    ),
    // HTTP/3: QUIC connections whose requests take the proxy's path.
    (
        "http3",
        &[
            "body", "config", "fields", "firewall", "listener", "proxy", "runtime", "stats",
        ],
    ),
    (
        "admin",
        &[
            "balancer", "body", "config", "firewall", "listener", "metrics", "runtime", "stats", "units",
        ],
    ),
    // Wiring: the application and the command line.
    (
        "app",
        &[
            "accesslog",
            "admin",
            "alerts",
            "balancer",
            "body",
            "cluster",
            "config",
            "firewall",
            "fleet",
            "health",
            "http3",
            "listener",
            "metrics",
            "origin",
            "plan",
            "proxy",
            "runtime",
            "stats",
            "tcp",
            "tls",
            "units",
        ],
    ),
    (
        "cli",
        &[
            "app", "audit", "client", "clock", "config", "daemon", "firewall", "fleet", "http3", "plan",
            "top", "tls", "units",
        ],
    ),
];

/// Edges the issue names as never allowed, checked on their own so that a
/// future edit of [`ALLOWED`] cannot quietly admit them.
const FORBIDDEN_TARGETS: &[&str] = &["proxy", "admin", "app"];
const MUST_NOT_USE_THEM: &[&str] = &["balancer", "firewall", "metrics", "config", "tls", "origin"];

/// One use of another module: where it is.
#[derive(Debug, Clone)]
struct Use {
    file: String,
    line: usize,
}

type Graph = BTreeMap<(String, String), Vec<Use>>;

#[test]
fn architecture_modules_depend_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = top_level_modules(&root);
    let graph = read_graph(&root, &modules);
    print_graph(&graph);

    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for m in &modules {
        if !allowed.contains_key(m.as_str()) {
            problems.push(format!(
                "module `{m}` is not in the architecture table (tests/integration/architecture.rs)"
            ));
        }
    }
    for ((from, to), uses) in &graph {
        let ok = allowed
            .get(from.as_str())
            .is_some_and(|a| a.contains(&to.as_str()));
        let forbidden =
            MUST_NOT_USE_THEM.contains(&from.as_str()) && FORBIDDEN_TARGETS.contains(&to.as_str());
        if !ok || forbidden {
            for u in uses {
                problems.push(format!(
                    "src/{}:{}: `{from}` uses `{to}`, which it may not",
                    u.file, u.line
                ));
            }
        }
    }
    for cycle in cycles(&graph) {
        let mut msg = format!("dependency cycle among {}:", cycle.join(", "));
        for ((from, to), uses) in &graph {
            if cycle.contains(from) && cycle.contains(to) {
                let u = &uses[0];
                msg.push_str(&format!("\n    {from} -> {to} (src/{}:{})", u.file, u.line));
            }
        }
        problems.push(msg);
    }
    assert!(problems.is_empty(), "architecture:\n{}", problems.join("\n"));
}

/// `docs/ARCHITECTURE.md` draws the graph as it is: one line per module in
/// its `text` block of the "Modules" section, `module ─▶ what it uses`.
#[test]
fn architecture_doc_draws_the_graph_as_it_is() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("src");
    let modules = top_level_modules(&root);
    let graph = read_graph(&root, &modules);
    let doc = std::fs::read_to_string(manifest.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let section = doc
        .split("## Modules and which way they depend")
        .nth(1)
        .and_then(|s| s.split("```text").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("a text block in the Modules section");
    let mut drawn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section.lines().filter(|l| l.contains('▶')) {
        let (from, to) = line.split_once('▶').expect("arrow");
        let from = from.trim_end_matches(['─', ' ']).trim().to_string();
        let uses = to
            .split('(')
            .next()
            .unwrap_or("")
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && m != "nothing")
            .collect();
        drawn.insert(from, uses);
    }
    let mut actual: BTreeMap<String, BTreeSet<String>> =
        modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for (from, to) in graph.keys() {
        actual.entry(from.clone()).or_default().insert(to.clone());
    }
    let mut wrong = Vec::new();
    for (m, uses) in &actual {
        match drawn.get(m) {
            None => wrong.push(format!("{m} is not drawn (it uses: {})", join(uses))),
            Some(d) if d != uses => wrong.push(format!("{m}: drawn {} but uses {}", join(d), join(uses))),
            Some(_) => {}
        }
    }
    for m in drawn.keys().filter(|m| !actual.contains_key(*m)) {
        wrong.push(format!("{m} is drawn but is not a module"));
    }
    assert!(
        wrong.is_empty(),
        "docs/ARCHITECTURE.md is out of date:\n{}",
        wrong.join("\n")
    );
}

/// Features the tests' dependencies add to crates that `src/` uses too, and
/// the paths each one opens. A test build has them and `cargo install` (no
/// dev-dependencies) does not: code in `src/` that used one would pass every
/// test and fail to install, so `src/` may not name them.
const TEST_ONLY_FEATURES: &[(&str, &str, &[&str])] = &[
    ("tokio", "process", &["tokio::process"]),
    (
        "tokio",
        "test-util",
        &["time::pause", "time::advance", "time::resume"],
    ),
    ("rustix", "thread", &["rustix::thread"]),
    ("rustix", "fs", &["rustix::fs"]),
];

#[test]
fn architecture_src_needs_no_feature_only_the_tests_enable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("Cargo.toml parses");
    let features = |table: &str, krate: &str| -> BTreeSet<String> {
        manifest[table]
            .get(krate)
            .and_then(|d| d.get("features"))
            .and_then(|f| f.as_array())
            .map(|f| f.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    for krate in ["tokio", "rustix"] {
        let dev = features("dev-dependencies", krate);
        assert!(!dev.is_empty(), "{krate} is a dev-dependency with features");
        let normal = features("dependencies", krate);
        let added: BTreeSet<_> = dev.difference(&normal).collect();
        let listed: BTreeSet<_> = TEST_ONLY_FEATURES
            .iter()
            .filter(|(k, _, _)| *k == krate)
            .map(|(_, f, _)| f.to_string())
            .collect();
        for f in added {
            if !listed.contains(f) {
                problems.push(format!(
                    "[dev-dependencies] {krate} adds feature {f:?}: list it and what it opens in TEST_ONLY_FEATURES"
                ));
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for file in files {
        // Unit test modules (`tests.rs`, `tests/`) build only with the tests.
        let rel = file.strip_prefix(root).unwrap_or(&file);
        if rel.iter().any(|c| c == "tests" || c == "tests.rs") {
            continue;
        }
        let text = strip(&std::fs::read_to_string(&file).expect("source"));
        // Unit tests (at the end of a file, after `#[cfg(test)]`) run with
        // the test features.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (krate, feature, paths) in TEST_ONLY_FEATURES {
            for path in *paths {
                if let Some(at) = code.find(path) {
                    let line = code[..at].lines().count();
                    problems.push(format!(
                        "{}:{line}: {path} needs {krate}'s feature {feature:?}, which only the tests enable",
                        rel.display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn join(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "nothing".to_string()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The checker itself finds what it must: grouped imports, `super::` to
/// the root, exported macros, and nothing in comments or strings.
#[test]
fn architecture_reader_sees_every_kind_of_path() {
    let modules: BTreeSet<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let macros = BTreeMap::from([("mac".to_string(), "f".to_string())]);
    let src = r##"
// crate::x in a comment
/* crate::y in a block /* nested */ crate::z */
use crate::{b::One, c::{Two, Three}};
let s = "crate::e"; let r = r#"crate::e"#; let c = '"'; let l: &'static str = "";
fn f() { super::d::go(); crate::mac!(x); }
"##;
    let mut g = Graph::new();
    scan("a/mod.rs", "a", 1, &strip(src), &modules, &macros, &mut g);
    let edges: Vec<_> = g.keys().map(|(f, t)| format!("{f}->{t}")).collect();
    assert_eq!(edges, ["a->b", "a->c", "a->d", "a->f"]);
    assert_eq!(g[&("a".into(), "d".into())][0].line, 6);
    let cyc = cycles(&Graph::from([
        (("a".into(), "b".into()), vec![]),
        (("b".into(), "c".into()), vec![]),
        (("c".into(), "a".into()), vec![]),
        (("c".into(), "d".into()), vec![]),
    ]));
    assert_eq!(cyc, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}

fn top_level_modules(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(root).expect("src/ is readable").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                out.insert(stem.to_string());
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("readable directory").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn read_graph(root: &Path, modules: &BTreeSet<String>) -> Graph {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(root)
                .expect("under src")
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(p).expect("readable source"))
        })
        .collect();
    // Exported macros live at the crate root but belong to their module.
    let mut macros = BTreeMap::new();
    for (rel, text) in &texts {
        let clean = strip(text);
        let mut rest = clean.as_str();
        while let Some(i) = rest.find("macro_rules!") {
            rest = &rest[i + "macro_rules!".len()..];
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            macros.insert(name, top_of(rel).0);
        }
    }
    let mut g = Graph::new();
    for (rel, text) in &texts {
        let (top, depth) = top_of(rel);
        if top == "lib" || top == "main" {
            continue;
        }
        scan(rel, &top, depth, &strip(text), modules, &macros, &mut g);
    }
    g
}

/// The top-level module a file belongs to, and how deep its own module sits
/// (`proxy/mod.rs` 1, `proxy/pipeline.rs` 2).
fn top_of(rel: &str) -> (String, usize) {
    let parts: Vec<&str> = rel.split('/').collect();
    let top = parts[0].trim_end_matches(".rs").to_string();
    let last = parts[parts.len() - 1];
    let depth = if last == "mod.rs" {
        parts.len() - 1
    } else {
        parts.len()
    };
    (top, depth)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_at(s: &[u8], mut i: usize) -> (String, usize) {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    while i < s.len() && is_ident(s[i]) {
        i += 1;
    }
    (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
}

/// Records every use of another top-level module in one (stripped) file.
fn scan(
    rel: &str,
    top: &str,
    depth: usize,
    text: &str,
    modules: &BTreeSet<String>,
    macros: &BTreeMap<String, String>,
    g: &mut Graph,
) {
    let s = text.as_bytes();
    let line_of = |i: usize| 1 + s[..i].iter().filter(|&&c| c == b'\n').count();
    let mut add = |name: &str, at: usize| {
        let target = if modules.contains(name) {
            Some(name.to_string())
        } else {
            macros.get(name).cloned()
        };
        if let Some(t) = target {
            if t != top {
                g.entry((top.to_string(), t)).or_default().push(Use {
                    file: rel.to_string(),
                    line: line_of(at),
                });
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let boundary = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b'$' || s[i - 1] == b':');
        if boundary && s[i..].starts_with(b"crate::") {
            let j = i + "crate::".len();
            if s.get(j) == Some(&b'{') {
                // `crate::{a::X, b::{Y, Z}}`: the first name of each item.
                let (mut k, mut level, mut item_start) = (j, 0usize, true);
                while k < s.len() {
                    match s[k] {
                        b'{' => {
                            level += 1;
                            k += 1;
                        }
                        b'}' => {
                            level -= 1;
                            k += 1;
                            if level == 0 {
                                break;
                            }
                        }
                        b',' => {
                            item_start = level == 1;
                            k += 1;
                        }
                        c if level == 1 && item_start && is_ident(c) => {
                            let (name, end) = ident_at(s, k);
                            add(&name, k);
                            item_start = false;
                            k = end;
                        }
                        _ => k += 1,
                    }
                }
                i = k;
            } else {
                let (name, end) = ident_at(s, j);
                add(&name, i);
                i = end;
            }
            continue;
        }
        if boundary && s[i..].starts_with(b"super::") {
            let (mut j, mut ups) = (i, 0);
            while s[j..].starts_with(b"super::") {
                j += "super::".len();
                ups += 1;
            }
            if ups >= depth {
                let (name, end) = ident_at(s, j);
                add(&name, i);
                i = end;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
}

/// The source with comments, strings and character literals blanked out
/// (newlines kept, so line numbers hold).
fn strip(src: &str) -> String {
    let s = src.as_bytes();
    let mut out = s.to_vec();
    let blank = |out: &mut Vec<u8>, a: usize, b: usize| {
        for c in &mut out[a..b.min(s.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < s.len() {
        let prev_ident = i > 0 && is_ident(s[i - 1]);
        if s[i..].starts_with(b"//") {
            let end = s[i..].iter().position(|&c| c == b'\n').map_or(s.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if s[i..].starts_with(b"/*") {
            let (mut j, mut level) = (i, 0);
            while j < s.len() {
                if s[j..].starts_with(b"/*") {
                    level += 1;
                    j += 2;
                } else if s[j..].starts_with(b"*/") {
                    level -= 1;
                    j += 2;
                    if level == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if !prev_ident && (s[i..].starts_with(b"r\"") || s[i..].starts_with(b"r#")) {
            let hashes = s[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if s.get(i + 1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            let from = i + 2 + hashes;
            let end = s[from..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(s.len(), |p| from + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if s[i] == b'"' {
            let mut j = i + 1;
            while j < s.len() && s[j] != b'"' {
                j += if s[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if s[i] == b'\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a).
            if s.get(i + 1) == Some(&b'\\') {
                let end = s[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(s.len(), |p| i + 3 + p);
                blank(&mut out, i, end);
                i = end;
            } else if let Some(ch) = src[i + 1..].chars().next() {
                let after = i + 1 + ch.len_utf8();
                if s.get(after) == Some(&b'\'') {
                    blank(&mut out, i, after + 1);
                    i = after + 1;
                } else {
                    i += 1;
                }
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut nodes: BTreeSet<&str> = BTreeSet::new();
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in g.keys() {
        nodes.insert(from);
        nodes.insert(to);
        adj.entry(from.as_str()).or_default().push(to.as_str());
    }
    struct St<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, adj: &BTreeMap<&'a str, Vec<&'a str>>, st: &mut St<'a>) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on.insert(v);
        for &w in adj.get(v).map(Vec::as_slice).unwrap_or(&[]) {
            if !st.index.contains_key(w) {
                visit(w, adj, st);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = St {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !st.index.contains_key(v) {
            visit(v, &adj, &mut st);
        }
    }
    st.out
}

/// The graph, one line per module: what it uses (and how many paths).
fn print_graph(g: &Graph) {
    let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((from, to), uses) in g {
        by.entry(from).or_default().push(format!("{to}({})", uses.len()));
    }
    println!("module graph (module -> what it uses, with the number of paths):");
    for (from, tos) in by {
        println!("  {from:<10} -> {}", tos.join(" "));
    }
}
