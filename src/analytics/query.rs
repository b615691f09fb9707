//! `GET /api/admin/analytics/verifications` (SPEC B11): a range of the rollups as zero-filled
//! series, grouped and ranked. A query only reads.

use std::collections::HashMap;

use crate::config::analytics::RetentionSettings;
use crate::domain::analytics::{Code, Granularity};
use crate::domain::rollup::{Dimension, RollupFilter, RollupSum};
use crate::store::{AnalyticsStore, StoreError};

/// The most points one series may have.
pub const MAX_POINTS: u64 = 1_500;
/// The most points all series of one answer may have together (series × points).
pub const MAX_ANSWER_POINTS: u64 = 150_000;
/// Series a grouped query answers when `top` is not given, and the most it may ask for.
pub const DEFAULT_TOP: u32 = 100;
pub const MAX_TOP: u32 = 1_000;
/// The range a query without `start` covers, ending at `end`.
pub const DEFAULT_RANGE: i64 = 86_400;

/// What the series are grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    Code,
    Token,
    User,
    /// A tag key of `analytics.tags`.
    Tag(String),
}

/// A query, its parameters parsed (times in unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationQuery {
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// `None`: auto.
    pub granularity: Option<Granularity>,
    pub group_by: Option<GroupBy>,
    pub token_id: Option<u64>,
    pub user_id: Option<u64>,
    pub codes: Vec<Code>,
    pub tags: Vec<(String, String)>,
    pub top: Option<u32>,
}

/// A series' group: what its verifications have in common.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    All,
    Code(Code),
    /// `None`: verifications that found no token.
    Token(Option<u64>),
    User(Option<u64>),
    /// The tag key and its value (`None`: verifications without that tag).
    Tag(String, Option<String>),
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The bucket's start (unix seconds).
    pub t: i64,
    /// By `Code::index`.
    pub counts: [u64; Code::ALL.len()],
    pub credits: u64,
}

impl Point {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub group: Group,
    pub total: u64,
    pub points: Vec<Point>,
}

/// The answer: the range as aligned to its granularity, and the series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub granularity: Granularity,
    pub start: i64,
    pub end: i64,
    pub series: Vec<Series>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter that cannot be answered, named.
    #[error("{param}: {problem}")]
    Invalid {
        param: &'static str,
        problem: String,
    },
    /// The range starts before the oldest bucket kept at this granularity.
    #[error("the range starts before the oldest {} bucket kept", granularity.as_str())]
    RangeExceedsRetention {
        granularity: Granularity,
        earliest: i64,
    },
    #[error("the answer would have {points} points, more than {max}")]
    TooManyPoints { points: u64, max: u64 },
    /// `analytics.enabled` is false.
    #[error("verification analytics are disabled (analytics.enabled)")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The oldest bucket start a rollup still holds at `now`.
pub fn earliest(retention: &RetentionSettings, granularity: Granularity, now: i64) -> i64 {
    let kept = i64::try_from(retention.of(granularity).as_secs()).unwrap_or(i64::MAX);
    granularity.ceil(now.saturating_sub(kept))
}

