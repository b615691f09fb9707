//! When Redis counts as down (SPEC B6): a circuit breaker over the calls this instance makes.
//!
//! One slow or failed call fails only that call. The breaker opens — and the request path
//! stops asking Redis — only when the calls of the recent window show an outage (at least
//! `min_calls` in `window`, of which at least `failure_ratio` failed) or at once when a
//! connection is refused or reset. While open, one call in each `probe_interval` is let
//! through as a probe; its success (or the background check's) closes the breaker with a
//! fresh window.
//!
//! Pure: time comes from the injected clock, and what changed is returned for the caller to
//! log and count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// The window is kept as this many buckets, each `window / BUCKETS` wide.
const BUCKETS: usize = 10;

/// The thresholds (`redis.breaker_*` and `redis.check_interval`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    pub window: Duration,
    pub min_calls: u32,
    /// In (0, 1].
    pub failure_ratio: f64,
    pub probe_interval: Duration,
}

/// Whether a call may go to Redis now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: call.
    Call,
    /// Open, and this call is the one probe: its outcome closes the breaker or keeps it open.
    Probe,
    /// Open: go on without Redis.
    Refused,
}

/// The breaker as `/metrics` shows it (`iam_redis_breaker_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed = 0,
    /// Open, with a probe in flight.
    HalfOpen = 1,
    Open = 2,
}

/// A change the caller reports once (a log line, a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket of time this is (`monotonic ms / bucket width`).
    slot: i64,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
struct Inner {
    buckets: [Bucket; BUCKETS],
    state: State,
    /// While open: when the next probe may go (monotonic ms).
    next_probe_ms: i64,
}

pub struct Breaker {
    settings: BreakerSettings,
    clock: Arc<dyn Clock>,
    /// `state != Closed`, readable without the lock (the hot path of a closed breaker).
    open: AtomicBool,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// Open until a call or the background check proves Redis answers; the first probe may
    /// go at once.
    pub fn new(settings: BreakerSettings, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            clock,
            open: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                buckets: [Bucket::default(); BUCKETS],
                state: State::Open,
                next_probe_ms: i64::MIN,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bucket_ms(&self) -> i64 {
        let ms = self.settings.window.as_millis() / BUCKETS as u128;
        i64::try_from(ms).unwrap_or(i64::MAX).max(1)
    }

    fn probe_ms(&self) -> i64 {
        i64::try_from(self.settings.probe_interval.as_millis()).unwrap_or(i64::MAX)
    }

    pub fn state(&self) -> State {
        self.inner().state
    }

    pub fn is_closed(&self) -> bool {
        !self.open.load(Ordering::Acquire)
    }

    pub fn admit(&self) -> Admission {
        if self.is_closed() {
            return Admission::Call;
        }
        let now = self.clock.monotonic_ms();
        let mut inner = self.inner();
        match inner.state {
            State::Closed => Admission::Call,
            State::HalfOpen => Admission::Refused,
            State::Open if now < inner.next_probe_ms => Admission::Refused,
            State::Open => {
                inner.state = State::HalfOpen;
                Admission::Probe
            }
        }
    }

    /// A call answered in time.
    pub fn succeeded(&self, admission: Admission) -> Option<Transition> {
        let now = self.clock.monotonic_ms();
        let mut inner = self.inner();
        match (admission, inner.state) {
            (Admission::Call, State::Closed) => {
                self.count(&mut inner, now, false);
                None
            }
            // Only the probe closes it: a late answer to a call made before it opened says
            // little about Redis now.
            (Admission::Probe, State::HalfOpen) => self.close(&mut inner),
            _ => None,
        }
    }

    /// A call found no answer in time (or Redis answered with an error, see
    /// [`Breaker::refused`] for a connection that is gone).
    pub fn failed(&self, admission: Admission) -> Option<Transition> {
        let now = self.clock.monotonic_ms();
        let mut inner = self.inner();
        match (admission, inner.state) {
            (Admission::Probe, State::HalfOpen) => {
                inner.state = State::Open;
                inner.next_probe_ms = now.saturating_add(self.probe_ms());
                None
            }
            (Admission::Call, State::Closed) => {
                let (calls, failures) = self.count(&mut inner, now, true);
                let outage = calls >= self.settings.min_calls
                    && f64::from(failures) >= self.settings.failure_ratio * f64::from(calls);
                outage.then(|| self.trip(&mut inner, now))
            }
            _ => None,
        }
    }

    /// A connection was refused or reset, or the subscription was lost: open at once.
    pub fn refused(&self) -> Option<Transition> {
        let now = self.clock.monotonic_ms();
        let mut inner = self.inner();
        match inner.state {
            State::Closed => Some(self.trip(&mut inner, now)),
            _ => {
                inner.state = State::Open;
                inner.next_probe_ms = now.saturating_add(self.probe_ms());
                None
            }
        }
    }

    /// The background check reached Redis: close, whatever the window held.
    pub fn recovered(&self) -> Option<Transition> {
        self.close(&mut self.inner())
    }

    fn trip(&self, inner: &mut Inner, now: i64) -> Transition {
        inner.state = State::Open;
        inner.next_probe_ms = now.saturating_add(self.probe_ms());
        self.open.store(true, Ordering::Release);
        Transition::Opened
    }

    fn close(&self, inner: &mut Inner) -> Option<Transition> {
        if inner.state == State::Closed {
            return None;
        }
        inner.state = State::Closed;
        inner.buckets = [Bucket::default(); BUCKETS];
        self.open.store(false, Ordering::Release);
        Some(Transition::Closed)
    }

    /// Adds one call to the window; answers the window's `(calls, failures)`.
    fn count(&self, inner: &mut Inner, now: i64, failed: bool) -> (u32, u32) {
        let slot = now.div_euclid(self.bucket_ms());
        let bucket = &mut inner.buckets[slot.rem_euclid(BUCKETS as i64) as usize];
        if bucket.slot != slot {
            *bucket = Bucket {
                slot,
                ..Bucket::default()
            };
        }
        bucket.calls = bucket.calls.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
        let oldest = slot - BUCKETS as i64;
        inner
            .buckets
            .iter()
            .filter(|b| b.slot > oldest && b.calls > 0)
            .fold((0u32, 0u32), |(c, f), b| {
                (c.saturating_add(b.calls), f.saturating_add(b.failures))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const SETTINGS: BreakerSettings = BreakerSettings {
        window: Duration::from_secs(10),
        min_calls: 20,
        failure_ratio: 0.5,
        probe_interval: Duration::from_secs(1),
    };

    fn closed() -> (Breaker, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_now());
        let breaker = Breaker::new(SETTINGS, clock.clone());
        assert_eq!(breaker.recovered(), Some(Transition::Closed));
        (breaker, clock)
    }

    fn calls(breaker: &Breaker, ok: usize, failed: usize) -> Vec<Transition> {
        let mut seen = Vec::new();
        for _ in 0..ok {
            seen.extend(breaker.succeeded(breaker.admit()));
        }
        for _ in 0..failed {
            seen.extend(breaker.failed(breaker.admit()));
        }
        seen
    }

    #[test]
    fn starts_open_with_a_probe_allowed_at_once() {
        let clock = Arc::new(ManualClock::starting_now());
        let breaker = Breaker::new(SETTINGS, clock);
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Refused, "one probe at a time");
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(
            breaker.succeeded(Admission::Probe),
            Some(Transition::Closed)
        );
        assert_eq!(breaker.admit(), Admission::Call);
    }

    #[test]
    fn one_failure_or_many_below_the_ratio_fail_only_themselves() {
        let (breaker, _) = closed();
        assert_eq!(calls(&breaker, 0, 1), [], "one timeout");
        assert_eq!(breaker.admit(), Admission::Call);
        assert_eq!(calls(&breaker, 11, 8), [], "9 of 20 failed");
        assert_eq!(breaker.state(), State::Closed);
    }

    #[test]
    fn half_of_twenty_calls_failing_opens_it() {
        let (breaker, _) = closed();
        assert_eq!(calls(&breaker, 10, 9), [], "19 calls: too few to judge");
        assert_eq!(calls(&breaker, 0, 1), [Transition::Opened], "10 of 20");
        assert_eq!(breaker.admit(), Admission::Refused);
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let (breaker, clock) = closed();
        assert_eq!(calls(&breaker, 0, 15), []);
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            calls(&breaker, 10, 5),
            [],
            "the 15 old failures left the window"
        );
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            calls(&breaker, 0, 5),
            [Transition::Opened],
            "10 of 20 in 10 s"
        );
    }

