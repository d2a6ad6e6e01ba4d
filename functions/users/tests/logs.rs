//! The production JSON log layer, captured across register, log-in, update and log-out at the
//! most verbose level, never contains a password, a token, a token hash or a password hash,
//! nor an e-mail address, every line of a request carries its request id, every line parses as
//! the log schema (`docs/logging.md`, `service_common::logging::LogLine`), and each DynamoDB
//! call a request made is a `dynamodb call` line of that request.
//!
//! Its own test binary: it installs a process-wide subscriber.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use service_common::logging::LogLine;
use service_common::testing::{Event, LogCapture, TestApp, body_json};
use service_common::token::SessionToken;

#[tokio::test]
async fn logs_hold_no_secrets_and_every_request_line_has_its_request_id() {
    let capture = LogCapture::default();
    tracing::subscriber::set_global_default(capture.subscriber("trace"))
        .expect("install the capturing subscriber");

    let app = TestApp::start().await;
    // What the test itself does (creating and reading the tables) is logged outside requests.
    let serving_from = capture.len();
    let first_password = "first secret password";
    let second_password = "second secret password";
    let mut request_ids = Vec::new();
    let mut tokens = Vec::new();

    let call_users = async |event: Event| {
        let response = users::handle(&app.state(), event.build()).await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), body_json(&response), id)
    };
    let (status, user, id) =
        call_users(Event::rest(Method::POST, "/users").json(
            &json!({"email": "quiet@example.com", "name": "Quiet", "password": first_password}),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    request_ids.push(id);
    let user_id = user["id"].as_str().unwrap().to_owned();

    let log_in = async |password: &str| {
        let event = Event::rest(Method::POST, "/sessions")
            .json(&json!({"email": "quiet@example.com", "password": password}));
        let response = sessions::handle(&app.state(), event.build()).await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), body_json(&response), id)
    };
    let (status, _, id) = log_in("a wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    request_ids.push(id);
    let (status, session, id) = log_in(first_password).await;
    assert_eq!(status, StatusCode::CREATED);
    request_ids.push(id);
    let token = session["token"].as_str().unwrap().to_owned();
    tokens.push(token.clone());

    let (status, _, id) = call_users(
        Event::rest(Method::PATCH, "/users/{id}")
            .param("id", &user_id)
            .bearer(&token)
            .json(&json!({
                "version": 1,
                "name": "Still Quiet",
                "password": second_password,
                "current_password": first_password,
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    request_ids.push(id);
    let (status, session, id) = log_in(second_password).await;
    assert_eq!(status, StatusCode::CREATED);
    request_ids.push(id);
    tokens.push(session["token"].as_str().unwrap().to_owned());

    let event = Event::rest(Method::DELETE, "/sessions/current").bearer(&tokens[1]);
    let response = sessions::handle(&app.state(), event.build()).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    request_ids.push(
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned(),
    );

    let serving_to = capture.len();
    let password_hashes: Vec<String> = app
        .user_items()
        .await
        .iter()
        .filter_map(|item| item.get("password_hash")?.as_s().ok().cloned())
        .collect();
    assert_eq!(password_hashes.len(), 1);

    let text = capture.text(0..capture.len());
    let lines: Vec<Value> = text
        .lines()
        .map(|line| {
            LogLine::parse(line).unwrap_or_else(|e| panic!("a line breaks the log schema: {e}"));
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"))
        })
        .collect();
    assert!(lines.len() >= 12, "expected log lines, got:\n{text}");

    let mut forbidden: Vec<(String, &str)> = vec![
        (first_password.to_owned(), "a password"),
        (second_password.to_owned(), "a password"),
        ("a wrong password".to_owned(), "a password"),
        ("$argon2".to_owned(), "a password hash"),
        ("quiet@example.com".to_owned(), "an e-mail address"),
    ];
    for hash in &password_hashes {
        forbidden.push((hash.clone(), "a password hash"));
        // The hash's base64 digest alone, in case something logged a fragment.
        forbidden.push((
            hash.rsplit('$').next().unwrap().to_owned(),
            "a password hash",
        ));
    }
    for token in &tokens {
        forbidden.push((token.clone(), "a token"));
        let hash = SessionToken::parse(token).unwrap().hash();
        forbidden.push((hash.as_str().to_owned(), "a token hash"));
    }
    for (secret, what) in &forbidden {
        assert!(!text.contains(secret.as_str()), "the logs contain {what}");
    }

    // Each request logged at least its completion line, inside its span with its id.
    for id in &request_ids {
        let completed = lines.iter().filter(|line| {
            line["request_id"] == id.as_str() && line["message"] == "request completed"
        });
        assert_eq!(
            completed.count(),
            1,
            "no completion line for request {id}:\n{text}"
        );
    }
    // Every request here reads or writes DynamoDB, and each call is a line of its request
    // naming the operation, the table and how long it took.
    for id in &request_ids {
        let calls: Vec<&Value> = lines
            .iter()
            .filter(|line| line["request_id"] == id.as_str() && line["message"] == "dynamodb call")
            .collect();
        assert!(
            !calls.is_empty(),
            "no dynamodb call line for request {id}:\n{text}"
        );
        for call in calls {
            assert!(call["operation"].is_string(), "{call}");
            assert!(
                call["table"].as_str().is_some_and(|t| !t.is_empty()),
                "{call}"
            );
            assert!(call["duration_ms"].is_number(), "{call}");
            assert!(call["outcome"].is_string(), "{call}");
        }
    }
    // And every line written while serving (ours, the SDK's, however deep the span it was
    // logged in) names the request.
    let serving = capture.text(serving_from..serving_to);
    let without: Vec<String> = serving
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| !line["request_id"].is_string())
        .map(|line| format!("{} {}", line["target"], line["message"]))
        .collect();
    assert!(without.is_empty(), "lines without request id: {without:#?}");
}
