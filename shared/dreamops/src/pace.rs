//! Intake first. PagerDuty drops a delivery that gets no 2xx within 5 s, and one `serve` process both takes the
//! webhooks and runs the stages, on the same cores. So while webhooks are arriving the stage worker (one task,
//! one message at a time) takes at most [`WORKER_SHARE`] of the time: after each stage run it pauses for the rest
//! of its slice. It never stops altogether (the backlog moves during a storm), and once the webhooks have been
//! quiet for [`QUIET`] it runs flat out and drains what the storm left. Alerts arriving one by one never make
//! the worker wait: a single request in flight is not a storm.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The worker's share of the time while webhooks arrive.
pub const WORKER_SHARE: f64 = 0.1;
/// Webhooks quiet this long: the storm is over.
pub const QUIET: Duration = Duration::from_millis(100);
/// The longest pause after one stage run.
pub const MAX_PAUSE: Duration = Duration::from_millis(500);
/// Requests in flight at which intake counts as busy even before any has finished.
const CONCURRENT: usize = 2;

/// How busy the webhook intake is: requests in flight and when one last finished.
#[derive(Debug)]
pub struct IntakeLoad {
    started: Instant,
    in_flight: AtomicUsize,
    /// Microseconds since `started` at which the last two requests finished (0: none yet).
    last_done_us: AtomicU64,
    before_last_us: AtomicU64,
}

impl Default for IntakeLoad {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_us: AtomicU64::new(0),
            before_last_us: AtomicU64::new(0),
        }
    }
}

/// One webhook request in flight; counted until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a IntakeLoad);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let load = self.0;
        load.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = load.started.elapsed().as_micros().max(1) as u64;
        let before = load.last_done_us.swap(now, Ordering::Relaxed);
        load.before_last_us.store(before, Ordering::Relaxed);
    }
}

impl IntakeLoad {
    /// Counts a webhook request until the returned guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Webhooks are arriving faster than one at a time: several in flight, or two finished within [`QUIET`].
    pub fn busy(&self) -> bool {
        if self.in_flight.load(Ordering::Relaxed) >= CONCURRENT {
            return true;
        }
        let before_last = self.before_last_us.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_micros() as u64;
        before_last > 0 && now.saturating_sub(before_last) < QUIET.as_micros() as u64
    }

    /// How long the worker pauses after a stage run that took `spent`, given whether intake is busy.
    pub fn pause_after(spent: Duration, busy: bool) -> Duration {
        if !busy {
            return Duration::ZERO;
        }
        spent.mul_f64((1.0 - WORKER_SHARE) / WORKER_SHARE).clamp(Duration::from_millis(1), MAX_PAUSE)
    }

    /// Called by the worker after each stage run: pauses while intake is busy (see the module).
    pub async fn pace(&self, spent: Duration) {
        let pause = Self::pause_after(spent, self.busy());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_takes_a_tenth_of_the_time_while_webhooks_arrive_and_all_of_it_otherwise() {
        let ms = Duration::from_millis;
        assert_eq!(IntakeLoad::pause_after(ms(4), true), ms(36));
        assert_eq!(IntakeLoad::pause_after(Duration::from_micros(20), true), ms(1), "at least a tick");
        assert_eq!(IntakeLoad::pause_after(Duration::from_secs(5), true), MAX_PAUSE, "bounded");
        assert_eq!(IntakeLoad::pause_after(ms(4), false), Duration::ZERO);
    }

    #[test]
    fn one_request_at_a_time_is_not_a_storm_but_several_are() {
        let load = IntakeLoad::default();
        assert!(!load.busy(), "nothing arrived");
        drop(load.enter());
        assert!(!load.busy(), "one alert on its own");
        let (a, b) = (load.enter(), load.enter());
        assert!(load.busy(), "two in flight");
        drop((a, b));
        assert!(load.busy(), "two finished within the quiet window");
    }

    #[test]
    fn a_storm_ends_after_the_quiet_window() {
        let load = IntakeLoad::default();
        for _ in 0..3 {
            drop(load.enter());
        }
        assert!(load.busy());
        std::thread::sleep(QUIET + Duration::from_millis(20));
        assert!(!load.busy(), "quiet since");
        drop(load.enter());
        assert!(!load.busy(), "a single alert after the storm");
    }
}
