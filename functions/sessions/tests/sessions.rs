//! `/sessions` against moto: log in, current session, expiry, log out, log out everywhere,
//! the limit on log-in attempts, and malformed input.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use service_common::clock::Timestamp;
use service_common::sweeps::SessionSweep;
use service_common::testing::{Event, TestApp, body_json, error_code};
use sessions::handle;

const PASSWORD: &str = "correct horse battery";

async fn log_in(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    let request = Event::rest(Method::POST, "/sessions")
        .json(&json!({"email": email, "password": password}))
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    // The answer carries the token: no cache may keep it.
    assert_eq!(response.headers()["cache-control"], "no-store");
    (response.status(), body_json(&response))
}

async fn current(app: &TestApp, token: &str) -> StatusCode {
    let request = Event::rest(Method::GET, "/sessions/current")
        .bearer(token)
        .build();
    handle(&app.state(), request).await.unwrap().status()
}

#[tokio::test]
async fn log_in_issues_a_hashed_token_and_current_returns_the_session() {
    let app = TestApp::start().await;
    let user = app.seed_user("Ada@Example.com", PASSWORD).await;

    // E-mail matching is case-insensitive, like registration.
    let (status, body) = log_in(&app, "ada@EXAMPLE.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "32 bytes, base64url without padding");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["session"]["user_id"], user.id.to_string());
    let expires_at = body["expires_at"].as_i64().unwrap();
    let expected = Timestamp::now().epoch_seconds() + 86_400;
    assert!(
        (expected - 5..=expected).contains(&expires_at),
        "{expires_at}"
    );
    assert_eq!(body["session"]["expires_at"], expires_at);

    // Stored only as its SHA-256: the token text appears nowhere in the table.
    let items = app.session_items().await;
    assert_eq!(items.len(), 1);
    let stored = format!("{items:?}");
    assert!(!stored.contains(&token));
    let hash = service_common::token::SessionToken::parse(&token)
        .unwrap()
        .hash();
    assert_eq!(items[0]["token_hash"].as_s().unwrap(), hash.as_str());
    assert_eq!(
        items[0]["expires_at"].as_n().unwrap(),
        &expires_at.to_string()
    );

    let request = Event::rest(Method::GET, "/sessions/current")
        .bearer(&token)
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let session = body_json(&response);
    assert_eq!(session["user_id"], user.id.to_string());
    assert_eq!(session["expires_at"], expires_at);
    assert!(session.get("token_hash").is_none());
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_the_same_401() {
    let app = TestApp::start().await;
    app.seed_user("grace@example.com", PASSWORD).await;
    let (status_a, body_a) = log_in(&app, "nobody@example.com", PASSWORD).await;
    let (status_b, body_b) = log_in(&app, "grace@example.com", "wrong password").await;
    assert_eq!(status_a, StatusCode::UNAUTHORIZED);
    assert_eq!(status_b, StatusCode::UNAUTHORIZED);
    assert_eq!(body_a["error"]["code"], "invalid_credentials");
    assert_eq!(body_a["error"]["code"], body_b["error"]["code"]);
    assert_eq!(body_a["error"]["message"], body_b["error"]["message"]);
    assert!(app.session_items().await.is_empty());
}

#[tokio::test]
async fn missing_malformed_unknown_and_expired_tokens_are_401() {
    let app = TestApp::start().await;
    let user = app.seed_user("linus@example.com", PASSWORD).await;
    let expired = app
        .seed_session(user.id, Timestamp::now().epoch_seconds() - 1)
        .await;
    let unknown = service_common::token::SessionToken::generate().unwrap();

    let no_header = handle(
        &app.state(),
        Event::rest(Method::GET, "/sessions/current").build(),
    )
    .await
    .unwrap();
    assert_eq!(no_header.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&no_header), "unauthenticated");
    let basic = Event::rest(Method::GET, "/sessions/current")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .build();
    assert_eq!(
        handle(&app.state(), basic).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(current(&app, "garbage").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        current(&app, unknown.expose()).await,
        StatusCode::UNAUTHORIZED
    );
    // The expired item is still in the table (TTL deletion lags) and must not count.
    assert_eq!(app.session_items().await.len(), 1);
    assert_eq!(
        current(&app, expired.expose()).await,
        StatusCode::UNAUTHORIZED
    );
    let live = app
        .seed_session(user.id, Timestamp::now().epoch_seconds() + 60)
        .await;
    assert_eq!(current(&app, live.expose()).await, StatusCode::OK);
}

#[tokio::test]
async fn log_out_ends_only_this_session() {
    let app = TestApp::start().await;
    app.seed_user("barbara@example.com", PASSWORD).await;
    let (_, first) = log_in(&app, "barbara@example.com", PASSWORD).await;
    let (_, second) = log_in(&app, "barbara@example.com", PASSWORD).await;
    let first = first["token"].as_str().unwrap();
    let second = second["token"].as_str().unwrap();

    let request = Event::rest(Method::DELETE, "/sessions/current")
        .bearer(first)
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(current(&app, first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(current(&app, second).await, StatusCode::OK);

    // Logging out with a dead token is a 401, not a silent success.
    let again = Event::rest(Method::DELETE, "/sessions/current")
        .bearer(first)
        .build();
    assert_eq!(
        handle(&app.state(), again).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_of_the_user_only() {
    let app = TestApp::start().await;
    let user = app.seed_user("edsger@example.com", PASSWORD).await;
    let other = app.seed_user("tony@example.com", PASSWORD).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (status, body) = log_in(&app, "edsger@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED);
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    // Many sessions, which the sweep the revocation enqueues removes one by one.
    let far = Timestamp::now().epoch_seconds() + 3600;
    for _ in 0..27 {
        app.seed_session(user.id, far).await;
    }
    let survivor = app.seed_session(other.id, far).await;

    let request = Event::rest(Method::DELETE, "/sessions")
        .bearer(&tokens[0])
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for token in &tokens {
        assert_eq!(current(&app, token).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(current(&app, survivor.expose()).await, StatusCode::OK);
    // Revoked without the sweep: the stored sessions stay until the sweeper runs, and a
    // log-in after the revocation (before the sweep) starts a live session.
    assert_eq!(app.session_items().await.len(), 31);
    let (status, body) = log_in(&app, "edsger@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let fresh = body["token"].as_str().unwrap().to_owned();

    // Exactly one sweep of the user, which the real sweeper carries out: the sessions the
    // log-out ended go, the session started since and the other user's stay.
    let sweeps = app.take_sweeps().await;
    assert_eq!(sweeps.records.len(), 1);
    let sweep: SessionSweep =
        serde_json::from_str(sweeps.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sweep, SessionSweep { user_id: user.id });
    let swept = sweeper::handle(&app.state(), sweeps).await;
    assert!(swept.batch_item_failures.is_empty());
    let mut expected = vec![other.id.to_string(), user.id.to_string()];
    expected.sort();
    assert_eq!(app.session_owners().await, expected);
    assert_eq!(current(&app, survivor.expose()).await, StatusCode::OK);
    assert_eq!(current(&app, &fresh).await, StatusCode::OK);

    let unauthenticated = handle(
        &app.state(),
        Event::rest(Method::DELETE, "/sessions").build(),
    )
    .await
    .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_log_in_requests_get_the_right_4xx_and_write_nothing() {
    let app = TestApp::start().await;
    app.seed_user("margaret@example.com", PASSWORD).await;
    let post = || Event::rest(Method::POST, "/sessions");
    let cases: Vec<(Event, StatusCode, &str)> = vec![
        (
            post().header("content-type", "application/json").raw_body("{\"email\":"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            post().header("content-type", "application/json").raw_body(""),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            post().json(&json!({"email": "margaret@example.com", "password": 12345678})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post().json(&json!({"email": "margaret@example.com"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post().json(&json!({"email": "margaret@example.com", "password": PASSWORD, "admin": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            post()
                .header("content-type", "text/plain")
                .raw_body(json!({"email": "margaret@example.com", "password": PASSWORD}).to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post().raw_body(json!({"email": "margaret@example.com", "password": PASSWORD}).to_string()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            post().json(&json!({"email": "margaret@example.com", "password": PASSWORD, "pad": "x".repeat(70_000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Event::rest(Method::PUT, "/sessions/current"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Event::rest(Method::GET, "/sessions/{id}").param("id", "abc"),
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
    ];
    for (event, status, code) in cases {
        let response = handle(&app.state(), event.build()).await.unwrap();
        assert_eq!(response.status(), status, "{event:?}");
        assert_eq!(error_code(&response), code, "{event:?}");
        assert!(response.headers().contains_key("x-request-id"));
    }
    assert!(
        app.session_items().await.is_empty(),
        "a malformed request wrote a session"
    );

    let response = handle(
        &app.state(),
        Event::rest(Method::PUT, "/sessions/current").build(),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["allow"], "GET, DELETE");
}

#[tokio::test]
async fn throttling_that_outlasts_the_sdk_retries_is_429() {
    let mut app = TestApp::start().await;
    let throttled =
        service_common::testing::client(&service_common::testing::throttling_endpoint());
    // Every state the app builds from here on talks to the throttling endpoint.
    app.client = throttled;
    let (status, body) = log_in(&app, "anyone@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "throttled");
}

#[tokio::test]
async fn a_real_fault_is_500_without_details() {
    let app = TestApp::start_with(|config| config.users_table = "no-such-table".into()).await;
    let (status, body) = log_in(&app, "anyone@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "internal_error");
    assert_eq!(body["error"]["message"], "internal error");
    assert!(app.session_items().await.is_empty());
}

/// Moves the counter of `email`'s log-in window to its end, as time would.
async fn end_login_window(app: &TestApp) {
    for item in app.attempt_items().await {
        app.client
            .update_item()
            .table_name(&app.sessions_table)
            .key("token_hash", item["token_hash"].clone())
            .update_expression("SET expires_at = :past")
            .expression_attribute_values(
                ":past",
                aws_sdk_dynamodb::types::AttributeValue::N(
                    (Timestamp::now().epoch_seconds() - 1).to_string(),
                ),
            )
            .send()
            .await
            .expect("end the window");
    }
}

#[tokio::test]
async fn repeated_log_ins_for_one_address_are_refused_until_the_window_ends() {
    use service_common::store::attempts::{MAX_ATTEMPTS, WINDOW};
    let app = TestApp::start().await;
    app.seed_user("alan@example.com", PASSWORD).await;
    app.seed_user("joan@example.com", PASSWORD).await;

    // A registered and an unknown address go through the same answers: nothing tells them apart.
    for email in ["alan@example.com", "nobody@example.com"] {
        for n in 1..=MAX_ATTEMPTS {
            let (status, _) = log_in(&app, email, "wrong password").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}, attempt {n}");
        }
        let request = Event::rest(Method::POST, "/sessions")
            .json(&json!({"email": email, "password": PASSWORD}))
            .build();
        let refused = handle(&app.state(), request).await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "{email}");
        assert_eq!(error_code(&refused), "too_many_attempts");
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=WINDOW.as_secs()).contains(&retry_after),
            "{retry_after}"
        );
    }
    // Another address is not affected, and a success clears its counter.
    let (status, _) = log_in(&app, "joan@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(app.attempt_items().await.len(), 2, "joan's counter is gone");
    assert!(app.session_items().await.len() == 1);

    // The lock-out ends with the window: the owner is back in, and the counter restarts.
    end_login_window(&app).await;
    let (status, _) = log_in(&app, "alan@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = log_in(&app, "nobody@example.com", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let counters = app.attempt_items().await;
    assert_eq!(counters.len(), 1);
    assert_eq!(counters[0]["attempts"].as_n().unwrap(), "1");
    assert!(!counters[0].contains_key("user_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_cannot_get_past_the_limit() {
    use service_common::store::attempts::MAX_ATTEMPTS;
    let app = std::sync::Arc::new(TestApp::start().await);
    app.seed_user("guessed@example.com", PASSWORD).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..30 {
        let app = std::sync::Arc::clone(&app);
        tasks.spawn(async move {
            log_in(&app, "guessed@example.com", &format!("guess number {n}"))
                .await
                .0
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // The invariant: no more passwords were checked than the limit allows. An SDK retry of an
    // update that had already landed can count one attempt twice, which only errs towards
    // refusing, so fewer checks than the limit are possible.
    assert_eq!(checked + refused, 30, "{statuses:?}");
    assert!(
        (1..=MAX_ATTEMPTS as usize).contains(&checked),
        "{checked} guesses were checked, the limit is {MAX_ATTEMPTS}: {statuses:?}"
    );
}

#[tokio::test]
async fn an_address_longer_than_any_registration_is_422_without_a_lookup() {
    let app = TestApp::start().await;
    let long = format!("{}@example.com", "a".repeat(2100));
    let (status, body) = log_in(&app, &long, PASSWORD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(app.attempt_items().await.is_empty(), "nothing was counted");
}
