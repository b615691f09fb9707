-- Rotation with a grace period (SPEC B10): the old key names its replacement and when it was
-- rotated; its expires_at is the end of the grace. While it verifies, it charges its
-- replacement's limits and credits (one budget per lineage).
ALTER TABLE api_tokens
    ADD COLUMN IF NOT EXISTS replaced_by BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS rotated_at  DATETIME(3)     NULL,
    ADD KEY idx_api_tokens_replaced_by (replaced_by);