    #[test]
    fn a_refused_connection_opens_it_at_once() {
        let (breaker, _) = closed();
        assert_eq!(breaker.refused(), Some(Transition::Opened));
        assert_eq!(breaker.refused(), None, "one transition");
        assert_eq!(breaker.admit(), Admission::Refused);
    }

    #[test]
    fn while_open_one_probe_per_interval_goes_and_its_success_closes_it() {
        let (breaker, clock) = closed();
        breaker.refused();
        assert_eq!(breaker.admit(), Admission::Refused);
        clock.advance(Duration::from_millis(999));
        assert_eq!(breaker.admit(), Admission::Refused);
        clock.advance(Duration::from_millis(1));
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.failed(Admission::Probe), None, "still open");
        assert_eq!(breaker.admit(), Admission::Refused, "the next probe in 1 s");
        clock.advance(Duration::from_secs(1));
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(
            breaker.succeeded(Admission::Probe),
            Some(Transition::Closed)
        );
        assert_eq!(calls(&breaker, 0, 19), [], "a fresh window");
    }

    #[test]
    fn a_late_answer_to_a_call_made_before_it_opened_does_not_close_it() {
        let (breaker, _) = closed();
        let before = breaker.admit();
        breaker.refused();
        assert_eq!(breaker.succeeded(before), None);
        assert_eq!(breaker.failed(before), None);
        assert_eq!(breaker.state(), State::Open);
    }

    #[test]
    fn the_background_check_closes_it() {
        let (breaker, _) = closed();
        breaker.refused();
        assert_eq!(breaker.recovered(), Some(Transition::Closed));
        assert_eq!(breaker.recovered(), None);
        assert_eq!(breaker.admit(), Admission::Call);
    }
}
