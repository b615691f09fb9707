-- Roles and permissions (SPEC B4), as in sql/mysql/0005_access.sql. No lock row: SQLite's
-- write transactions are serial.
CREATE TABLE IF NOT EXISTS roles (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS role_permissions (
    role_name  TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_name, permission)
);

CREATE TABLE IF NOT EXISTS token_roles (
    token_id  INTEGER NOT NULL,
    role_name TEXT    NOT NULL,
    PRIMARY KEY (token_id, role_name)
);
CREATE INDEX IF NOT EXISTS idx_token_roles_role ON token_roles (role_name, token_id);

CREATE TABLE IF NOT EXISTS token_permissions (
    token_id   INTEGER NOT NULL,
    permission TEXT    NOT NULL,
    PRIMARY KEY (token_id, permission)
);
