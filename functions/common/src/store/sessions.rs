//! The sessions table: one item per token hash, with a `by-user` index for logging a user out
//! everywhere and for removing a deleted user's sessions, and one log-out-everywhere marker per
//! user who ever used it ([`crate::records::logout_key`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::BY_USER_INDEX;
use super::dynamo::{Cancellation, built, generation_is, sdk_error, transact};
use crate::error::ServiceError;
use crate::records::{SessionItem, SessionRecord, logout_key};
use crate::token::{SessionToken, TokenHash};

/// What a live session of a user carries now: the user's session generation and count of
/// log-outs everywhere ([`crate::auth::caller`] compares a session's with these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    pub generation: u64,
    pub logouts: u64,
}

/// Repository for sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionStore {
    client: Client,
    table: String,
}

fn key(hash: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("token_hash".to_owned(), AttributeValue::S(hash.to_owned()))])
}

/// The attribute of a log-out-everywhere marker that counts the user's log-outs everywhere.
const LOGOUTS: &str = "logouts";

/// The condition that a user's marker still holds `count` (placeholder `:logouts`); no marker
/// counts as zero.
fn logouts_are(count: u64) -> String {
    if count == 0 {
        format!("(attribute_not_exists({LOGOUTS}) OR {LOGOUTS} = :logouts)")
    } else {
        format!("{LOGOUTS} = :logouts")
    }
}

/// The one password check a session may make, taken before the check runs
/// ([`SessionStore::claim_reauthentication`]). Held until the change it authorises commits
/// ([`SessionStore::restamp`], [`SessionStore::release_within`]) or the session ends.
#[derive(Debug)]
pub struct ReauthClaim {
    hash: TokenHash,
    generation: u64,
    /// Random, so a claim can only be released by the request that took it.
    nonce: String,
}

/// The attribute that holds a session's [`ReauthClaim`].
const REAUTH_CLAIM: &str = "reauth_claim";

fn claim_values(claim: &ReauthClaim, to: Option<u64>) -> HashMap<String, AttributeValue> {
    let mut values = HashMap::from([
        (":claim".to_owned(), AttributeValue::S(claim.nonce.clone())),
        (
            ":gen".to_owned(),
            AttributeValue::N(claim.generation.to_string()),
        ),
    ]);
    if let Some(to) = to {
        values.insert(":to".to_owned(), AttributeValue::N(to.to_string()));
    }
    values
}

