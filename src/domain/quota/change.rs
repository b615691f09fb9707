//! An operator's change of credits (SPEC B5): set, increment or decrement what remains, and
//! set or remove the refill.

use chrono::{DateTime, Utc};

use super::{Credits, CreditsError, Refill, MAX_CREDITS};

/// How `remaining` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// Exactly this many from now on: credits taken out under the old value are void.
    Set(u64),
    Increment(u64),
    /// Never below zero.
    Decrement(u64),
}

/// A change of one subject's credits; `refill: Some(None)` removes the refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreditChange {
    pub remaining: Option<Remaining>,
    pub refill: Option<Option<Refill>>,
}

/// Credits after a change, and what a decrement could not take from the stored count (to be
/// taken from credits instances hold out of the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub credits: Credits,
    pub shortfall: u64,
}

impl CreditChange {
    /// Each amount at most 2^53.
    pub fn new(
        remaining: Option<Remaining>,
        refill: Option<Option<Refill>>,
    ) -> Result<Self, CreditsError> {
        let amount = match remaining {
            Some(Remaining::Set(n) | Remaining::Increment(n) | Remaining::Decrement(n)) => n,
            None => 0,
        };
        if amount > MAX_CREDITS {
            return Err(CreditsError::Remaining);
        }
        Ok(Self { remaining, refill })
    }

    /// Applied at `now` to `before` (none: credits start at zero, made now). A refill due is
    /// applied first; a new refill starts counting from its last boundary, so setting one
    /// refills nothing at once.
    pub fn apply(self, before: Option<Credits>, now: DateTime<Utc>) -> Changed {
        let mut credits = match before {
            Some(credits) => credits.at(now),
            None => Credits {
                remaining: 0,
                refill: None,
                refilled_at: now,
                generation: 0,
                alerted: 0,
            },
        };
        let mut shortfall = 0;
        match self.remaining {
            Some(Remaining::Set(n)) => {
                credits.remaining = n;
                credits.generation += 1;
            }
            Some(Remaining::Increment(n)) => {
                credits.remaining = credits.remaining.saturating_add(n).min(MAX_CREDITS);
            }
            Some(Remaining::Decrement(n)) => {
                let taken = n.min(credits.remaining);
                credits.remaining -= taken;
                shortfall = n - taken;
            }
            None => {}
        }
        if let Some(refill) = self.refill {
            credits.refill = refill;
            if let Some(refill) = refill {
                credits.refilled_at = credits.refilled_at.max(refill.last_boundary(now));
            }
        }
        Changed { credits, shortfall }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::quota::Interval;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn set_starts_a_new_generation_and_decrement_reports_what_it_could_not_take() {
        let now = at("2026-12-06T10:00:00Z");
        let start = Credits::new(10, None, now).unwrap();
        let set = CreditChange::new(Some(Remaining::Set(50)), None).unwrap();
        let changed = set.apply(Some(start), now);
        assert_eq!(
            (changed.credits.remaining, changed.credits.generation),
            (50, 1)
        );
        let down = CreditChange::new(Some(Remaining::Decrement(14)), None).unwrap();
        let changed = down.apply(Some(start), now);
        assert_eq!((changed.credits.remaining, changed.shortfall), (0, 4));
        let up = CreditChange::new(Some(Remaining::Increment(5)), None).unwrap();
        assert_eq!(up.apply(None, now).credits.remaining, 5);
        assert!(CreditChange::new(Some(Remaining::Set(MAX_CREDITS + 1)), None).is_err());
    }

    #[test]
    fn a_new_refill_refills_nothing_at_once() {
        let made = at("2026-12-01T10:00:00Z");
        let now = at("2026-12-06T10:00:00Z");
        let start = Credits::new(3, None, made).unwrap();
        let daily = Refill::new(Interval::Daily, 100, None).unwrap();
        let change = CreditChange::new(None, Some(Some(daily))).unwrap();
        let changed = change.apply(Some(start), now).credits;
        assert_eq!(changed.remaining, 3);
        assert_eq!(changed.at(now).remaining, 3);
        assert_eq!(changed.at(at("2026-12-07T00:00:00Z")).remaining, 100);
    }
}
