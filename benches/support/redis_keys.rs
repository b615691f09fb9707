//! Deletes a bench's Redis keys at its end: every key under its prefix (SCAN, then DEL).

use iam_tokens::shared::Redis;

/// The number of keys deleted; stops at the first call Redis does not answer.
pub async fn delete_prefix(redis: &Redis, prefix: &str) -> usize {
    let mut cursor = 0u64;
    let mut deleted = 0;
    loop {
        let scan = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .clone();
        let Ok((next, keys)) = redis.query::<(u64, Vec<String>)>("scan", &scan).await else {
            return deleted;
        };
        if !keys.is_empty() {
            let del = redis::cmd("DEL").arg(&keys).clone();
            deleted += redis.query::<usize>("del", &del).await.unwrap_or(0);
        }
        cursor = next;
        if cursor == 0 {
            return deleted;
        }
    }
}
