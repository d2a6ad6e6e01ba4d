//! The execute-api front door: limits, keys, routing, the integration call and its failures.
//!
//! Every answer the gateway makes itself is the API's gateway response for that case, status,
//! headers and body byte for byte, so clients (and smoke) see locally what they see on AWS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::access_log::{self, Entry};
use crate::deployment::Deployment;
use crate::instance::InvokeError;
use crate::limits::{self, Limits, Refusal};
use crate::proxy_event::{self, IncomingRequest, Target};
use crate::routing::{self, Resolution};
use crate::traffic::Table;
use infra::gateway_responses::{self, GatewayResponse};

/// API Gateway's request payload limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// API Gateway's default integration timeout.
pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// How much of an oversized body is read (and dropped) before answering 413, so that the client,
/// still sending, reads the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
const ACCOUNT_ID: &str = "123456789012";

/// The gateway's own answers. Their bodies and headers come from the API's gateway responses
/// (`infra::gateway_responses`, the table Terraform's `aws_api_gateway_gateway_response`s are
/// rendered from), so they are byte for byte what the deployed API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// The first path segment is not the stage: no API answers, so no gateway response
    /// applies and execute-api's own `{"message":"Forbidden"}` comes back.
    UnknownStage,
    /// No resource or no method for the path.
    RouteNotFound,
    /// No `x-api-key`, or the wrong one, on a keyed method.
    InvalidApiKey,
    /// The key's usage plan throttle: its token bucket is empty.
    Throttled,
    /// The key's usage plan quota for the day is used up.
    QuotaExceeded,
    RequestTooLong,
    /// The function crashed, failed or answered something that is not a proxy response.
    IntegrationFailure,
    IntegrationTimeout,
}

impl GatewayError {
    /// The gateway response type API Gateway files this under; `None` outside any stage.
    pub fn response_type(self) -> Option<&'static str> {
        match self {
            GatewayError::UnknownStage => None,
            GatewayError::RouteNotFound => Some("MISSING_AUTHENTICATION_TOKEN"),
            GatewayError::InvalidApiKey => Some("INVALID_API_KEY"),
            GatewayError::Throttled => Some("THROTTLED"),
            GatewayError::QuotaExceeded => Some("QUOTA_EXCEEDED"),
            GatewayError::RequestTooLong => Some("REQUEST_TOO_LARGE"),
            GatewayError::IntegrationFailure => Some("INTEGRATION_FAILURE"),
            GatewayError::IntegrationTimeout => Some("INTEGRATION_TIMEOUT"),
        }
    }

    /// API Gateway's status for the error when the gateway response does not set one.
    fn default_status(self) -> StatusCode {
        match self {
            GatewayError::UnknownStage
            | GatewayError::RouteNotFound
            | GatewayError::InvalidApiKey => StatusCode::FORBIDDEN,
            GatewayError::RequestTooLong => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Throttled | GatewayError::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::IntegrationFailure => StatusCode::BAD_GATEWAY,
            GatewayError::IntegrationTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// `x-amzn-errortype`, which API Gateway sends whatever the gateway response says.
    fn error_type(self) -> &'static str {
        match self {
            GatewayError::RouteNotFound => "MissingAuthenticationTokenException",
            GatewayError::UnknownStage | GatewayError::InvalidApiKey => "ForbiddenException",
            GatewayError::RequestTooLong => "RequestTooLongException",
            GatewayError::Throttled => "TooManyRequestsException",
            GatewayError::QuotaExceeded => "LimitExceededException",
            GatewayError::IntegrationFailure => "InternalServerErrorException",
            GatewayError::IntegrationTimeout => "EndpointRequestTimedOutException",
        }
    }

    /// `$context.error.message` for the access log: API Gateway's own wording, which the
    /// gateway responses change only in what the client sees.
    fn message(self) -> &'static str {
        match self {
            GatewayError::RouteNotFound => "Missing Authentication Token",
            GatewayError::UnknownStage | GatewayError::InvalidApiKey => "Forbidden",
            GatewayError::RequestTooLong => "Request Too Long",
            GatewayError::Throttled => "Too Many Requests",
            GatewayError::QuotaExceeded => "Limit Exceeded",
            GatewayError::IntegrationFailure => "Internal server error",
            GatewayError::IntegrationTimeout => "Endpoint request timed out",
        }
    }

    /// Status, headers and body of the answer to request `request_id`.
    pub fn render(self, request_id: &str) -> (StatusCode, Vec<(&'static str, String)>, String) {
        let Some(row) = self.response_type().map(GatewayResponse::get) else {
            return (
                self.default_status(),
                Vec::new(),
                r#"{"message":"Forbidden"}"#.to_owned(),
            );
        };
        let status = row
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(self.default_status());
        (
            status,
            GatewayResponse::headers(request_id),
            row.body(request_id),
        )
    }
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    pub deployment: Deployment,
    /// Every client key's usage so far, against its usage plan's limits.
    pub limits: Limits,
    /// Which version's processes serve each function (swapped when the alias moves).
    pub routes: Arc<Table>,
    pub health_requires_api_key: bool,
    /// Whether the environment allows CORS origins: then every path has a keyless `OPTIONS`
    /// method proxied to its function, as in the deployed API (`infra::routes::served`).
    pub cors: bool,
    pub integration_timeout: Duration,
}

