//! The bounded load step: N concurrent registrations and logins, then one refused log-in for
//! each registered address and one for an address nobody registered, timed side by side.
//!
//! Bounded on purpose (N requests of each kind, then it stops): it measures latency under
//! concurrency and checks that concurrent writes lose nothing and invent nothing, by reading
//! each of the run's users from the table by key afterwards (`EMAIL#<email>` for every address
//! it tried, `USER#<id>` for every id the API or an `EMAIL#` item names).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use crate::api::Api;
use crate::cleanup::{Created, CreatedUser};
use crate::store::{self, Store};

/// The most users one load step creates; keeps a typo from hammering a real account.
pub const MAX_LOAD: usize = 1000;

/// What the load step measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub ok: bool,
    pub users: usize,
    pub requests: usize,
    pub errors: usize,
    /// Status codes or transport errors of failed requests, first few.
    pub error_samples: Vec<String>,
    pub p50_ms: u128,
    pub p99_ms: u128,
    pub register_p50_ms: u128,
    pub register_p99_ms: u128,
    pub login_p50_ms: u128,
    pub login_p99_ms: u128,
    /// Median of refused log-ins (one at a time, after the concurrent part) for registered
    /// addresses with a wrong password, and for addresses nobody registered: the two should be
    /// alike, or timing tells which addresses exist.
    pub refused_login_registered_p50_ms: u128,
    pub refused_login_unknown_p50_ms: u128,
    pub wall_ms: u128,
    pub table_check: String,
}

/// One user's registration and log-in (the mixed load signs its pool of users in with it).
pub(crate) struct One {
    pub register: (Duration, Result<String, String>),
    pub login: Option<(Duration, Result<String, String>)>,
}

