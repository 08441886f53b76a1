//! Rate limits shared by the fleet: GCRA (the generic cell rate algorithm,
//! as `governor` runs it locally) in one Lua script, so that reading and
//! moving a bucket's "theoretical arrival time" is one atomic step in Redis
//! and one round trip for rampart. Redis's own clock decides, so instances
//! whose clocks differ still share one notion of now.

use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use std::time::Duration;

use super::Cluster;

/// KEYS[1]: the bucket; ARGV[1]: µs between two requests at the rate;
/// ARGV[2]: µs of credit a full burst holds beyond one request. Returns 0
/// (admitted, counted) or the µs to wait before one would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local step = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
if tat - now > tau then
  return math.ceil(tat - now - tau)
end
local new = tat + step
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1000)
return 0
";

fn script() -> &'static redis::Script {
    static S: OnceLock<redis::Script> = OnceLock::new();
    S.get_or_init(|| redis::Script::new(GCRA))
}

impl Cluster {
    /// Counts one request in the shared bucket `key` (its Redis key):
    /// `Some(Ok)` admitted, `Some(Err(wait))` limited, `None` when Redis
    /// could not decide within the timeout (the caller decides locally).
    pub async fn rate(
        &self,
        key: &str,
        per_second: NonZeroU32,
        burst: NonZeroU32,
    ) -> Option<Result<(), Duration>> {
        let conn = self.conn.load_full().filter(|_| self.is_up());
        let Some(conn) = conn else {
            self.fell_back();
            return None;
        };
        let mut conn = (*conn).clone();
        let step = 1_000_000u64 / u64::from(per_second.get()).max(1);
        let tau = step * u64::from(burst.get() - 1);
        let mut call = script().key(key);
        call.arg(step).arg(tau);
        let answer = tokio::time::timeout(self.settings.timeout, call.invoke_async::<u64>(&mut conn)).await;
        match answer {
            Ok(Ok(0)) => {
                self.decisions.fetch_add(1, Relaxed);
                Some(Ok(()))
            }
            Ok(Ok(wait_us)) => {
                self.decisions.fetch_add(1, Relaxed);
                Some(Err(Duration::from_micros(wait_us)))
            }
            Ok(Err(e)) => {
                self.set_up(false, &e.to_string());
                self.fell_back();
                None
            }
            Err(_) => {
                self.set_up(false, &format!("no answer within {:?}", self.settings.timeout));
                self.fell_back();
                None
            }
        }
    }
}
