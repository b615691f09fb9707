//! Injected time: the system clock in production, a manual clock in tests.
//!
//! Two readings: wall time (UTC) for what users see and what is stored (creation, expiry, last
//! use, ban dates), and a monotonic reading for intervals (rate-limit windows, blocks, cache
//! and usage-state lifetimes), so a step of the wall clock (NTP, an operator) lengthens or
//! shortens none of them.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// Where monotonic readings start: one second, so that no reading is ever 0 (the limiters
/// take 0 to mean "never seen").
const MONOTONIC_START_NANOS: u64 = 1_000_000_000;

/// Source of "now". Everything that reads the time (expiry, usage timestamps, limiters)
/// goes through one of these, so tests move time instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time, UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Nanoseconds on a monotonic clock with an arbitrary origin: only differences mean
    /// anything. Never goes backwards, whatever the wall clock does.
    fn monotonic_nanos(&self) -> u64;

    /// `monotonic_nanos` in whole milliseconds.
    fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.monotonic_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// One instant on both clocks: `wall` for what is shown and stored, `monotonic_ms` for how old
/// something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub wall: DateTime<Utc>,
    pub monotonic_ms: i64,
}

impl Moment {
    /// `wall` (already read) with the clock's monotonic reading now.
    pub fn at(wall: DateTime<Utc>, clock: &dyn Clock) -> Self {
        Self {
            wall,
            monotonic_ms: clock.monotonic_ms(),
        }
    }
}

/// Wall-clock time, truncated to milliseconds (the precision we store and print).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_ms(Utc::now())
    }

    fn monotonic_nanos(&self) -> u64 {
        // The process's first reading is the origin; `Instant` is the OS monotonic clock.
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let elapsed = ORIGIN.get_or_init(Instant::now).elapsed().as_nanos();
        MONOTONIC_START_NANOS.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: `advance` moves both readings, `step_wall` only the
/// wall clock (as NTP or an operator would).
#[derive(Debug)]
pub struct ManualClock(Mutex<Readings>);

#[derive(Debug, Clone, Copy)]
struct Readings {
    wall: DateTime<Utc>,
    monotonic_nanos: u64,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(Readings {
            wall: truncate_ms(start),
            monotonic_nanos: MONOTONIC_START_NANOS,
        }))
    }

    fn readings(&self) -> std::sync::MutexGuard<'_, Readings> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }

    /// Time passes: both readings move by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut readings = self.readings();
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        readings.monotonic_nanos = readings.monotonic_nanos.saturating_add(nanos);
        let by = Duration::from_std(by).unwrap_or(Duration::MAX);
        readings.wall = readings
            .wall
            .checked_add_signed(by)
            .unwrap_or(readings.wall);
    }

    /// The wall clock is set forward or back by `by`; no time passes.
    pub fn step_wall(&self, by: Duration) {
        let mut readings = self.readings();
        readings.wall = truncate_ms(
            readings
                .wall
                .checked_add_signed(by)
                .unwrap_or(readings.wall),
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.readings().wall
    }

    fn monotonic_nanos(&self) -> u64 {
        self.readings().monotonic_nanos
    }
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    // Cheaper than `duration_trunc`: this runs a few times per verification.
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}
