//! `iam-tokens copy`: every token, metadata, audit event and ban from one store to another
//! (SQLite → MySQL is the path a growing deployment takes).

use super::{RowCounts, Store, StoreError};

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOutcome {
    Copied(RowCounts),
    /// The target holds rows and `force` was not given: nothing was written.
    TargetNotEmpty(RowCounts),
}

/// Copies everything from `from` into `to`, refusing a non-empty target unless `force` (which
/// replaces its contents). Checks the target's row counts at the end.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    force: bool,
) -> Result<CopyOutcome, StoreError> {
    let existing = to.row_counts().await?;
    if existing != RowCounts::default() && !force {
        return Ok(CopyOutcome::TargetNotEmpty(existing));
    }
    let snapshot = from.export().await?;
    to.import(&snapshot).await?;
    let written = to.row_counts().await?;
    if written != snapshot.counts() {
        return Err(StoreError::CorruptRow(format!(
            "copy verification failed: read {:?}, target holds {written:?}",
            snapshot.counts()
        )));
    }
    Ok(CopyOutcome::Copied(written))
}
