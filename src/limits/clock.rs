//! Our injected `Clock` seen through governor's clock trait.

use std::sync::Arc;

use governor::nanos::Nanos;

use crate::clock::Clock;

/// Nanoseconds since the Unix epoch of the injected clock.
#[derive(Clone)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl GovernorClock {
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.0.now_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.now_nanos())
    }
}
