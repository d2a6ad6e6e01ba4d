//! Rotation of the password pepper ring on moto, step by step through the real handler, as
//! Secrets Manager runs it: `RotateSecret` records the rotation and stages the token's version
//! `AWSPENDING` (the emulator's launcher stops it there: moto cannot run a Lambda), then each
//! step is one call of the function. Between every two steps the users and sessions handlers
//! register and log in with the same secret: no reader ever fails.

use std::collections::HashMap;
use std::sync::OnceLock;

use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::RotationRulesType;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{Method, StatusCode};
use rotation::{CURRENT, PENDING, PREVIOUS, RotationError, RotationEvent, Step, handle};
use serde_json::json;
use service_common::password::key_id;
use service_common::peppers::PepperRing;
use service_common::testing::{Event, LogCapture, TestApp};

/// The rotation function Secrets Manager would invoke; the emulator only records it.
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test-rotation";
const PASSWORD: &str = "rotated under my feet";

/// The production log lines of this test binary: one global subscriber (a scoped one misses
/// lines while other tests run on other threads); each test finds its own by its secret's ARN.
fn log_capture() -> &'static LogCapture {
    static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = LogCapture::default();
        tracing::subscriber::set_global_default(capture.subscriber("info"))
            .expect("install the capturing subscriber");
        capture
    })
}

/// Starts a rotation as `RotateSecret` does and returns its token (the new version's id):
/// configuring it (the function, every 30 days), as infra does, the first time only.
async fn start_rotation(app: &TestApp) -> String {
    let configured = describe(app).await.rotation_enabled() == Some(true);
    let rules = RotationRulesType::builder()
        .automatically_after_days(30)
        .build();
    let rotate = app.secrets.rotate_secret().secret_id(&app.peppers_arn);
    let rotate = if configured {
        rotate
    } else {
        rotate
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(rules)
    };
    rotate
        .send()
        .await
        .expect("RotateSecret")
        .version_id()
        .expect("the rotation's version")
        .to_owned()
}

async fn step(app: &TestApp, step: Step, token: &str) -> Result<(), RotationError> {
    let event = RotationEvent {
        step,
        secret_id: app.peppers_arn.clone(),
        client_request_token: token.to_owned(),
    };
    handle(&app.secrets, &event).await
}

/// The pepper secret as Secrets Manager describes it: its rotation and its versions' stages.
async fn describe(app: &TestApp) -> DescribeSecretOutput {
    app.secrets
        .describe_secret()
        .secret_id(&app.peppers_arn)
        .send()
        .await
        .expect("DescribeSecret")
}

/// Version id -> stages, without the versions that have none left.
async fn stages(app: &TestApp) -> HashMap<String, Vec<String>> {
    let mut stages = describe(app)
        .await
        .version_ids_to_stages()
        .cloned()
        .unwrap();
    stages.retain(|_, stages| !stages.is_empty());
    stages
}

async fn register(app: &TestApp, email: &str) {
    let event = Event::rest(Method::POST, "/users")
        .json(&json!({"email": email, "name": "Reader", "password": PASSWORD}));
    let response = users::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {email}");
}

async fn log_in(app: &TestApp, email: &str) {
    let event =
        Event::rest(Method::POST, "/sessions").json(&json!({"email": email, "password": PASSWORD}));
    let response = sessions::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "log in {email}");
}

/// The pepper key id of the stored hash of the user `email`.
async fn hash_key(app: &TestApp, email: &str) -> String {
    let items = app.user_items().await;
    let user = items
        .iter()
        .find(|item| {
            item.contains_key("password_hash")
                && item.get("email").and_then(|e| e.as_s().ok()) == Some(&email.to_owned())
        })
        .expect("the user item");
    key_id(user["password_hash"].as_s().unwrap())
        .unwrap()
        .expect("a peppered hash")
}

