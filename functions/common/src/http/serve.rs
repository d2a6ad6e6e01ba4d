//! The request pipeline every function runs: request id and log span, routing, the handler,
//! error rendering, the headers every response carries, and the request's metrics line.

use std::time::Instant;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
    CACHE_CONTROL, ORIGIN, VARY,
};
use http::{HeaderName, HeaderValue, Method, Response};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _};
use tracing::Instrument as _;

use super::response;
use super::routing::{Call, Route, resolve};
use crate::error::ServiceError;
use crate::logging::error_chain;
use crate::metrics::{self, RequestMetrics};
use crate::state::FunctionState;

/// Header carrying the request id on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API Gateway request id if there is one (it is also in API Gateway's access log), else
/// the Lambda invocation id, else a fresh UUID (requests built by hand in tests).
pub fn request_id(request: &Request) -> String {
    let from_gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    from_gateway
        .filter(|id| !id.is_empty())
        .or_else(|| {
            request
                .lambda_context_ref()
                .map(|context| context.request_id.clone())
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Serves one request with the routes of one function. Never fails: every error becomes the
/// documented error response, and faults are logged with their cause.
pub async fn serve<S, Op, D>(
    state: &S,
    request: Request,
    routes: &[Route<Op>],
    dispatch: D,
) -> Response<Body>
where
    S: FunctionState,
    Op: Copy + std::fmt::Debug,
    D: AsyncFn(&S, Call<Op>) -> Result<Response<Body>, ServiceError>,
{
    let request_id = request_id(&request);
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    let trace_header = request
        .lambda_context_ref()
        .and_then(|context| context.xray_trace_id.clone());
    async move {
        let started = Instant::now();
        let started_at = std::time::SystemTime::now();
        let cors = Cors::of(&state.config().cors_allow_origins, &request);
        let preflight_request = method == Method::OPTIONS
            && request.headers().contains_key(ORIGIN)
            && request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        let mut template = None;
        let (outcome, dynamodb_ms) = crate::calls::timed(async {
            match resolve(routes, &request) {
                Ok((route, params)) => {
                    tracing::Span::current().record("route", route.template);
                    template = Some(route.template);
                    let call = Call {
                        op: route.op,
                        template: route.template,
                        params,
                        request,
                        request_id: request_id.clone(),
                    };
                    dispatch(state, call).await
                }
                Err(ServiceError::MethodNotAllowed { allow })
                    if preflight_request && cors != Cors::Off =>
                {
                    match cors {
                        Cors::Allowed(_) => Ok(preflight(&allow)),
                        _ => Err(ServiceError::OriginNotAllowed),
                    }
                }
                Err(error) => Err(error),
            }
        })
        .await;
        let mut response = match outcome {
            Ok(response) => response,
            Err(error) => {
                log_error(&error);
                response::error(&error, &request_id)
            }
        };
        add_common_headers(&mut response, &request_id, cors);
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms,
            "request completed"
        );
        let route = format!("{method} {}", template.unwrap_or("unmatched"));
        crate::xray::annotate(
            trace_header.as_deref(),
            &request_id,
            &route,
            started_at,
            std::time::SystemTime::now(),
        );
        metrics::write(&RequestMetrics {
            request_id: &request_id,
            route,
            status: response.status().as_u16(),
            duration_ms,
            dynamodb_ms,
            cold_start: metrics::take_cold_start(),
        });
        response
    }
    .instrument(span)
    .await
}

fn log_error(error: &ServiceError) {
    if error.status().is_server_error() {
        tracing::error!(code = error.code(), error = %error_chain(error), "request failed");
    } else {
        // Client errors: the code is enough, and messages can echo client input.
        tracing::info!(code = error.code(), "request rejected");
    }
}

fn preflight(allow: &[Method]) -> Response<Body> {
    let mut response = response::no_content();
    let headers = response.headers_mut();
    if let Ok(methods) = HeaderValue::from_str(&response::allow_list(allow)) {
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, x-api-key"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    response
}

/// What CORS means for one request.
#[derive(Debug, PartialEq, Eq)]
enum Cors {
    /// The deployment allows no origins: no CORS headers, no preflights.
    Off,
    /// The request's `Origin` is one of the allowed origins: it is echoed back.
    Allowed(HeaderValue),
    /// No `Origin`, or one not in the list: no CORS headers (the browser then refuses to hand
    /// the answer to the page), and a preflight gets 403.
    NotAllowed,
}

impl Cors {
    fn of(allowed: &[String], request: &Request) -> Cors {
        if allowed.is_empty() {
            return Cors::Off;
        }
        match request.headers().get(ORIGIN) {
            Some(origin) if allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) => {
                Cors::Allowed(origin.clone())
            }
            _ => Cors::NotAllowed,
        }
    }
}

fn add_common_headers(response: &mut Response<Body>, request_id: &str, cors: Cors) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, value);
    }
    // Answers carry tokens, e-mail addresses and profiles: no browser, proxy or CDN keeps one.
    // (API Gateway's stage cache, which some GET routes may use, is keyed and bounded by the
    // stage settings and does not read this header.)
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if cors != Cors::Off {
        // The answer depends on `Origin` whenever origins are configured: caches must not
        // hand one origin's answer to another.
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    if let Cors::Allowed(origin) = cors {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, etag, location"),
        );
    }
}
