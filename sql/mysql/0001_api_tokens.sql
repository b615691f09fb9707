-- The riavzon api_tokens table: column names and meanings are the compatibility contract.
CREATE TABLE IF NOT EXISTS api_tokens (
    id                       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id                  BIGINT UNSIGNED NOT NULL,
    api_token                CHAR(64)        NOT NULL COMMENT 'hex SHA-256 of the raw key',
    public_identifier        CHAR(137)       NOT NULL,
    prefix                   VARCHAR(32)     NOT NULL DEFAULT 'api',
    name                     VARCHAR(50)     NOT NULL,
    created_at               DATETIME(3)     NOT NULL,
    expires_at               DATETIME(3)     NULL,
    restricted_to_ip_address JSON            NULL,
    last_used                DATETIME(3)     NULL,
    privilege_type           ENUM('demo','restricted','protected','full','custom') NOT NULL DEFAULT 'restricted',
    usage_count              BIGINT UNSIGNED NOT NULL DEFAULT 0,
    valid                    TINYINT(1)      NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_tokens_api_token (api_token),
    UNIQUE KEY uq_api_tokens_public_identifier (public_identifier),
    KEY idx_api_tokens_user_valid (user_id, valid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per token owner, locked by every creation and rotation so that the
-- "at most N valid tokens" check and the insert are atomic per owner.
CREATE TABLE IF NOT EXISTS api_token_owners (
    user_id BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE=InnoDB;
