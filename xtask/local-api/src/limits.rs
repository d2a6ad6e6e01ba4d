//! The usage plans: each API key's throttle and daily quota, enforced as API Gateway does.
//!
//! Every client of the environment (`[[api.clients]]`) has its own key and usage plan, so one
//! client that uses up its burst or its quota gets 429 while the others keep being served.
//! API Gateway throttles with a token bucket per key (the plan's `burst` tokens, refilled at
//! `rate_per_second`) and counts requests per key per UTC day against the plan's quota; this
//! module does the same, so the 429s (`THROTTLED`, `QUOTA_EXCEEDED`) are tested here rather
//! than discovered in prod.
//!
//! A request the throttle refuses is not counted against the quota; one it lets through is,
//! whatever the function answers (a 401 spends quota like a 200, as on AWS).

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One client's key and the limits of its usage plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientKey {
    pub name: String,
    /// The `x-api-key` value.
    pub value: String,
    /// The key's id (`requestContext.identity.apiKeyId`).
    pub key_id: String,
    /// `(rate_per_second, burst)` of its usage plan.
    pub throttle: (f64, u32),
    /// Requests per UTC day; `None`: no quota.
    pub quota_per_day: Option<u64>,
}

/// Why a request with a valid key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key's token bucket is empty: 429 `THROTTLED`.
    Throttled,
    /// The key's requests today reached its quota: 429 `QUOTA_EXCEEDED` until midnight UTC.
    QuotaExceeded,
}

/// What one key has used.
#[derive(Debug)]
struct Usage {
    tokens: f64,
    refilled: Instant,
    /// Days since the epoch (UTC) that `used` counts.
    day: u64,
    used: u64,
}

/// Every client's key with its usage so far.
#[derive(Debug)]
pub struct Limits {
    clients: Vec<(ClientKey, Mutex<Usage>)>,
}

impl Limits {
    pub fn new(clients: Vec<ClientKey>) -> Limits {
        let now = Instant::now();
        Limits {
            clients: clients
                .into_iter()
                .map(|client| {
                    let usage = Usage {
                        tokens: f64::from(client.throttle.1),
                        refilled: now,
                        day: utc_day(SystemTime::now()),
                        used: 0,
                    };
                    (client, Mutex::new(usage))
                })
                .collect(),
        }
    }

    /// The client whose key `sent` is, if any. Every key is compared in full, so the time taken
    /// does not depend on how much of a key a guess got right.
    pub fn client(&self, sent: &str) -> Option<&ClientKey> {
        let mut found = None;
        for (client, _) in &self.clients {
            if constant_time_eq(client.value.as_bytes(), sent.as_bytes()) {
                found = Some(client);
            }
        }
        found
    }

    /// Takes one request of `client` at `now` (monotonic, for the throttle) on UTC day `day`
    /// (for the quota): `Ok` if its plan lets it through, which spends a token and a unit of
    /// quota.
    pub fn admit(&self, client: &ClientKey, now: Instant, day: u64) -> Result<(), Refusal> {
        let Some((_, usage)) = self.clients.iter().find(|(c, _)| c.name == client.name) else {
            return Ok(());
        };
        let mut usage = usage
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (rate, burst) = client.throttle;
        let elapsed = now.saturating_duration_since(usage.refilled).as_secs_f64();
        usage.tokens = (usage.tokens + elapsed * rate).min(f64::from(burst));
        usage.refilled = now.max(usage.refilled);
        if usage.tokens < 1.0 {
            return Err(Refusal::Throttled);
        }
        if usage.day != day {
            usage.day = day;
            usage.used = 0;
        }
        if client
            .quota_per_day
            .is_some_and(|quota| usage.used >= quota)
        {
            return Err(Refusal::QuotaExceeded);
        }
        usage.tokens -= 1.0;
        usage.used += 1;
        Ok(())
    }
}

/// Days since the Unix epoch, UTC: the period API Gateway's `DAY` quotas reset on.
pub fn utc_day(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn client(name: &str, throttle: (f64, u32), quota: Option<u64>) -> ClientKey {
        ClientKey {
            name: name.into(),
            value: format!("{name}-key"),
            key_id: format!("{name}-id"),
            throttle,
            quota_per_day: quota,
        }
    }

    #[test]
    fn the_burst_goes_through_at_once_then_the_rate_refills_it() {
        let app = client("app", (2.0, 3), None);
        let limits = Limits::new(vec![app.clone()]);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limits.admit(&app, start, 1), Ok(()));
        }
        assert_eq!(limits.admit(&app, start, 1), Err(Refusal::Throttled));
        // Half a second at 2 per second: one token.
        let later = start + Duration::from_millis(500);
        assert_eq!(limits.admit(&app, later, 1), Ok(()));
        assert_eq!(limits.admit(&app, later, 1), Err(Refusal::Throttled));
        // Never more than the burst, however long the key was idle.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limits.admit(&app, much_later, 1), Ok(()));
        }
        assert_eq!(limits.admit(&app, much_later, 1), Err(Refusal::Throttled));
    }

    #[test]
    fn the_quota_counts_per_utc_day_and_only_requests_let_through() {
        let sync = client("sync", (1000.0, 1000), Some(2));
        let limits = Limits::new(vec![sync.clone()]);
        let now = Instant::now();
        assert_eq!(limits.admit(&sync, now, 10), Ok(()));
        assert_eq!(limits.admit(&sync, now, 10), Ok(()));
        assert_eq!(limits.admit(&sync, now, 10), Err(Refusal::QuotaExceeded));
        assert_eq!(limits.admit(&sync, now, 10), Err(Refusal::QuotaExceeded));
        assert_eq!(limits.admit(&sync, now, 11), Ok(()), "a new day");
    }

    #[test]
    fn clients_are_limited_apart_and_found_by_their_whole_key() {
        let app = client("app", (0.001, 1), None);
        let sync = client("sync", (1000.0, 1000), Some(1));
        let limits = Limits::new(vec![app.clone(), sync.clone()]);
        let now = Instant::now();
        assert_eq!(limits.client("app-key"), Some(&app));
        assert_eq!(limits.client("sync-key"), Some(&sync));
        assert_eq!(limits.client("app-ke"), None);
        assert_eq!(limits.client(""), None);
        assert_eq!(limits.admit(&app, now, 1), Ok(()));
        assert_eq!(limits.admit(&app, now, 1), Err(Refusal::Throttled));
        assert_eq!(limits.admit(&sync, now, 1), Ok(()), "not app's bucket");
        assert_eq!(limits.admit(&sync, now, 1), Err(Refusal::QuotaExceeded));
    }
}
