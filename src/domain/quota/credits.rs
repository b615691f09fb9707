//! Usage credits (SPEC B5): a count of uses left on a token or an owner, optionally set back to
//! `amount` at each UTC boundary of a day or a month.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// `remaining` and `amount` stay exact in a JSON number (a double): at most 2^53.
pub const MAX_CREDITS: u64 = 1 << 53;
/// The most credits one lease takes out of the store: what a crash of the holder can lose.
pub const MAX_LEASE: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    #[error("remaining must be an integer from 0 to {MAX_CREDITS}")]
    Remaining,
    #[error("refill.amount must be an integer from 1 to {MAX_CREDITS}")]
    Amount,
    #[error("refill.refillDay must be an integer from 1 to 31")]
    Day,
    #[error("refill.refillDay applies to monthly refills only")]
    DayOfDaily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Daily,
    Monthly,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Monthly => "monthly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "daily" => Some(Self::Daily),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }
}

/// Remaining is set to `amount` at every boundary: each day at 00:00 UTC, or each month on
/// `day` (1 by default; the month's last day when it is shorter) at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    interval: Interval,
    amount: u64,
    day: Option<u8>,
}

impl Refill {
    pub fn new(interval: Interval, amount: u64, day: Option<u64>) -> Result<Self, CreditsError> {
        if !(1..=MAX_CREDITS).contains(&amount) {
            return Err(CreditsError::Amount);
        }
        let day = match (interval, day) {
            (_, None) => None,
            (Interval::Daily, Some(_)) => return Err(CreditsError::DayOfDaily),
            (Interval::Monthly, Some(day @ 1..=31)) => Some(day as u8),
            (Interval::Monthly, Some(_)) => return Err(CreditsError::Day),
        };
        Ok(Self {
            interval,
            amount,
            day,
        })
    }

    pub fn interval(self) -> Interval {
        self.interval
    }

    pub fn amount(self) -> u64 {
        self.amount
    }

    /// The day of the month a monthly refill falls on, as given (`None`: the 1st).
    pub fn day(self) -> Option<u8> {
        self.day
    }

    /// The last boundary at or before `now`.
    pub fn last_boundary(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        match self.interval {
            Interval::Daily => midnight(today),
            Interval::Monthly => {
                let this_month = self.boundary_in(today.year(), today.month());
                if this_month <= now {
                    this_month
                } else {
                    let (year, month) = match today.month() {
                        1 => (today.year() - 1, 12),
                        month => (today.year(), month - 1),
                    };
                    self.boundary_in(year, month)
                }
            }
        }
    }

    /// The first boundary after `now` (when the credits are next set back).
    pub fn next_boundary(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let today = now.date_naive();
        match self.interval {
            Interval::Daily => midnight(today.succ_opt().unwrap_or(today)),
            Interval::Monthly => {
                let this_month = self.boundary_in(today.year(), today.month());
                if this_month > now {
                    this_month
                } else {
                    let (year, month) = match today.month() {
                        12 => (today.year() + 1, 1),
                        month => (today.year(), month + 1),
                    };
                    self.boundary_in(year, month)
                }
            }
        }
    }

    /// This refill's boundary in one month: its day, or the month's last day.
    fn boundary_in(self, year: i32, month: u32) -> DateTime<Utc> {
        let wanted = u32::from(self.day.unwrap_or(1));
        let day = (wanted..=wanted)
            .chain((28..wanted).rev())
            .find_map(|day| NaiveDate::from_ymd_opt(year, month, day))
            .unwrap_or(NaiveDate::MIN);
        midnight(day)
    }
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
}

/// A count of uses left, and how it is set back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credits {
    pub remaining: u64,
    pub refill: Option<Refill>,
    /// When `remaining` was last set back by a refill (or set at all).
    pub refilled_at: DateTime<Utc>,
    /// Which regime of the credits this is: a refill and an admin `set` each start a new one,
    /// and credits taken out of the store under an older one (leases) are void.
    pub generation: u64,
    /// Which threshold events were sent and not re-armed since (SPEC B12;
    /// `webhook::CreditAlerts`).
    pub alerted: u8,
}

impl Credits {
    pub fn new(
        remaining: u64,
        refill: Option<Refill>,
        now: DateTime<Utc>,
    ) -> Result<Self, CreditsError> {
        if remaining > MAX_CREDITS {
            return Err(CreditsError::Remaining);
        }
        Ok(Self {
            remaining,
            refill,
            refilled_at: now,
            generation: 0,
            alerted: 0,
        })
    }

    /// As they stand at `now`: set back to `amount` when a boundary has passed since the last
    /// refill.
    pub fn at(self, now: DateTime<Utc>) -> Self {
        match self.refill {
            Some(refill) if refill.last_boundary(now) > self.refilled_at => Self {
                remaining: refill.amount,
                refilled_at: refill.last_boundary(now),
                generation: self.generation + 1,
                ..self
            },
            _ => self,
        }
    }

