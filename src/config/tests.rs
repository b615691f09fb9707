//! The shipped defaults load, and settings that cannot work are refused naming their key.

use super::*;

#[test]
fn the_shipped_config_toml_is_valid() {
    let settings = Settings::defaults().unwrap();
    assert_eq!(settings.api_tokens.limit_tokens_per_user, 20);
    assert!(settings.service.hmac.is_none());
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let built = Config::builder()
        .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
        .add_source(File::from_str("[server]\nprot = 1", FileFormat::Toml))
        .build()
        .unwrap();
    let err = Settings::from_config(built).unwrap_err().to_string();
    assert!(err.contains("prot"), "{err}");
}

#[test]
fn redis_settings_that_cannot_work_are_refused_naming_their_key() {
    let with = |redis: &str| {
        let built = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(
                &format!("[redis]\n{redis}"),
                FileFormat::Toml,
            ))
            .build()
            .unwrap();
        Settings::from_config(built)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(with("url = ''"), Ok(()), "no Redis");
    let url = "url = 'redis://127.0.0.1:6379'";
    assert_eq!(with(url), Ok(()));
    let cluster = "url = 'redis://a:7101, redis://b:7102'\ncluster = true";
    assert_eq!(with(cluster), Ok(()));
    #[rustfmt::skip]
    let refused = [
        ("url = 'rediss://127.0.0.1:6379'".to_owned(), "redis.url"),
        ("url = 'http://127.0.0.1:6379'".to_owned(),   "redis.url"),
        ("url = ' , '".to_owned(),                     "redis.url"),
        ("url = 'redis://a:1,redis://b:2'".to_owned(), "redis.cluster"),
        (format!("{url}\nkey_prefix = '{{iam}}:'"),    "redis.key_prefix"),
        (format!("{url}\nconnections = 0"),            "redis.connections"),
        (format!("{url}\ntimeout = '0s'"),             "redis"),
    ];
    for (redis, key) in refused {
        let err = with(&redis).expect_err(&redis);
        assert!(err.contains(key), "{redis}: {err}");
    }
}
