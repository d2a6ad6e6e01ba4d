//! The users table: user items plus one `EMAIL#` item per address that makes e-mail
//! uniqueness atomic (both written in one transaction, each conditional on not existing).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
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
    /// a log-in commits its session with it, so a log-in racing a delete, a password change or
    /// a log-out-everywhere never leaves a session behind.
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

    /// Raises the user's session generation: every session of the user stops authenticating
    /// with this write. [`ServiceError::NotFound`] when the user is gone.
    pub async fn revoke_sessions(&self, id: Uuid) -> Result<(), ServiceError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_key(id))))
            .update_expression(
                "SET session_generation = if_not_exists(session_generation, :zero) + :one",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":zero", AttributeValue::N("0".to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(ServiceError::NotFound("user"))
            }
            Err(error) => Err(sdk_error("revoke sessions", error)),
        }
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(user_key(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get user", e))?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item::<_, UserItem>(item)
                    .map(UserRecord::from)
                    .map_err(|e| ServiceError::internal("decode user item", e))
            })
            .transpose()
    }

    /// Finds a user by normalised e-mail through the uniqueness item.
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
    /// `keep` (the caller's session, re-stamped to a new generation) commits with it; if its
    /// condition fails the caller's session ended meanwhile: [`ServiceError::Unauthenticated`].
    pub async fn replace(
        &self,
        current: &UserRecord,
        updated: &UserRecord,
        keep: Option<TransactWriteItem>,
    ) -> Result<(), ServiceError> {
        let mut items = vec![self.put_if_unchanged(updated, current)?];
        let moves_email = current.email != updated.email;
        if moves_email {
            items.push(self.put_if_absent(to_item(EmailItem::for_user(updated))?)?);
            items.push(self.delete_email_of(current)?);
        }
        let kept = items.len();
        items.extend(keep);
        match transact(&self.client, "update user", items).await? {
            Ok(()) => Ok(()),
            Err(Cancellation::ConditionFailed(1)) if moves_email => Err(ServiceError::EmailTaken),
            Err(Cancellation::ConditionFailed(i)) if i == kept => {
                Err(ServiceError::Unauthenticated)
            }
            Err(Cancellation::ConditionFailed(_)) => Err(ServiceError::VersionConflict),
            Err(other) => Err(ServiceError::internal("update user", format!("{other:?}"))),
        }
    }

    /// Deletes the user and its `EMAIL#` item in one transaction, if the stored version is
    /// still `user.version` ([`ServiceError::VersionConflict`] otherwise).
    pub async fn delete(&self, user: &UserRecord) -> Result<(), ServiceError> {
        let delete_user = built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(user.id))))
                .condition_expression("version = :expected")
                .expression_attribute_values(
                    ":expected",
                    AttributeValue::N(user.version.to_string()),
                )
                .build(),
        )?;
        let items = vec![
            TransactWriteItem::builder().delete(delete_user).build(),
            self.delete_email_of(user)?,
        ];
        match transact(&self.client, "delete user", items).await? {
            Ok(()) => Ok(()),
            Err(Cancellation::ConditionFailed(_)) => Err(ServiceError::VersionConflict),
            Err(other) => Err(ServiceError::internal("delete user", format!("{other:?}"))),
        }
    }
}
