//! The Lambda Runtime API (2018-06-01) that each function process polls.
//!
//! Why our own and not a crate: the maintained candidates were checked first.
//! - `lambda-simulator` (crates.io) implements the protocol well for testing one runtime, but it
//!   does not enforce timeouts (its docs say the deadline is only computed), does not start,
//!   supervise or restart processes, and brings a second reqwest/HTTP stack into the build.
//! - `cargo lambda watch --only-lambda-apis` (the `cargo-lambda` PyPI package) serves the
//!   Runtime API for processes started elsewhere, but routes by its own invoke endpoint, has no
//!   per-invocation timeout mapping to API Gateway's 504, and adds a large external binary to
//!   the local toolchain.
//!
//! The local server needs exactly what neither offers: one runtime endpoint per process, so a
//! crashed or hung process is killed and replaced without touching the others, and a deadline
//! that is enforced. The protocol is small and documented, so it is implemented here:
//! `GET /runtime/invocation/next`, `POST /runtime/invocation/{id}/response`,
//! `POST /runtime/invocation/{id}/error`, `POST /runtime/init/error`.
//!
//! One [`RuntimeApi`] serves one process. Invocations arrive on a channel; `next` long-polls it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Lambda's limit for a synchronous response payload; larger responses fail the invocation.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
const PREFIX: &str = "/2018-06-01/runtime/";

/// One request for the function, as handed to the process by `next`.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    /// Epoch milliseconds by which the function must answer.
    pub deadline_ms: u128,
    pub trace_id: String,
    pub reply: oneshot::Sender<Outcome>,
}

/// How the process answered one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// `POST .../response`: the handler's return value.
    Response(Bytes),
    /// `POST .../error`: the handler failed (API Gateway turns this into 502).
    Error(Bytes),
    /// The response exceeded Lambda's payload limit.
    TooLarge,
}

/// Why the process must be stopped, reported by the runtime endpoint.
#[derive(Debug)]
pub enum Fault {
    /// `POST /runtime/init/error`: the function could not initialise.
    InitError(String),
}

struct State {
    function_arn: String,
    queue: Mutex<mpsc::Receiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    faults: mpsc::UnboundedSender<Fault>,
}

/// A running runtime endpoint for one process; stops serving when dropped.
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    task: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    /// Listens on a free loopback port. Invocations sent on the returned channel are handed to
    /// the process; faults it reports arrive on `faults`.
    pub async fn start(
        function_arn: String,
        faults: mpsc::UnboundedSender<Fault>,
    ) -> std::io::Result<(RuntimeApi, mpsc::Sender<Invocation>)> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?.to_string();
        let (tx, rx) = mpsc::channel(1);
        let state = Arc::new(State {
            function_arn,
            queue: Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
            faults,
        });
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok((RuntimeApi { address, task }, tx))
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "UnknownPath",
            "unknown runtime API path",
        ));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let response = match (req.method(), parts.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(&state).await,
        (&Method::POST, ["invocation", id, "response"]) => {
            let id = id.to_string();
            match Limited::new(req.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
            {
                Ok(body) => complete(&state, &id, Outcome::Response(body.to_bytes())).await,
                Err(_) => {
                    complete(&state, &id, Outcome::TooLarge).await;
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestEntityTooLarge",
                        "response payload too large",
                    )
                }
            }
        }
        (&Method::POST, ["invocation", id, "error"]) => {
            let id = id.to_string();
            let body = read_small(req).await;
            complete(&state, &id, Outcome::Error(body)).await
        }
        (&Method::POST, ["init", "error"]) => {
            let body = read_small(req).await;
            let _ = state.faults.send(Fault::InitError(
                String::from_utf8_lossy(&body).into_owned(),
            ));
            accepted()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "UnknownPath",
            "unknown runtime API path",
        ),
    };
    Ok(response)
}

/// Long-polls for the next invocation, as the runtime expects: the request stays open until
/// there is work.
async fn next(state: &State) -> Response<Full<Bytes>> {
    let invocation = {
        let mut queue = state.queue.lock().await;
        queue.recv().await
    };
    let Some(invocation) = invocation else {
        return error(
            StatusCode::GONE,
            "ShuttingDown",
            "the function instance is shutting down",
        );
    };
    state
        .in_flight
        .lock()
        .await
        .insert(invocation.request_id.clone(), invocation.reply);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header(
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        )
        .header("lambda-runtime-invoked-function-arn", &state.function_arn)
        .header("lambda-runtime-trace-id", &invocation.trace_id)
        .body(Full::new(invocation.payload))
        .expect("static headers are valid")
}

async fn complete(state: &State, id: &str, outcome: Outcome) -> Response<Full<Bytes>> {
    match state.in_flight.lock().await.remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            accepted()
        }
        None => error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "no invocation in flight with this request id",
        ),
    }
}

async fn read_small(req: Request<Incoming>) -> Bytes {
    Limited::new(req.into_body(), 1024 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

fn accepted() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
        .expect("static response is valid")
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"errorType": kind, "errorMessage": message}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response is valid")
}
