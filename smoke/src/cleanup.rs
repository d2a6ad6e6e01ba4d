//! Removes everything a run created, even after a failed step.
//!
//! The API is tried first (it is the path a real client takes, and it removes sessions too);
//! whatever it could not remove is deleted directly in DynamoDB. A final read of every item the
//! run's users could have (by key: their `EMAIL#` and `USER#` items and, through `by-user`,
//! their sessions) proves nothing is left.

use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use crate::api::Api;
use crate::report::{Report, Step};
use crate::store::{self, Store};

/// A user the run registered (or tried to).
#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub email: String,
    pub password: String,
    pub id: Option<String>,
    pub token: Option<String>,
    pub deleted: bool,
}

impl CreatedUser {
    pub fn new(email: &str, password: &str) -> CreatedUser {
        CreatedUser {
            email: email.to_string(),
            password: password.to_string(),
            id: None,
            token: None,
            deleted: false,
        }
    }
}

/// Everything the run may have created.
#[derive(Debug, Default)]
pub struct Created {
    pub users: Vec<CreatedUser>,
    /// Addresses the run tried to log in with that nobody registered: their log-in attempt
    /// counters are the run's to remove.
    pub probed: Vec<String>,
}

/// Cleans up and appends the cleanup steps to the report.
pub async fn run(api: &Api, store: &Store, created: &mut Created, report: &mut Report) {
    let started = Instant::now();
    let pending: Vec<CreatedUser> = created
        .users
        .iter()
        .filter(|u| !u.deleted)
        .cloned()
        .collect();
    let mut via_api = 0;
    let mut direct = 0;
    let mut errors = Vec::new();
    let tasks: Vec<_> = pending
        .into_iter()
        .map(|user| {
            let api = api.clone();
            let store = store.clone();
            tokio::spawn(async move { remove(&api, &store, &user).await })
        })
        .collect();
    for task in tasks {
        match task.await {
            Ok(Ok(Removed::Api)) => via_api += 1,
            Ok(Ok(Removed::Direct)) => direct += 1,
            Ok(Ok(Removed::Nothing)) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    // Log-out markers outlive their users, and log-in attempt counters their windows (until TTL):
    // remove those of every address and user this run touched.
    for id in created.users.iter().filter_map(|u| u.id.as_deref()) {
        if let Err(e) = store.delete_logout_marker(id).await {
            errors.push(e);
        }
    }
    let addresses = created.users.iter().map(|u| u.email.as_str());
    for email in addresses.chain(created.probed.iter().map(String::as_str)) {
        if let Err(e) = store.delete_login_attempts(email).await {
            errors.push(e);
        }
    }
    for user in &mut created.users {
        user.deleted = true;
    }
    report.cleanup.push(Step {
        name: "cleanup".to_string(),
        ok: errors.is_empty(),
        millis: started.elapsed().as_millis(),
        detail: format!("{via_api} users removed through the API, {direct} directly in DynamoDB"),
        failure: (!errors.is_empty()).then(|| crate::steps::fail(errors.join("; "))),
    });

    // A deleted user's sessions go with the sweep the deletion enqueued, a moment later.
    let started = Instant::now();
    let left = loop {
        let left = left_behind(store, &created.users).await;
        let sweeping = matches!(&left, Ok(keys) if keys.iter().any(|k| k.starts_with(SESSION)));
        if !sweeping || started.elapsed() > crate::steps::SWEEP_WAIT {
            break left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let (ok, detail, failure) = match left {
        Ok(keys) if keys.is_empty() => (
            true,
            match created.users.len() {
                1 => "1 user checked by key: no item left".to_string(),
                n => format!("{n} users checked by key: no item left"),
            },
            None,
        ),
        Ok(keys) => (
            false,
            String::new(),
            Some(crate::steps::fail(format!("items left behind: {keys:?}"))),
        ),
        Err(e) => (false, String::new(), Some(crate::steps::fail(e))),
    };
    report.cleanup.push(Step {
        name: "nothing left behind".to_string(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
        failure,
    });
}

/// How a session is named among the keys left behind.
const SESSION: &str = "session ";

/// The keys of every item of `users` still in the tables, read by key: the users-table items
/// ([`Store::items_of`]) and the sessions the `by-user` index still lists.
async fn left_behind(store: &Store, users: &[CreatedUser]) -> Result<Vec<String>, String> {
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|user| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut keys = Vec::new();
                for item in store.items_of(&user.email, user.id.as_deref()).await? {
                    keys.extend(store::s(&item, "pk").map(str::to_string));
                }
                if let Some(id) = &user.id {
                    for hash in store.session_hashes_of(id).await? {
                        keys.push(format!("{SESSION}{hash}"));
                    }
                    if store.logout_marker(id).await?.is_some() {
                        keys.push(format!("logout marker of {id}"));
                    }
                }
                Ok::<_, String>(keys)
            })
        })
        .collect();
    let mut keys = Vec::new();
    for task in tasks {
        keys.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(keys)
}

enum Removed {
    Api,
    Direct,
    Nothing,
}

async fn remove(api: &Api, store: &Store, user: &CreatedUser) -> Result<Removed, String> {
    let id = match &user.id {
        Some(id) => Some(id.clone()),
        None => store
            .email(&user.email)
            .await?
            .and_then(|item| store::s(&item, "user_id").map(str::to_string)),
    };
    let Some(id) = id else {
        // Registration never happened (or failed before writing): nothing to remove.
        return Ok(Removed::Nothing);
    };
    if store.user(&id).await?.is_none() && store.email(&user.email).await?.is_none() {
        return Ok(Removed::Nothing);
    }

    if delete_via_api(api, user, &id).await
        && store.user(&id).await?.is_none()
        && store.email(&user.email).await?.is_none()
    {
        return Ok(Removed::Api);
    }

    for hash in store.session_hashes_of(&id).await? {
        store
            .delete(&store.sessions_table, "token_hash", &hash)
            .await?;
    }
    if let Some(token) = &user.token {
        store
            .delete(
                &store.sessions_table,
                "token_hash",
                &store::token_hash(token),
            )
            .await?;
    }
    store
        .delete(&store.users_table, "pk", &format!("USER#{id}"))
        .await?;
    store
        .delete(
            &store.users_table,
            "pk",
            &format!("EMAIL#{}", user.email.to_lowercase()),
        )
        .await?;
    Ok(Removed::Direct)
}

async fn delete_via_api(api: &Api, user: &CreatedUser, id: &str) -> bool {
    let mut token = user.token.clone();
    for attempt in 0..2 {
        if attempt == 1 || token.is_none() {
            let body = json!({"email": user.email, "password": user.password});
            let login = api.call(Method::POST, "/sessions", None, Some(body)).await;
            token = login
                .body()
                .get("token")
                .and_then(|t| t.as_str())
                .map(str::to_string);
        }
        let Some(t) = &token else { return false };
        let body = json!({"current_password": user.password});
        let ex = api
            .call(Method::DELETE, &format!("/users/{id}"), Some(t), Some(body))
            .await;
        if ex.status() == Some(204) {
            return true;
        }
    }
    false
}
