//! When a pool of credits crosses a threshold (SPEC B12): `credits.low` below a share of its
//! refill amount (or a set number), `credits.exhausted` at zero. Decided where the stored
//! balance changes, under the pool's row lock, with what was sent kept in the row (`alerted`):
//! each crossing is sent once, and only a balance back at or above the threshold (a refill, a
//! top-up, an admin change, a lease leaving enough) re-arms it. Credits given back by a
//! stopping instance do not: they were the customer's already.

use super::EventType;
use crate::domain::quota::Credits;

/// `alerted` bits.
const LOW: u8 = 1;
const EXHAUSTED: u8 = 2;

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

    /// Each alert of a pool: its bit and whether the balance is past it.
    fn states(&self, credits: &Credits) -> [(u8, EventType, bool); 2] {
        let refill = credits.refill.map(|r| r.amount());
        let low = self
            .low_threshold(refill)
            .is_some_and(|t| credits.remaining < t);
        [
            (LOW, EventType::CreditsLow, low),
            (
                EXHAUSTED,
                EventType::CreditsExhausted,
                credits.remaining == 0,
            ),
        ]
    }

    /// A pool's balance changed (a lease, an admin change): the events it crossed into, now
    /// marked sent; alerts it is back above are re-armed.
    pub fn check(&self, credits: &mut Credits) -> Vec<EventType> {
        let mut crossed = Vec::new();
        for (bit, kind, past) in self.states(credits) {
            match (past, credits.alerted & bit != 0) {
                (true, false) => {
                    credits.alerted |= bit;
                    crossed.push(kind);
                }
                (false, true) => credits.alerted &= !bit,
                _ => {}
            }
        }
        crossed
    }

    /// A new pool: marked as it stands, nothing sent (a pool created below its threshold did
    /// not cross it).
    pub fn observe(&self, credits: &mut Credits) {
        credits.alerted = 0;
        for (bit, _, past) in self.states(credits) {
            if past {
                credits.alerted |= bit;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quota::{Interval, Refill};

    fn pool(remaining: u64) -> Credits {
        let refill = Refill::new(Interval::parse("daily").unwrap(), 1000, None).unwrap();
        Credits::new(remaining, Some(refill), chrono::Utc::now()).unwrap()
    }

    #[test]
    fn each_crossing_fires_once_and_only_a_balance_back_above_rearms_it() {
        let alerts = CreditAlerts::default();
        let mut credits = pool(100);
        assert!(alerts.check(&mut credits).is_empty());
        credits.remaining = 99;
        assert_eq!(alerts.check(&mut credits), vec![EventType::CreditsLow]);
        credits.remaining = 50;
        assert!(
            alerts.check(&mut credits).is_empty(),
            "still low: sent already"
        );
        credits.remaining = 0;
        assert_eq!(
            alerts.check(&mut credits),
            vec![EventType::CreditsExhausted]
        );
        assert!(alerts.check(&mut credits).is_empty());
        credits.remaining = 100;
        assert!(
            alerts.check(&mut credits).is_empty(),
            "a top-up re-arms both"
        );
        credits.remaining = 0;
        assert_eq!(
            alerts.check(&mut credits),
            vec![EventType::CreditsLow, EventType::CreditsExhausted]
        );
    }

    #[test]
    fn a_pool_created_low_sends_nothing_until_it_crosses_again() {
        let alerts = CreditAlerts::default();
        let mut credits = pool(5);
        alerts.observe(&mut credits);
        credits.remaining = 4;
        assert!(alerts.check(&mut credits).is_empty());
        credits.remaining = 0;
        assert_eq!(
            alerts.check(&mut credits),
            vec![EventType::CreditsExhausted]
        );
        let mut unrefilled = Credits::new(500, None, chrono::Utc::now()).unwrap();
        unrefilled.remaining = 5;
        assert!(
            alerts.check(&mut unrefilled).is_empty(),
            "no refill: no low"
        );
        let set = CreditAlerts {
            ratio: 0.1,
            threshold: 10,
        };
        unrefilled.remaining = 9;
        assert_eq!(set.check(&mut unrefilled), vec![EventType::CreditsLow]);
    }
}
