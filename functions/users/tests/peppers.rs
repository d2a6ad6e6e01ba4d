//! The password pepper (issue #24, point 5) end to end on moto: the real users and sessions
//! handlers read the key ring from the emulator's Secrets Manager. A registered password's hash
//! names the ring's current key; a legacy hash (no pepper) and a hash of an older key verify and
//! move to the current key at log-in; without the secret, the stored hash verifies nothing; a
//! hash whose key left the ring is a 500 whose log line names the key id, never a key.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Method, StatusCode};
use serde_json::json;
use service_common::password::key_id;
use service_common::peppers::PepperRing;
use service_common::testing::{Event, LogCapture, TestApp, body_json, error_code};

const PASSWORD: &str = "pepper in the hash";

async fn register(app: &TestApp, email: &str) -> String {
    let event = Event::rest(Method::POST, "/users")
        .json(&json!({"email": email, "name": "Peppered", "password": PASSWORD}));
    let response = users::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    body_json(&response)["id"].as_str().unwrap().to_owned()
}

async fn log_in(app: &TestApp, email: &str) -> http::Response<lambda_http::Body> {
    let event =
        Event::rest(Method::POST, "/sessions").json(&json!({"email": email, "password": PASSWORD}));
    sessions::handle(&app.state(), event.build()).await.unwrap()
}

/// The stored `password_hash` of user `id`, read from the table as a dump would.
async fn stored_hash(app: &TestApp, id: &str) -> String {
    let items = app.user_items().await;
    let item = items
        .iter()
        .find(|item| item["pk"].as_s().unwrap() == &format!("USER#{id}"))
        .expect("the user item");
    item["password_hash"].as_s().unwrap().clone()
}

/// Puts `phc` in place of the stored hash of user `id` (a hash from before the pepper, or of a
/// key the ring lost).
async fn store_hash(app: &TestApp, id: &str, phc: &str) {
    app.client
        .update_item()
        .table_name(&app.users_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{id}")),
        )
        .update_expression("SET password_hash = :h")
        .expression_attribute_values(":h", aws_sdk_dynamodb::types::AttributeValue::S(phc.into()))
        .send()
        .await
        .unwrap();
}

fn argon2(params: Params, pepper: Option<&[u8]>) -> Argon2<'_> {
    match pepper {
        None => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        Some(key) => {
            Argon2::new_with_secret(key, Algorithm::Argon2id, Version::V0x13, params).unwrap()
        }
    }
}

