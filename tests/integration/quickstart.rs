//! `docs/quickstart.md` as a reader follows it: every `sh` block run in
//! order by one shell (background jobs and all), every `toml` block whose
//! first line is `# FILE` written to FILE first, and each `text` block
//! right after an `sh` block checked against that block's output (each of
//! its lines must appear in some output line). It runs in a network
//! namespace of its own, so the document can use the fixed ports a reader
//! would, and nothing it starts outlives it.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::support::require_root;

/// A fenced block: its language and its lines.
struct Block {
    lang: String,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in doc.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_string(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn every_command_of_the_quick_start_works() {
    require_root();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/quickstart.md")).expect("quickstart.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_rampart"))
        .parent()
        .expect("bin dir");
    let mut script = format!(
        "set -euo pipefail\nexport PATH={}:$PATH\n\
         trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT\n",
        bin_dir.display()
    );
    let all = blocks(&doc);
    // (output file, the lines it must show)
    let mut checks: Vec<(String, String, Vec<String>)> = Vec::new();
    for (i, b) in all.iter().enumerate() {
        match b.lang.as_str() {
            "toml" => {
                let file = b
                    .text
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("# "))
                    .expect("a toml block names its file on its first line");
                std::fs::write(dir.path().join(file.trim()), &b.text).expect("write");
            }
            "sh" => {
                let out = format!("block-{i}.out");
                let _ = write!(script, "{{\n{}}} > {out} 2>&1\n", b.text);
                if let Some(next) = all.get(i + 1).filter(|n| n.lang == "text") {
                    let want = next.text.lines().map(str::to_string).collect();
                    checks.push((out, b.text.clone(), want));
                }
            }
            _ => {}
        }
    }
    assert!(checks.len() >= 6, "the quick start shows what its commands print");
    let script_path = dir.path().join("quickstart.sh");
    std::fs::write(&script_path, &script).expect("script");
    let run = Command::new("timeout")
        .args(["180", "unshare", "--net", "bash", "-c"])
        .arg(format!("ip link set lo up && bash {}", script_path.display()))
        .current_dir(dir.path())
        .output()
        .expect("unshare");
    let log = std::fs::read_to_string(dir.path().join("rampart.log")).unwrap_or_default();
    let outputs: String = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".out"))
        .map(|e| {
            format!(
                "--- {}\n{}",
                e.file_name().to_string_lossy(),
                std::fs::read_to_string(e.path()).unwrap_or_default()
            )
        })
        .collect();
    assert!(
        run.status.success(),
        "the quick start failed ({}): {}{}\noutputs:\n{outputs}\nrampart.log:\n{log}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    for (out, commands, want) in checks {
        let got = std::fs::read_to_string(dir.path().join(&out)).unwrap_or_default();
        for w in want {
            assert!(
                got.lines().any(|l| l.contains(w.as_str())),
                "after\n{commands}the quick start shows `{w}`, but the output was:\n{got}"
            );
        }
    }
}
