//! The bound on tag values (SPEC B11): each tag key takes at most `max_tag_values` distinct
//! values per UTC day on this instance; later values count as `__other__`, so a caller sending
//! a fresh value on every request cannot grow the rollups without bound.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

use dashmap::DashSet;

use crate::domain::analytics::{Tags, OTHER_TAG_VALUE};

pub struct Admission {
    max_values: usize,
    /// The UTC day (days since the epoch) the sets below are of.
    day: AtomicI64,
    /// Per allowed key (by index): the values admitted today, and how many.
    admitted: Vec<(DashSet<Box<str>, foldhash::fast::RandomState>, AtomicUsize)>,
    /// Held while a new day empties the sets.
    turning: Mutex<()>,
}

impl Admission {
    pub fn new(keys: usize, max_values: usize) -> Self {
        Self {
            max_values,
            day: AtomicI64::new(i64::MIN),
            admitted: (0..keys)
                .map(|_| (DashSet::default(), AtomicUsize::new(0)))
                .collect(),
            turning: Mutex::new(()),
        }
    }

    /// `tags` as counted at unix second `at`: a value past today's bound becomes `__other__`.
    pub fn admit(&self, tags: &mut Tags, at: i64) {
        if tags.is_empty() {
            return;
        }
        self.turn_to(at.div_euclid(86_400));
        let mut refused = Vec::new();
        for (index, value) in tags.values() {
            let Some((values, count)) = self.admitted.get(*index) else {
                continue;
            };
            if values.contains(value.as_str()) {
                continue;
            }
            // Reserve a place first: concurrent new values never exceed the bound.
            if count.fetch_add(1, Ordering::AcqRel) < self.max_values {
                if !values.insert(value.as_str().into()) {
                    count.fetch_sub(1, Ordering::AcqRel);
                }
            } else {
                count.fetch_sub(1, Ordering::AcqRel);
                refused.push(*index);
            }
        }
        for index in refused {
            tags.replace(index, OTHER_TAG_VALUE);
        }
    }

    fn turn_to(&self, day: i64) {
        if self.day.load(Ordering::Acquire) >= day {
            return;
        }
        let Ok(_turning) = self.turning.lock() else {
            return;
        };
        if self.day.load(Ordering::Acquire) >= day {
            return;
        }
        for (values, count) in &self.admitted {
            values.clear();
            count.store(0, Ordering::Release);
        }
        self.day.store(day, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_a_day_new_values_count_as_other_until_the_next_day() {
        let allowed = vec!["route".to_owned(), "method".to_owned()];
        let admission = Admission::new(2, 2);
        let day = 86_400 * 20_000;
        let admit = |route: &str, at: i64| {
            let mut tags = Tags::parse(&allowed, [("route", route), ("method", "GET")]).unwrap();
            admission.admit(&mut tags, at);
            tags.encode(&allowed).value_of("route").map(str::to_owned)
        };
        assert_eq!(admit("/a", day).as_deref(), Some("/a"));
        assert_eq!(admit("/b", day + 1).as_deref(), Some("/b"));
        assert_eq!(admit("/c", day + 2).as_deref(), Some(OTHER_TAG_VALUE));
        assert_eq!(admit("/a", day + 3).as_deref(), Some("/a"));
        assert_eq!(admit("/c", day + 86_400).as_deref(), Some("/c"));
    }
}
