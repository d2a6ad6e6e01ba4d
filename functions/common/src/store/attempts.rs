//! Log-in attempts per e-mail address, counted in a fixed window so that password guessing is
//! slowed down without a lasting lock-out (numbers and reasons: `docs/security.md`).
//!
//! The counters live in the sessions table under keys no token hash can take (`login#` and
//! the SHA-256 of the address), expire through the same TTL attribute, and carry no `user_id`,
//! so the `by-user` index never sees them. Every attempt is counted before the password is
//! checked, with one atomic update: concurrent guesses cannot slip in under the limit.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::dynamo::sdk_error;
use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::token::TokenHash;

/// Attempts allowed per address and window; the next one is refused until the window ends.
pub const MAX_ATTEMPTS: u64 = 10;
/// Window length: also the longest an attacker can keep the owner of an address out.
pub const WINDOW: Duration = Duration::from_secs(600);

/// Whether an attempt may go on to the password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit: retry after this many seconds (at least 1).
    Refused {
        retry_after: u64,
    },
}

/// Repository for the counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LoginAttempts {
    client: Client,
    table: String,
}

/// The counter's key for a normalised address. Token hashes are bare hex, so the prefix keeps
/// the two apart; hashing keeps addresses that belong to nobody out of the table.
fn key(email: &str) -> HashMap<String, AttributeValue> {
    let hash = TokenHash::of(email.as_bytes());
    HashMap::from([(
        "token_hash".to_owned(),
        AttributeValue::S(format!("login#{}", hash.as_str())),
    )])
}

fn number(value: Option<&AttributeValue>) -> Option<i64> {
    value?.as_n().ok()?.parse().ok()
}

impl LoginAttempts {
    /// A repository over the table named `table` (the sessions table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Counts one attempt for `email` (normalised) and says whether it may proceed.
    pub async fn admit(&self, email: &str) -> Result<Admission, ServiceError> {
        // A window that has ended but not yet been removed by TTL is restarted; two racing
        // restarts make at most one extra attempt count, which only errs on the safe side.
        for _ in 0..3 {
            let now = Timestamp::now().epoch_seconds();
            if let Some((attempts, ends)) = self.count(email, now).await? {
                return Ok(admission(attempts, ends, now));
            }
            if self.restart(email, now).await? {
                return Ok(Admission::Allowed);
            }
        }
        Err(ServiceError::TransactionConflict)
    }

    /// Adds one to a live window (or opens one); `None` when the stored window has ended.
    async fn count(&self, email: &str, now: i64) -> Result<Option<(u64, i64)>, ServiceError> {
        let ends = now + WINDOW.as_secs() as i64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(email)))
            .update_expression(
                "ADD attempts :one SET expires_at = if_not_exists(expires_at, :ends)",
            )
            .condition_expression("attribute_not_exists(expires_at) OR expires_at > :now")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":ends", AttributeValue::N(ends.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                let attempts = number(item.get("attempts")).unwrap_or(1);
                let ends = number(item.get("expires_at")).unwrap_or(ends);
                Ok(Some((u64::try_from(attempts).unwrap_or(u64::MAX), ends)))
            }
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(sdk_error("count log-in attempt", error)),
        }
    }

    /// Replaces an ended window with a new one holding this attempt; `false` if another
    /// request restarted it first (the caller counts again).
    async fn restart(&self, email: &str, now: i64) -> Result<bool, ServiceError> {
        let mut item = key(email);
        item.insert("attempts".to_owned(), AttributeValue::N("1".to_owned()));
        item.insert(
            "expires_at".to_owned(),
            AttributeValue::N((now + WINDOW.as_secs() as i64).to_string()),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("expires_at <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(sdk_error("restart log-in window", error)),
        }
    }

    /// Forgets the attempts for `email` after a successful log-in.
    pub async fn clear(&self, email: &str) -> Result<(), ServiceError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(email)))
            .send()
            .await
            .map_err(|e| sdk_error("clear log-in attempts", e))?;
        Ok(())
    }
}

fn admission(attempts: u64, ends: i64, now: i64) -> Admission {
    if attempts <= MAX_ATTEMPTS {
        Admission::Allowed
    } else {
        Admission::Refused {
            retry_after: u64::try_from(ends - now).unwrap_or(0).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_after_the_limit_waits_for_the_window_to_end() {
        assert_eq!(admission(1, 1_600, 1_000), Admission::Allowed);
        assert_eq!(admission(MAX_ATTEMPTS, 1_600, 1_000), Admission::Allowed);
        assert_eq!(
            admission(MAX_ATTEMPTS + 1, 1_600, 1_000),
            Admission::Refused { retry_after: 600 }
        );
        assert_eq!(
            admission(MAX_ATTEMPTS + 5, 1_000, 1_000),
            Admission::Refused { retry_after: 1 }
        );
    }

    #[test]
    fn counter_keys_never_look_like_token_hashes() {
        let key = key("ada@example.com");
        let text = key["token_hash"].as_s().unwrap();
        assert!(text.starts_with("login#"));
        assert_eq!(text.len(), "login#".len() + 64);
    }
}
