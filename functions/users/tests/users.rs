//! `/users` against moto, logging in through the real sessions handler: registration and
//! e-mail uniqueness (also under 32 concurrent requests), reads, pagination, updates with
//! optimistic concurrency, deletion with its cascade, and malformed input.

use std::collections::HashSet;
use std::sync::Arc;

use http::{Method, Response, StatusCode};
use lambda_http::Body;
use serde_json::{Value, json};
use service_common::sweeps::SessionSweep;
use service_common::testing::{Event, TestApp, body_json, error_code};
use users::handle;

const PASSWORD: &str = "correct horse battery";

async fn send(app: &TestApp, event: Event) -> Response<Body> {
    let response = handle(&app.state(), event.build()).await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
    // Profiles carry e-mail addresses: no cache may keep any answer, errors included.
    assert_eq!(response.headers()["cache-control"], "no-store");
    response
}

async fn register(app: &TestApp, email: &str) -> Value {
    let event = Event::rest(Method::POST, "/users")
        .json(&json!({"email": email, "name": "Test User", "password": PASSWORD}));
    let response = send(app, event).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        body_json(&response)
    );
    body_json(&response)
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> (StatusCode, String) {
    let request = Event::rest(Method::POST, "/sessions")
        .json(&json!({"email": email, "password": password}))
        .build();
    let response = sessions::handle(&app.state(), request).await.unwrap();
    let body = body_json(&response);
    (
        response.status(),
        body["token"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn token_for(app: &TestApp, email: &str) -> String {
    let (status, token) = log_in(app, email, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    token
}

fn patch(id: &str, token: &str, body: Value) -> Event {
    Event::rest(Method::PATCH, "/users/{id}")
        .param("id", id)
        .bearer(token)
        .json(&body)
}

fn kinds(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> (usize, usize) {
    let count = |kind: &str| {
        items
            .iter()
            .filter(|item| item["kind"].as_s().map(String::as_str) == Ok(kind))
            .count()
    };
    (count("user"), count("email"))
}

#[tokio::test]
async fn register_stores_user_and_uniqueness_item() {
    let app = TestApp::start().await;
    let response = send(
        &app,
        Event::rest(Method::POST, "/users").json(&json!({
            "email": "Ada@Example.COM", "name": " Ada Lovelace ", "password": PASSWORD
        })),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user = body_json(&response);
    let id = user["id"].as_str().unwrap();
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["version"], 1);
    assert_eq!(user["created_at"], user["updated_at"]);
    let keys: HashSet<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id", "email", "name", "version", "created_at", "updated_at"])
    );
    assert_eq!(
        response.headers()["location"],
        format!("/prod/users/{id}").as_str()
    );
    assert_eq!(response.headers()["etag"], "\"1\"");

    let items = app.user_items().await;
    assert_eq!(kinds(&items), (1, 1));
    let stored = items
        .iter()
        .find(|i| i["kind"].as_s().unwrap() == "user")
        .unwrap();
    assert_eq!(stored["pk"].as_s().unwrap(), &format!("USER#{id}"));
    assert!(
        stored["password_hash"]
            .as_s()
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=")
    );
    assert_eq!(stored["version"].as_n().unwrap(), "1");
    let email = items
        .iter()
        .find(|i| i["kind"].as_s().unwrap() == "email")
        .unwrap();
    assert_eq!(email["pk"].as_s().unwrap(), "EMAIL#ada@example.com");
    assert_eq!(email["user_id"].as_s().unwrap(), id);

    // The same address in other letter case is the same address.
    let again = send(
        &app,
        Event::rest(Method::POST, "/users")
            .json(&json!({"email": "ADA@example.com", "name": "Imposter", "password": PASSWORD})),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(&again), "email_taken");
    assert_eq!(kinds(&app.user_items().await), (1, 1));
}

/// Real DynamoDB transactions are atomic and e-mail uniqueness relies on it. Stock moto 5.2.5
/// is not (its threaded server takes no lock around `transact_write_items`, which "rolls back"
/// by restoring a copy of the table), so the `emulator` crate starts moto with its DynamoDB
/// backend serialised; without that this test fails about one run in two on the table count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_registrations_of_one_email_create_one_user() {
    let app = Arc::new(TestApp::start().await);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..32 {
        let app = Arc::clone(&app);
        tasks.spawn(async move {
            let event = Event::rest(Method::POST, "/users").json(&json!({
                "email": "race@example.com", "name": format!("Racer {n}"), "password": PASSWORD
            }));
            let response = handle(&app.state(), event.build()).await.unwrap();
            (response.status(), error_code(&response))
        });
    }
    let mut created = 0;
    let mut taken = 0;
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::CONFLICT, code) if code == "email_taken" => taken += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((created, taken), (1, 31));
    let items = app.user_items().await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(kinds(&items), (1, 1));
}

#[tokio::test]
async fn reads_need_a_session_and_show_the_email_only_to_its_owner() {
    let app = TestApp::start().await;
    let user = register(&app, "grace@example.com").await;
    register(&app, "bob@example.com").await;
    let id = user["id"].as_str().unwrap();
    let token = token_for(&app, "grace@example.com").await;
    let bobs = token_for(&app, "bob@example.com").await;
    let get = |id: &str| Event::rest(Method::GET, "/users/{id}").param("id", id);

    // No session: 401, for reads of one user, of the list and of /users/me.
    for anonymous in [
        get(id),
        Event::rest(Method::GET, "/users"),
        Event::rest(Method::GET, "/users/me"),
    ] {
        let response = send(&app, anonymous).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&response), "unauthenticated");
    }

    // The owner: the full profile, by id (in any spelling of it) and as /users/me.
    for spelling in [id.to_owned(), id.to_uppercase()] {
        let response = send(&app, get(&spelling).bearer(&token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_json(&response), user);
        assert_eq!(response.headers()["etag"], "\"1\"");
    }
    let me = send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(body_json(&me), user);
    assert_eq!(me.headers()["etag"], "\"1\"");

    // Anyone else: the public profile only, exactly these fields.
    let response = send(&app, get(id).bearer(&bobs)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(&response),
        json!({"id": id, "name": "Test User", "created_at": user["created_at"]})
    );
    assert!(!response.headers().contains_key("etag"));

    for missing in [uuid_v4(), "not-a-uuid".to_owned()] {
        let response = send(&app, get(&missing).bearer(&token)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(&response), "not_found");
    }

    // The same read through an HTTP API v2 event (stage in rawPath).
    let response = send(&app, get(id).bearer(&token).http_v2()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["email"], "grace@example.com");
    let response = send(
        &app,
        Event::rest(Method::GET, "/users/me")
            .bearer(&token)
            .http_v2(),
    )
    .await;
    assert_eq!(body_json(&response)["id"], id);
}

fn uuid_v4() -> String {
    // A syntactically valid id that was never issued.
    "6f1c1a4e-3c55-4d2a-9a57-0c6c1a0b7e11".to_owned()
}

#[tokio::test]
async fn list_pages_through_every_user_oldest_first() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(register(&app, &format!("user{n}@example.com")).await["id"].clone());
    }
    let token = token_for(&app, "user0@example.com").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut event = Event::rest(Method::GET, "/users")
            .query("limit", 2)
            .bearer(&token);
        if let Some(cursor) = &cursor {
            event = event.query("cursor", cursor);
        }
        let response = send(&app, event).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = body_json(&response);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|u| u["id"].clone()));
        pages += 1;
        assert!(pages <= 4, "pagination does not terminate");
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(seen, ids, "every user once, in creation order");
    assert!(pages >= 3);

    // Default page size covers them all at once, and shows public profiles only.
    let response = send(&app, Event::rest(Method::GET, "/users").bearer(&token)).await;
    let page = body_json(&response);
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["next_cursor"].is_null());
    for item in page["items"].as_array().unwrap() {
        let mut fields: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["created_at", "id", "name"], "{item}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let app = TestApp::start().await;
    register(&app, "ada@example.com").await;
    let token = token_for(&app, "ada@example.com").await;
    for (name, value, code) in [
        ("limit", "0", "invalid_query"),
        ("limit", "101", "invalid_query"),
        ("limit", "ten", "invalid_query"),
        ("cursor", "garbage!", "invalid_cursor"),
        ("cursor", "eyJwayI6IlVTRVIjeCJ9", "invalid_cursor"),
    ] {
        let response = send(
            &app,
            Event::rest(Method::GET, "/users")
                .query(name, value)
                .bearer(&token),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}={value}");
        assert_eq!(error_code(&response), code);
    }
}

