-- Admin console sessions (SPEC B14): the digest of the session's cookie, never the cookie; the
-- digest of the admin secret it was opened with (each request authenticates it again, so a
-- revoked credential ends its sessions); the CSRF token of its forms.
CREATE TABLE IF NOT EXISTS console_sessions (
    id                CHAR(64)     NOT NULL COMMENT 'hex SHA-256 of the cookie value',
    credential_digest CHAR(64)     NOT NULL COMMENT 'hex SHA-256 of the admin secret',
    actor_type        VARCHAR(16)  NOT NULL,
    actor_id          VARCHAR(120) NULL,
    actor_name        VARCHAR(120) NULL,
    csrf              CHAR(64)     NOT NULL,
    created_at        DATETIME(3)  NOT NULL,
    seen_at           DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    KEY ix_console_sessions_credential (credential_digest),
    KEY ix_console_sessions_seen (seen_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
