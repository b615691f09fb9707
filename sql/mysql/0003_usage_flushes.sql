-- Ids of the usage batches already applied: a batch retried after an unknown outcome is
-- recognised here and never counted twice.
CREATE TABLE IF NOT EXISTS usage_flushes (
    flush_id   CHAR(32)    NOT NULL,
    applied_at DATETIME(3) NOT NULL,
    PRIMARY KEY (flush_id),
    KEY idx_usage_flushes_applied_at (applied_at)
) ENGINE=InnoDB;
