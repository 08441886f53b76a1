//! Running as a daemon: the systemd unit passes `systemd-analyze verify`,
//! and rampart speaks systemd's notify protocol (readiness once listeners
//! are bound, reloading, watchdog, stopping) to a socket as systemd would
//! hold it.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use crate::support::Process;

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rampart.service"))
            .expect("packaging/rampart.service");
    // The unit names the installed binary; verify it against this build.
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("rampart.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/rampart", env!("CARGO_BIN_EXE_rampart")),
    )
    .expect("copy");
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian package systemd) is installed");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 even for unknown keys: anything it says is a finding.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    for wanted in [
        "Type=notify",
        "ExecReload=",
        "WatchdogSec=",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=rampart",
    ] {
        assert!(unit.contains(wanted), "the unit lacks {wanted}");
    }
}

/// The next notification rampart sends, within 10 s.
fn next(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn rampart_tells_systemd_it_is_ready_reloading_alive_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind the notify socket");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        "[admin]\nenabled = false\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[origin]]\nname = \"o\"\naddress = \"127.0.0.1:0\"\ndemo = true\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\norigin = \"o\"\n[[route]]\npool = \"p\"\n",
    )
    .expect("config");
    let mut rp = Process::spawn_env(
        &["--log-format", "text", "run", "-c", cfg.to_str().expect("utf-8")],
        dir.path(),
        &[
            ("NOTIFY_SOCKET", notify.as_os_str()),
            ("WATCHDOG_USEC", "200000".as_ref()),
        ],
    );
    // Ready only once the listener is bound: it answers right away.
    let ready = next(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    // The watchdog is petted (every half WATCHDOG_USEC).
    let mut seen = Vec::new();
    while !seen.iter().any(|s: &String| s == "WATCHDOG=1") && seen.len() < 20 {
        seen.push(next(&sock));
    }
    assert!(seen.iter().any(|s| s == "WATCHDOG=1"), "{seen:?}");
    // SIGHUP: reloading, then ready again.
    rp.signal("HUP");
    let mut after_hup = Vec::new();
    while !after_hup.iter().any(|s: &String| s.starts_with("READY=1")) && after_hup.len() < 40 {
        after_hup.push(next(&sock));
    }
    let states: Vec<&String> = after_hup.iter().filter(|s| *s != "WATCHDOG=1").collect();
    assert!(
        states.len() >= 2 && states[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{after_hup:?}"
    );
    assert!(states[1].starts_with("READY=1"), "{after_hup:?}");
    // SIGTERM: stopping.
    rp.signal("TERM");
    let mut after_term = Vec::new();
    while !after_term.iter().any(|s: &String| s.starts_with("STOPPING=1")) && after_term.len() < 40 {
        after_term.push(next(&sock));
    }
    assert!(
        after_term.iter().any(|s| s.starts_with("STOPPING=1")),
        "{after_term:?}"
    );
    let status = rp.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}
