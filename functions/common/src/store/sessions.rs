//! The sessions table: one item per token hash, with a `by-user` index for logging a user out
//! everywhere and for removing a deleted user's sessions.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::BY_USER_INDEX;
use super::dynamo::{Cancellation, built, generation_is, sdk_error, transact};
use crate::error::ServiceError;
use crate::records::{SessionItem, SessionRecord};
use crate::token::TokenHash;

/// Repository for sessions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionStore {
    client: Client,
    table: String,
}

fn key(hash: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("token_hash".to_owned(), AttributeValue::S(hash.to_owned()))])
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
        let items = vec![user_check, TransactWriteItem::builder().put(put).build()];
        match transact(&self.client, "start session", items).await? {
            Ok(()) => Ok(true),
            Err(Cancellation::ConditionFailed(0)) => Ok(false),
            Err(other) => Err(ServiceError::internal(
                "start session",
                format!("{other:?}"),
            )),
        }
    }

    /// A transaction item moving one session from generation `from` to `to`, if it still
    /// exists at `from`: the session that changed the password survives the revocation.
    /// It writes nothing but `generation`, so it cannot start or extend a session.
    pub fn restamp(
        &self,
        session: &SessionRecord,
        to: u64,
    ) -> Result<TransactWriteItem, ServiceError> {
        let update = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(session.token_hash.as_str())))
                .update_expression("SET generation = :to")
                .condition_expression(format!(
                    "attribute_exists(token_hash) AND {}",
                    generation_is("generation", session.generation)
                ))
                .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
                .expression_attribute_values(
                    ":gen",
                    AttributeValue::N(session.generation.to_string()),
                )
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
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

    /// Deletes the stored sessions of a user, for tidiness only: revocation is the user's
    /// session generation (or the user's absence), which takes effect before this runs. The
    /// `by-user` index is eventually consistent, so a session started a moment ago may be
    /// missed here; it no longer authenticates, and TTL removes it. Returns how many it found.
    pub async fn delete_all_for_user(&self, user_id: Uuid) -> Result<usize, ServiceError> {
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
        // function that may put sessions may mint them.
        for hash in &hashes {
            self.delete_key(hash).await?;
        }
        Ok(hashes.len())
    }
}
