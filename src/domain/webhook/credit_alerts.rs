//! When a pool of credits crosses a threshold (SPEC B12): `credits.low` below a share of its
//! refill amount (or a set number), `credits.exhausted` at zero. Decided where the balance
//! changes, under the pool's row lock, so each crossing is seen once; a refill or a top-up
//! above the threshold re-arms it.

use super::EventType;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreditAlerts {
    /// `credits.low` below this share of the refill amount...
    pub ratio: f64,
    /// ...or, when above zero, below this many credits.
    pub threshold: u64,
}

impl Default for CreditAlerts {
    fn default() -> Self {
        Self {
            ratio: 0.1,
            threshold: 0,
        }
    }
}

impl CreditAlerts {
    /// The `credits.low` threshold of a pool; `None` when it has none (no refill, no number).
    pub fn low_threshold(&self, refill_amount: Option<u64>) -> Option<u64> {
        if self.threshold > 0 {
            return Some(self.threshold);
        }
        let amount = refill_amount?;
        let threshold = (amount as f64 * self.ratio).ceil() as u64;
        (threshold > 0).then_some(threshold)
    }

    /// The events a balance going from `before` to `after` crosses into.
    pub fn crossed(&self, before: u64, after: u64, refill_amount: Option<u64>) -> Vec<EventType> {
        let mut crossed = Vec::new();
        if let Some(low) = self.low_threshold(refill_amount) {
            if before >= low && after < low {
                crossed.push(EventType::CreditsLow);
            }
        }
        if before > 0 && after == 0 {
            crossed.push(EventType::CreditsExhausted);
        }
        crossed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_fire_once_on_the_way_down() {
        let alerts = CreditAlerts::default();
        assert_eq!(
            alerts.crossed(100, 99, Some(1000)),
            vec![EventType::CreditsLow]
        );
        assert!(alerts.crossed(99, 50, Some(1000)).is_empty());
        assert_eq!(
            alerts.crossed(120, 0, Some(1000)),
            vec![EventType::CreditsLow, EventType::CreditsExhausted]
        );
        assert!(alerts.crossed(0, 0, Some(1000)).is_empty());
        assert!(alerts.crossed(500, 5, None).is_empty(), "no refill: no low");
        let set = CreditAlerts {
            ratio: 0.1,
            threshold: 10,
        };
        assert_eq!(set.crossed(10, 9, None), vec![EventType::CreditsLow]);
    }
}
