//! Configuration read once from the environment at start-up (the names are set by infra: `compute.rs` and the catalog's `<TABLE>_TABLE`).

use std::time::Duration;

use crate::error::ServiceError;

/// Default session lifetime: one day.
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 86_400;

/// Everything a function needs to know about its deployment.
#[derive(Clone, Debug)]
pub struct Config {
    pub users_table: String,
    pub sessions_table: String,
    pub session_ttl: Duration,
    /// Browser origins allowed to call the API (`CORS_ALLOW_ORIGINS`, comma-separated). A
    /// request whose `Origin` is one of them gets it back in `access-control-allow-origin`;
    /// any other gets no CORS headers. Empty: no CORS at all, preflights are plain 405s.
    pub cors_allow_origins: Vec<String>,
    /// Reported by `/health`.
    pub service_version: String,
    /// `AWS_REGION`, passed to the SDK explicitly so it never probes IMDS at start-up.
    pub region: Option<String>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ServiceError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ServiceError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let required = |name: &'static str| {
            non_empty(name).ok_or(ServiceError::Config {
                variable: name,
                reason: "is not set".to_owned(),
            })
        };
        let session_ttl = seconds(
            "SESSION_TTL_SECONDS",
            non_empty("SESSION_TTL_SECONDS").as_deref(),
            60..=31_536_000,
        )?
        .unwrap_or(Duration::from_secs(DEFAULT_SESSION_TTL_SECONDS));
        Ok(Self {
            users_table: required("USERS_TABLE")?,
            sessions_table: required("SESSIONS_TABLE")?,
            session_ttl,
            cors_allow_origins: non_empty("CORS_ALLOW_ORIGINS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|origin| !origin.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            service_version: non_empty("SERVICE_VERSION")
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            region: non_empty("AWS_REGION"),
        })
    }
}

/// The duration a variable sets, in whole seconds within `range` (`None`: not set): the one
/// reading of every such variable, with the one error that names it.
pub fn seconds(
    variable: &'static str,
    text: Option<&str>,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<Duration>, ServiceError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let (low, high) = (range.start(), range.end());
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|seconds| range.contains(seconds))
        .map(|seconds| Some(Duration::from_secs(seconds)))
        .ok_or(ServiceError::Config {
            variable,
            reason: format!("{text:?} is not a number of seconds between {low} and {high}"),
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply() {
        let config =
            Config::from_lookup(lookup(&[("USERS_TABLE", "u"), ("SESSIONS_TABLE", "s")])).unwrap();
        assert_eq!(config.session_ttl, Duration::from_secs(86_400));
        assert!(config.cors_allow_origins.is_empty());
        assert_eq!(config.service_version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn reads_every_variable() {
        let config = Config::from_lookup(lookup(&[
            ("USERS_TABLE", "prod-service-users"),
            ("SESSIONS_TABLE", "prod-service-sessions"),
            ("SESSION_TTL_SECONDS", "3600"),
            (
                "CORS_ALLOW_ORIGINS",
                "https://app.example.com, http://localhost:3000,",
            ),
            ("SERVICE_VERSION", "abc123"),
            ("AWS_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(config.users_table, "prod-service-users");
        assert_eq!(config.session_ttl, Duration::from_secs(3600));
        assert_eq!(
            config.cors_allow_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        assert_eq!(config.service_version, "abc123");
        assert_eq!(config.region.as_deref(), Some("us-west-2"));
    }

    #[test]
    fn missing_or_bad_values_name_the_variable() {
        let error = Config::from_lookup(lookup(&[("USERS_TABLE", "u")])).unwrap_err();
        assert!(error.to_string().contains("SESSIONS_TABLE"), "{error}");
        let error = Config::from_lookup(lookup(&[
            ("USERS_TABLE", "u"),
            ("SESSIONS_TABLE", "s"),
            ("SESSION_TTL_SECONDS", "soon"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("SESSION_TTL_SECONDS"), "{error}");
    }
}