impl SessionStore {
    /// A repository for the table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores a new session in one transaction with `user_check`
    /// ([`super::UserStore::still_current`]). `false` when the check failed: the user was
    /// deleted, or its sessions revoked, after the password was verified. The key is a hash of
    /// 256 random bits, so the session itself needs no condition.
    pub async fn start(
        &self,
        session: &SessionRecord,
        user_check: TransactWriteItem,
    ) -> Result<bool, ServiceError> {
        let item = serde_dynamo::to_item(SessionItem::from(session))
            .map_err(|e| ServiceError::internal("serialise session", e))?;
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build(),
        )?;
        let items = vec![
            user_check,
            self.logouts_unchanged(session.user_id, session.logout_generation)?,
            TransactWriteItem::builder().put(put).build(),
        ];
        match transact(&self.client, "start session", items).await? {
            Ok(()) => Ok(true),
            Err(Cancellation::ConditionFailed(0 | 1)) => Ok(false),
            Err(other) => Err(ServiceError::internal(
                "start session",
                format!("{other:?}"),
            )),
        }
    }

    /// A transaction item moving the claiming session from its generation to `to`, if it
    /// still exists, still holds `claim` and is still at that generation: the session that
    /// changed the password survives the revocation. It releases the claim, and writes nothing
    /// but `generation` and the claim, so it cannot start or extend a session.
    pub fn restamp(&self, claim: &ReauthClaim, to: u64) -> Result<TransactWriteItem, ServiceError> {
        self.claim_update(claim, "SET generation = :to REMOVE reauth_claim", Some(to))
    }

    /// A transaction item that releases `claim`, and fails the transaction unless the session
    /// still exists at its generation and holds the claim: a change authorised by the password
    /// check commits only while the session that made the check is live.
    pub fn release_within(&self, claim: &ReauthClaim) -> Result<TransactWriteItem, ServiceError> {
        self.claim_update(claim, "REMOVE reauth_claim", None)
    }

    fn claim_update(
        &self,
        claim: &ReauthClaim,
        expression: &str,
        to: Option<u64>,
    ) -> Result<TransactWriteItem, ServiceError> {
        let update = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(claim.hash.as_str())))
                .update_expression(expression)
                .condition_expression(format!(
                    "attribute_exists(token_hash) AND {REAUTH_CLAIM} = :claim AND {}",
                    generation_is("generation", claim.generation)
                ))
                .set_expression_attribute_values(Some(claim_values(claim, to)))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Takes the session's one password check: a conditional write on the session item that
    /// only one request can win, before any password is hashed. Every other request on the
    /// same token, concurrent or later, gets [`ServiceError::Unauthenticated`]; so does one
    /// whose session ended or moved to another generation meanwhile.
    pub async fn claim_reauthentication(
        &self,
        session: &SessionRecord,
    ) -> Result<ReauthClaim, ServiceError> {
        let claim = ReauthClaim {
            hash: session.token_hash.clone(),
            generation: session.generation,
            nonce: SessionToken::generate()?.hash().as_str().to_owned(),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(claim.hash.as_str())))
            .update_expression("SET reauth_claim = :claim")
            .condition_expression(format!(
                "attribute_exists(token_hash) AND attribute_not_exists({REAUTH_CLAIM}) AND {}",
                generation_is("generation", claim.generation)
            ))
            .set_expression_attribute_values(Some(claim_values(&claim, None)))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(claim),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(ServiceError::Unauthenticated)
            }
            Err(error) => Err(sdk_error("claim re-authentication", error)),
        }
    }

    /// Gives `claim` back after a verified password whose change did not commit (a version
    /// conflict, a taken address), so the session may try again. Best effort: a claim left
    /// behind only refuses that session's next change of e-mail, password or deletion (401;
    /// log in again), it never allows one.
    pub async fn release(&self, claim: ReauthClaim) {
        let released = match self.release_within(&claim) {
            Ok(item) => transact(&self.client, "release re-authentication claim", vec![item])
                .await
                .map(|outcome| outcome.map_err(|c| format!("{c:?}"))),
            Err(error) => Err(error),
        };
        match released {
            Ok(Ok(())) => {}
            Ok(Err(cancellation)) => {
                tracing::warn!(%cancellation, "re-authentication claim not released")
            }
            Err(error) => tracing::warn!(
                error = %crate::logging::error_chain(&error),
                "re-authentication claim not released"
            ),
        }
    }

    /// The user's count of log-outs everywhere (strongly consistent; no marker is 0).
    pub async fn logouts(&self, user_id: Uuid) -> Result<u64, ServiceError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(&logout_key(user_id))))
            .consistent_read(true)
            .projection_expression(LOGOUTS)
            .send()
            .await
            .map_err(|e| sdk_error("get log-out marker", e))?;
        Ok(output
            .item
            .as_ref()
            .and_then(|item| item.get(LOGOUTS))
            .and_then(|value| value.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Logs the user out everywhere: one write to the user's marker, after which no session
    /// started before it authenticates ([`crate::auth::caller`] compares the counts).
    pub async fn log_out_everywhere(&self, user_id: Uuid) -> Result<(), ServiceError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&logout_key(user_id))))
            .update_expression("ADD logouts :one")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::None)
            .send()
            .await
            .map_err(|e| sdk_error("log out everywhere", e))?;
        Ok(())
    }

    /// A transaction item that holds only while the user's count of log-outs everywhere is
    /// still `count`: a log-in or a deletion racing a log-out-everywhere loses.
    pub fn logouts_unchanged(
        &self,
        user_id: Uuid,
        count: u64,
    ) -> Result<TransactWriteItem, ServiceError> {
        let check = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(&logout_key(user_id))))
                .condition_expression(logouts_are(count))
                .expression_attribute_values(":logouts", AttributeValue::N(count.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Reads a session by token hash (strongly consistent: log-out must take effect at once).
    /// Expiry and generation are the caller's checks: the item may outlive both until TTL
    /// removes it.
    pub async fn get(&self, hash: &TokenHash) -> Result<Option<SessionRecord>, ServiceError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(hash.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get session", e))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item::<_, SessionItem>(item)
                    .map(SessionRecord::from)
                    .map_err(|e| ServiceError::internal("decode session item", e))
            })
            .transpose()
    }

    /// Deletes one session (idempotent).
    pub async fn delete(&self, hash: &TokenHash) -> Result<(), ServiceError> {
        self.delete_key(hash.as_str()).await
    }

    async fn delete_key(&self, hash: &str) -> Result<(), ServiceError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(hash)))
            .send()
            .await
            .map_err(|e| sdk_error("delete session", e))?;
        Ok(())
    }

    /// Deletes the stored sessions of a user that no longer authenticate, for tidiness only:
    /// revocation is the user's session generation, log-out count or absence, which took
    /// effect before this runs. `live` is what a live session of the user carries now (read
    /// strongly consistent by the caller); `None`: the user is gone and no session of theirs
    /// is live. Each delete is conditional on the session carrying less, so a session started
    /// or re-stamped since stays, and running it again deletes nothing more. The `by-user`
    /// index is eventually consistent, so a session started a moment ago may be missed here;
    /// it no longer authenticates, and TTL removes it. Returns how many it deleted.
    pub async fn sweep(&self, user_id: Uuid, live: Option<Live>) -> Result<usize, ServiceError> {
        // Sessions from before generations and log-out counts existed carry neither: 0.
        let condition = match live {
            None => Some("attribute_exists(token_hash)".to_owned()),
            Some(Live {
                generation,
                logouts,
            }) => {
                let mut older = Vec::new();
                if generation > 0 {
                    older.push("attribute_not_exists(generation) OR generation < :generation");
                }
                if logouts > 0 {
                    older.push(
                        "attribute_not_exists(logout_generation) OR logout_generation < :logouts",
                    );
                }
                // Nothing was ever revoked: every stored session is live (or merely expired).
                (!older.is_empty()).then(|| older.join(" OR "))
            }
        };
        let Some(condition) = condition else {
            return Ok(0);
        };
        let values: HashMap<String, AttributeValue> = live
            .map(|live| {
                [(":generation", live.generation), (":logouts", live.logouts)]
                    .into_iter()
                    .filter(|(name, _)| condition.contains(name))
                    .map(|(name, n)| (name.to_owned(), AttributeValue::N(n.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let mut hashes = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_USER_INDEX)
                .key_condition_expression("user_id = :user")
                .expression_attribute_values(":user", AttributeValue::S(user_id.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("query sessions of user", e))?;
            for item in output.items.unwrap_or_default() {
                if let Some(AttributeValue::S(hash)) = item.get("token_hash") {
                    hashes.push(hash.clone());
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        // One DeleteItem each, not BatchWriteItem: that action could also put items, and a
        // function that may put sessions may mint them (nor could it hold a condition).
        let mut deleted = 0;
        for hash in &hashes {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(hash)))
                .condition_expression(&condition)
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .send()
                .await;
            match result {
                Ok(_) => deleted += 1,
                // Gone already, or a session that still authenticates: not the sweep's.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(error) => return Err(sdk_error("sweep session", error)),
            }
        }
        Ok(deleted)
    }
}
