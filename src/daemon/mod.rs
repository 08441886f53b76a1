//! Running under systemd (`Type=notify`): the notify protocol, spoken
//! directly — one datagram per state change to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace):
//! `READY=1` once every listener is bound, `RELOADING=1` then `READY=1`
//! around a reload, `STOPPING=1` when shutdown begins, and `WATCHDOG=1`
//! every half `$WATCHDOG_USEC` while the runtime runs. Without
//! `$NOTIFY_SOCKET` every call does nothing.
//!
//! Exposes [`Notifier`].

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where systemd listens, if it does.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
    target: Option<Target>,
}

#[derive(Debug, Clone)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From the environment (`$NOTIFY_SOCKET`).
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|v| {
            let s = v.to_string_lossy().into_owned();
            match s.strip_prefix('@') {
                Some(name) if !name.is_empty() => Some(Target::Abstract(name.as_bytes().to_vec())),
                Some(_) => None,
                None if s.starts_with('/') => Some(Target::Path(PathBuf::from(s))),
                None => None,
            }
        });
        let socket = target.as_ref().and_then(|_| UnixDatagram::unbound().ok());
        Notifier { socket, target }
    }

    /// Sends one state line set (e.g. `READY=1`); errors are logged once
    /// per call and otherwise ignored (systemd may have gone away).
    fn notify(&self, state: &str) {
        let (Some(sock), Some(target)) = (&self.socket, &self.target) else {
            return;
        };
        let sent = match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p),
            Target::Abstract(name) => send_abstract(sock, name, state.as_bytes()),
        };
        if let Err(e) = sent {
            tracing::warn!("telling systemd {state:?}: {e}");
        }
    }

    pub fn ready(&self) {
        self.notify("READY=1\nSTATUS=serving");
    }

    pub fn reloading(&self) {
        let now = monotonic_usec();
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=draining connections");
    }

    /// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is
    /// set for this process.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// Pets the watchdog until aborted (a stuck runtime stops petting it).
    pub async fn watchdog(self: std::sync::Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.notify("WATCHDOG=1");
        }
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &[u8], data: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(data, &addr)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> std::io::Result<usize> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}

/// CLOCK_MONOTONIC in µs, as systemd wants it with `RELOADING=1`.
fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000
}
