//! Retry delays: exponential backoff with jitter, the one rule every retry loop in core uses (the
//! ledger writer's store retries and journal replays, webhook deliveries).

use std::time::Duration;

/// A backoff schedule: `initial × multiplier^retry`, capped at `max`, then with `jitter` drawn
/// uniformly from `[d/2, d]` so that many instances do not retry in step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub multiplier: u32,
    pub max: Duration,
    pub jitter: bool,
}

impl Backoff {
    /// The delay before retry number `retry` (0-based); `rng` is the caller's [`splitmix`] state.
    pub fn delay(&self, retry: u32, rng: &mut u64) -> Duration {
        let mut d = self.initial;
        for _ in 0..retry {
            d = d.saturating_mul(self.multiplier);
            if d >= self.max {
                break;
            }
        }
        let d = d.min(self.max);
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        let extra = if span == 0 { 0 } else { splitmix(rng) % (span + 1) };
        half + Duration::from_micros(extra)
    }
}

/// A tiny PRNG for jitter (de-synchronizing instances needs no cryptographic quality).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
