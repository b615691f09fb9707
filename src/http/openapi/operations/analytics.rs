//! `GET /api/admin/analytics/verifications` (SPEC B11).

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};

use super::super::schemas;
use super::common::admin;
use super::describe::{query, string, Describe};
use crate::analytics::MAX_TOP;
use crate::domain::analytics::Code;
use crate::http::admin::analytics_views::VerificationAnalyticsView;

pub fn admin_analytics(d: Describe) -> Operation {
    let view = d.components.of::<VerificationAnalyticsView>();
    let time = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    };
    let int64 = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .into()
    };
    let top = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_TOP))
        .into();
    let codes: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
    admin(d)
        .parameter(query(
            "start",
            false,
            "Range start, inclusive, rounded down to the granularity (default: `end` − 24 h).",
            time(),
        ))
        .parameter(query(
            "end",
            false,
            "Range end, exclusive, rounded up to the granularity (default: now).",
            time(),
        ))
        .parameter(query(
            "granularity",
            false,
            "`auto` (default): minute up to 3 h, hour up to 4 days, else day — coarser when the \
             range starts before the finer rollup's retention.",
            schemas::one_of_strings(vec!["auto", "minute", "hour", "day"]),
        ))
        .parameter(query(
            "groupBy",
            false,
            "One series per code, token, owner or value of an `analytics.tags` key \
             (`tag.route`); busiest first, at most `top`.",
            string(),
        ))
        .parameter(query(
            "tokenId",
            false,
            "Only this token's verifications.",
            int64(),
        ))
        .parameter(query(
            "userId",
            false,
            "Only this owner's verifications.",
            int64(),
        ))
        .parameter(query(
            "code",
            false,
            &format!(
                "Only these codes, comma-separated or repeated: {}.",
                codes.join(", ")
            ),
            string(),
        ))
        .parameter(query(
            "tag.<key>",
            false,
            "Only verifications with this tag value (a key of `analytics.tags`).",
            string(),
        ))
        .parameter(query(
            "top",
            false,
            "With `groupBy`: the number of series (default 100).",
            top,
        ))
        .json(200, "Zero-filled series, busiest first.", view)
        .problem(
            400,
            "A bad parameter, naming it (`field`); a range past the retention \
             (`range_exceeds_retention`, with `earliest`); more than 1,500 points a series or \
             150,000 in all (`too_many_points`).",
            &["bad_request", "range_exceeds_retention", "too_many_points"],
        )
        .problem(
            404,
            "`analytics.enabled` is false.",
            &["analytics_disabled"],
        )
        .build()
}
