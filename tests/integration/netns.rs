//! A network namespace of a test's own, with only its loopback up, and a
//! tokio runtime whose threads all live in it: rampart, its backends and
//! its clients run there in-process, and nftables rules made there (to
//! drop a server's packets, say) touch nothing outside it.

use std::future::Future;
use std::process::Command;

use crate::support::require_root;

/// A named namespace (`ip netns add`), deleted when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace with its loopback up.
    pub fn new(tag: &str) -> Netns {
        require_root();
        let name = format!("rampart-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let ns = Netns { name };
        ns.ip(&["netns", "add", &ns.name]);
        ns.ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let ok = Command::new("ip").args(args).status().expect("ip runs");
        assert!(ok.success(), "ip {args:?}");
    }

    /// Runs `command ARGS` inside namespace `name`; panics unless it
    /// succeeds.
    pub fn exec(name: &str, command: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", name, command])
            .args(args)
            .output()
            .expect("ip netns exec runs");
        assert!(
            out.status.success(),
            "{command} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Loads an nftables ruleset (text) inside namespace `name`.
    pub fn nft(name: &str, ruleset: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.nft");
        std::fs::write(&path, ruleset).expect("ruleset file");
        Netns::exec(name, "nft", &["-f", path.to_str().expect("utf-8 path")]);
    }

    /// Runs `scenario` on a multi-thread runtime (two workers) whose
    /// threads are all inside the namespace, and returns what it returns.
    pub fn run<F, Fut, T>(&self, scenario: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            // Threads started from here (the runtime's) are in it too.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(scenario())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
