//! Simulated time. The sandbox's clock is the wall clock scaled by a speed factor plus manual advances, so the
//! demo can skip waiting (speed 0, advanced by hand) while `serve` runs in real time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A shareable simulated clock.
#[derive(Debug, Clone)]
pub struct SimClock {
    inner: Arc<Mutex<ClockState>>,
}

#[derive(Debug)]
struct ClockState {
    base_wall: Instant,
    base_sim: Timestamp,
    speed: f64,
    offset: Duration,
}

impl SimClock {
    /// A clock that stands still until advanced.
    pub fn manual(start: Timestamp) -> Self {
        Self::with_speed(start, 0.0)
    }

    /// A clock that runs at `speed` times the wall clock (1.0 = real time).
    pub fn with_speed(start: Timestamp, speed: f64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ClockState {
                base_wall: Instant::now(),
                base_sim: start,
                speed,
                offset: Duration::ZERO,
            })),
        }
    }

    pub fn now(&self) -> Timestamp {
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let run = s.base_wall.elapsed().mul_f64(s.speed) + s.offset;
        s.base_sim.saturating_add(SignedDuration::try_from(run).unwrap_or(SignedDuration::MAX)).unwrap_or(s.base_sim)
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        s.offset += by;
    }
}

impl domain::ports::Clock for SimClock {
    fn now(&self) -> Timestamp {
        SimClock::now(self)
    }
}

/// Parses an age like `31d`, `8m`, `2h30m`, `40s` into seconds.
pub fn parse_age(s: &str) -> Option<i64> {
    domain::observation::parse_age(s).and_then(|n| i64::try_from(n).ok())
}

/// `t` minus an age string; `None` when the age is unreadable.
pub fn ago(t: Timestamp, age: &str) -> Option<Timestamp> {
    parse_age(age).and_then(|secs| t.checked_sub(SignedDuration::from_secs(secs)).ok())
}

pub fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let t0: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
        let c = SimClock::manual(t0);
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now(), "2026-11-21T10:01:30Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Some(30 * 86_400));
        assert_eq!(parse_age("2h30m"), Some(9000));
        assert_eq!(parse_age(""), None);
    }
}
