//! The sessions table: one item per token hash, with a `by-user` index for logging a user out
//! everywhere and for removing a deleted user's sessions.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use uuid::Uuid;

use super::BY_USER_INDEX;
use super::dynamo::{backoff, sdk_error};
use crate::error::ServiceError;
use crate::records::{SessionItem, SessionRecord};
use crate::token::TokenHash;

/// BatchWriteItem's limit of requests per call.
const BATCH_LIMIT: usize = 25;
/// Rounds of retrying `UnprocessedItems` before giving up.
const UNPROCESSED_RETRIES: u32 = 5;

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

    /// Stores a new session. The key is a hash of 256 random bits, so no condition is needed.
    pub async fn put(&self, session: &SessionRecord) -> Result<(), ServiceError> {
        let item = serde_dynamo::to_item(SessionItem::from(session))
            .map_err(|e| ServiceError::internal("serialise session", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("put session", e))?;
        Ok(())
    }

    /// Reads a session by token hash (strongly consistent: log-out must take effect at once).
    /// Expiry is the caller's check: the item may outlive `expires_at` until TTL removes it.
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
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(hash.as_str())))
            .send()
            .await
            .map_err(|e| sdk_error("delete session", e))?;
        Ok(())
    }

    /// Deletes every session of a user; returns how many there were.
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
        for chunk in hashes.chunks(BATCH_LIMIT) {
            self.delete_batch(chunk).await?;
        }
        Ok(hashes.len())
    }

    async fn delete_batch(&self, hashes: &[String]) -> Result<(), ServiceError> {
        let mut requests = hashes
            .iter()
            .map(|hash| {
                DeleteRequest::builder()
                    .set_key(Some(key(hash)))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(|e| ServiceError::internal("build delete request", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for attempt in 0..=UNPROCESSED_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| sdk_error("delete sessions", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(ServiceError::Throttled)
    }
}