/// Runs `query` against the rollups at `now` (unix seconds).
pub async fn run(
    store: &dyn AnalyticsStore,
    retention: &RetentionSettings,
    query: VerificationQuery,
    now: i64,
) -> Result<Report, QueryError> {
    let invalid = |param, problem: &str| QueryError::Invalid {
        param,
        problem: problem.to_owned(),
    };
    let end = query.end.unwrap_or(now);
    let start = query.start.unwrap_or(end - DEFAULT_RANGE);
    if start >= end {
        return Err(invalid("start", "must be before end"));
    }
    if query.top.is_some_and(|top| !(1..=MAX_TOP).contains(&top)) {
        return Err(invalid("top", "must be from 1 to 1000"));
    }
    let granularity = pick_granularity(query.granularity, start, end, retention, now)?;
    let (start, end) = (granularity.floor(start), granularity.ceil(end));
    let points = u64::try_from((end - start) / granularity.seconds()).unwrap_or(u64::MAX);
    if points > MAX_POINTS {
        return Err(QueryError::TooManyPoints {
            points,
            max: MAX_POINTS,
        });
    }
    let filter = RollupFilter {
        granularity,
        start,
        end,
        token_id: query.token_id,
        user_id: query.user_id,
        codes: query.codes.clone(),
        tags: query.tags.clone(),
        among: None,
    };
    let top = query.top.unwrap_or(DEFAULT_TOP) as usize;
    let grouped: Vec<(Group, Vec<RollupSum>)> = match &query.group_by {
        None => vec![(
            Group::All,
            store.rollup_sums(&filter, Dimension::Nothing, true).await?,
        )],
        Some(GroupBy::Code) => {
            let sums = store.rollup_sums(&filter, Dimension::Nothing, true).await?;
            split(sums, |sum| Group::Code(sum.code))
        }
        Some(GroupBy::Tag(key)) => {
            let sums = store.rollup_sums(&filter, Dimension::Tags, true).await?;
            split(sums, |sum| {
                Group::Tag(key.clone(), sum.tags.value_of(key).map(str::to_owned))
            })
        }
        Some(by @ (GroupBy::Token | GroupBy::User)) => {
            let (dimension, group): (Dimension, fn(u64) -> Group) = match by {
                GroupBy::Token => (Dimension::Token, |id| Group::Token((id != 0).then_some(id))),
                _ => (Dimension::User, |id| Group::User((id != 0).then_some(id))),
            };
            // Rank over the range in the coarsest rollups that tile it, then read the series of
            // the busiest only.
            let busiest = rank(store, &filter, dimension, top).await?;
            let among = RollupFilter {
                among: Some(busiest),
                ..filter.clone()
            };
            let sums = store.rollup_sums(&among, dimension, true).await?;
            split(sums, |sum| group(sum.id))
        }
    };
    let mut series: Vec<Series> = grouped
        .into_iter()
        .map(|(group, sums)| series_of(group, &sums, granularity, start, end))
        .collect();
    series.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.group.cmp(&b.group)));
    if query.group_by.is_some() {
        series.truncate(top);
    }
    let all_points = points.saturating_mul(series.len() as u64);
    if all_points > MAX_ANSWER_POINTS {
        return Err(QueryError::TooManyPoints {
            points: all_points,
            max: MAX_ANSWER_POINTS,
        });
    }
    Ok(Report {
        granularity,
        start,
        end,
        series,
    })
}

/// The granularity asked for, or for `auto` the one that suits the range's length (minute up to
/// 3 h, hour up to 4 days, else day) and still holds its start.
fn pick_granularity(
    asked: Option<Granularity>,
    start: i64,
    end: i64,
    retention: &RetentionSettings,
    now: i64,
) -> Result<Granularity, QueryError> {
    let span = end - start;
    let mut granularity = asked.unwrap_or(match span {
        s if s <= 3 * 3_600 => Granularity::Minute,
        s if s <= 4 * 86_400 => Granularity::Hour,
        _ => Granularity::Day,
    });
    loop {
        let earliest = earliest(retention, granularity, now);
        if granularity.floor(start) >= earliest {
            return Ok(granularity);
        }
        match (asked, granularity.coarser()) {
            (None, Some(coarser)) => granularity = coarser,
            _ => {
                return Err(QueryError::RangeExceedsRetention {
                    granularity,
                    earliest,
                })
            }
        }
    }
}

/// Pieces of `[start, end)` at `granularity` or coarser, the coarsest whose buckets fit: a week
/// of hours is read as whole days plus the hours at either edge.
pub fn tiles(granularity: Granularity, start: i64, end: i64) -> Vec<(Granularity, i64, i64)> {
    let Some(coarser) = granularity.coarser() else {
        return vec![(granularity, start, end)];
    };
    let (inner_start, inner_end) = (coarser.ceil(start), coarser.floor(end));
    if inner_start >= inner_end {
        return vec![(granularity, start, end)];
    }
    let mut pieces = Vec::new();
    if start < inner_start {
        pieces.push((granularity, start, inner_start));
    }
    pieces.extend(tiles(coarser, inner_start, inner_end));
    if inner_end < end {
        pieces.push((granularity, inner_end, end));
    }
    pieces
}

