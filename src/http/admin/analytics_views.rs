//! JSON shapes of `GET /api/admin/analytics/verifications` (SPEC B11).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::analytics::{Group, Point, Report, Series};
use crate::domain::analytics::Code;
use crate::envelope::iso_time;

/// Verifications over a range, as zero-filled series.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationAnalyticsView {
    /// The granularity answered (`auto` resolved).
    #[schema(value_type = String, example = "hour")]
    pub granularity: &'static str,
    /// The range answered, aligned to the granularity: `start` inclusive, `end` exclusive.
    #[serde(with = "iso_time")]
    pub start: DateTime<Utc>,
    #[serde(with = "iso_time")]
    pub end: DateTime<Utc>,
    /// Busiest first (ties by group); one series with `group: {}` when not grouped.
    pub series: Vec<SeriesView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesView {
    /// What the series' verifications share: `{}`, `{"code": "VALID"}`, `{"tokenId": 7}`,
    /// `{"userId": 42}` or `{"tag.route": "/v1/search"}`; `null` for verifications without
    /// one (no token found, no such tag).
    #[schema(value_type = Object)]
    pub group: serde_json::Map<String, serde_json::Value>,
    pub total: u64,
    pub points: Vec<PointView>,
}

/// One bucket: every code, even at 0.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointView {
    /// The bucket's start.
    #[serde(with = "iso_time")]
    pub t: DateTime<Utc>,
    pub total: u64,
    #[serde(rename = "VALID")]
    pub valid: u64,
    #[serde(rename = "NOT_FOUND")]
    pub not_found: u64,
    #[serde(rename = "DISABLED")]
    pub disabled: u64,
    #[serde(rename = "EXPIRED")]
    pub expired: u64,
    #[serde(rename = "IP_NOT_ALLOWED")]
    pub ip_not_allowed: u64,
    #[serde(rename = "INSUFFICIENT_PERMISSIONS")]
    pub insufficient_permissions: u64,
    #[serde(rename = "RATE_LIMITED")]
    pub rate_limited: u64,
    #[serde(rename = "USAGE_EXCEEDED")]
    pub usage_exceeded: u64,
    #[serde(rename = "BLOCKED")]
    pub blocked: u64,
    /// Credits deducted by these verifications.
    #[serde(rename = "creditsSpent")]
    pub credits_spent: u64,
}

fn time(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

impl From<&Point> for PointView {
    fn from(point: &Point) -> Self {
        let n = |code: Code| point.counts[usize::from(code.index())];
        Self {
            t: time(point.t),
            total: point.total(),
            valid: n(Code::Valid),
            not_found: n(Code::NotFound),
            disabled: n(Code::Disabled),
            expired: n(Code::Expired),
            ip_not_allowed: n(Code::IpNotAllowed),
            insufficient_permissions: n(Code::InsufficientPermissions),
            rate_limited: n(Code::RateLimited),
            usage_exceeded: n(Code::UsageExceeded),
            blocked: n(Code::Blocked),
            credits_spent: point.credits,
        }
    }
}

fn group_view(group: &Group) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let (name, value) = match group {
        Group::All => return serde_json::Map::new(),
        Group::Code(code) => ("code".to_owned(), json!(code.as_str())),
        Group::Token(id) => ("tokenId".to_owned(), json!(id)),
        Group::User(id) => ("userId".to_owned(), json!(id)),
        Group::Tag(key, value) => (format!("tag.{key}"), json!(value)),
    };
    serde_json::Map::from_iter([(name, value)])
}

impl From<&Series> for SeriesView {
    fn from(series: &Series) -> Self {
        Self {
            group: group_view(&series.group),
            total: series.total,
            points: series.points.iter().map(PointView::from).collect(),
        }
    }
}

impl From<&Report> for VerificationAnalyticsView {
    fn from(report: &Report) -> Self {
        Self {
            granularity: report.granularity.as_str(),
            start: time(report.start),
            end: time(report.end),
            series: report.series.iter().map(SeriesView::from).collect(),
        }
    }
}