/// The users-table items of `users`, read by key (see [`Store::items_of`]).
async fn items_of(store: &Store, users: &[CreatedUser]) -> Result<Vec<store::Item>, String> {
    let tasks: Vec<_> = users
        .iter()
        .map(|user| {
            let store = store.clone();
            let user = user.clone();
            tokio::spawn(async move { store.items_of(&user.email, user.id.as_deref()).await })
        })
        .collect();
    let mut items = Vec::new();
    for task in tasks {
        items.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(items)
}

/// Registers and logs in `n` users concurrently, then checks the table.
pub async fn run(
    api: &Api,
    store: &Store,
    n: usize,
    run_id: &str,
    created: &mut Created,
) -> LoadReport {
    let n = n.min(MAX_LOAD);
    let prefix = format!("smoke-{run_id}-load-");
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let emails: Vec<String> = (0..n).map(|i| format!("{prefix}{i}@example.com")).collect();
    for email in &emails {
        created.users.push(CreatedUser::new(email, &password));
    }
    let first_load_index = created.users.len() - n;

    let started = Instant::now();
    let tasks: Vec<_> = emails
        .iter()
        .map(|email| {
            let api = api.clone();
            let email = email.clone();
            let password = password.clone();
            tokio::spawn(async move { one(&api, &email, &password).await })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.ok());
    }
    let wall = started.elapsed();

    let mut all = Vec::new();
    let mut registers = Vec::new();
    let mut logins = Vec::new();
    let mut errors = 0;
    let mut samples = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, result) in results.into_iter().enumerate() {
        let Some(one) = result else {
            errors += 1;
            continue;
        };
        registers.push(one.register.0);
        all.push(one.register.0);
        match one.register.1 {
            Ok(id) => {
                created.users[first_load_index + i].id = Some(id.clone());
                ids.insert(id);
            }
            Err(e) => {
                errors += 1;
                samples.push(format!("register: {e}"));
            }
        }
        if let Some((took, outcome)) = one.login {
            logins.push(took);
            all.push(took);
            match outcome {
                Ok(token) => created.users[first_load_index + i].token = Some(token),
                Err(e) => {
                    errors += 1;
                    samples.push(format!("login: {e}"));
                }
            }
        }
    }
    let (mut registered, mut unknown) = (Vec::new(), Vec::new());
    for (i, email) in emails.iter().enumerate() {
        let nobody = format!("{prefix}{i}-nobody@example.com");
        created.probed.push(nobody.clone());
        for (address, took) in [(email, &mut registered), (&nobody, &mut unknown)] {
            let body = json!({"email": address, "password": "not the password"});
            let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
            took.push(Duration::from_millis(ex.millis as u64));
            if ex.status() != Some(401) {
                errors += 1;
                samples.push(format!(
                    "refused log-in: {}",
                    describe(ex.status(), &ex.error)
                ));
            }
        }
    }
    samples.truncate(5);

    let load_users: Vec<CreatedUser> = created.users[first_load_index..].to_vec();
    let (table_ok, table_check) = match items_of(store, &load_users).await {
        Ok(items) => {
            let users: BTreeSet<String> = items
                .iter()
                .filter(|i| store::s(i, "kind") == Some("user"))
                .filter_map(|i| store::s(i, "id").map(str::to_string))
                .collect();
            let unique_items = items
                .iter()
                .filter(|i| store::s(i, "kind") == Some("email"))
                .count();
            if users == ids && unique_items == ids.len() {
                (
                    true,
                    format!(
                        "{} user items and {} EMAIL# items, exactly those created",
                        users.len(),
                        unique_items
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "read by key: {} user items and {unique_items} EMAIL# items; the API created {} users",
                        users.len(),
                        ids.len()
                    ),
                )
            }
        }
        Err(e) => (false, e),
    };

    LoadReport {
        ok: errors == 0 && table_ok,
        users: n,
        requests: all.len(),
        errors,
        error_samples: samples,
        p50_ms: percentile(&mut all, 50.0),
        p99_ms: percentile(&mut all, 99.0),
        register_p50_ms: percentile(&mut registers, 50.0),
        register_p99_ms: percentile(&mut registers, 99.0),
        login_p50_ms: percentile(&mut logins, 50.0),
        login_p99_ms: percentile(&mut logins, 99.0),
        refused_login_registered_p50_ms: percentile(&mut registered, 50.0),
        refused_login_unknown_p50_ms: percentile(&mut unknown, 50.0),
        wall_ms: wall.as_millis(),
        table_check,
    }
}

pub(crate) async fn one(api: &Api, email: &str, password: &str) -> One {
    let body = json!({"email": email, "name": "Smoke load", "password": password});
    let ex = api.call(Method::POST, "/users", None, Some(body)).await;
    let took = Duration::from_millis(ex.millis as u64);
    let register = match (ex.status(), ex.body().get("id").and_then(|v| v.as_str())) {
        (Some(201), Some(id)) => Ok(id.to_string()),
        (status, _) => Err(describe(status, &ex.error)),
    };
    if register.is_err() {
        return One {
            register: (took, register),
            login: None,
        };
    }
    let body = json!({"email": email, "password": password});
    let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
    let login_took = Duration::from_millis(ex.millis as u64);
    let login = match (ex.status(), ex.body().get("token").and_then(|v| v.as_str())) {
        (Some(201), Some(token)) => Ok(token.to_string()),
        (status, _) => Err(describe(status, &ex.error)),
    };
    One {
        register: (took, register),
        login: Some((login_took, login)),
    }
}

pub(crate) fn describe(status: Option<u16>, error: &Option<String>) -> String {
    match (status, error) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(e)) => e.clone(),
        (None, None) => "no response".to_string(),
    }
}

/// Nearest-rank percentile in milliseconds; 0 for no samples.
pub fn percentile(samples: &mut [Duration], p: f64) -> u128 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50.0), 50);
        assert_eq!(percentile(&mut v, 99.0), 99);
        assert_eq!(percentile(&mut [], 50.0), 0);
    }
}
