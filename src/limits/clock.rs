//! Our injected `Clock` seen through governor's clock trait.

use std::sync::Arc;

use governor::nanos::Nanos;

use crate::clock::Clock;

/// Nanoseconds since the Unix epoch of the injected clock.
#[derive(Clone)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl GovernorClock {
    pub fn now_ms(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}
