//! Failed-login throttling, per account and per client address. Password guessing is
//! the one attack a login form invites; counting failures in a sliding window and
//! refusing further attempts (429 + `Retry-After`) until the oldest one ages out
//! bounds it without locking an account out for good.
//!
//! The counters live in memory, per node: a restart forgets them, and with several
//! nodes an attacker gets the limit once per node. That keeps a login free of store
//! writes; the journal still records every failure.

use crate::error::{ApiError, ErrorKind};

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures are allowed within `window` before attempts are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_account: usize,
    /// Higher than per account: many people may share one address (NAT, proxies).
    pub per_address: usize,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Above this many tracked keys, keys without a recent failure are forgotten.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginThrottle {
    limits: LoginLimits,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> LoginThrottle {
        LoginThrottle {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses with 429 while the account or the address is over its limit.
    pub fn check(&self, account: &str, client: Option<IpAddr>) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut failures = self.lock();
        let mut wait = None::<Duration>;
        for (key, limit) in self.keys(account, client) {
            if let Some(times) = failures.get_mut(&key) {
                forget_old(times, now, self.limits.window);
                if times.len() >= limit {
                    // Free again when enough failures have aged out of the window.
                    let oldest = times[times.len() - limit];
                    let free_at = oldest + self.limits.window;
                    let this = free_at.saturating_duration_since(now);
                    wait = Some(wait.map_or(this, |w| w.max(this)));
                }
            }
        }
        match wait {
            None => Ok(()),
            Some(wait) => Err(too_many(wait)),
        }
    }

    /// Counts one failed attempt against the account and the address.
    pub fn failed(&self, account: &str, client: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() > PRUNE_ABOVE {
            let window = self.limits.window;
            failures.retain(|_, times| {
                forget_old(times, now, window);
                !times.is_empty()
            });
        }
        for (key, limit) in self.keys(account, client) {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Only the newest `limit` failures matter for the decision.
            while times.len() > limit {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.lock().remove(&Key::Account(account.to_lowercase()));
    }

    fn keys(&self, account: &str, client: Option<IpAddr>) -> Vec<(Key, usize)> {
        let mut keys = vec![(
            Key::Account(account.to_lowercase()),
            self.limits.per_account.max(1),
        )];
        if let Some(ip) = client {
            keys.push((Key::Address(ip), self.limits.per_address.max(1)));
        }
        keys
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        // The map holds only counters: after a panic elsewhere it is still usable.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

fn too_many(wait: Duration) -> ApiError {
    // Round up: a client that waits exactly Retry-After seconds must get through.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        ErrorKind::Throttled,
        format!(
            "too many failed logins; retry in {} seconds",
            seconds.max(1)
        ),
    )
    .retry_after(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_account: usize, per_address: usize) -> LoginThrottle {
        LoginThrottle::new(LoginLimits {
            per_account,
            per_address,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_account_is_refused_after_its_limit_and_success_clears_it() {
        let t = throttle(2, 100);
        t.check("alice", None).expect("first attempt");
        t.failed("alice", None);
        t.check("Alice", None).expect("one failure is fine");
        t.failed("ALICE", None);
        let err = t.check("alice", None).expect_err("over the limit");
        assert_eq!(err.kind, ErrorKind::Throttled);
        assert!(matches!(err.retry_after, Some(s) if (1..=60).contains(&s)));
        t.check("bob", None).expect("other accounts are unaffected");
        t.succeeded("alice");
        t.check("alice", None).expect("cleared");
    }

    #[test]
    fn an_address_is_refused_across_accounts() {
        let t = throttle(100, 3);
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        for name in ["a", "b", "c"] {
            t.check(name, Some(ip)).expect("under the limit");
            t.failed(name, Some(ip));
        }
        let err = t.check("d", Some(ip)).expect_err("address over its limit");
        assert_eq!(err.kind, ErrorKind::Throttled);
        t.check("d", Some("192.0.2.8".parse().expect("ip")))
            .expect("another address is fine");
    }
}
