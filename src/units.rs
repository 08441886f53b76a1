//! Units: the config's human durations (`"5s"`, `"250ms"`, `"2m"`) and
//! sizes (`"64KiB"`, `"1MB"`, `"512"`), and the process's millisecond clock.
//!
//! Exposes [`parse_duration`], [`parse_size`], [`clock_ms`] and [`clock_ms_at`].

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// Milliseconds on a process-wide monotonic clock (never 0). It reads
/// tokio's clock, so tests on paused time move it with `advance`.
pub fn clock_ms() -> u64 {
    clock_ms_at(Instant::now())
}

/// [`clock_ms`] at `t` (a reading of tokio's clock taken earlier).
pub fn clock_ms_at(t: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(t.saturating_duration_since(epoch).as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit: write it like \"5s\", \"250ms\" or \"2m\""))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write it like \"5s\" or \"250ms\""))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{s}`: use ms, s, m, h or d"
            ))
        }
    };
    Ok(d)
}

/// Replaces `path` with `data` so that a crash leaves the old file or the
/// new one, never half of one: a temporary file beside it, synced, renamed
/// over it, then the folder synced (folders are created as needed).
pub fn write_durably(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A duration as config files write it: `2s`, `250ms`, `5m`.
pub fn words_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        _ if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        _ if ms % 1000 == 0 => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Parses a size in bytes: a whole number with an optional unit
/// (`B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size: write it like \"64KiB\" or \"1MiB\""))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{s}`: use B, KB, KiB, MB, MiB, GB or GiB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        for d in ["250ms", "2s", "5m", "1h", "1d", "1500ms"] {
            assert_eq!(words_duration(parse_duration(d).expect("parses")), d);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("12 furlongs").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
