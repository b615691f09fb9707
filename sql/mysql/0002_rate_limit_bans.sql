-- Permanent bans of the rate limiters: shared by every instance, survive restarts.
CREATE TABLE IF NOT EXISTS rate_limit_bans (
    limiter    VARCHAR(64)  NOT NULL,
    ban_key    VARCHAR(255) NOT NULL,
    reason     VARCHAR(255) NOT NULL,
    created_at DATETIME(3)  NOT NULL,
    PRIMARY KEY (limiter, ban_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
