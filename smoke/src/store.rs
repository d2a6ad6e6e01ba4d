//! Reads and deletes the service's items directly in DynamoDB.
//!
//! The checks here are the point of smoke: the API saying "201" proves little; the item being
//! in the table with the password only as a peppered argon2id hash and the session only under
//! the token's SHA-256 proves the deployment stores what it claims.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::target::Target;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB access for the two tables.
#[derive(Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    pub users_table: String,
    pub sessions_table: String,
}

impl Store {
    pub fn new(client: aws_sdk_dynamodb::Client, target: &Target) -> Store {
        Store {
            client,
            users_table: target.users_table.clone(),
            sessions_table: target.sessions_table.clone(),
        }
    }

    /// Strongly consistent read, so an item written a moment ago is seen.
    pub async fn get(&self, table: &str, key: &str, value: &str) -> Result<Option<Item>, String> {
        self.client
            .get_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| {
                format!(
                    "GetItem {table} {key}={value}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })
    }

    pub async fn user(&self, id: &str) -> Result<Option<Item>, String> {
        self.get(&self.users_table, "pk", &format!("USER#{id}"))
            .await
    }

    pub async fn email(&self, email: &str) -> Result<Option<Item>, String> {
        self.get(
            &self.users_table,
            "pk",
            &format!("EMAIL#{}", email.to_lowercase()),
        )
        .await
    }

    /// A user's log-out-everywhere marker in the sessions table (the sessions function writes
    /// it; it outlives the user, so smoke removes the markers of its own users).
    pub async fn logout_marker(&self, user_id: &str) -> Result<Option<Item>, String> {
        self.get(&self.sessions_table, "token_hash", &logout_key(user_id))
            .await
    }

    pub async fn delete_logout_marker(&self, user_id: &str) -> Result<(), String> {
        self.delete(&self.sessions_table, "token_hash", &logout_key(user_id))
            .await
    }

    /// Forgets the log-in attempt counter of an address (`service_common::store::attempts`).
    pub async fn delete_login_attempts(&self, email: &str) -> Result<(), String> {
        let key = format!("login#{}", token_hash(&email.trim().to_ascii_lowercase()));
        self.delete(&self.sessions_table, "token_hash", &key).await
    }

    pub async fn session(&self, token: &str) -> Result<Option<Item>, String> {
        self.get(&self.sessions_table, "token_hash", &token_hash(token))
            .await
    }

    pub async fn delete(&self, table: &str, key: &str, value: &str) -> Result<(), String> {
        self.client
            .delete_item()
            .table_name(table)
            .key(key, AttributeValue::S(value.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "DeleteItem {table} {key}={value}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })
    }

    /// Token hashes of every session of a user, through the `by-user` index.
    pub async fn session_hashes_of(&self, user_id: &str) -> Result<Vec<String>, String> {
        let mut hashes = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.sessions_table)
                .index_name("by-user")
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", AttributeValue::S(user_id.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "Query {} by-user: {}",
                        self.sessions_table,
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
            hashes.extend(
                out.items()
                    .iter()
                    .filter_map(|i| s(i, "token_hash").map(str::to_string)),
            );
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(hashes)
    }

    /// The users-table items of one user the run registered (or tried to), read by key:
    /// `EMAIL#<email>` and `USER#<id>`, with the id from the API or, failing that, from the
    /// `EMAIL#` item. By key, never a Scan: the deploy role that runs smoke may read only the
    /// items it knows the keys of, not every e-mail address and password hash in the table.
    pub async fn items_of(&self, email: &str, id: Option<&str>) -> Result<Vec<Item>, String> {
        let mut items = Vec::new();
        let by_email = self.email(email).await?;
        let id = id.map(str::to_string).or_else(|| {
            by_email
                .as_ref()
                .and_then(|i| s(i, "user_id").map(str::to_string))
        });
        items.extend(by_email);
        if let Some(id) = id {
            items.extend(self.user(&id).await?);
        }
        Ok(items)
    }
}

/// How the service keys a session: lowercase hex SHA-256 of the token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A string attribute.
pub fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A number attribute.
pub fn n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks a user item against what the API returned and the password that was sent.
pub fn check_user_item(
    item: &Item,
    id: &str,
    email: &str,
    name: &str,
    version: i64,
    password: &str,
) -> Result<(), String> {
    let expect = |attr: &str, want: &str| -> Result<(), String> {
        match s(item, attr) {
            Some(got) if got == want => Ok(()),
            got => Err(format!(
                "user item attribute `{attr}` is {got:?}, expected {want:?}"
            )),
        }
    };
    expect("pk", &format!("USER#{id}"))?;
    expect("kind", "user")?;
    expect("id", id)?;
    expect("email", &email.to_lowercase())?;
    expect("name", name)?;
    if n(item, "version") != Some(version) {
        return Err(format!(
            "user item `version` is {:?}, expected {version}",
            item.get("version")
        ));
    }
    for attr in ["created_at", "updated_at"] {
        if s(item, attr).is_none_or(|v| !v.ends_with('Z') && !v.ends_with("+00:00")) {
            return Err(format!(
                "user item `{attr}` is {:?}, expected an RFC 3339 UTC timestamp",
                item.get(attr)
            ));
        }
    }
    check_password_hash(item, password)
}

/// The password must be stored only as a peppered argon2id PHC hash, never in clear: argon2id,
/// naming the pepper key it was made with (`keyid`: the function read its declared secret
/// `password-peppers` and used it), and not verifying without that pepper (the same password,
/// salt and parameters give another hash, so a dump of the table verifies nothing). Smoke never
/// reads the secret: that the hash verifies with the pepper, its log-in steps prove.
pub fn check_password_hash(item: &Item, password: &str) -> Result<(), String> {
    for (attr, value) in item {
        if let AttributeValue::S(text) = value
            && text.contains(password)
        {
            return Err(format!(
                "attribute `{attr}` contains the plaintext password"
            ));
        }
    }
    let hash = s(item, "password_hash").ok_or("user item has no `password_hash`")?;
    let parsed =
        PasswordHash::new(hash).map_err(|e| format!("`password_hash` is not a PHC string: {e}"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "`password_hash` uses {}, expected argon2id",
            parsed.algorithm
        ));
    }
    if parsed.params.get("keyid").is_none() {
        return Err(
            "`password_hash` names no pepper key (`keyid`): the function hashed without its \
             secret `password-peppers`"
                .to_owned(),
        );
    }
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Err(
            "`password_hash` verifies without the pepper: the function did not mix its secret in"
                .to_owned(),
        ),
        Err(_) => Ok(()),
    }
}

/// The key of a user's log-out-everywhere marker (`service_common::records::logout_key`).
fn logout_key(user_id: &str) -> String {
    format!("logout#{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_tokens_like_the_service() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// A hash without a key id, or one that verifies without a pepper, is refused; a peppered
    /// one passes (smoke cannot verify it: it never reads the secret).
    #[test]
    fn accepts_only_a_peppered_hash() {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        use argon2::{Algorithm, ParamsBuilder, Version};
        let password = "peppered password";
        let salt = SaltString::encode_b64(b"smoke-salt-01234").unwrap();
        let hash_item = |pepper: Option<&[u8]>, keyid: bool| {
            let mut params = ParamsBuilder::new();
            params.m_cost(64).t_cost(1).p_cost(1);
            if keyid {
                params.keyid(argon2::KeyId::new(b"k1").unwrap());
            }
            let params = params.build().unwrap();
            let argon = match pepper {
                Some(key) => {
                    Argon2::new_with_secret(key, Algorithm::Argon2id, Version::V0x13, params)
                        .unwrap()
                }
                None => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            };
            let phc = argon.hash_password(password.as_bytes(), &salt).unwrap();
            Item::from([("password_hash".into(), AttributeValue::S(phc.to_string()))])
        };
        check_password_hash(&hash_item(Some(&[7; 32]), true), password).unwrap();
        let e = check_password_hash(&hash_item(None, false), password).unwrap_err();
        assert!(e.contains("names no pepper key"), "{e}");
        let e = check_password_hash(&hash_item(None, true), password).unwrap_err();
        assert!(e.contains("verifies without the pepper"), "{e}");
    }

    #[test]
    fn rejects_plaintext_and_non_argon2id_passwords() {
        let mut item = Item::new();
        item.insert(
            "password_hash".into(),
            AttributeValue::S("hunter2hunter2".into()),
        );
        assert!(
            check_password_hash(&item, "hunter2hunter2")
                .unwrap_err()
                .contains("plaintext")
        );
        item.insert(
            "password_hash".into(),
            AttributeValue::S(
                "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            ),
        );
        assert!(
            check_password_hash(&item, "other-password")
                .unwrap_err()
                .contains("argon2id")
        );
    }
}