    /// Takes credits out of `remaining` to be spent elsewhere (an instance, or Redis): at
    /// least `at_least` when there are that many, else what there is; more when plenty remain
    /// (an eighth, at most [`MAX_LEASE`]), so that most verifications need no store call while
    /// the last credits go out one by one. Answers how many it took.
    pub fn lease(&mut self, at_least: u64) -> u64 {
        let size = (self.remaining / 8).clamp(1, MAX_LEASE).max(at_least);
        let taken = size.min(self.remaining);
        self.remaining -= taken;
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn monthly(day: Option<u64>) -> Refill {
        Refill::new(Interval::Monthly, 100, day).unwrap()
    }

    #[test]
    fn refills_are_bounded_and_a_day_belongs_to_monthly_refills() {
        assert_eq!(
            Refill::new(Interval::Daily, 0, None),
            Err(CreditsError::Amount)
        );
        let too_many = Refill::new(Interval::Daily, MAX_CREDITS + 1, None);
        assert_eq!(too_many, Err(CreditsError::Amount));
        assert!(Refill::new(Interval::Daily, MAX_CREDITS, None).is_ok());
        assert_eq!(
            Refill::new(Interval::Monthly, 1, Some(0)),
            Err(CreditsError::Day)
        );
        assert_eq!(
            Refill::new(Interval::Monthly, 1, Some(32)),
            Err(CreditsError::Day)
        );
        assert_eq!(
            Refill::new(Interval::Daily, 1, Some(3)),
            Err(CreditsError::DayOfDaily)
        );
        assert!(Refill::new(Interval::Monthly, 1, Some(31)).is_ok());
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(
            Credits::new(MAX_CREDITS + 1, None, now),
            Err(CreditsError::Remaining)
        );
        assert_eq!(
            Credits::new(MAX_CREDITS, None, now).map(|c| c.remaining),
            Ok(MAX_CREDITS)
        );
    }

    #[test]
    fn daily_boundaries_are_utc_midnights() {
        let daily = Refill::new(Interval::Daily, 5, None).unwrap();
        let now = at("2026-12-01T23:59:59Z");
        assert_eq!(daily.last_boundary(now), at("2026-12-01T00:00:00Z"));
        assert_eq!(daily.next_boundary(now), at("2026-12-02T00:00:00Z"));
        let midnight = at("2026-12-31T00:00:00Z");
        assert_eq!(
            daily.last_boundary(midnight),
            midnight,
            "a boundary is its own last"
        );
        assert_eq!(daily.next_boundary(midnight), at("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn monthly_boundaries_fall_on_the_day_or_the_months_last_day() {
        let first = monthly(None);
        let now = at("2026-12-15T08:00:00Z");
        assert_eq!(first.last_boundary(now), at("2026-12-01T00:00:00Z"));
        assert_eq!(first.next_boundary(now), at("2027-01-01T00:00:00Z"));
        let on_31 = monthly(Some(31));
        let feb = at("2027-02-10T00:00:00Z");
        assert_eq!(on_31.last_boundary(feb), at("2027-01-31T00:00:00Z"));
        assert_eq!(
            on_31.next_boundary(feb),
            at("2027-02-28T00:00:00Z"),
            "February is short"
        );
        let leap = at("2028-02-29T00:00:01Z");
        assert_eq!(on_31.last_boundary(leap), at("2028-02-29T00:00:00Z"));
        assert_eq!(on_31.next_boundary(leap), at("2028-03-31T00:00:00Z"));
        let on_15 = monthly(Some(15));
        let january = at("2027-01-10T00:00:00Z");
        assert_eq!(
            on_15.last_boundary(january),
            at("2026-12-15T00:00:00Z"),
            "across a year"
        );
        assert_eq!(
            on_15.next_boundary(at("2026-12-20T00:00:00Z")),
            at("2027-01-15T00:00:00Z")
        );
    }

    #[test]
    fn credits_are_set_back_once_per_boundary_passed() {
        let refill = Refill::new(Interval::Daily, 100, None).unwrap();
        let start = at("2026-12-01T10:00:00Z");
        let mut credits = Credits::new(3, Some(refill), start).unwrap();
        credits.remaining = 0;
        assert_eq!(
            credits.at(at("2026-12-01T23:59:59Z")).remaining,
            0,
            "same day"
        );
        let next_day = credits.at(at("2026-12-02T00:00:00Z"));
        assert_eq!(
            (next_day.remaining, next_day.refilled_at),
            (100, at("2026-12-02T00:00:00Z"))
        );
        let mut spent = next_day;
        spent.remaining = 40;
        assert_eq!(
            spent.at(at("2026-12-02T18:00:00Z")).remaining,
            40,
            "refilled already"
        );
        assert_eq!(
            spent.at(at("2026-12-09T18:00:00Z")).remaining,
            100,
            "a week later: once"
        );
        let none = Credits::new(7, None, start).unwrap();
        assert_eq!(
            none.at(at("2030-01-01T00:00:00Z")).remaining,
            7,
            "no refill"
        );
    }
}
