//! The statements on customer limits and credits, the same text on MySQL and SQLite (`?`
//! placeholders, times as ms); each backend binds them its own way.

const LIMIT_COLUMNS: &str = "scope, subject, name, max_uses, duration_ms, auto_apply";
const CREDIT_COLUMNS: &str = "scope, subject, remaining, refill_interval, refill_amount, \
    refill_day, refilled_at_ms, generation";

/// A token's and its owner's limits: binds the token id, then the owner id.
pub(crate) fn limit_rows() -> String {
    format!(
        "SELECT {LIMIT_COLUMNS} FROM quota_limits \
         WHERE (scope = 't' AND subject = ?) OR (scope = 'u' AND subject = ?) \
         ORDER BY scope, name"
    )
}

/// A token's and its owner's credits: binds the token id, then the owner id (MySQL appends
/// `FOR UPDATE` to lock them).
pub(crate) fn credit_rows() -> String {
    format!(
        "SELECT {CREDIT_COLUMNS} FROM quota_credits \
         WHERE (scope = 't' AND subject = ?) OR (scope = 'u' AND subject = ?)"
    )
}

pub(crate) fn all_limit_rows() -> String {
    format!("SELECT {LIMIT_COLUMNS} FROM quota_limits ORDER BY scope, subject, name")
}

pub(crate) fn all_credit_rows() -> String {
    format!("SELECT {CREDIT_COLUMNS} FROM quota_credits ORDER BY scope, subject")
}

pub(crate) const DELETE_LIMITS: &str = "DELETE FROM quota_limits WHERE scope = ? AND subject = ?";
pub(crate) const DELETE_CREDITS: &str = "DELETE FROM quota_credits WHERE scope = ? AND subject = ?";

/// `n` limit rows (six values each).
pub(crate) fn insert_limits(n: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?)";
    let rows = vec![row; n.max(1)].join(", ");
    format!("INSERT INTO quota_limits ({LIMIT_COLUMNS}) VALUES {rows}")
}

pub(crate) fn insert_credits() -> String {
    format!("INSERT INTO quota_credits ({CREDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
}

/// A token's limits and credits given to another token (rotation): binds the new id, then
/// the old one.
pub(crate) const MOVE_QUOTA: [&str; 2] = [
    "UPDATE quota_limits SET subject = ? WHERE scope = 't' AND subject = ?",
    "UPDATE quota_credits SET subject = ? WHERE scope = 't' AND subject = ?",
];

pub(crate) const CLEAR_ALL: [&str; 2] = ["DELETE FROM quota_limits", "DELETE FROM quota_credits"];