/// Totals per token or user over `filter`'s range.
pub async fn totals(
    store: &dyn AnalyticsStore,
    filter: &RollupFilter,
    dimension: Dimension,
) -> Result<HashMap<u64, u64>, StoreError> {
    let mut totals: HashMap<u64, u64> = HashMap::new();
    for (granularity, start, end) in tiles(filter.granularity, filter.start, filter.end) {
        let piece = RollupFilter {
            granularity,
            start,
            end,
            ..filter.clone()
        };
        for sum in store.rollup_sums(&piece, dimension, false).await? {
            *totals.entry(sum.id).or_default() += sum.total;
        }
    }
    Ok(totals)
}

/// The `top` ids with the most verifications in the range (ties: the smaller id first).
async fn rank(
    store: &dyn AnalyticsStore,
    filter: &RollupFilter,
    dimension: Dimension,
    top: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut ranked: Vec<(u64, u64)> = totals(store, filter, dimension)
        .await?
        .into_iter()
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(top);
    Ok(ranked.into_iter().map(|(id, _)| id).collect())
}

/// Sums split by the group each belongs to.
fn split(
    sums: Vec<RollupSum>,
    group_of: impl Fn(&RollupSum) -> Group,
) -> Vec<(Group, Vec<RollupSum>)> {
    let mut groups: HashMap<Group, Vec<RollupSum>> = HashMap::new();
    for sum in sums {
        groups.entry(group_of(&sum)).or_default().push(sum);
    }
    groups.into_iter().collect()
}

/// A zero-filled series from the sums of one group.
fn series_of(
    group: Group,
    sums: &[RollupSum],
    granularity: Granularity,
    start: i64,
    end: i64,
) -> Series {
    let step = granularity.seconds();
    let mut points: Vec<Point> = (start..end)
        .step_by(step as usize)
        .map(|t| Point {
            t,
            counts: [0; Code::ALL.len()],
            credits: 0,
        })
        .collect();
    for sum in sums {
        let Ok(index) = usize::try_from((sum.bucket - start) / step) else {
            continue;
        };
        if let Some(point) = points.get_mut(index) {
            point.counts[usize::from(sum.code.index())] += sum.total;
            point.credits += sum.credits;
        }
    }
    let total = points.iter().map(Point::total).sum();
    Series {
        group,
        total,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600;
    const D: i64 = 86_400;

    #[test]
    fn a_range_is_read_in_the_coarsest_buckets_that_fit() {
        let day = 20_000 * D;
        assert_eq!(
            tiles(Granularity::Hour, day - 2 * H, day + 7 * D + 3 * H),
            vec![
                (Granularity::Hour, day - 2 * H, day),
                (Granularity::Day, day, day + 7 * D),
                (Granularity::Hour, day + 7 * D, day + 7 * D + 3 * H),
            ]
        );
        assert_eq!(
            tiles(Granularity::Minute, day + 59 * 60, day + 2 * H + 60),
            vec![
                (Granularity::Minute, day + 59 * 60, day + H),
                (Granularity::Hour, day + H, day + 2 * H),
                (Granularity::Minute, day + 2 * H, day + 2 * H + 60),
            ]
        );
        assert_eq!(
            tiles(Granularity::Hour, day + H, day + 5 * H),
            vec![(Granularity::Hour, day + H, day + 5 * H)]
        );
    }

    #[test]
    fn auto_granularity_follows_the_range_and_the_retention() {
        let retention = crate::config::analytics::AnalyticsSettings::default().retention;
        let now = 20_000 * D;
        let pick = |start: i64, end: i64| pick_granularity(None, start, end, &retention, now).ok();
        assert_eq!(pick(now - 3 * H, now), Some(Granularity::Minute));
        assert_eq!(pick(now - 3 * H - 1, now), Some(Granularity::Hour));
        assert_eq!(pick(now - 4 * D, now), Some(Granularity::Hour));
        assert_eq!(pick(now - 4 * D - 1, now), Some(Granularity::Day));
        // Minutes are kept two days: three hours ending three days ago are read in hours.
        assert_eq!(
            pick(now - 3 * D - 3 * H, now - 3 * D),
            Some(Granularity::Hour)
        );
        let asked = pick_granularity(
            Some(Granularity::Minute),
            now - 3 * D,
            now - 3 * D + H,
            &retention,
            now,
        );
        assert!(matches!(
            asked,
            Err(QueryError::RangeExceedsRetention { granularity: Granularity::Minute, earliest }) if earliest == now - 2 * D
        ));
    }
}
