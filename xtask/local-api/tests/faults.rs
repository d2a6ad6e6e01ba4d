//! The local server answers like API Gateway when things go wrong, and keeps serving.
//!
//! Real binaries only: the test functions are this crate's examples (`echo_lambda`,
//! `exit_on_start`), zipped as `bootstrap` like the real packages, run through the real
//! Runtime API by the `lambda_runtime` crate the service uses.

mod support;

use std::time::{Duration, Instant};

use deploy_files::{ApiClient, Outputs};
use infra::gateway_responses::GatewayResponse;
use local_api::{Options, Server};
use serde_json::Value;

const KEY: &str = "test-api-key-0123456789";

struct Stack {
    server: Server,
    http: reqwest::Client,
    _dir: std::path::PathBuf,
    /// The server's work dir: `<work>/<function>/output.log` is each function's log.
    work: std::path::PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

impl Stack {
    /// health and users run the echo function, sessions the one that dies on start.
    async fn start(integration_timeout: Duration, health_requires_key: bool) -> Stack {
        Self::start_with(integration_timeout, health_requires_key, |outputs| {
            Outputs::fixture("faults-", "test", KEY)
                .write(outputs)
                .unwrap()
        })
        .await
    }

    /// [`Stack::start`] with the outputs file `write` writes.
    async fn start_with(
        integration_timeout: Duration,
        health_requires_key: bool,
        write: impl FnOnce(&std::path::Path),
    ) -> Stack {
        let dir = support::scratch("faults");
        let dist = dir.join("dist");
        let echo = support::example("echo_lambda");
        support::zip_bootstrap(&dist, "health", &echo);
        support::zip_bootstrap(&dist, "users", &echo);
        support::zip_bootstrap(&dist, "sessions", &support::example("exit_on_start"));
        for f in catalog::FUNCTIONS.iter().filter(|f| f.routes.is_empty()) {
            // No route reaches them, but the server follows every function's alias.
            support::zip_bootstrap(&dist, f.name, &echo);
        }
        let outputs = dir.join("outputs.json");
        write(&outputs);
        let mut options = Options::new(outputs, dist, support::closed_endpoint());
        options.integration_timeout = integration_timeout;
        options.health_requires_api_key = Some(health_requires_key);
        options.cors_allow_origins = Some(Vec::new());
        let work = dir.join("work");
        options.work_dir = Some(work.clone());
        let server = Server::start(options).await.expect("the server starts");
        Stack {
            server,
            http: reqwest::Client::new(),
            _dir: dir,
            work,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        self.get_with(path, KEY).await
    }

    async fn get_with(&self, path: &str, key: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .http
            .get(self.url(path))
            .header("x-api-key", key)
            .send()
            .await
            .expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    async fn echo_pid(&self) -> u64 {
        let (status, body, _) = self.get("/users/ok").await;
        assert_eq!(status, 200, "{body}");
        let echoed: Value = serde_json::from_str(&body).unwrap();
        echoed["pid"].as_u64().unwrap()
    }
}

/// Checks one gateway answer against the API's gateway response for `response_type`: the
/// status, the documented error shape, `x-request-id` equal to the body's `request_id` (and to
/// API Gateway's own `x-amzn-requestid`), and the very bytes the deployed template renders.
fn assert_gateway_answer(
    (status, body, headers): (u16, &str, &reqwest::header::HeaderMap),
    response_type: &str,
) {
    let row = GatewayResponse::get(response_type);
    let want_status = row.status.unwrap_or(if response_type == "DEFAULT_5XX" {
        502
    } else {
        400
    });
    assert_eq!(status, want_status, "{response_type}: {body}");
    let request_id = headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("{response_type}: no x-request-id header"))
        .to_str()
        .unwrap();
    assert_eq!(headers["x-amzn-requestid"], request_id, "{response_type}");
    assert_eq!(headers["cache-control"], "no-store", "{response_type}");
    assert_eq!(
        headers["content-type"], "application/json",
        "{response_type}"
    );
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{response_type}: body is not JSON ({e}): {body}"));
    assert_eq!(
        json,
        serde_json::json!({"error": {"code": row.code, "message": row.message, "request_id": request_id}}),
        "{response_type}"
    );
    assert_eq!(
        body,
        row.body(request_id),
        "{response_type}: not the template's bytes"
    );
}

async fn answer(response: reqwest::Response) -> (u16, String, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_errors_use_the_gateway_responses_of_the_api() {
    let stack = Stack::start(Duration::from_secs(29), true).await;

    // No key, wrong key: INVALID_API_KEY.
    let (status, body, headers) =
        answer(stack.http.get(stack.url("/users/1")).send().await.unwrap()).await;
    assert_gateway_answer((status, &body, &headers), "INVALID_API_KEY");
    assert_eq!(headers["x-amzn-errortype"], "ForbiddenException");
    let response = stack
        .http
        .get(stack.url("/users/1"))
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    let (status, body, headers) = answer(response).await;
    assert_gateway_answer((status, &body, &headers), "INVALID_API_KEY");
    // /health is keyed when the environment says so.
    let response = stack.http.get(stack.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 403);

    // Unknown route: MISSING_AUTHENTICATION_TOKEN, a 404 like the functions' own unknown
    // routes.
    let (status, body, headers) = stack.get("/nope").await;
    assert_gateway_answer((status, &body, &headers), "MISSING_AUTHENTICATION_TOKEN");
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let response = stack
        .http
        .put(stack.url("/users"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    // A method the path lacks reaches the path's function through its `ANY` method (the
    // function answers 405 with `allow`); this echo function shows the event it got.
    let (status, body, _) = answer(response).await;
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let event = &echoed["event"];
    assert_eq!(event["httpMethod"], "PUT");
    assert_eq!(event["resource"], "/users");
    // Without CORS origins there is no OPTIONS method: a preflight is any other method, which
    // needs the API key.
    let response = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url("/users"))
        .header("origin", "http://127.0.0.1:1")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let (status, body, headers) = answer(response).await;
    assert_gateway_answer((status, &body, &headers), "INVALID_API_KEY");

    // A stage that is not deployed.
    let root = stack.server.url().trim_end_matches("/test").to_string();
    let response = stack
        .http
        .get(format!("{root}/prod/health"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // 12 MB body: 413, before the function is involved.
    let big = vec![b'a'; 12 * 1024 * 1024];
    let response = stack
        .http
        .post(stack.url("/users"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body, headers) = answer(response).await;
    assert_gateway_answer((status, &body, &headers), "REQUEST_TOO_LARGE");

    // And the server still serves.
    let (status, body, headers) = stack.get("/users/abc?x=1&x=2").await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.contains_key("x-amzn-requestid"));
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let event = &echoed["event"];
    assert_eq!(event["resource"], "/users/{id}");
    assert_eq!(event["path"], "/users/abc");
    assert_eq!(event["pathParameters"]["id"], "abc");
    assert_eq!(
        event["multiValueQueryStringParameters"]["x"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(event["requestContext"]["stage"], "test");
    assert_eq!(event["requestContext"]["resourcePath"], "/users/{id}");
    assert_eq!(event["requestContext"]["identity"]["apiKey"], KEY);
    assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(
        event["requestContext"]["requestId"].as_str().unwrap(),
        headers["x-amzn-requestid"].to_str().unwrap()
    );
    let env = &echoed["env"];
    assert_eq!(env["USERS_TABLE"], "faults-users");
    assert_eq!(env["SESSIONS_TABLE"], "faults-sessions");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "faults-users");
    assert_eq!(env["_HANDLER"], "lambda-handler.handler");
    assert!(
        env["AWS_ENDPOINT_URL"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        echoed["function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:faults-users:live"
    );
}

/// Each client's key has its own usage plan: one client that empties its token bucket gets 429
/// `THROTTLED`, one that uses up its daily quota 429 `QUOTA_EXCEEDED` (both in the documented
/// error shape, the deployed template's bytes), while another client's key keeps being served.
/// Methods without a key (the open /health) count against no plan.
#[tokio::test(flavor = "multi_thread")]
async fn each_clients_key_has_its_own_throttle_and_quota() {
    const APP: &str = "app-key-0123456789";
    const BURSTY: &str = "bursty-key-0123456789";
    const METERED: &str = "metered-key-0123456789";
    let stack = Stack::start_with(Duration::from_secs(29), false, |outputs| {
        Outputs::fixture("faults-", "test", APP)
            .with_clients(vec![
                ApiClient::fixture("app", APP, 1000.0, 1000, None),
                // Three at once, then one token every 1000 s: nothing refills during the test.
                ApiClient::fixture("bursty", BURSTY, 0.001, 3, None),
                ApiClient::fixture("metered-sync", METERED, 1000.0, 1000, Some(2)),
            ])
            .write(outputs)
            .unwrap()
    })
    .await;
    let ok = |key: &'static str| {
        let stack = &stack;
        async move {
            let (status, body, _) = stack.get_with("/users/ok", key).await;
            assert_eq!(status, 200, "{key}: {body}");
            let echoed: Value = serde_json::from_str(&body).unwrap();
            echoed["event"]["requestContext"]["identity"].clone()
        }
    };

    let identity = ok(APP).await;
    assert_eq!(identity["apiKey"], APP);
    assert_eq!(identity["apiKeyId"], "id-app");

    for _ in 0..3 {
        ok(BURSTY).await;
    }
    for _ in 0..3 {
        let (status, body, headers) = stack.get_with("/users/ok", BURSTY).await;
        assert_gateway_answer((status, &body, &headers), "THROTTLED");
        assert_eq!(headers["x-amzn-errortype"], "TooManyRequestsException");
        ok(APP).await;
    }
    // A keyless method is outside every usage plan.
    let (status, body, _) = stack.get_with("/health", BURSTY).await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(ok(METERED).await["apiKeyId"], "id-metered-sync");
    ok(METERED).await;
    for _ in 0..3 {
        let (status, body, headers) = stack.get_with("/users/ok", METERED).await;
        assert_gateway_answer((status, &body, &headers), "QUOTA_EXCEEDED");
        assert_eq!(headers["x-amzn-errortype"], "LimitExceededException");
        ok(APP).await;
    }

    // A key of no client is still refused as invalid, not counted anywhere.
    let (status, body, headers) = stack.get_with("/users/ok", "app-key").await;
    assert_gateway_answer((status, &body, &headers), "INVALID_API_KEY");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_health_needs_no_key() {
    let stack = Stack::start(Duration::from_secs(29), false).await;
    let response = stack.http.get(stack.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert!(echoed["event"]["requestContext"]["identity"]["apiKey"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_function_gives_502_and_is_restarted() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    let first = stack.echo_pid().await;
    assert_eq!(stack.echo_pid().await, first, "a warm instance is reused");

    let (status, body, headers) = stack.get("/users/crash").await;
    assert_gateway_answer((status, &body, &headers), "INTEGRATION_FAILURE");
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");

    let second = stack.echo_pid().await;
    assert_ne!(second, first, "the next request runs in a new process");
}

/// A process that outgrows its memory size is killed as Lambda's sandbox kills it: the client
/// gets API Gateway's 502, the function's log says why, and the next request gets a fresh
/// process. The echo function runs with the default 128 MB and `hog` needs 200 MiB.
#[tokio::test(flavor = "multi_thread")]
async fn a_function_over_its_memory_size_is_killed_with_a_502_and_a_log_line() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    let first = stack.echo_pid().await;

    let (status, body, headers) = stack.get("/users/hog").await;
    assert_gateway_answer((status, &body, &headers), "INTEGRATION_FAILURE");
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
    let log = std::fs::read_to_string(stack.work.join("users").join("output.log")).unwrap();
    assert!(
        log.contains("Runtime exited with error: signal: killed")
            && log.contains("memory size of 128 MB"),
        "{log}"
    );
    assert_eq!(
        log.matches("signal: killed").count(),
        1,
        "reported once: {log}"
    );

    let second = stack.echo_pid().await;
    assert_ne!(second, first, "the next request runs in a new process");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_function_gives_504_and_the_server_keeps_serving() {
    let stack = Stack::start(Duration::from_millis(1500), true).await;
    let before = stack.echo_pid().await;
    let started = Instant::now();
    let (status, body, headers) = stack.get("/users/hang").await;
    assert_gateway_answer((status, &body, &headers), "INTEGRATION_TIMEOUT");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    let after = stack.echo_pid().await;
    assert_ne!(before, after, "the hung process was replaced");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_that_exits_on_start_gives_502_every_time() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    for _ in 0..2 {
        let response = stack
            .http
            .post(stack.url("/sessions"))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(r#"{"email":"a@example.com","password":"x"}"#)
            .send()
            .await
            .unwrap();
        let (status, body, headers) = answer(response).await;
        assert_gateway_answer((status, &body, &headers), "INTEGRATION_FAILURE");
        // Other functions are unaffected.
        let (status, _, _) = stack.get("/health").await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_errors_and_invalid_responses_give_502_without_losing_the_instance() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    let pid = stack.echo_pid().await;
    for id in ["fail", "invalid"] {
        let (status, body, headers) = stack.get(&format!("/users/{id}")).await;
        assert_gateway_answer((status, &body, &headers), "INTEGRATION_FAILURE");
    }
    assert_eq!(
        stack.echo_pid().await,
        pid,
        "a handler error does not kill the process"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_bodies_and_multi_value_headers_are_mapped_back() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    let response = stack
        .http
        .get(stack.url("/users/binary"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(&response.bytes().await.unwrap()[..], &[0u8, 1, 2, 255]);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_scale_out_to_more_processes() {
    let stack = Stack::start(Duration::from_secs(29), true).await;
    let requests: Vec<_> = (0..8).map(|_| stack.echo_pid()).collect();
    let pids: std::collections::BTreeSet<u64> = futures_join(requests).await.into_iter().collect();
    assert!(
        !pids.is_empty() && pids.len() <= 4,
        "at most max_instances processes: {pids:?}"
    );
}

async fn futures_join<F: std::future::Future<Output = u64>>(futures: Vec<F>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    // Poll them concurrently on this task.
    let joined = async {
        let mut pinned: Vec<_> = set.into_iter().map(Box::pin).collect();
        let mut results = vec![None; pinned.len()];
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (i, f) in pinned.iter_mut().enumerate() {
                if results[i].is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => results[i] = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        results.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()
    };
    out.extend(joined.await);
    out
}
