//! A function's declared secrets (`secrets = [...]` in its manifest), read from Secrets Manager
//! when a request first needs one and kept for a TTL, so a value a person changes with
//! `cargo xtask secret set` serves within the TTL, without a deploy.
//!
//! Infra hands the function each secret's ARN in `SECRET_ARN_<NAME>` (`catalog::secrets::variable`,
//! which [`variable`] must match; a test holds them together). Nothing is read at start-up: a
//! missing or unreadable secret fails only the requests that need it, with a 500 in the usual
//! error shape and one log line naming the secret (never its value), and the next request tries
//! again, so a process never crashes in a loop over a secret nobody has set yet.
//!
//! Behind the `secrets` feature: a function that declares no secret never links the Secrets
//! Manager client.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::error::ServiceError;

/// How long a value read is used before it is read again: a changed secret reaches every
/// running process within this, at one `GetSecretValue` per secret and process per TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The variable that overrides [`DEFAULT_TTL`], in seconds (1..=86400).
pub const TTL_VARIABLE: &str = "SECRETS_TTL_SECONDS";

/// The variable holding the ARN of the declared secret `name`: `payments-key` ->
/// `SECRET_ARN_PAYMENTS_KEY`. The same rule as `catalog::secrets::variable`, which infra uses
/// to set it (the catalog is not linked into a function; `tests/secrets.rs` compares the two).
pub fn variable(name: &str) -> String {
    format!("SECRET_ARN_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// A secret's value. It never prints: `Debug` and `Display` show `<redacted>`, so a value in a
/// struct that is logged or formatted into an error stays out of the log. [`expose`] is the
/// one way to the text, and reads as such where it is used.
///
/// [`expose`]: SecretValue::expose
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<str>);

impl SecretValue {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the code that uses it (a key, a pepper).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The declared secrets of one function: their ARNs, the client and the cache. Built once per
/// process (in `main`, next to the function's state) and shared by every request.
pub struct Secrets {
    client: Client,
    ttl: Duration,
    /// Declared name -> ARN; `None` when the variable is missing (the failure is the request's).
    arns: HashMap<&'static str, Option<String>>,
    cache: Mutex<HashMap<&'static str, (Instant, SecretValue)>>,
}

impl Secrets {
    /// The secrets `names` (the function's declaration) from the process environment, read
    /// through a client built from `sdk`. Fails only on a malformed TTL.
    pub fn from_env(sdk: &SdkConfig, names: &[&'static str]) -> Result<Self, ServiceError> {
        Self::from_lookup(Client::new(sdk), names, |name| std::env::var(name).ok())
    }

    /// [`Secrets::from_env`] with the variables read through `lookup` and a given client, so
    /// tests need not touch the process environment.
    pub fn from_lookup(
        client: Client,
        names: &[&'static str],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServiceError> {
        let set = lookup(TTL_VARIABLE).filter(|t| !t.trim().is_empty());
        let ttl = crate::config::seconds(TTL_VARIABLE, set.as_deref(), 1..=86_400)?
            .unwrap_or(DEFAULT_TTL);
        let arns = names
            .iter()
            .map(|name| (*name, lookup(&variable(name)).filter(|a| !a.is_empty())))
            .collect();
        Ok(Self {
            client,
            ttl,
            arns,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The value of the declared secret `name`: the cached one while younger than the TTL,
    /// else read again. An error is for this request only (nothing is cached for it).
    pub async fn get(&self, name: &'static str) -> Result<SecretValue, ServiceError> {
        if let Some((read_at, value)) = self.cache().get(name)
            && read_at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = self.read(name).await?;
        self.cache().insert(name, (Instant::now(), value.clone()));
        Ok(value)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, (Instant, SecretValue)>> {
        // A panic while holding the lock leaves only a map of values behind, still valid.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn read(&self, name: &'static str) -> Result<SecretValue, ServiceError> {
        let fault = |reason: String| {
            ServiceError::internal(
                "reading a declared secret",
                format!("secret `{name}`: {reason}"),
            )
        };
        let arn = match self.arns.get(name) {
            None => {
                return Err(fault(
                    "not declared by this function: add it to `secrets` in its manifest".into(),
                ));
            }
            Some(None) => {
                return Err(fault(format!(
                    "{} is not set: deploy the function with its declaration",
                    variable(name)
                )));
            }
            Some(Some(arn)) => arn,
        };
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| {
                let not_found = error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                fault(if not_found {
                    format!("has no value (or does not exist): set it with `cargo xtask secret set {name}`")
                } else {
                    format!("Secrets Manager refused or failed: {}", DisplayErrorContext(&error))
                })
            })?;
        let value = output
            .secret_string()
            .ok_or_else(|| fault("holds no text value (only binary)".into()))?;
        Ok(SecretValue::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_value_never_prints() {
        let value = SecretValue::new("hunter2-correct-horse");
        let shown = format!("{value} {value:?} {:?} {:#?}", Some(&value), [&value]);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(value.expose(), "hunter2-correct-horse");
    }

    #[test]
    fn the_ttl_is_configurable_and_checked() {
        let client = || {
            let config = aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .build();
            Client::from_conf(config)
        };
        let with = |ttl: Option<&str>| {
            let ttl = ttl.map(str::to_owned);
            Secrets::from_lookup(client(), &["payments-key"], move |name| {
                (name == TTL_VARIABLE).then(|| ttl.clone()).flatten()
            })
        };
        assert_eq!(with(None).unwrap().ttl, DEFAULT_TTL);
        assert_eq!(with(Some("2")).unwrap().ttl, Duration::from_secs(2));
        for bad in ["0", "-1", "5m", "86401"] {
            let error = with(Some(bad)).err().expect("refused");
            assert!(error.to_string().contains(TTL_VARIABLE), "{error}");
        }
    }
}
