//! The statements on roles and token access that MySQL and SQLite run as the same text
//! (standard SQL with `?` placeholders); each backend binds them its own way and keeps the
//! few that differ by dialect (locks, `INSERT IGNORE`).

/// `?, ?, …` for `n` values (at least one).
pub(crate) fn placeholders(n: usize) -> String {
    let mut text = String::with_capacity(n * 3);
    for i in 0..n.max(1) {
        if i > 0 {
            text.push_str(", ");
        }
        text.push('?');
    }
    text
}

/// `(?, ?), (?, ?), …` for `rows` rows of two values.
pub(crate) fn pairs(rows: usize) -> String {
    let mut text = String::with_capacity(rows * 8);
    for i in 0..rows {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str("(?, ?)");
    }
    text
}

/// What `ids.len()` tokens hold, as `(token_id, what, name)` rows (`Held` codes 0, 1, 2);
/// binds the ids three times.
pub(crate) fn access_rows(ids: usize) -> String {
    let list = placeholders(ids);
    format!(
        "SELECT token_id, 0, role_name FROM token_roles WHERE token_id IN ({list}) \
         UNION ALL SELECT token_id, 1, permission FROM token_permissions \
         WHERE token_id IN ({list}) \
         UNION ALL SELECT tr.token_id, 2, rp.permission FROM token_roles tr \
         JOIN role_permissions rp ON rp.role_name = tr.role_name WHERE tr.token_id IN ({list})"
    )
}

pub(crate) const ALL_ACCESS_ROWS: &str = "SELECT token_id, 0, role_name FROM token_roles \
    UNION ALL SELECT token_id, 1, permission FROM token_permissions";

/// Roles with the count of valid tokens holding each; then `WHERE r.name = ?` or `ORDER BY`.
pub(crate) const ROLE_ROWS: &str = "SELECT r.name, r.description, r.created_at, r.updated_at, \
    (SELECT COUNT(*) FROM token_roles tr JOIN api_tokens t ON t.id = tr.token_id \
     WHERE tr.role_name = r.name AND t.valid = 1) FROM roles r";

pub(crate) const ROLE_GRANTS_OF: &str = "SELECT role_name, permission FROM role_permissions \
    WHERE role_name = ? ORDER BY permission";
pub(crate) const ALL_ROLE_GRANTS: &str =
    "SELECT role_name, permission FROM role_permissions ORDER BY role_name, permission";
pub(crate) const COUNT_ROLES: &str = "SELECT COUNT(*) FROM roles";
pub(crate) const SET_ROLE: &str = "UPDATE roles SET description = ?, updated_at = ? WHERE name = ?";
pub(crate) const DELETE_ROLE: [&str; 3] = [
    "DELETE FROM token_roles WHERE role_name = ?",
    "DELETE FROM role_permissions WHERE role_name = ?",
    "DELETE FROM roles WHERE name = ?",
];
pub(crate) const CLEAR_ACCESS: [&str; 2] = [
    "DELETE FROM token_roles WHERE token_id = ?",
    "DELETE FROM token_permissions WHERE token_id = ?",
];
pub(crate) const CLEAR_ALL: [&str; 4] = [
    "DELETE FROM token_roles",
    "DELETE FROM token_permissions",
    "DELETE FROM role_permissions",
    "DELETE FROM roles",
];

/// Removes `n` grants of one role: binds the role, then the grants.
pub(crate) fn remove_role_grants(n: usize) -> String {
    format!(
        "DELETE FROM role_permissions WHERE role_name = ? AND permission IN ({})",
        placeholders(n)
    )
}

/// Which of `n` names are roles: binds the names.
pub(crate) fn existing_roles(n: usize) -> String {
    format!("SELECT name FROM roles WHERE name IN ({})", placeholders(n))
}

/// `n` rows of `(token_id, role_name)`.
pub(crate) fn insert_token_roles(n: usize) -> String {
    format!(
        "INSERT INTO token_roles (token_id, role_name) VALUES {}",
        pairs(n)
    )
}

/// `n` rows of `(token_id, permission)`.
pub(crate) fn insert_token_permissions(n: usize) -> String {
    format!(
        "INSERT INTO token_permissions (token_id, permission) VALUES {}",
        pairs(n)
    )
}

/// `n` rows of `(role_name, permission)`, after `INSERT IGNORE` (MySQL) or `INSERT OR IGNORE`
/// (SQLite).
pub(crate) fn role_grant_rows(n: usize) -> String {
    format!(
        "INTO role_permissions (role_name, permission) VALUES {}",
        pairs(n)
    )
}