/// What happened to one request, for the access log.
#[derive(Default)]
struct Trace {
    resource: Option<&'static str>,
    function: Option<String>,
    function_version: Option<String>,
    cold_start: Option<bool>,
    integration_latency: Option<u128>,
    integration_status: Option<u16>,
    error: Option<GatewayError>,
    integration_error: Option<String>,
}

impl Gateway {
    /// Serves one request and writes its access log line.
    pub async fn handle(
        self: Arc<Self>,
        peer: SocketAddr,
        req: Request<Incoming>,
    ) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let received_at = SystemTime::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let protocol = format!("{:?}", req.version());
        let mut trace = Trace::default();

        let mut response = self
            .route(&request_id, peer, received_at, req, &mut trace)
            .await;
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }

        let ip = peer.ip().to_string();
        let request_time = access_log::request_time(received_at);
        access_log::write(&Entry {
            request_id: &request_id,
            ip: &ip,
            caller: "-",
            user: "-",
            request_time: &request_time,
            http_method: &method,
            resource_path: trace.resource.unwrap_or("-"),
            path: &path,
            status: response.status().as_u16(),
            protocol: &protocol,
            response_length: hyper::body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0) as usize,
            latency: started.elapsed().as_millis(),
            integration_latency: trace.integration_latency,
            integration_status: trace.integration_status,
            function: trace.function.as_deref(),
            function_version: trace.function_version.as_deref(),
            cold_start: trace.cold_start,
            error_message: trace.error.map(GatewayError::message),
            integration_error: trace.integration_error.as_deref(),
        });
        response
    }

    async fn route(
        &self,
        request_id: &str,
        peer: SocketAddr,
        received_at: SystemTime,
        req: Request<Incoming>,
        trace: &mut Trace,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();

        // The payload limit applies before anything else looks at the request.
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
            drain(body).await;
            return gateway_error(GatewayError::RequestTooLong, request_id, trace);
        }
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return gateway_error(GatewayError::RequestTooLong, request_id, trace),
        };

        let (route, params, path) = match routing::resolve(
            &self.deployment.stage,
            parts.method.as_str(),
            parts.uri.path(),
            self.cors,
        ) {
            Resolution::Route {
                route,
                params,
                path,
            } => (route, params, path),
            Resolution::UnknownStage => {
                return gateway_error(GatewayError::UnknownStage, request_id, trace);
            }
            Resolution::UnknownRoute => {
                return gateway_error(GatewayError::RouteNotFound, request_id, trace);
            }
        };
        trace.resource = Some(route.path);

        // As on API Gateway, only keyed methods look at the key, and only they count against
        // its usage plan.
        let client = if route.api_key_required(self.health_requires_api_key) {
            let sent = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
            let Some(client) = sent.and_then(|key| self.limits.client(key)) else {
                return gateway_error(GatewayError::InvalidApiKey, request_id, trace);
            };
            match self
                .limits
                .admit(client, Instant::now(), limits::utc_day(SystemTime::now()))
            {
                Ok(()) => {}
                Err(Refusal::Throttled) => {
                    return gateway_error(GatewayError::Throttled, request_id, trace);
                }
                Err(Refusal::QuotaExceeded) => {
                    return gateway_error(GatewayError::QuotaExceeded, request_id, trace);
                }
            }
            Some(client)
        } else {
            None
        };

        let function = route.function.as_str();
        trace.function = Some(function.to_string());
        let Some(pool) = self.routes.pick(function) else {
            trace.integration_error = Some(format!("no package for function `{function}`"));
            return gateway_error(GatewayError::IntegrationFailure, request_id, trace);
        };
        trace.function_version = Some(pool.spec().version.clone());

        let incoming = IncomingRequest {
            method: parts.method.clone(),
            headers: &parts.headers,
            raw_query: parts.uri.query(),
            body: &body,
            source_ip: peer.ip().to_string(),
        };
        let target = Target {
            stage: &self.deployment.stage,
            api_id: &self.deployment.api_id,
            account_id: ACCOUNT_ID,
            resource: route.path,
            path: &path,
            path_parameters: params,
            request_id,
            api_key: client.map(|c| (c.value.as_str(), c.key_id.as_str())),
            request_time: access_log::request_time(received_at),
            request_time_epoch_ms: received_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        };
        let event = proxy_event::build(&incoming, &target);
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                trace.integration_error = Some(format!("serialising the event: {e}"));
                return gateway_error(GatewayError::IntegrationFailure, request_id, trace);
            }
        };

        // The call runs in its own task: a client that disconnects does not cancel the function,
        // but the integration timeout does (dropping the instance kills its process).
        let invoke_started = Instant::now();
        let timeout = self.integration_timeout;
        let lambda_request_id = uuid::Uuid::new_v4().to_string();
        let call = tokio::spawn(async move {
            tokio::time::timeout(timeout, pool.invoke(&lambda_request_id, payload)).await
        });
        let outcome = call.await;
        trace.integration_latency = Some(invoke_started.elapsed().as_millis());

        let invoked = match outcome {
            Ok(Ok(invoked)) => invoked,
            Ok(Err(_elapsed)) => {
                trace.integration_error =
                    Some(format!("no response within {} ms", timeout.as_millis()));
                return gateway_error(GatewayError::IntegrationTimeout, request_id, trace);
            }
            Err(join) => {
                trace.integration_error = Some(format!("invocation task failed: {join}"));
                return gateway_error(GatewayError::IntegrationFailure, request_id, trace);
            }
        };
        trace.cold_start = Some(invoked.cold_start);
        let payload = match invoked.result {
            Ok(payload) => payload,
            Err(e) => {
                trace.integration_status = Some(if matches!(e, InvokeError::FunctionError(_)) {
                    200
                } else {
                    500
                });
                trace.integration_error = Some(e.to_string());
                return gateway_error(GatewayError::IntegrationFailure, request_id, trace);
            }
        };
        trace.integration_status = Some(200);
        match proxy_event::map_response(&payload) {
            Ok(mapped) => {
                let mut builder = Response::builder().status(mapped.status);
                for (name, value) in mapped.headers {
                    builder = builder.header(name, value);
                }
                builder.body(Full::new(mapped.body)).unwrap_or_else(|e| {
                    trace.integration_error = Some(format!("building the response: {e}"));
                    gateway_error(GatewayError::IntegrationFailure, request_id, trace)
                })
            }
            Err(e) => {
                trace.integration_error = Some(e);
                gateway_error(GatewayError::IntegrationFailure, request_id, trace)
            }
        }
    }
}

