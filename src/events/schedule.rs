//! What an attempt's reply means for its delivery (SPEC B12): delivered on a 2xx; else the next
//! step of the schedule with ±20 % jitter, or the receiver's longer `Retry-After` (up to 24 h);
//! failed after the last step. A 410 also disables the endpoint.

use chrono::{DateTime, Duration, Utc};

use super::client::{Reply, RetryAfter};
use crate::domain::webhook::{
    retry_after_cap, AttemptRecord, DeliveryStatus, DisabledReason, RETRY_SCHEDULE,
};

/// How far a wait may stray from its step, either way.
pub const JITTER: f64 = 0.2;

/// The record an attempt leaves, and whether it disables the endpoint. `attempts` is the
/// count before it; `jitter` in `[-JITTER, JITTER]` stretches the wait.
pub fn after_attempt(
    attempts: u32,
    reply: &Reply,
    now: DateTime<Utc>,
    jitter: f64,
) -> (AttemptRecord, Option<DisabledReason>) {
    let attempts = attempts.saturating_add(1);
    let (response_status, response_body, error, retry_after) = match reply {
        Reply::Answered {
            status,
            body,
            retry_after,
        } => (Some(*status), Some(body.clone()), None, *retry_after),
        Reply::NoAnswer(why) => (None, None, Some(why.clone()), None),
    };
    let mut record = AttemptRecord {
        status: DeliveryStatus::Pending,
        attempts,
        next_attempt_at: None,
        at: now,
        response_status,
        response_body,
        error,
    };
    if matches!(response_status, Some(200..=299)) {
        record.status = DeliveryStatus::Delivered;
        return (record, None);
    }
    let disable = (response_status == Some(410)).then_some(DisabledReason::Gone);
    match RETRY_SCHEDULE.get(attempts as usize - 1) {
        None => record.status = DeliveryStatus::Failed,
        Some(step) => {
            let factor = 1.0 + jitter.clamp(-JITTER, JITTER);
            let millis = (step.num_milliseconds() as f64 * factor).round() as i64;
            let mut wait = Duration::milliseconds(millis);
            let asked = match retry_after {
                Some(RetryAfter::Seconds(seconds)) => {
                    Duration::try_seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
                }
                Some(RetryAfter::At(at)) => Some(at - now),
                None => None,
            };
            if let Some(asked) = asked {
                if asked > wait {
                    wait = asked.min(retry_after_cap());
                }
            }
            record.next_attempt_at = Some(now + wait);
        }
    }
    (record, disable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, retry_after: Option<RetryAfter>) -> Reply {
        Reply::Answered {
            status,
            body: String::new(),
            retry_after,
        }
    }

    #[test]
    fn the_schedule_steps_then_fails() {
        let now = Utc::now();
        let refused = Reply::NoAnswer("could not connect".into());
        let (first, _) = after_attempt(0, &refused, now, 0.0);
        assert_eq!(first.next_attempt_at, Some(now + Duration::seconds(5)));
        let (second, _) = after_attempt(1, &answered(500, None), now, 0.2);
        assert_eq!(second.next_attempt_at, Some(now + Duration::seconds(360)));
        let (last, _) = after_attempt(9, &answered(500, None), now, 0.0);
        assert_eq!(
            (last.status, last.next_attempt_at),
            (DeliveryStatus::Failed, None)
        );
        let (done, _) = after_attempt(3, &answered(204, None), now, 0.0);
        assert_eq!(done.status, DeliveryStatus::Delivered);
    }

    #[test]
    fn a_longer_retry_after_replaces_the_step_up_to_a_day_and_410_disables() {
        let now = Utc::now();
        let (asked, _) = after_attempt(0, &answered(503, Some(RetryAfter::Seconds(60))), now, 0.0);
        assert_eq!(asked.next_attempt_at, Some(now + Duration::seconds(60)));
        let (short, _) = after_attempt(1, &answered(503, Some(RetryAfter::Seconds(1))), now, 0.0);
        assert_eq!(short.next_attempt_at, Some(now + Duration::minutes(5)));
        let week = RetryAfter::Seconds(7 * 86_400);
        let (capped, _) = after_attempt(0, &answered(429, Some(week)), now, 0.0);
        assert_eq!(capped.next_attempt_at, Some(now + Duration::hours(24)));
        let (_, disable) = after_attempt(0, &answered(410, None), now, 0.0);
        assert_eq!(disable, Some(DisabledReason::Gone));
    }
}
