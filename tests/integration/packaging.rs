//! The Debian package: `packaging/build-deb.sh` (cargo deb) run on the
//! debug build the tests use, then the package read back with dpkg-deb:
//! its files, its control fields and conffiles, the unit's hooks, and the
//! binary, unit and config it holds actually working.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_holds_the_binary_unit_config_completions_and_manual() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    run(Command::new("bash")
        .arg(root.join("packaging/build-deb.sh"))
        .args(["--profile", "dev", "--no-build"])
        .current_dir(root));
    let deb = std::fs::read_dir(root.join("target/debian"))
        .expect("target/debian")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .expect("a .deb");
    let files = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for want in [
        "./usr/bin/rampart",
        "./usr/lib/systemd/system/rampart.service",
        "./etc/rampart/rampart.toml",
        "./usr/share/bash-completion/completions/rampart",
        "./usr/share/zsh/vendor-completions/_rampart",
        "./usr/share/fish/vendor_completions.d/rampart.fish",
        "./usr/share/man/man1/rampart.1.gz",
        "./usr/share/doc/rampart/operations.md",
        "./usr/share/doc/rampart/examples/audit/weak.toml",
    ] {
        assert!(
            files.lines().any(|l| l.ends_with(want)),
            "{want} missing:\n{files}"
        );
    }
    let fields = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    assert!(
        fields.contains("Package: rampart") && fields.contains("Section: net"),
        "{fields}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).expect("conffiles");
    assert!(conffiles.contains("/etc/rampart/rampart.toml"), "{conffiles}");
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(
        postinst.contains("rampart.service") && !postinst.contains("#DEBHELPER#"),
        "{postinst}"
    );
    // What the package installs works: the binary runs, the config it
    // ships passes `rampart check`, the unit verifies, the manual is roff.
    let tree = dir.path().join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let bin = tree.join("usr/bin/rampart");
    let version = run(Command::new(&bin).arg("--version"));
    assert!(version.starts_with("rampart "), "{version}");
    let checked = run(Command::new(&bin)
        .args(["check", "-c"])
        .arg(tree.join("etc/rampart/rampart.toml")));
    assert!(checked.contains(": ok ("), "{checked}");
    // The shipped audit examples load where they are installed.
    let examples = tree.join("usr/share/doc/rampart/examples/audit");
    let clean = Command::new(&bin)
        .args(["audit", "-c", "clean.toml"])
        .current_dir(&examples)
        .output()
        .expect("audit");
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let weak = Command::new(&bin)
        .args(["audit", "-c", "weak.toml", "--host", "lb1", "--no-live"])
        .current_dir(&examples)
        .output()
        .expect("audit");
    assert_eq!(
        weak.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let man = run(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {}",
        tree.join("usr/share/man/man1/rampart.1.gz").display()
    )));
    assert!(man.contains(".TH rampart") && man.contains("audit"), "{man}");
    // Every page a page refers to is in the package.
    let man1 = tree.join("usr/share/man/man1");
    let pages: Vec<String> = std::fs::read_dir(&man1)
        .expect("man1")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pages.len() > 10, "one page per subcommand: {pages:?}");
    for page in &pages {
        let text = run(Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc {}", man1.join(page).display())));
        for word in text.split(|c: char| c.is_whitespace() || c == ',') {
            let Some(name) = word.strip_suffix("(1)") else {
                continue;
            };
            let name = name.replace("\\-", "-");
            assert!(
                pages.contains(&format!("{name}.1.gz")),
                "{page} refers to {name}(1), which the package lacks: {pages:?}"
            );
        }
    }
    // Every example shipped passes `rampart check` where it is installed.
    let shipped = tree.join("usr/share/doc/rampart/examples");
    let mut configs = vec![shipped.join("rampart.toml")];
    configs.extend(
        std::fs::read_dir(shipped.join("audit"))
            .expect("audit examples")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml")),
    );
    for config in &configs {
        let out = Command::new(&bin)
            .args(["check", "-c"])
            .arg(config)
            .current_dir(config.parent().expect("dir"))
            .output()
            .expect("check");
        assert!(
            out.status.success(),
            "{} fails check where it is installed: {}{}",
            config.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The binary is stripped: no debug sections, no symbol table.
    let sections = run(Command::new("readelf").arg("-S").arg(&bin));
    assert!(
        !sections.contains(".debug_info") && !sections.contains(".symtab"),
        "the packaged binary is not stripped"
    );
    let bash =
        std::fs::read_to_string(tree.join("usr/share/bash-completion/completions/rampart")).expect("bash");
    assert!(bash.contains("complete -F _rampart"), "bash completion");
}
