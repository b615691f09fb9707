//! Statements of the analytics rollups (SPEC B11): additive upserts (so any number of
//! instances add up), the sums a query reads, and the bounded delete of expired buckets.

use async_trait::async_trait;

use super::{count, id, placeholders, tuples, Dialect, Row, Statement, Value};
use crate::domain::analytics::{Code, Granularity, TagSet};
use crate::domain::rollup::{Dimension, RollupFilter, RollupRow, RollupSum};
use crate::store::backend::Tx;
use crate::store::StoreError;

/// The table of a rollup.
fn table(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Minute => "analytics_minute",
        Granularity::Hour => "analytics_hour",
        Granularity::Day => "analytics_day",
    }
}

/// Rows per upsert (7 parameters each, far below either store's limit).
const ROLLUP_CHUNK: usize = 400;

/// Adds to a row that exists instead of inserting it.
fn add_on_conflict(dialect: Dialect) -> &'static str {
    dialect.pick([
        " ON DUPLICATE KEY UPDATE total = total + VALUES(total), \
         credits = credits + VALUES(credits)",
        " ON CONFLICT (bucket, token_id, code, tags) DO UPDATE SET \
         total = total + excluded.total, credits = credits + excluded.credits",
    ])
}

/// The column a dimension groups by, as selected (`0` when none).
fn group_column(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Nothing | Dimension::Tags => "0",
        Dimension::Token => "token_id",
        Dimension::User => "user_id",
    }
}

/// `SELECT bucket, id, tags, code, SUM(total), SUM(credits)` of the rows `filter` names, per
/// bucket or over the whole range.
fn sums_statement(filter: &RollupFilter, dimension: Dimension, per_bucket: bool) -> Statement {
    let group = group_column(dimension);
    let bucket = match per_bucket {
        true => "bucket",
        false => "?",
    };
    let tags = match dimension {
        Dimension::Tags => "tags",
        _ => "''",
    };
    let mut args: Vec<Value> = Vec::new();
    if !per_bucket {
        args.push(Value::Int(filter.start));
    }
    let mut sql = format!(
        "SELECT {bucket}, {group}, {tags}, code, SUM(total), SUM(credits) FROM {} \
         WHERE bucket >= ? AND bucket < ?",
        table(filter.granularity)
    );
    args.extend([Value::Int(filter.start), Value::Int(filter.end)]);
    if let Some(token) = filter.token_id {
        sql.push_str(" AND token_id = ?");
        args.push(id(token));
    }
    if let Some(user) = filter.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(id(user));
    }
    if !filter.codes.is_empty() {
        sql.push_str(&format!(
            " AND code IN ({})",
            placeholders(filter.codes.len())
        ));
        args.extend(
            filter
                .codes
                .iter()
                .map(|c| Value::Int(i64::from(c.index()))),
        );
    }
    for (key, value) in &filter.tags {
        sql.push_str(" AND INSTR(tags, ?) > 0");
        args.push(Value::Text(TagSet::needle(key, value)));
    }
    if let (Some(among), Dimension::Token | Dimension::User) = (&filter.among, dimension) {
        sql.push_str(&format!(" AND {group} IN ({})", placeholders(among.len())));
        args.extend(among.iter().map(|n| id(*n)));
    }
    let mut by = vec![];
    if per_bucket {
        by.push("bucket");
    }
    if group != "0" {
        by.push(group);
    }
    if dimension == Dimension::Tags {
        by.push("tags");
    }
    by.push("code");
    sql.push_str(&format!(" GROUP BY {}", by.join(", ")));
    Statement::new(sql, args)
}

fn sum_of(row: &Row) -> Result<RollupSum, StoreError> {
    let index = u8::try_from(row.u64(3)?).unwrap_or(u8::MAX);
    let code = Code::from_index(index)
        .ok_or_else(|| StoreError::CorruptRow(format!("unknown analytics code {index}")))?;
    Ok(RollupSum {
        bucket: row.i64(0)?,
        id: row.u64(1)?,
        tags: TagSet::from_stored(&row.string(2)?),
        code,
        total: row.u64(4)?,
        credits: row.u64(5)?,
    })
}

/// Statements of the analytics rollups.
#[async_trait]
pub trait AnalyticsSql {
    /// Adds every row to its rollup (a row whose key exists is added to).
    async fn add_rollups(&mut self, rows: &[RollupRow]) -> Result<(), StoreError>;
    /// Sums of the rows `filter` names, grouped by `dimension` and code, per bucket or over
    /// the whole range (then each sum's bucket is the range's start).
    async fn rollup_sums(
        &mut self,
        filter: &RollupFilter,
        dimension: Dimension,
        per_bucket: bool,
    ) -> Result<Vec<RollupSum>, StoreError>;
    /// Deletes at most `limit` rows of buckets before `before`; how many it deleted.
    async fn prune_rollup(
        &mut self,
        granularity: Granularity,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

#[async_trait]
impl<T: Tx + ?Sized> AnalyticsSql for T {
    async fn add_rollups(&mut self, rows: &[RollupRow]) -> Result<(), StoreError> {
        let dialect = self.dialect();
        for granularity in Granularity::ALL {
            // In key order: concurrent flushes of several instances lock rows in one order.
            let mut rows: Vec<&RollupRow> = rows
                .iter()
                .filter(|r| r.granularity == granularity)
                .collect();
            rows.sort_by(|a, b| {
                (a.bucket, a.token_id, a.code, &a.tags)
                    .cmp(&(b.bucket, b.token_id, b.code, &b.tags))
            });
            for chunk in rows.chunks(ROLLUP_CHUNK) {
                let sql = format!(
                    "INSERT INTO {} (token_id, bucket, code, tags, user_id, total, credits) \
                     VALUES {}{}",
                    table(granularity),
                    tuples(chunk.len(), 7),
                    add_on_conflict(dialect)
                );
                let args = chunk
                    .iter()
                    .flat_map(|r| {
                        [
                            id(r.token_id),
                            Value::Int(r.bucket),
                            Value::Int(i64::from(r.code.index())),
                            Value::Text(r.tags.as_str().to_owned()),
                            id(r.user_id),
                            count(r.total),
                            count(r.credits),
                        ]
                    })
                    .collect();
                self.execute(Statement::new(sql, args)).await?;
            }
        }
        Ok(())
    }

    async fn rollup_sums(
        &mut self,
        filter: &RollupFilter,
        dimension: Dimension,
        per_bucket: bool,
    ) -> Result<Vec<RollupSum>, StoreError> {
        if filter.among.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let statement = sums_statement(filter, dimension, per_bucket);
        self.fetch(statement).await?.iter().map(sum_of).collect()
    }

    async fn prune_rollup(
        &mut self,
        granularity: Granularity,
        before: i64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let table = table(granularity);
        // SQLite has no `DELETE … LIMIT`: the key of the rows to go, chosen first.
        let sql = match self.dialect() {
            Dialect::MySql => format!("DELETE FROM {table} WHERE bucket < ? LIMIT ?"),
            Dialect::Sqlite => format!(
                "DELETE FROM {table} WHERE (bucket, token_id, code, tags) IN \
                 (SELECT bucket, token_id, code, tags FROM {table} WHERE bucket < ? LIMIT ?)"
            ),
        };
        let args = vec![Value::Int(before), Value::Int(i64::from(limit))];
        self.execute(Statement::new(sql, args)).await
    }
}
