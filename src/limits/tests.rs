//! Unit tests of one limiter on a manual clock.

use std::collections::hash_map::RandomState;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::{Decision, GovernorClock, Limiter, LimiterConfig, NewBans};
use crate::clock::ManualClock;

fn limiter(
    points: u32,
    duration: Duration,
    block: Duration,
) -> (Limiter, Arc<ManualClock>, NewBans) {
    limiter_with_strikes(points, duration, block, 2)
}

fn limiter_with_strikes(
    points: u32,
    duration: Duration,
    block: Duration,
    ban_after_strikes: u32,
) -> (Limiter, Arc<ManualClock>, NewBans) {
    let clock = Arc::new(ManualClock::starting_now());
    let bans = NewBans::default();
    let config = LimiterConfig {
        points: NonZeroU32::new(points).unwrap(),
        duration,
        block_duration: block,
    };
    let limiter = Limiter::new(
        "test_limiter",
        config,
        ban_after_strikes,
        GovernorClock(clock.clone()),
        RandomState::new(),
        bans.clone(),
    );
    (limiter, clock, bans)
}

fn limited(seconds: u64) -> Decision {
    Decision::Limited {
        retry_after: Duration::from_secs(seconds),
    }
}

#[test]
fn points_per_duration_is_a_burst_then_a_steady_rate() {
    let (limiter, clock, _) = limiter(5, Duration::from_secs(10), Duration::from_secs(60));
    for call in 1..=5 {
        assert_eq!(limiter.check("k"), Decision::Allowed, "call {call}");
    }
    assert_eq!(
        limiter.check("k"),
        limited(60),
        "the 6th call in the window"
    );
    // Other keys have their own budget.
    assert_eq!(limiter.check("other"), Decision::Allowed);
    // After the block, one point has come back per duration/points (2 s).
    clock.advance(Duration::from_secs(60));
    assert_eq!(limiter.check("k"), Decision::Allowed);
}

#[test]
fn a_block_answers_the_real_time_left() {
    let (limiter, clock, _) =
        limiter_with_strikes(1, Duration::from_secs(1), Duration::from_secs(900), 3);
    assert!(limiter.check("ip").is_allowed());
    assert_eq!(limiter.check("ip"), limited(900));
    clock.advance(Duration::from_millis(100_500));
    let left = Decision::Limited {
        retry_after: Duration::from_millis(799_500),
    };
    assert_eq!(limiter.peek("ip"), left);
    assert_eq!(limiter.peek("ip"), left, "peeking is not a strike");
    assert_eq!(
        limiter.check("ip"),
        left,
        "a second strike, under the three allowed"
    );
    assert_eq!(limiter.check("ip"), Decision::Banned, "the third strike");
    assert_eq!(limiter.peek("other"), Decision::Allowed);
}

#[test]
fn rejected_again_while_blocked_is_a_permanent_ban() {
    let (limiter, clock, bans) = limiter(1, Duration::from_secs(1), Duration::from_secs(60));
    assert!(limiter.check("ip").is_allowed());
    assert_eq!(limiter.check("ip"), limited(60));
    clock.advance(Duration::from_secs(30));
    assert_eq!(limiter.check("ip"), Decision::Banned);
    // The ban outlives every window and block.
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(limiter.check("ip"), Decision::Banned);
    let queued = bans.lock().unwrap().clone();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].limiter, "test_limiter");
    assert_eq!(queued[0].key, "ip");
}

#[test]
fn a_block_that_ran_out_forgets_its_strikes() {
    let (limiter, clock, _) = limiter(1, Duration::from_secs(1), Duration::from_secs(60));
    assert!(limiter.check("ip").is_allowed());
    assert_eq!(limiter.check("ip"), limited(60));
    clock.advance(Duration::from_secs(61));
    assert!(limiter.check("ip").is_allowed());
    assert_eq!(limiter.check("ip"), limited(60), "a new block, not a ban");
}

#[test]
fn reset_gives_the_whole_burst_back() {
    let (limiter, _, _) = limiter(2, Duration::from_secs(60), Duration::from_secs(60));
    assert!(limiter.check("k").is_allowed());
    assert!(limiter.check("k").is_allowed());
    limiter.reset("k");
    assert!(limiter.check("k").is_allowed());
    assert!(limiter.check("k").is_allowed());
}

#[test]
fn lifting_a_ban_lets_the_key_through_again() {
    let (limiter, _, _) = limiter(1, Duration::from_secs(1), Duration::from_secs(60));
    limiter.check("ip");
    limiter.check("ip");
    assert_eq!(limiter.check("ip"), Decision::Banned);
    assert!(limiter.lift("ip"));
    assert!(limiter.check("ip").is_allowed());
}

#[test]
fn reconcile_adopts_stored_bans_and_drops_lifted_ones_but_keeps_unwritten_ones() {
    let (limiter, clock, _) = limiter(1, Duration::from_secs(1), Duration::from_secs(60));
    let stored = crate::store::BanRecord {
        limiter: "test_limiter".into(),
        key: "from-elsewhere".into(),
        reason: "x".into(),
        created_at: crate::clock::Clock::now(clock.as_ref()),
    };
    limiter.reconcile_bans(std::slice::from_ref(&stored));
    assert_eq!(limiter.check("from-elsewhere"), Decision::Banned);
    // A ban made here and not yet written survives a reconcile with a store that lacks it.
    limiter.check("local");
    limiter.check("local");
    assert_eq!(limiter.check("local"), Decision::Banned);
    limiter.reconcile_bans(&[]);
    assert!(
        limiter.check("from-elsewhere").is_allowed(),
        "lifted elsewhere"
    );
    assert_eq!(limiter.check("local"), Decision::Banned);
}

#[test]
fn pruning_forgets_idle_keys_and_ended_blocks() {
    let (limiter, clock, _) = limiter(10, Duration::from_secs(10), Duration::from_secs(60));
    for i in 0..1000 {
        limiter.check(&format!("key-{i}"));
    }
    assert_eq!(limiter.tracked_keys(), 1000);
    clock.advance(Duration::from_secs(11));
    limiter.prune();
    assert_eq!(limiter.tracked_keys(), 0);
}

#[test]
fn the_stricter_decision_wins_a_union() {
    let a = limited(5);
    let b = limited(60);
    assert_eq!(a.and(b), limited(60));
    assert_eq!(Decision::Allowed.and(a), a);
    assert_eq!(b.and(Decision::Banned), Decision::Banned);
    assert_eq!(Decision::Allowed.and(Decision::Allowed), Decision::Allowed);
}