#[tokio::test]
async fn update_needs_the_users_own_live_token() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let bobs_token = token_for(&app, "bob@example.com").await;

    let no_token = Event::rest(Method::PATCH, "/users/{id}")
        .param("id", id)
        .json(&json!({"version": 1, "name": "X"}));
    assert_eq!(
        send(&app, no_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let bad_token = patch(id, "not-a-token", json!({"version": 1, "name": "X"}));
    assert_eq!(
        send(&app, bad_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = send(
        &app,
        patch(id, &bobs_token, json!({"version": 1, "name": "X"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(&response), "forbidden");
    let delete = Event::rest(Method::DELETE, "/users/{id}")
        .param("id", id)
        .bearer(&bobs_token);
    assert_eq!(send(&app, delete).await.status(), StatusCode::FORBIDDEN);

    let expired = app
        .seed_session(
            id.parse().unwrap(),
            service_common::clock::Timestamp::now().epoch_seconds() - 10,
        )
        .await;
    let response = send(
        &app,
        patch(id, expired.expose(), json!({"version": 1, "name": "X"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let adas = token_for(&app, "ada@example.com").await;
    let after = send(&app, Event::rest(Method::GET, "/users/me").bearer(&adas)).await;
    assert_eq!(body_json(&after), ada, "nothing changed");
}

#[tokio::test]
async fn update_bumps_the_version_and_rejects_stale_versions() {
    let app = TestApp::start().await;
    let user = register(&app, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let token = token_for(&app, "ada@example.com").await;

    let response = send(
        &app,
        patch(id, &token, json!({"version": 1, "name": "Countess"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let updated = body_json(&response);
    assert_eq!(updated["name"], "Countess");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["created_at"], user["created_at"]);
    assert_ne!(updated["updated_at"], user["updated_at"]);

    let stale = send(
        &app,
        patch(id, &token, json!({"version": 1, "name": "Stale"})),
    )
    .await;
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(&stale), "version_conflict");

    let empty = send(&app, patch(id, &token, json!({"version": 2}))).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let stored = send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await;
    assert_eq!(body_json(&stored)["name"], "Countess");
    assert_eq!(body_json(&stored)["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_version_let_exactly_one_win() {
    let app = Arc::new(TestApp::start().await);
    let user = register(&app, "ada@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let token = token_for(&app, "ada@example.com").await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..8 {
        let (app, id, token) = (Arc::clone(&app), id.clone(), token.clone());
        tasks.spawn(async move {
            let event = patch(
                &id,
                &token,
                json!({"version": 1, "name": format!("Writer {n}")}),
            );
            let response = handle(&app.state(), event.build()).await.unwrap();
            (response.status(), error_code(&response))
        });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        outcomes.push(result.unwrap());
    }
    let ok = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|(s, c)| *s == StatusCode::CONFLICT && c == "version_conflict")
        .count();
    assert_eq!((ok, conflicts), (1, 7), "{outcomes:?}");
    let stored = send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await;
    assert_eq!(body_json(&stored)["version"], 2);
}

#[tokio::test]
async fn email_and_password_changes_move_the_uniqueness_item_and_the_credentials() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let token = token_for(&app, "ada@example.com").await;

    let taken = send(
        &app,
        patch(
            id,
            &token,
            json!({"version": 1, "email": "BOB@example.com", "current_password": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(&taken), "email_taken");

    let response = send(
        &app,
        patch(
            id,
            &token,
            json!({
                "version": 1,
                "email": "lovelace@example.com",
                "password": "new password 123",
                "current_password": PASSWORD,
            }),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(&response)["email"], "lovelace@example.com");

    let items = app.user_items().await;
    let email_keys: HashSet<String> = items
        .iter()
        .filter(|i| i["kind"].as_s().unwrap() == "email")
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(
        email_keys,
        HashSet::from([
            "EMAIL#lovelace@example.com".to_owned(),
            "EMAIL#bob@example.com".to_owned()
        ])
    );
    assert_eq!(
        log_in(&app, "ada@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&app, "lovelace@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&app, "lovelace@example.com", "new password 123")
            .await
            .0,
        StatusCode::CREATED
    );

    // The old address is free again.
    register(&app, "ada@example.com").await;
}

#[tokio::test]
async fn delete_removes_user_email_item_and_every_session() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let token = token_for(&app, "ada@example.com").await;
    let _second = token_for(&app, "ada@example.com").await;
    let bobs = token_for(&app, "bob@example.com").await;
    assert_eq!(app.session_items().await.len(), 3);

    let response = send(
        &app,
        Event::rest(Method::DELETE, "/users/{id}")
            .param("id", id)
            .bearer(&token)
            .json(&json!({"current_password": PASSWORD})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.body(), &Body::Empty);

    let items = app.user_items().await;
    assert_eq!(kinds(&items), (1, 1), "only bob is left");
    assert!(
        items
            .iter()
            .all(|i| i["pk"].as_s().unwrap() != "EMAIL#ada@example.com")
    );
    // The sessions stopped authenticating with the delete; exactly one sweep removes them.
    assert_eq!(app.session_items().await.len(), 3);
    let sweeps = app.take_sweeps().await;
    assert_eq!(sweeps.records.len(), 1);
    let sweep: SessionSweep =
        serde_json::from_str(sweeps.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sweep.user_id.to_string(), id);
    let swept = sweeper::handle(&app.state(), sweeps).await;
    assert!(swept.batch_item_failures.is_empty());
    let sessions = app.session_items().await;
    assert_eq!(sessions.len(), 1);
    let bob = body_json(&send(&app, Event::rest(Method::GET, "/users/me").bearer(&bobs)).await);
    assert_eq!(
        sessions[0]["user_id"].as_s().unwrap(),
        bob["id"].as_str().unwrap()
    );

    let gone = send(
        &app,
        Event::rest(Method::GET, "/users/{id}")
            .param("id", id)
            .bearer(&bobs),
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let again = send(
        &app,
        Event::rest(Method::DELETE, "/users/{id}")
            .param("id", id)
            .bearer(&token)
            .json(&json!({"current_password": PASSWORD})),
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "the token died with the user"
    );
    let bob_session = Event::rest(Method::GET, "/sessions/current")
        .bearer(&bobs)
        .build();
    assert_eq!(
        sessions::handle(&app.state(), bob_session)
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_requests_get_the_right_4xx_and_write_nothing() {
    let app = TestApp::start().await;
    let post = || Event::rest(Method::POST, "/users");
    let valid = json!({"email": "ok@example.com", "name": "Ok", "password": PASSWORD});
    let cases: Vec<(Event, StatusCode, &str)> = vec![
        (post().header("content-type", "application/json").raw_body("{\"email\": \"a@b.co\","), StatusCode::BAD_REQUEST, "malformed_json"),
        (post().header("content-type", "application/json").raw_body("not json"), StatusCode::BAD_REQUEST, "malformed_json"),
        (post().header("content-type", "application/json"), StatusCode::BAD_REQUEST, "malformed_json"),
        (post().json(&json!({"email": 42, "name": "Ok", "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!({"email": "ok@example.com", "name": ["Ok"], "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!({"email": "ok@example.com", "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!({"email": "ok@example.com", "name": "Ok"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!([valid])), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!({"email": "ok@example.com", "name": "Ok", "password": PASSWORD, "password_hash": "x"})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (post().json(&json!({"email": "not-an-email", "name": "Ok", "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"email": "ok@example.com", "name": "", "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"email": "ok@example.com", "name": "x".repeat(101), "password": PASSWORD})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"email": "ok@example.com", "name": "Ok", "password": "short"})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"email": "ok@example.com", "name": "Ok", "password": "x".repeat(129)})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (post().json(&json!({"email": "ok@example.com", "name": "Ok", "password": PASSWORD, "pad": "x".repeat(65 * 1024)})), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (post().header("content-type", "text/plain").raw_body(valid.to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (post().header("content-type", "application/x-www-form-urlencoded").raw_body("email=ok%40example.com"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (post().raw_body(valid.to_string()), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (Event::rest(Method::PUT, "/users").json(&valid), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Event::rest(Method::POST, "/users/{id}").param("id", uuid_v4()).json(&valid), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (Event::rest(Method::POST, "/accounts").json(&valid), StatusCode::NOT_FOUND, "route_not_found"),
        (Event::rest(Method::POST, "/users/{id}/extra").param("id", uuid_v4()).json(&valid).http_v2(), StatusCode::NOT_FOUND, "route_not_found"),
        (Event::rest(Method::POST, "/sessions").json(&valid), StatusCode::NOT_FOUND, "route_not_found"),
    ];
    for (event, status, code) in cases {
        let response = send(&app, event.clone()).await;
        assert_eq!(response.status(), status, "{event:?}");
        let body = body_json(&response);
        assert_eq!(body["error"]["code"], code, "{event:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(
            body["error"]["request_id"],
            response.headers()["x-request-id"].to_str().unwrap()
        );
    }
    assert!(
        app.user_items().await.is_empty(),
        "a malformed request wrote to the users table"
    );
    assert!(app.session_items().await.is_empty());

    let response = send(&app, Event::rest(Method::PUT, "/users")).await;
    assert_eq!(response.headers()["allow"], "POST, GET");
    let response = send(
        &app,
        Event::rest(Method::POST, "/users/{id}").param("id", uuid_v4()),
    )
    .await;
    assert_eq!(response.headers()["allow"], "GET, PATCH, DELETE");

    // Malformed updates leave the stored user untouched.
    let user = register(&app, "ada@example.com").await;
    let id = user["id"].as_str().unwrap();
    let token = token_for(&app, "ada@example.com").await;
    let bad_updates: Vec<(Event, StatusCode)> = vec![
        (
            Event::rest(Method::PATCH, "/users/{id}")
                .param("id", id)
                .bearer(&token)
                .header("content-type", "application/json")
                .raw_body("{"),
            StatusCode::BAD_REQUEST,
        ),
        (
            patch(id, &token, json!({"version": "1", "name": "X"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            patch(id, &token, json!({"name": "X"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            patch(id, &token, json!({"version": 1, "email": "nope"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            patch(
                id,
                &token,
                json!({"version": 1, "name": "X", "pad": "x".repeat(70_000)}),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Event::rest(Method::PATCH, "/users/{id}")
                .param("id", id)
                .bearer(&token)
                .header("content-type", "text/plain")
                .raw_body("{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (event, status) in bad_updates {
        assert_eq!(
            send(&app, event.clone()).await.status(),
            status,
            "{event:?}"
        );
    }
    let stored = send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await;
    assert_eq!(body_json(&stored), user);
    assert_eq!(kinds(&app.user_items().await), (1, 1));
}

#[tokio::test]
async fn the_whole_flow_works_over_http_api_v2_events() {
    let app = TestApp::start().await;
    let event = Event::rest(Method::POST, "/users")
        .json(&json!({"email": "v2@example.com", "name": "V2", "password": PASSWORD}))
        .http_v2();
    let response = send(&app, event).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = body_json(&response)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        response.headers()["location"],
        format!("/prod/users/{id}").as_str()
    );
    let token = token_for(&app, "v2@example.com").await;
    let response = send(
        &app,
        patch(&id, &token, json!({"version": 1, "name": "Two"})).http_v2(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(
        &app,
        Event::rest(Method::GET, "/users")
            .query("limit", 1)
            .bearer(&token)
            .http_v2(),
    )
    .await;
    assert_eq!(body_json(&response)["items"][0]["name"], "Two");
    let response = send(
        &app,
        Event::rest(Method::DELETE, "/users/{id}")
            .param("id", &id)
            .bearer(&token)
            .json(&json!({"current_password": PASSWORD}))
            .http_v2(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn session_status(app: &TestApp, token: &str) -> StatusCode {
    let request = Event::rest(Method::GET, "/sessions/current")
        .bearer(token)
        .build();
    sessions::handle(&app.state(), request)
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn changing_the_email_or_password_needs_the_current_password() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    let id = ada["id"].as_str().unwrap();
    for (change, current) in [
        (json!({"email": "new@example.com"}), None),
        (json!({"password": "a new password"}), None),
        (json!({"password": "a new password"}), Some("a wrong guess")),
        (json!({"email": "new@example.com"}), Some("x")),
    ] {
        let token = token_for(&app, "ada@example.com").await;
        let other = token_for(&app, "ada@example.com").await;
        let mut body = change.clone();
        body["version"] = json!(1);
        if let Some(current) = current {
            body["current_password"] = json!(current);
        }
        let response = send(&app, patch(id, &token, body)).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{change} {current:?}"
        );
        assert_eq!(error_code(&response), "reauthentication_failed");
        // A stolen token buys one guess: the session that sent it is over, the others live.
        assert_eq!(session_status(&app, &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(session_status(&app, &other).await, StatusCode::OK);
        let me = send(&app, Event::rest(Method::GET, "/users/me").bearer(&other)).await;
        assert_eq!(body_json(&me), ada, "nothing was written");
    }
    // Out of the contract's bounds (1 to 128 characters) is 422 before any check: the session
    // lives on and nothing changes.
    let token = token_for(&app, "ada@example.com").await;
    for current in [String::new(), "p".repeat(129)] {
        let body = json!({"version": 1, "email": "new@example.com", "current_password": current});
        let response = send(&app, patch(id, &token, body)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(session_status(&app, &token).await, StatusCode::OK);
    }
    // A name alone needs no password.
    let response = send(
        &app,
        patch(id, &token, json!({"version": 1, "name": "Countess"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_at_once() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let changer = token_for(&app, "ada@example.com").await;
    let others = [
        token_for(&app, "ada@example.com").await,
        token_for(&app, "ada@example.com").await,
    ];
    let response = send(
        &app,
        patch(
            id,
            &changer,
            json!({"version": 1, "password": "a new password", "current_password": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(session_status(&app, &changer).await, StatusCode::OK);
    for token in &others {
        assert_eq!(session_status(&app, token).await, StatusCode::UNAUTHORIZED);
    }
    // The changer's session goes on working for the profile too.
    let me = send(&app, Event::rest(Method::GET, "/users/me").bearer(&changer)).await;
    assert_eq!(body_json(&me)["version"], 2);
    let (status, fresh) = log_in(&app, "ada@example.com", "a new password").await;
    assert_eq!(status, StatusCode::CREATED);

    // One sweep of the user, which the real sweeper carries out later: the sessions the
    // change ended go, the changer's and the one started since stay.
    let sweeps = app.take_sweeps().await;
    assert_eq!(sweeps.records.len(), 1);
    let sweep: SessionSweep =
        serde_json::from_str(sweeps.records[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(sweep.user_id.to_string(), id);
    assert_eq!(app.session_items().await.len(), 4);
    let swept = sweeper::handle(&app.state(), sweeps).await;
    assert!(swept.batch_item_failures.is_empty());
    assert_eq!(app.session_items().await.len(), 2);
    assert_eq!(session_status(&app, &changer).await, StatusCode::OK);
    assert_eq!(session_status(&app, &fresh).await, StatusCode::OK);
    // A change that keeps the password revokes nothing and asks for no sweep.
    let renamed = send(
        &app,
        patch(id, &changer, json!({"version": 2, "name": "Ada L."})),
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert!(app.take_sweeps().await.records.is_empty());
}

/// Rounds of each race; every round is a fresh user, so the invariant is checked many times
/// over many interleavings. A race runs more rounds, up to `MAX_RACE_ROUNDS`, until a log-in
/// that succeeded overlapped the revocation: on a loaded machine the revocation may win every
/// one of the first rounds, and a race that never ran proves nothing.
const RACE_ROUNDS: usize = 12;
const MAX_RACE_ROUNDS: usize = 48;
/// Log-ins that race the revocation in each round.
const RACING_LOG_INS: usize = 5;

/// How one round of a race went.
struct Race {
    /// The revocation's status.
    status: StatusCode,
    /// The tokens of the log-ins that succeeded.
    tokens: Vec<String>,
    /// How many of those log-ins were still running when the revocation started and had
    /// started before it finished: the interleavings the invariant is about. Without any, the
    /// test would only have checked log-ins that ran before the revocation, one after another.
    overlapping: usize,
}

/// The head start round `round` gives the log-ins over the revocation: none, then a quarter,
/// a half and three quarters of one log-in's time, and again. Both need a password check, so
/// without it the outcome depends on the scheduler alone; with it, some rounds have log-ins
/// succeed while the revocation is already running.
fn head_start(round: usize, log_in_time: std::time::Duration) -> std::time::Duration {
    log_in_time * (round % 4) as u32 / 4
}

/// How long one log-in takes here (the scale of [`head_start`]).
async fn log_in_time(app: &TestApp, email: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    token_for(app, email).await;
    started.elapsed()
}

/// Runs `round` (one race on a fresh user; it returns how many of its successful log-ins
/// overlapped the revocation) `RACE_ROUNDS` times, and more, up to `MAX_RACE_ROUNDS`, until
/// one did; fails when none ever did, since then the race was never run.
async fn race_rounds(revocation: &str, mut round: impl AsyncFnMut(usize) -> usize) {
    let mut overlapping = 0;
    let mut rounds = 0;
    while rounds < MAX_RACE_ROUNDS && (rounds < RACE_ROUNDS || overlapping == 0) {
        overlapping += round(rounds).await;
        rounds += 1;
    }
    assert!(
        overlapping > 0,
        "no log-in that succeeded ran while {revocation} did, in {rounds} rounds: the race \
         was never run"
    );
}

/// Starts `RACING_LOG_INS` log-ins with `password` and, `delay` later, `revoke` (released
/// together by a barrier, each on the multi-threaded runtime; the password hashing runs on the
/// blocking pool, so they really run side by side) and times each.
async fn race(
    app: &Arc<TestApp>,
    email: &str,
    password: &str,
    revoke: Event,
    delay: std::time::Duration,
) -> Race {
    use std::time::Instant;
    let start = Arc::new(tokio::sync::Barrier::new(RACING_LOG_INS + 1));
    let mut log_ins = tokio::task::JoinSet::new();
    for _ in 0..RACING_LOG_INS {
        let (app, start) = (Arc::clone(app), Arc::clone(&start));
        let (email, password) = (email.to_owned(), password.to_owned());
        log_ins.spawn(async move {
            start.wait().await;
            let began = Instant::now();
            let (status, token) = log_in(&app, &email, &password).await;
            (status, token, began, Instant::now())
        });
    }
    let revocation = {
        let app = Arc::clone(app);
        tokio::spawn(async move {
            start.wait().await;
            tokio::time::sleep(delay).await;
            let began = Instant::now();
            let status = handle(&app.state(), revoke.build()).await.unwrap().status();
            (status, began, Instant::now())
        })
    };
    let mut succeeded = Vec::new();
    while let Some(result) = log_ins.join_next().await {
        let (status, token, began, ended) = result.unwrap();
        if status == StatusCode::CREATED {
            succeeded.push((token, began, ended));
        }
    }
    let (status, revocation_began, revocation_ended) = revocation.await.unwrap();
    let overlapping = succeeded
        .iter()
        .filter(|(_, began, ended)| *began < revocation_ended && *ended > revocation_began)
        .count();
    Race {
        status,
        tokens: succeeded.into_iter().map(|(token, ..)| token).collect(),
        overlapping,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_in_that_races_a_delete_leaves_a_live_session() {
    let app = Arc::new(TestApp::start().await);
    race_rounds("a delete", async |round| {
        let email = format!("doomed{round}@example.com");
        let id = register(&app, &email).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let took = log_in_time(&app, &email).await;
        let token = token_for(&app, &email).await;
        let delete = Event::rest(Method::DELETE, "/users/{id}")
            .param("id", &id)
            .bearer(&token)
            .json(&json!({"current_password": PASSWORD}));
        let race = race(&app, &email, PASSWORD, delete, head_start(round, took)).await;
        assert_eq!(race.status, StatusCode::NO_CONTENT, "round {round}");
        for token in race.tokens.iter().chain([&token]) {
            assert_eq!(
                session_status(&app, token).await,
                StatusCode::UNAUTHORIZED,
                "round {round}: a session outlived its user"
            );
        }
        race.overlapping
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_log_in_that_races_a_password_change_keeps_the_old_password_alive() {
    let app = Arc::new(TestApp::start().await);
    race_rounds("a password change", async |round| {
        let email = format!("moving{round}@example.com");
        let id = register(&app, &email).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let took = log_in_time(&app, &email).await;
        let changer = token_for(&app, &email).await;
        let change = patch(
            &id,
            &changer,
            json!({"version": 1, "password": "the new password", "current_password": PASSWORD}),
        );
        let race = race(&app, &email, PASSWORD, change, head_start(round, took)).await;
        assert_eq!(race.status, StatusCode::OK, "round {round}");
        for token in &race.tokens {
            assert_eq!(
                session_status(&app, token).await,
                StatusCode::UNAUTHORIZED,
                "round {round}: a session from the old password survived the change"
            );
        }
        assert_eq!(session_status(&app, &changer).await, StatusCode::OK);
        race.overlapping
    })
    .await;
}

fn delete(id: &str, token: &str, current_password: Option<&str>) -> Event {
    let event = Event::rest(Method::DELETE, "/users/{id}")
        .param("id", id)
        .bearer(token);
    match current_password {
        Some(password) => event.json(&json!({ "current_password": password })),
        None => event,
    }
}

#[tokio::test]
async fn deleting_an_account_needs_the_current_password() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    let id = ada["id"].as_str().unwrap();
    for current in [None, Some("a wrong guess")] {
        let token = token_for(&app, "ada@example.com").await;
        let response = send(&app, delete(id, &token, current)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{current:?}");
        assert_eq!(error_code(&response), "reauthentication_failed");
        assert_eq!(session_status(&app, &token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(kinds(&app.user_items().await), (1, 1), "nothing deleted");
    }
    let token = token_for(&app, "ada@example.com").await;
    for current in [String::new(), "p".repeat(129)] {
        let response = send(&app, delete(id, &token, Some(&current))).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(session_status(&app, &token).await, StatusCode::OK);
    }
    let response = send(&app, delete(id, &token, Some(PASSWORD))).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(kinds(&app.user_items().await), (0, 0));
}

/// Rounds of the one-guess race, each with a fresh session.
const GUESS_ROUNDS: usize = 12;
/// Concurrent re-authentications on one token in each round.
const CONCURRENT_GUESSES: usize = 8;

/// Sends `bodies` as concurrent PATCHes on one token; returns their statuses.
async fn concurrent_patches(
    app: &Arc<TestApp>,
    id: &str,
    token: &str,
    bodies: Vec<Value>,
) -> Vec<StatusCode> {
    let mut patches = tokio::task::JoinSet::new();
    for body in bodies {
        let (app, event) = (Arc::clone(app), patch(id, token, body));
        patches.spawn(async move { send(&app, event).await.status() });
    }
    patches.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_gets_one_password_check_under_any_concurrency() {
    let app = Arc::new(TestApp::start().await);
    let ada = register(&app, "ada@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let wrong = |i: usize| json!({"version": 1, "email": "thief@example.com", "current_password": format!("guess number {i}")});
    for round in 0..GUESS_ROUNDS {
        let token = token_for(&app, "ada@example.com").await;
        let statuses = concurrent_patches(
            &app,
            id,
            &token,
            (0..CONCURRENT_GUESSES).map(wrong).collect(),
        )
        .await;
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::FORBIDDEN)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        assert_eq!(
            (checked, refused),
            (1, CONCURRENT_GUESSES - 1),
            "round {round}: one guess checked, the rest refused: {statuses:?}"
        );
        assert_eq!(session_status(&app, &token).await, StatusCode::UNAUTHORIZED);
    }
    // The right password racing wrong ones: whichever request claims the check decides, and
    // once a wrong guess has ended the session the right one is never confirmed.
    let mut confirmed = 0;
    for round in 0..GUESS_ROUNDS {
        let token = token_for(&app, "ada@example.com").await;
        let version = body_json(
            &send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await,
        )["version"]
            .clone();
        let mut bodies: Vec<Value> = (0..CONCURRENT_GUESSES - 1).map(wrong).collect();
        bodies.insert(
            round % CONCURRENT_GUESSES,
            json!({"version": version, "email": format!("ada{round}@example.com"), "current_password": PASSWORD}),
        );
        for body in &mut bodies {
            body["version"] = version.clone();
        }
        let statuses = concurrent_patches(&app, id, &token, bodies).await;
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let checked_wrong = statuses
            .iter()
            .filter(|s| **s == StatusCode::FORBIDDEN)
            .count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        // A right password that commits gives the check back (the session may confirm again
        // later), so a wrong guess still in flight may then take it: the invariant is one
        // wrong guess per token, never two, and the session ends exactly when one was checked.
        assert!(
            ok <= 1 && checked_wrong <= 1 && ok + checked_wrong >= 1,
            "round {round}: at most one change and at most one wrong guess checked: {statuses:?}"
        );
        assert_eq!(
            ok + checked_wrong + refused,
            CONCURRENT_GUESSES,
            "round {round}: every other request refused unchecked: {statuses:?}"
        );
        let live = session_status(&app, &token).await == StatusCode::OK;
        assert_eq!(
            live,
            checked_wrong == 0,
            "round {round}: the session ends exactly when a wrong guess was checked: {statuses:?}"
        );
        confirmed += ok;
        // Back to the original address for the next round (through a fresh session when a
        // late wrong guess ended this one).
        if ok == 1 {
            let token = match live {
                true => token,
                false => token_for(&app, &format!("ada{round}@example.com")).await,
            };
            let me =
                body_json(&send(&app, Event::rest(Method::GET, "/users/me").bearer(&token)).await);
            let back = json!({"version": me["version"], "email": "ada@example.com", "current_password": PASSWORD});
            assert_eq!(
                send(&app, patch(id, &token, back)).await.status(),
                StatusCode::OK
            );
        }
    }
    eprintln!("the right password won the claim in {confirmed} of {GUESS_ROUNDS} rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_racing_a_password_change_or_log_out_everywhere_never_outlives_it() {
    let app = Arc::new(TestApp::start().await);
    let mut refused = 0;
    for round in 0..RACE_ROUNDS {
        let email = format!("racer{round}@example.com");
        let id = register(&app, &email).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deleter = token_for(&app, &email).await;
        let other = token_for(&app, &email).await;
        let deletion = {
            let (app, event) = (Arc::clone(&app), delete(&id, &deleter, Some(PASSWORD)));
            tokio::spawn(async move { send(&app, event).await.status() })
        };
        let revocation = if round % 2 == 0 {
            let change = patch(
                &id,
                &other,
                json!({"version": 1, "password": "the new password", "current_password": PASSWORD}),
            );
            let app = Arc::clone(&app);
            tokio::spawn(async move { send(&app, change).await.status() })
        } else {
            let request = Event::rest(Method::DELETE, "/sessions")
                .bearer(&other)
                .build();
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                sessions::handle(&app.state(), request)
                    .await
                    .unwrap()
                    .status()
            })
        };
        let (deleted, revoked) = (deletion.await.unwrap(), revocation.await.unwrap());
        let key = format!("USER#{id}");
        let exists = app
            .user_items()
            .await
            .iter()
            .any(|item| item["pk"].as_s().is_ok_and(|pk| *pk == key));
        match deleted {
            StatusCode::NO_CONTENT => assert!(!exists, "round {round}: 204 but the user exists"),
            StatusCode::UNAUTHORIZED => {
                assert!(exists, "round {round}: 401 but the user is gone");
                refused += 1;
            }
            other => panic!("round {round}: delete answered {other}"),
        }
        if round % 2 == 0 {
            assert!(
                !(deleted == StatusCode::NO_CONTENT && revoked == StatusCode::OK),
                "round {round}: a password change and a delete both succeeded"
            );
        }
        assert_eq!(
            session_status(&app, &deleter).await,
            StatusCode::UNAUTHORIZED
        );
    }
    eprintln!("{refused} of {RACE_ROUNDS} deletes lost their race and answered 401");
}

#[tokio::test]
async fn a_verified_change_that_does_not_commit_gives_the_password_check_back() {
    let app = TestApp::start().await;
    let ada = register(&app, "ada@example.com").await;
    register(&app, "bob@example.com").await;
    let id = ada["id"].as_str().unwrap();
    let token = token_for(&app, "ada@example.com").await;
    let taken = json!({"version": 1, "email": "bob@example.com", "current_password": PASSWORD});
    let response = send(&app, patch(id, &token, taken)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(&response), "email_taken");
    // The claim came back with the conflict: the same session may prove itself again.
    let free = json!({"version": 1, "email": "ada2@example.com", "current_password": PASSWORD});
    assert_eq!(
        send(&app, patch(id, &token, free)).await.status(),
        StatusCode::OK
    );
    let claims = app
        .session_items()
        .await
        .iter()
        .filter(|item| item.contains_key("reauth_claim"))
        .count();
    assert_eq!(claims, 0, "every claim was released");
}
