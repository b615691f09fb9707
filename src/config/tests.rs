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

/// `[forward_auth]` rules are read into matching rules; a rule that cannot work, an unknown
/// default or a bad header name is refused naming its key (and the rule).
#[test]
fn forward_auth_rules_load_and_bad_ones_are_refused_naming_the_rule() {
    let with = |text: &str| {
        let built = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(text, FileFormat::Toml))
            .build()
            .unwrap();
        Settings::from_config(built).map_err(|e| e.to_string())
    };
    let rules = "[forward_auth]\ndefault = 'deny'\n\
        [[forward_auth.routes]]\nmethod = 'GET'\npath = '/reports/**'\nprivilege = 'restricted'\n\
        [[forward_auth.routes]]\npath = '/api/*'\ncost = 2\nlimits = 'search:1'";
    let settings = with(rules).unwrap();
    let rules = settings.forward_auth.rules();
    assert_eq!(rules.rules.len(), 2);
    assert_eq!(
        rules.policy("GET", "h", "/api/x").map(|p| p.usage.cost),
        Some(2)
    );
    assert_eq!(rules.policy("GET", "h", "/other"), None, "default deny");
    #[rustfmt::skip]
    let refused = [
        ("[forward_auth]\ndefault = 'allow'", "forward_auth.default"),
        ("[forward_auth]\nkey_header = 'x api key'", "forward_auth.key_header"),
        ("[[forward_auth.routes]]\npath = 'api/*'", "rule 1 (api/*)"),
        ("[[forward_auth.routes]]\npath = '/a'\nprivilege = 'root'", "privilege"),
        ("[[forward_auth.routes]]\npath = '/a'\nlimits = 'x'", "limits"),
        ("[[forward_auth.routes]]\npath = '/a'\ncolour = 'red'", "colour"),
    ];
    for (text, named) in refused {
        let err = with(text).expect_err(text);
        assert!(err.contains(named), "{text}: {err}");
    }
}