fn gateway_error(
    error: GatewayError,
    request_id: &str,
    trace: &mut Trace,
) -> Response<Full<Bytes>> {
    trace.error = Some(error);
    let (status, headers, body) = error.render(request_id);
    let mut response = Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, gateway_responses::CONTENT_TYPE)
        .header("x-amzn-errortype", error.error_type());
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("a gateway response is a valid response")
}

/// Reads and drops an oversized body up to a bound, so the client sees the 413.
async fn drain(body: Incoming) {
    let _ = Limited::new(body, DRAIN_LIMIT).collect().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [GatewayError; 8] = [
        GatewayError::UnknownStage,
        GatewayError::RouteNotFound,
        GatewayError::InvalidApiKey,
        GatewayError::Throttled,
        GatewayError::QuotaExceeded,
        GatewayError::RequestTooLong,
        GatewayError::IntegrationFailure,
        GatewayError::IntegrationTimeout,
    ];

    /// Every answer inside the stage is a row of the API's gateway responses, in the error
    /// shape, with `x-request-id` equal to the body's `request_id`.
    #[test]
    fn every_answer_in_the_stage_is_a_gateway_response_of_the_api() {
        for error in ALL {
            let (status, headers, body) = error.render("req-42");
            let Some(response_type) = error.response_type() else {
                assert_eq!(
                    (status, body.as_str()),
                    (StatusCode::FORBIDDEN, r#"{"message":"Forbidden"}"#)
                );
                continue;
            };
            let row = GatewayResponse::get(response_type);
            assert_eq!(Some(status.as_u16()), row.status, "{error:?}");
            assert_eq!(
                headers,
                vec![
                    ("x-request-id", "req-42".to_owned()),
                    ("cache-control", "no-store".to_owned())
                ],
                "{error:?}"
            );
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["code"], row.code, "{error:?}");
            assert_eq!(json["error"]["request_id"], "req-42", "{error:?}");
        }
    }
}
