//! Our injected `Clock` seen through governor's clock trait.

use std::sync::Arc;

use governor::nanos::Nanos;

use crate::clock::Clock;

/// The injected clock's monotonic reading: windows and blocks are intervals, untouched by a
/// step of the wall clock.
#[derive(Clone)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl GovernorClock {
    pub fn now_ms(&self) -> i64 {
        self.0.monotonic_ms()
    }
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.monotonic_nanos())
    }
}