#[tokio::test]
async fn two_rotations_add_keys_move_the_stages_and_lock_nobody_out() {
    let capture = log_capture();
    let app = TestApp::start().await;
    let original = stages(&app).await;
    let (first_version, _) = original
        .iter()
        .next()
        .expect("the generated ring's version");
    let first_version = first_version.clone();
    register(&app, "before@example.com").await;
    assert_eq!(hash_key(&app, "before@example.com").await, "k1");

    let mut readers = 0;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let token = start_rotation(&app).await;
        for s in Step::ALL {
            step(&app, s, &token).await.unwrap();
            readers += 1;
            register(&app, &format!("during-{readers}@example.com")).await;
            log_in(&app, "before@example.com").await;
        }
        tokens.push(token);
    }

    // AWSCURRENT on the last rotation's version, AWSPREVIOUS on the one before, AWSPENDING on
    // none; the generated ring's version keeps no stage (AWS deprecates such a version).
    let after = stages(&app).await;
    assert_eq!(
        after,
        HashMap::from([
            (tokens[1].clone(), vec![CURRENT.to_owned()]),
            (tokens[0].clone(), vec![PREVIOUS.to_owned()]),
        ]),
        "generated ring's version was {first_version}"
    );
    assert!(!after.values().flatten().any(|s| s == PENDING));

    let ring = app.peppers().await;
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["k1", "k2", "k3"]);
    assert_eq!(ring.current_id(), "k3");
    // Registered before both rotations: logs in, and the log-in moved the hash to the new key.
    log_in(&app, "before@example.com").await;
    assert_eq!(hash_key(&app, "before@example.com").await, "k3");

    // One line per step, naming the step and the secret, never a key.
    let logged = capture.text(0..capture.len());
    let step_lines: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains(r#""step":""#) && line.contains(&app.peppers_arn))
        .collect();
    assert_eq!(step_lines.len(), 8, "{logged}");
    for key in ring.ids().filter_map(|id| ring.key(id)) {
        assert!(!logged.contains(&STANDARD.encode(key)), "a key in the log");
    }
}

#[tokio::test]
async fn a_retried_create_makes_no_second_version_and_a_retried_finish_is_harmless() {
    let app = TestApp::start().await;
    let token = start_rotation(&app).await;
    step(&app, Step::Create, &token).await.unwrap();
    let pending = read_pending(&app, &token).await;
    step(&app, Step::Create, &token).await.unwrap();
    assert_eq!(read_pending(&app, &token).await, pending);
    assert_eq!(stages(&app).await.len(), 2);

    step(&app, Step::Test, &token).await.unwrap();
    step(&app, Step::Finish, &token).await.unwrap();
    let finished = stages(&app).await;
    for s in Step::ALL {
        step(&app, s, &token).await.unwrap();
    }
    assert_eq!(stages(&app).await, finished);
    assert_eq!(app.peppers().await.to_value().expose(), pending);
}

async fn read_pending(app: &TestApp, token: &str) -> String {
    app.secrets
        .get_secret_value()
        .secret_id(&app.peppers_arn)
        .version_id(token)
        .version_stage(PENDING)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_steps_refuse_what_the_template_refuses() {
    let app = TestApp::start().await;
    let refusal = async |s: Step, token: &str| {
        service_common::logging::error_chain(&step(&app, s, token).await.unwrap_err())
    };

    // No rotation configured on the secret.
    let error = refusal(Step::Create, "any").await;
    assert!(error.contains("rotation is not enabled"), "{error}");

    let token = start_rotation(&app).await;
    let error = refusal(Step::Create, "not-a-version-of-this-secret").await;
    assert!(error.contains("is not a version of it"), "{error}");

    // A pending ring that dropped a key (a fresh ring in place of the next one): testSecret
    // refuses it, and AWSCURRENT stays on the ring the readers use.
    let fresh = PepperRing::generate().unwrap().with_new_key().unwrap();
    app.secrets
        .put_secret_value()
        .secret_id(&app.peppers_arn)
        .client_request_token(&token)
        .secret_string(fresh.to_value().expose())
        .version_stages(PENDING)
        .send()
        .await
        .unwrap();
    let before = app.peppers().await;
    let error = refusal(Step::Test, &token).await;
    assert!(error.contains("drops or changes key(s) k1"), "{error}");
    assert!(!error.contains(fresh.to_value().expose()), "{error}");
    assert_eq!(app.peppers().await, before);

    // A version that is neither pending nor current: the generated ring's, once it is previous.
    let (first, _) = stages(&app)
        .await
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == CURRENT))
        .unwrap();
    let token = {
        app.secrets
            .update_secret_version_stage()
            .secret_id(&app.peppers_arn)
            .version_stage(PENDING)
            .remove_from_version_id(&token)
            .send()
            .await
            .unwrap();
        start_rotation(&app).await
    };
    for s in Step::ALL {
        step(&app, s, &token).await.unwrap();
    }
    let error = refusal(Step::Finish, &first).await;
    assert!(error.contains("is not staged AWSPENDING"), "{error}");
}
