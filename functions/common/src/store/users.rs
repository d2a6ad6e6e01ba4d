//! The users table: user items plus one `EMAIL#` item per address that makes e-mail
//! uniqueness atomic (both written in one transaction, each conditional on not existing).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem,
};
use uuid::Uuid;

use super::BY_KIND_INDEX;
use super::cursor::Cursor;
use super::dynamo::{Cancellation, built, generation_is, sdk_error, transact};
use crate::error::ServiceError;
use crate::records::{EmailItem, USER_KIND, UserItem, UserRecord, email_key, user_key};

/// One page of the user list.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Repository for users. Cheap to clone (the SDK client is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct UserStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn to_item<T: serde::Serialize>(value: T) -> Result<Item, ServiceError> {
    serde_dynamo::to_item(value).map_err(|e| ServiceError::internal("serialise item", e))
}

fn key(pk: String) -> Item {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk))])
}

impl UserStore {
    /// A repository for the table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn put_if_absent(&self, item: Item) -> Result<TransactWriteItem, ServiceError> {
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Writes `user` over `current` if neither its version nor its session generation moved:
    /// a profile write racing a log-out-everywhere must not put the old generation back.
    fn put_if_unchanged(
        &self,
        user: &UserRecord,
        current: &UserRecord,
    ) -> Result<TransactWriteItem, ServiceError> {
        let condition = format!(
            "attribute_exists(pk) AND version = :expected AND {}",
            generation_is("session_generation", current.session_generation)
        );
        let put = built(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(UserItem::from(user))?))
                .condition_expression(condition)
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(current.version.to_string()),
                )
                .expression_attribute_values(
                    ":gen",
                    AttributeValue::N(current.session_generation.to_string()),
                )
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction item that holds only while `user` exists with the same session generation:
    /// a log-in commits its session with it, so a log-in racing a delete or a password change
    /// never leaves a session behind (log-out-everywhere is the sessions table's marker,
    /// [`super::SessionStore::logouts_unchanged`]).
    pub fn still_current(&self, user: &UserRecord) -> Result<TransactWriteItem, ServiceError> {
        let check = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(user.id))))
                .condition_expression(format!(
                    "attribute_exists(pk) AND {}",
                    generation_is("session_generation", user.session_generation)
                ))
                .expression_attribute_values(
                    ":gen",
                    AttributeValue::N(user.session_generation.to_string()),
                )
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn delete_email_of(&self, user: &UserRecord) -> Result<TransactWriteItem, ServiceError> {
        let delete = built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(email_key(&user.email))))
                .condition_expression("user_id = :id")
                .expression_attribute_values(":id", AttributeValue::S(user.id.to_string()))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Registers a user: the user item and its `EMAIL#` item in one transaction.
    /// [`ServiceError::EmailTaken`] when the address is already registered.
    pub async fn create(&self, user: &UserRecord) -> Result<(), ServiceError> {
        let items = vec![
            self.put_if_absent(to_item(UserItem::from(user))?)?,
            self.put_if_absent(to_item(EmailItem::for_user(user))?)?,
        ];
        match transact(&self.client, "register user", items).await? {
            Ok(()) => Ok(()),
            Err(Cancellation::ConditionFailed(1)) => Err(ServiceError::EmailTaken),
            Err(other) => Err(ServiceError::internal(
                "register user",
                format!("unexpected cancellation {other:?} (user id collision?)"),
            )),
        }
    }

    /// Reads a user with a strongly consistent read (a client that just wrote expects to see it).
    pub async fn get(&self, id: Uuid) -> Result<Option<UserRecord>, ServiceError> {
        self.read(id, None, "get user")
            .await?
            .map(|item| {
                serde_dynamo::from_item::<_, UserItem>(item)
                    .map(UserRecord::from)
                    .map_err(|e| ServiceError::internal("decode user item", e))
            })
            .transpose()
    }

    /// A user's session generation alone (strongly consistent; `None`: no such user), for the
    /// session sweep, whose role may read nothing else of a user.
    pub async fn session_generation(&self, id: Uuid) -> Result<Option<u64>, ServiceError> {
        let item = self
            .read(id, Some("pk, session_generation"), "get session generation")
            .await?;
        Ok(item.map(|item| {
            item.get("session_generation")
                .and_then(|value| value.as_n().ok())
                .and_then(|n| n.parse().ok())
                // Items from before generations existed have none: generation 0.
                .unwrap_or(0)
        }))
    }

    /// A user item, strongly consistent, whole or only the attributes `projection` names.
    async fn read(
        &self,
        id: Uuid,
        projection: Option<&str>,
        context: &'static str,
    ) -> Result<Option<Item>, ServiceError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_key(id))))
            .consistent_read(true)
            .set_projection_expression(projection.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error(context, e))?;
        Ok(output.item)
    }

    /// Finds a user by normalised e-mail through the uniqueness item. Two strongly consistent
    /// reads whether or not the address is registered ([`Self::read_nobody`]).
    pub async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, ServiceError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(email_key(email))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get email item", e))?;
        let Some(item) = output.item else {
            self.read_nobody().await?;
            return Ok(None);
        };
        let email_item: EmailItem = serde_dynamo::from_item(item)
            .map_err(|e| ServiceError::internal("decode email item", e))?;
        self.get(email_item.user_id).await
    }

    /// Lists users oldest first through the `by-kind` index.
    pub async fn list(&self, limit: u32, after: Option<&Cursor>) -> Result<UserPage, ServiceError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_KIND_INDEX)
            .key_condition_expression("kind = :kind")
            .expression_attribute_values(":kind", AttributeValue::S(USER_KIND.to_owned()))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(after.map(Cursor::exclusive_start_key))
            .send()
            .await
            .map_err(|e| sdk_error("list users", e))?;
        let users = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item::<_, UserItem>(item)
                    .map(UserRecord::from)
                    .map_err(|e| ServiceError::internal("decode user item", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = match output.last_evaluated_key {
            Some(key) => Some(Cursor::from_last_evaluated_key(&key).ok_or_else(|| {
                ServiceError::internal("list users", "LastEvaluatedKey lacks an index attribute")
            })?),
            None => None,
        };
        Ok(UserPage { users, next })
    }

    /// Replaces `current` with `updated` if the stored version and session generation are
    /// still `current`'s. A changed e-mail moves the uniqueness item in the same transaction.
    /// `live` (the caller's session still live: its re-authentication claim, re-stamped or
    /// released) commits with it; if it fails, the caller's session ended meanwhile:
    /// [`ServiceError::Unauthenticated`], whatever else failed.
    pub async fn replace(
        &self,
        current: &UserRecord,
        updated: &UserRecord,
        live: Vec<TransactWriteItem>,
    ) -> Result<(), ServiceError> {
        let checks = live.len();
        let mut items = live;
        items.push(self.put_if_unchanged(updated, current)?);
        let moves_email = current.email != updated.email;
        if moves_email {
            items.push(self.put_if_absent(to_item(EmailItem::for_user(updated))?)?);
            items.push(self.delete_email_of(current)?);
        }
        match transact(&self.client, "update user", items).await? {
            Ok(()) => Ok(()),
            Err(Cancellation::ConditionFailed(i)) if i < checks => {
                Err(ServiceError::Unauthenticated)
            }
            Err(Cancellation::ConditionFailed(i)) if moves_email && i == checks + 1 => {
                Err(ServiceError::EmailTaken)
            }
            Err(Cancellation::ConditionFailed(_)) => Err(ServiceError::VersionConflict),
            Err(other) => Err(ServiceError::internal("update user", format!("{other:?}"))),
        }
    }

    /// Deletes the user and its `EMAIL#` item in one transaction with `live` (the caller's
    /// session still live), if the stored version and session generation are still `user`'s.
    /// [`ServiceError::Unauthenticated`] when `live` failed (the session ended or its user
    /// logged out everywhere), [`ServiceError::VersionConflict`] when the user item changed:
    /// the caller re-reads it to tell a profile edit from a password change.
    pub async fn delete(
        &self,
        user: &UserRecord,
        live: Vec<TransactWriteItem>,
    ) -> Result<(), ServiceError> {
        let delete_user = built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(user.id))))
                .condition_expression(format!(
                    "version = :expected AND {}",
                    generation_is("session_generation", user.session_generation)
                ))
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(user.version.to_string()),
                )
                .expression_attribute_values(
                    ":gen",
                    AttributeValue::N(user.session_generation.to_string()),
                )
                .build(),
        )?;
        let checks = live.len();
        let mut items = live;
        items.push(TransactWriteItem::builder().delete(delete_user).build());
        items.push(self.delete_email_of(user)?);
        match transact(&self.client, "delete user", items).await? {
            Ok(()) => Ok(()),
            Err(Cancellation::ConditionFailed(i)) if i < checks => {
                Err(ServiceError::Unauthenticated)
            }
            Err(Cancellation::ConditionFailed(_)) => Err(ServiceError::VersionConflict),
            Err(other) => Err(ServiceError::internal("delete user", format!("{other:?}"))),
        }
    }

    /// Replaces the password hash of user `id` with `upgraded` (the same password, hashed with
    /// the current pepper key) if it is still `verified`, the hash the log-in just verified
    /// against: a password change that committed meanwhile wins. Only the hash changes (not
    /// the version: the profile did not, and a concurrent edit conditioned on it must not fail
    /// for this). `false` when the hash had changed, or the user is gone.
    pub async fn upgrade_password_hash(
        &self,
        id: Uuid,
        verified: &str,
        upgraded: &str,
    ) -> Result<bool, ServiceError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_key(id))))
            .update_expression("SET password_hash = :upgraded")
            .condition_expression("password_hash = :verified")
            .expression_attribute_values(":upgraded", AttributeValue::S(upgraded.to_owned()))
            .expression_attribute_values(":verified", AttributeValue::S(verified.to_owned()))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("upgrade password hash", e)),
        }
    }

    /// Reads the item of a user id no user has, so that a log-in for an unknown address does
    /// the same DynamoDB work as one for a registered address (two strongly consistent reads):
    /// timing does not tell which addresses exist.
    async fn read_nobody(&self) -> Result<(), ServiceError> {
        self.get(Uuid::nil()).await.map(drop)
    }
}
