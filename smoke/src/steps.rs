//! The smoke flow: each step calls the API, checks the answer against the contract, and after
//! every write reads DynamoDB directly to check what was stored.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Exchange, mask_response};
use crate::cleanup::{Created, CreatedUser};
use crate::report::{Failure, Report, Step};
use crate::store::{self, Store};

type StepResult = Result<String, Failure>;

/// A failure without an HTTP exchange (a DynamoDB check).
pub fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        exchange: None,
    }
}

/// A failure that shows the request and response.
pub fn fail_with(message: impl Into<String>, exchange: &Exchange) -> Failure {
    let mut exchange = exchange.clone();
    mask_response(&mut exchange);
    Failure {
        message: message.into(),
        exchange: Some(Box::new(exchange)),
    }
}

/// How long the session sweep may take (here and in the cleanup's final check): the request
/// path only enqueues it, and the `sweeper` function's queue delivers it (within a second on
/// `local`, seconds on AWS; the `by-user` index it reads is eventually consistent).
pub(crate) const SWEEP_WAIT: Duration = Duration::from_secs(60);

/// Waits until `swept` says the sweep is done, checking every 100 ms; the time it took, or a
/// failure naming `what` after [`SWEEP_WAIT`].
async fn wait_for_sweep<F, Fut>(what: &str, mut swept: F) -> Result<Duration, Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let started = Instant::now();
    loop {
        if swept().await.map_err(fail)? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > SWEEP_WAIT {
            return Err(fail(format!(
                "{what} still in DynamoDB {} s after the request (the session sweep runs on \
                 the `session-sweeps` queue: is its consumer running? `cargo xtask logs --all`)",
                SWEEP_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails unless the response has the expected status.
pub fn expect_status(exchange: &Exchange, want: u16) -> Result<(), Failure> {
    match exchange.status() {
        Some(got) if got == want => Ok(()),
        Some(got) => Err(fail_with(
            format!("expected HTTP {want}, got {got}"),
            exchange,
        )),
        None => Err(fail_with(
            format!("expected HTTP {want}, got no response"),
            exchange,
        )),
    }
}

fn field<'a>(exchange: &'a Exchange, name: &str) -> Result<&'a Value, Failure> {
    exchange
        .body()
        .get(name)
        .ok_or_else(|| fail_with(format!("response has no `{name}`"), exchange))
}

fn str_field<'a>(exchange: &'a Exchange, name: &str) -> Result<&'a str, Failure> {
    field(exchange, name)?
        .as_str()
        .ok_or_else(|| fail_with(format!("`{name}` is not a string"), exchange))
}

/// Checks a user JSON body: the fields the contract lists, and never a password or hash.
fn check_user_body(
    exchange: &Exchange,
    id: Option<&str>,
    email: &str,
    name: &str,
    version: i64,
) -> Result<String, Failure> {
    let got_id = str_field(exchange, "id")?.to_string();
    if id.is_some_and(|id| id != got_id) {
        return Err(fail_with(
            format!("`id` is {got_id}, expected {}", id.unwrap_or_default()),
            exchange,
        ));
    }
    if str_field(exchange, "email")? != email.to_lowercase() {
        return Err(fail_with(
            "`email` is not the lower-cased registered email",
            exchange,
        ));
    }
    if str_field(exchange, "name")? != name {
        return Err(fail_with(format!("`name` is not {name:?}"), exchange));
    }
    if field(exchange, "version")?.as_i64() != Some(version) {
        return Err(fail_with(format!("`version` is not {version}"), exchange));
    }
    for key in ["created_at", "updated_at"] {
        str_field(exchange, key)?;
    }
    let text = exchange.body().to_string();
    if text.contains("password") || text.contains("$argon2") {
        return Err(fail_with(
            "the user JSON exposes a password or password hash",
            exchange,
        ));
    }
    Ok(got_id)
}

fn push(report: &mut Report, name: &str, started: Instant, result: StepResult) -> bool {
    let ok = result.is_ok();
    let (detail, failure) = match result {
        Ok(detail) => (detail, None),
        Err(failure) => (String::new(), Some(failure)),
    };
    report.steps.push(Step {
        name: name.to_string(),
        ok,
        millis: started.elapsed().as_millis(),
        detail,
        failure,
    });
    ok
}

/// Runs the flow, stopping at the first failed step. Whatever was created is recorded in
/// `created` before the request that creates it, so cleanup finds it even after a timeout.
pub async fn run(api: &Api, store: &Store, report: &mut Report, created: &mut Created) {
    let run_id = report.run_id.clone();
    let email = format!("Smoke-{run_id}@Example.com");
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let name = format!("Smoke {run_id}");
    let renamed = format!("Smoke {run_id} renamed");
    created.users.push(CreatedUser::new(&email, &password));

    macro_rules! step {
        ($name:expr, $body:expr) => {{
            let started = Instant::now();
            let result: StepResult = async { $body }.await;
            match result {
                Ok(detail) => {
                    push(report, $name, started, Ok(detail));
                }
                Err(failure) => {
                    push(report, $name, started, Err(failure));
                    return;
                }
            }
        }};
    }

    step!("health", {
        let ex = api.call(Method::GET, "/health", None, None).await;
        expect_status(&ex, 200)?;
        if str_field(&ex, "status")? != "ok" {
            return Err(fail_with("`status` is not \"ok\"", &ex));
        }
        Ok(format!("GET /health 200, version {}", ex.body()["version"]))
    });

    // API Gateway's own answers (here: no such route) use the functions' error shape, with
    // the request id in the body and in `x-request-id` (infra::gateway_responses).
    step!("gateway error shape", {
        let ex = api.call(Method::GET, "/no-such-route", None, None).await;
        expect_status(&ex, 404)?;
        let error = field(&ex, "error")?;
        if error["code"] != "route_not_found" {
            return Err(fail_with("`error.code` is not \"route_not_found\"", &ex));
        }
        let request_id = error["request_id"].as_str().unwrap_or_default();
        if request_id.is_empty() || ex.header("x-request-id") != Some(request_id) {
            return Err(fail_with(
                "`error.request_id` is not the `x-request-id` header",
                &ex,
            ));
        }
        Ok("GET /no-such-route 404 route_not_found, request id in body and header".to_string())
    });

    let mut user_id = String::new();
    step!("register user", {
        let body = json!({"email": email, "name": name, "password": password});
        let ex = api.call(Method::POST, "/users", None, Some(body)).await;
        expect_status(&ex, 201)?;
        let id = check_user_body(&ex, None, &email, &name, 1)?;
        created.users[0].id = Some(id.clone());
        if ex
            .header("location")
            .is_none_or(|l| !l.ends_with(&format!("/users/{id}")))
        {
            return Err(fail_with(
                "no `location` header pointing at the new user",
                &ex,
            ));
        }
        let item = store
            .user(&id)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail(format!("no USER#{id} item in DynamoDB")))?;
        store::check_user_item(&item, &id, &email, &name, 1, &password).map_err(fail)?;
        let unique = store
            .email(&email)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail("no EMAIL# uniqueness item in DynamoDB"))?;
        if store::s(&unique, "user_id") != Some(id.as_str())
            || store::s(&unique, "kind") != Some("email")
        {
            return Err(fail(format!(
                "EMAIL# item is {unique:?}, expected kind=email user_id={id}"
            )));
        }
        user_id = id;
        Ok(format!(
            "POST /users 201; DynamoDB: user item, argon2id hash peppered with a key of the \
             secret password-peppers, EMAIL# item for {user_id}"
        ))
    });

    step!("anonymous reads refused", {
        for path in [format!("/users/{user_id}"), "/users".to_owned()] {
            let ex = api.call(Method::GET, &path, None, None).await;
            expect_status(&ex, 401)?;
        }
        Ok("GET /users/{id} and GET /users without a session 401".to_string())
    });

    let mut token = String::new();
    step!("log in", {
        let body = json!({"email": email, "password": password});
        let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
        expect_status(&ex, 201)?;
        token = str_field(&ex, "token")?.to_string();
        created.users[0].token = Some(token.clone());
        if str_field(&ex, "token_type")? != "Bearer" {
            return Err(fail_with("`token_type` is not Bearer", &ex));
        }
        let expires_at = field(&ex, "expires_at")?
            .as_i64()
            .ok_or_else(|| fail_with("`expires_at` is not a number", &ex))?;
        if expires_at <= store::now_epoch() {
            return Err(fail_with("`expires_at` is not in the future", &ex));
        }
        let item = store
            .session(&token)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail("no session item under SHA-256(token) in DynamoDB"))?;
        if store::s(&item, "user_id") != Some(user_id.as_str()) {
            return Err(fail(format!(
                "session item user_id is {:?}, expected {user_id}",
                store::s(&item, "user_id")
            )));
        }
        match store::n(&item, "expires_at") {
            Some(ttl) if ttl > store::now_epoch() && ttl == expires_at => {}
            other => {
                return Err(fail(format!(
                    "session item expires_at is {other:?}, expected {expires_at} (in the future)"
                )));
            }
        }
        if item
            .values()
            .any(|v| v.as_s().is_ok_and(|s| s.contains(&token)))
        {
            return Err(fail("the session item contains the token itself"));
        }
        Ok(
            "POST /sessions 201; DynamoDB: session under SHA-256(token), TTL in the future"
                .to_string(),
        )
    });

    step!("read own profile", {
        let ex = api.call(Method::GET, "/users/me", Some(&token), None).await;
        expect_status(&ex, 200)?;
        check_user_body(&ex, Some(&user_id), &email, &name, 1)?;
        let by_id = api
            .call(
                Method::GET,
                &format!("/users/{user_id}"),
                Some(&token),
                None,
            )
            .await;
        expect_status(&by_id, 200)?;
        check_user_body(&by_id, Some(&user_id), &email, &name, 1)?;
        Ok("GET /users/me and GET /users/{id} 200, the full profile for its owner".to_string())
    });

    step!("read session", {
        let ex = api
            .call(Method::GET, "/sessions/current", Some(&token), None)
            .await;
        expect_status(&ex, 200)?;
        if str_field(&ex, "user_id")? != user_id {
            return Err(fail_with("the session belongs to another user", &ex));
        }
        Ok("GET /sessions/current 200".to_string())
    });

    step!("update user", {
        let body = json!({"version": 1, "name": renamed});
        let ex = api
            .call(
                Method::PATCH,
                &format!("/users/{user_id}"),
                Some(&token),
                Some(body),
            )
            .await;
        expect_status(&ex, 200)?;
        check_user_body(&ex, Some(&user_id), &email, &renamed, 2)?;
        let item = store
            .user(&user_id)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail("the user item is gone after the update"))?;
        store::check_user_item(&item, &user_id, &email, &renamed, 2, &password).map_err(fail)?;
        Ok("PATCH /users/{id} 200, version 2; DynamoDB: name and version updated".to_string())
    });

    step!("re-auth required", {
        let body = json!({"version": 2, "email": format!("other-{email}")});
        let ex = api
            .call(
                Method::PATCH,
                &format!("/users/{user_id}"),
                Some(&token),
                Some(body),
            )
            .await;
        expect_status(&ex, 403)?;
        if ex.body()["error"]["code"] != "reauthentication_failed" {
            return Err(fail_with(
                "the error code is not reauthentication_failed",
                &ex,
            ));
        }
        let after = api
            .call(Method::GET, "/sessions/current", Some(&token), None)
            .await;
        expect_status(&after, 401)?;
        let item = store
            .user(&user_id)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail("the user item is gone"))?;
        store::check_user_item(&item, &user_id, &email, &renamed, 2, &password).map_err(fail)?;
        Ok(
            "PATCH /users/{id} e-mail without current_password 403; that session ended; DynamoDB unchanged"
                .to_string(),
        )
    });

    let mut tokens = Vec::new();
    step!("log in twice", {
        for _ in 0..2 {
            let body = json!({"email": email, "password": password});
            let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
            expect_status(&ex, 201)?;
            tokens.push(str_field(&ex, "token")?.to_string());
        }
        created.users[0].token = Some(tokens[0].clone());
        Ok("POST /sessions 201 twice".to_string())
    });

    let new_password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    step!("password change", {
        let body = json!({"version": 2, "password": new_password, "current_password": password});
        let ex = api
            .call(
                Method::PATCH,
                &format!("/users/{user_id}"),
                Some(&tokens[0]),
                Some(body),
            )
            .await;
        expect_status(&ex, 200)?;
        created.users[0].password = new_password.clone();
        check_user_body(&ex, Some(&user_id), &email, &renamed, 3)?;
        let kept = api
            .call(Method::GET, "/sessions/current", Some(&tokens[0]), None)
            .await;
        expect_status(&kept, 200)?;
        let other = api
            .call(Method::GET, "/sessions/current", Some(&tokens[1]), None)
            .await;
        expect_status(&other, 401)?;
        let item = store
            .user(&user_id)
            .await
            .map_err(fail)?
            .ok_or_else(|| fail("the user item is gone"))?;
        store::check_user_item(&item, &user_id, &email, &renamed, 3, &new_password)
            .map_err(fail)?;
        Ok("PATCH /users/{id} password 200; the changer's session lives, the other 401; DynamoDB: new hash".to_string())
    });
    token = tokens[0].clone();

    step!("log out", {
        let ex = api
            .call(Method::DELETE, "/sessions/current", Some(&token), None)
            .await;
        expect_status(&ex, 204)?;
        if store.session(&token).await.map_err(fail)?.is_some() {
            return Err(fail("the session item is still in DynamoDB after logout"));
        }
        Ok("DELETE /sessions/current 204; DynamoDB: session item gone".to_string())
    });

    step!("old token rejected", {
        let ex = api
            .call(Method::GET, "/sessions/current", Some(&token), None)
            .await;
        expect_status(&ex, 401)?;
        Ok("GET /sessions/current with the old token 401".to_string())
    });

    step!("log out everywhere", {
        let mut live = Vec::new();
        for _ in 0..2 {
            let body = json!({"email": email, "password": new_password});
            let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
            expect_status(&ex, 201)?;
            live.push(str_field(&ex, "token")?.to_string());
        }
        let ex = api
            .call(Method::DELETE, "/sessions", Some(&live[0]), None)
            .await;
        expect_status(&ex, 204)?;
        for token in &live {
            let after = api
                .call(Method::GET, "/sessions/current", Some(token), None)
                .await;
            expect_status(&after, 401)?;
        }
        if store.logout_marker(&user_id).await.map_err(fail)?.is_none() {
            return Err(fail(
                "no log-out marker in DynamoDB after log-out-everywhere",
            ));
        }
        let swept = wait_for_sweep("the user's sessions are", || async {
            Ok(store.session_hashes_of(&user_id).await?.is_empty())
        })
        .await?;
        Ok(format!(
            "DELETE /sessions 204; both sessions 401 at once; DynamoDB: log-out marker, every \
             session swept {} ms later",
            swept.as_millis()
        ))
    });

    step!("delete without the password refused", {
        let body = json!({"email": email, "password": new_password});
        let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
        expect_status(&ex, 201)?;
        let token = str_field(&ex, "token")?.to_string();
        let ex = api
            .call(
                Method::DELETE,
                &format!("/users/{user_id}"),
                Some(&token),
                None,
            )
            .await;
        expect_status(&ex, 403)?;
        if store.user(&user_id).await.map_err(fail)?.is_none() {
            return Err(fail("the user was deleted without re-authentication"));
        }
        let after = api
            .call(Method::GET, "/sessions/current", Some(&token), None)
            .await;
        expect_status(&after, 401)?;
        Ok(
            "DELETE /users/{id} without current_password 403; user kept; that session ended"
                .to_string(),
        )
    });

    let mut second = String::new();
    step!("log in again", {
        let body = json!({"email": email, "password": new_password});
        let ex = api.call(Method::POST, "/sessions", None, Some(body)).await;
        expect_status(&ex, 201)?;
        second = str_field(&ex, "token")?.to_string();
        created.users[0].token = Some(second.clone());
        Ok("POST /sessions 201 with the new password (needed to delete the user)".to_string())
    });

    step!("delete user", {
        let ex = api
            .call(
                Method::DELETE,
                &format!("/users/{user_id}"),
                Some(&second),
                Some(json!({"current_password": new_password})),
            )
            .await;
        expect_status(&ex, 204)?;
        if store.user(&user_id).await.map_err(fail)?.is_some() {
            return Err(fail("the USER# item is still in DynamoDB after delete"));
        }
        if store.email(&email).await.map_err(fail)?.is_some() {
            return Err(fail("the EMAIL# item is still in DynamoDB after delete"));
        }
        let swept = wait_for_sweep("the deleted user's session is", || async {
            Ok(store.session(&second).await?.is_none())
        })
        .await?;
        created.users[0].deleted = true;
        Ok(format!(
            "DELETE /users/{{id}} with current_password 204; DynamoDB: user and EMAIL# gone, \
             sessions swept {} ms later",
            swept.as_millis()
        ))
    });

    step!("deleted user is gone", {
        let ex = api
            .call(Method::GET, "/users/me", Some(&second), None)
            .await;
        expect_status(&ex, 401)?;
        Ok("GET /users/me with the deleted user's token 401".to_string())
    });
}
