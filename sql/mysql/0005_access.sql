-- Roles and permissions (SPEC B4). Names are ASCII of [A-Za-z0-9_.:-], compared byte for byte;
-- a grant is a permission, `prefix.*` or `*` (at most 102 characters).
CREATE TABLE IF NOT EXISTS roles (
    name        VARCHAR(64)  NOT NULL,
    description VARCHAR(200) NULL,
    created_at  DATETIME(3)  NOT NULL,
    updated_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS role_permissions (
    role_name  VARCHAR(64)  NOT NULL,
    permission VARCHAR(102) NOT NULL,
    PRIMARY KEY (role_name, permission)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The roles a token holds: removed with the role (and with a token deleted by rotation).
CREATE TABLE IF NOT EXISTS token_roles (
    token_id  BIGINT UNSIGNED NOT NULL,
    role_name VARCHAR(64)     NOT NULL,
    PRIMARY KEY (token_id, role_name),
    KEY idx_token_roles_role (role_name, token_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS token_permissions (
    token_id   BIGINT UNSIGNED NOT NULL,
    permission VARCHAR(102)    NOT NULL,
    PRIMARY KEY (token_id, permission)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row, locked by every role creation so that the 1,000-role limit holds under concurrency.
CREATE TABLE IF NOT EXISTS access_lock (
    id TINYINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB;
INSERT IGNORE INTO access_lock (id) VALUES (1);