#[tokio::test]
async fn a_registered_hash_names_the_current_key_and_verifies_nothing_without_it() {
    let app = TestApp::start().await;
    let id = register(&app, "dump@example.com").await;
    let stored = stored_hash(&app, &id).await;
    let ring = app.peppers().await;
    assert_eq!(key_id(&stored).unwrap().as_deref(), Some(ring.current_id()));

    // Recompute from the dump: same password, salt and parameters. Without the pepper the hash
    // differs (a dump without the secret verifies nothing); with it, it is the stored one.
    let parsed = PasswordHash::new(&stored).unwrap();
    let params = Params::try_from(&parsed).unwrap();
    let salt = parsed.salt.unwrap();
    let without = argon2(params.clone(), None)
        .hash_password(PASSWORD.as_bytes(), salt)
        .unwrap();
    assert_ne!(without.hash, parsed.hash);
    let with = argon2(params, Some(ring.current_key()))
        .hash_password(PASSWORD.as_bytes(), salt)
        .unwrap();
    assert_eq!(with.hash, parsed.hash);
    assert_eq!(
        log_in(&app, "dump@example.com").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_legacy_hash_verifies_and_moves_to_the_current_key_at_log_in() {
    let app = TestApp::start().await;
    let id = register(&app, "legacy@example.com").await;
    let salt = SaltString::encode_b64(b"legacy-salt-0123").unwrap();
    let legacy = argon2(Params::new(19_456, 2, 1, None).unwrap(), None)
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap()
        .to_string();
    store_hash(&app, &id, &legacy).await;
    assert_eq!(key_id(&legacy).unwrap(), None);

    assert_eq!(
        log_in(&app, "legacy@example.com").await.status(),
        StatusCode::CREATED
    );
    let upgraded = stored_hash(&app, &id).await;
    assert_ne!(upgraded, legacy);
    let ring = app.peppers().await;
    assert_eq!(
        key_id(&upgraded).unwrap().as_deref(),
        Some(ring.current_id())
    );
    // A hash of the current key is left alone.
    assert_eq!(
        log_in(&app, "legacy@example.com").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(stored_hash(&app, &id).await, upgraded);
}

#[tokio::test]
async fn after_two_rotations_the_old_password_logs_in_and_moves_to_the_newest_key() {
    let app = TestApp::start().await;
    let id = register(&app, "rotated@example.com").await;
    let first = stored_hash(&app, &id).await;
    assert_eq!(key_id(&first).unwrap().as_deref(), Some("k1"));
    let ring = app.peppers().await.with_new_key().unwrap();
    app.set_peppers(&ring).await;
    let ring = ring.with_new_key().unwrap();
    app.set_peppers(&ring).await;
    assert_eq!(app.peppers().await.current_id(), "k3");

    assert_eq!(
        log_in(&app, "rotated@example.com").await.status(),
        StatusCode::CREATED
    );
    let moved = stored_hash(&app, &id).await;
    assert_eq!(key_id(&moved).unwrap().as_deref(), Some("k3"));
    assert_eq!(
        log_in(&app, "rotated@example.com").await.status(),
        StatusCode::CREATED
    );
    // A wrong password moves nothing.
    let event = Event::rest(Method::POST, "/sessions")
        .json(&json!({"email": "rotated@example.com", "password": "not the password"}));
    let response = sessions::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stored_hash(&app, &id).await, moved);
}

/// A hash whose key left the ring fails closed: a 500 in the documented shape, and the
/// `request failed` line names the key id but holds none of the ring's keys. (The test runs on
/// one thread, so the capturing subscriber set for it sees the handler's lines.)
#[tokio::test]
async fn a_hash_of_a_key_the_ring_lacks_is_a_500_that_names_only_the_key_id() {
    let app = TestApp::start().await;
    let id = register(&app, "lost@example.com").await;
    let ring = app.peppers().await.with_new_key().unwrap();
    app.set_peppers(&ring).await;
    let stored = stored_hash(&app, &id).await;
    // A ring without `k1`, which the stored hash names.
    let without_k1 = PepperRing::parse(&service_common::secrets::SecretValue::new(format!(
        r#"{{"current":"k2","keys":{{"k2":"{}"}}}}"#,
        STANDARD.encode(ring.key("k2").unwrap())
    )))
    .unwrap();
    app.set_peppers(&without_k1).await;

    let capture = LogCapture::default();
    let response = {
        let _guard = tracing::subscriber::set_default(capture.subscriber("info"));
        log_in(&app, "lost@example.com").await
    };
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&response), "internal_error");
    assert_eq!(stored_hash(&app, &id).await, stored);

    let logged = capture.text(0..capture.len());
    let failed: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("\"request failed\""))
        .collect();
    assert_eq!(failed.len(), 1, "{logged}");
    assert!(failed[0].contains("pepper key `k1`"), "{}", failed[0]);
    for id in ring.ids() {
        let key = ring.key(id).unwrap();
        assert!(!logged.contains(&STANDARD.encode(key)), "a key in the log");
    }
    assert!(!logged.contains(&stored), "a password hash in the log");
}

/// Without the ring (its secret deleted), the requests that hash or verify a password answer
/// the documented 500, and `/health` is unaffected.
#[tokio::test]
async fn without_the_ring_password_requests_fail_and_health_serves() {
    let app = TestApp::start().await;
    register(&app, "before@example.com").await;
    app.secrets
        .delete_secret()
        .secret_id(&app.peppers_arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let event = Event::rest(Method::POST, "/users")
        .json(&json!({"email": "after@example.com", "name": "After", "password": PASSWORD}));
    let response = users::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&response), "internal_error");
    for email in ["before@example.com", "nobody@example.com"] {
        let response = log_in(&app, email).await;
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{email}"
        );
    }
    let health = Event::rest(Method::GET, "/health").build();
    let response = health::handle(&app.state(), health).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
