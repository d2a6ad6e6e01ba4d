//! `GET /health` against moto, through real API Gateway events.

use health::handle;
use http::{Method, StatusCode};
use serde_json::json;
use service_common::testing::{Event, TestApp, body_json, error_code};

#[tokio::test]
async fn shallow_check_reports_version_and_request_id() {
    let app = TestApp::start().await;
    let event = Event::rest(Method::GET, "/health");
    let json_event = event.to_json();
    let request = lambda_http::request::from_str(&json_event.to_string()).unwrap();
    let response = handle(&app.state(), request).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-request-id"],
        json_event["requestContext"]["requestId"].as_str().unwrap()
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        body_json(&response),
        json!({"status": "ok", "version": "test-version", "checks": {}})
    );
}

#[tokio::test]
async fn deep_check_describes_both_tables() {
    let app = TestApp::start().await;
    let request = Event::rest(Method::GET, "/health")
        .query("deep", "true")
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(&response)["checks"],
        json!({"users_table": "ok", "sessions_table": "ok"})
    );
}

#[tokio::test]
async fn deep_check_with_a_missing_table_is_503_degraded() {
    let app = TestApp::start_with(|config| config.sessions_table = "no-such-table".into()).await;
    let request = Event::rest(Method::GET, "/health")
        .query("deep", "true")
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = body_json(&response);
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"],
        json!({"users_table": "ok", "sessions_table": "unavailable"})
    );
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn a_bad_deep_flag_is_400() {
    let app = TestApp::start().await;
    let request = Event::rest(Method::GET, "/health")
        .query("deep", "maybe")
        .build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = body_json(&response);
    assert_eq!(body["error"]["code"], "invalid_query");
    assert_eq!(
        body["error"]["request_id"],
        response.headers()["x-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let app = TestApp::start().await;
    let request = Event::rest(Method::POST, "/health").build();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");
    assert_eq!(error_code(&response), "method_not_allowed");
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let app = TestApp::start().await;
    for event in [
        Event::rest(Method::GET, "/users"),
        Event::rest(Method::GET, "/healthz").http_v2(),
    ] {
        let response = handle(&app.state(), event.build()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(&response), "route_not_found");
        assert!(response.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn http_api_v2_events_with_a_stage_are_routed() {
    let app = TestApp::start().await;
    let event = Event::rest(Method::GET, "/health").http_v2();
    let json_event = event.to_json();
    assert_eq!(json_event["rawPath"], "/prod/health");
    let request = lambda_http::request::from_str(&json_event.to_string()).unwrap();
    let response = handle(&app.state(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-request-id"],
        json_event["requestContext"]["requestId"].as_str().unwrap()
    );
}

#[tokio::test]
async fn cors_reflects_only_allowed_origins() {
    let app = TestApp::start_with(|config| {
        config.cors_allow_origins = vec![
            "https://app.example.com".into(),
            "http://localhost:3000".into(),
        ]
    })
    .await;
    let get = |origin: Option<&str>| {
        let mut event = Event::rest(Method::GET, "/health");
        if let Some(origin) = origin {
            event = event.header("origin", origin);
        }
        event.build()
    };

    // An allowed origin is echoed (the second one too), with the headers a page may read.
    for origin in ["https://app.example.com", "http://localhost:3000"] {
        let response = handle(&app.state(), get(Some(origin))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert_eq!(response.headers()["vary"], "origin");
        assert!(
            response.headers()["access-control-expose-headers"]
                .to_str()
                .unwrap()
                .contains("x-request-id")
        );
    }
    // Another origin, or none: the answer is served but carries no CORS headers.
    for origin in [
        Some("https://evil.example.com"),
        Some("https://app.example.com.evil.example"),
        None,
    ] {
        let response = handle(&app.state(), get(origin)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{origin:?}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin:?}"
        );
        assert_eq!(response.headers()["vary"], "origin");
    }

    let preflight = |origin: &str| {
        Event::rest(Method::OPTIONS, "/health")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-api-key")
            .build()
    };
    let allowed = handle(&app.state(), preflight("https://app.example.com"))
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(allowed.headers()["access-control-allow-methods"], "GET");
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-api-key")
    );
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );

    let refused = handle(&app.state(), preflight("https://evil.example.com"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(&refused), "origin_not_allowed");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        body_json(&refused)["error"]["request_id"],
        refused.headers()["x-request-id"].to_str().unwrap()
    );

    // OPTIONS that is not a preflight (no Origin) is an ordinary method the path lacks.
    let plain = handle(
        &app.state(),
        Event::rest(Method::OPTIONS, "/health").build(),
    )
    .await
    .unwrap();
    assert_eq!(plain.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn no_cors_headers_or_preflights_without_origins() {
    let app = TestApp::start().await;
    let response = handle(
        &app.state(),
        Event::rest(Method::GET, "/health")
            .header("origin", "https://app.example.com")
            .build(),
    )
    .await
    .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(response.headers().get("vary").is_none());
    let preflight = handle(
        &app.state(),
        Event::rest(Method::OPTIONS, "/health")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET")
            .build(),
    )
    .await
    .unwrap();
    assert_eq!(preflight.status(), StatusCode::METHOD_NOT_ALLOWED);
}
