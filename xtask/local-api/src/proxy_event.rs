//! REST API (v1) Lambda proxy integration: the event in, the response out.
//!
//! Built with the `aws_lambda_events` types the functions themselves deserialise with, so a
//! field the local server gets wrong fails here the same way it would on AWS.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayProxyResponse,
};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use query_map::QueryMap;

/// The request facts the event is built from.
pub struct IncomingRequest<'a> {
    pub method: Method,
    pub headers: &'a HeaderMap,
    pub raw_query: Option<&'a str>,
    pub body: &'a Bytes,
    pub source_ip: String,
}

/// Where the request landed in the API.
pub struct Target<'a> {
    pub stage: &'a str,
    pub api_id: &'a str,
    pub account_id: &'a str,
    /// The resource template (`/users/{id}`).
    pub resource: &'a str,
    /// The path below the stage (`/users/123`).
    pub path: &'a str,
    pub path_parameters: HashMap<String, String>,
    pub request_id: &'a str,
    /// `(key, key id)`: set when the route requires a key and the request carried one of the
    /// clients' keys.
    pub api_key: Option<(&'a str, &'a str)>,
    pub request_time: String,
    pub request_time_epoch_ms: i64,
}

/// Builds the proxy event API Gateway sends for this request.
pub fn build(request: &IncomingRequest<'_>, target: &Target<'_>) -> ApiGatewayProxyRequest {
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(target.resource.to_string());
    event.path = Some(target.path.to_string());
    event.http_method = request.method.clone();

    let mut headers = request.headers.clone();
    headers.remove(http::header::CONNECTION);
    let forwarded = [
        ("x-forwarded-for", request.source_ip.clone()),
        ("x-forwarded-proto", "http".to_string()),
        (
            "x-amzn-trace-id",
            format!(
                "Root=1-{:08x}-{}",
                target.request_time_epoch_ms / 1000,
                &target.request_id.replace('-', "")[..24]
            ),
        ),
    ];
    for (name, value) in forwarded {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    // `headers` holds the last value of each header and `multiValueHeaders` all of them.
    let mut single = HeaderMap::new();
    for name in headers.keys() {
        if let Some(last) = headers.get_all(name).iter().next_back() {
            single.insert(name.clone(), last.clone());
        }
    }
    event.headers = single;
    event.multi_value_headers = headers;

    let query = parse_query(request.raw_query.unwrap_or(""));
    let last: HashMap<String, String> = query
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.last()?.clone())))
        .collect();
    event.query_string_parameters = QueryMap::from(last);
    event.multi_value_query_string_parameters = QueryMap::from(query);
    event.path_parameters = target.path_parameters.clone();

    if !request.body.is_empty() {
        match std::str::from_utf8(request.body) {
            Ok(text) => event.body = Some(text.to_string()),
            Err(_) => {
                event.body = Some(BASE64.encode(request.body));
                event.is_base64_encoded = true;
            }
        }
    }

    let mut context = ApiGatewayProxyRequestContext::default();
    context.account_id = Some(target.account_id.to_string());
    context.resource_id = Some(resource_id(target.resource));
    context.stage = Some(target.stage.to_string());
    context.domain_name = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    context.domain_prefix = Some(target.api_id.to_string());
    context.request_id = Some(target.request_id.to_string());
    context.protocol = Some("HTTP/1.1".to_string());
    context.identity.source_ip = Some(request.source_ip.clone());
    context.identity.user_agent = request
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    context.identity.api_key = target.api_key.map(|(key, _)| key.to_string());
    context.identity.api_key_id = target.api_key.map(|(_, id)| id.to_string());
    context.resource_path = Some(target.resource.to_string());
    context.path = Some(format!("/{}{}", target.stage, target.path));
    context.http_method = request.method.clone();
    context.request_time = Some(target.request_time.clone());
    context.request_time_epoch = target.request_time_epoch_ms;
    context.apiid = Some(target.api_id.to_string());
    event.request_context = context;
    event
}

/// A stable six-character id per resource, like API Gateway's resource ids.
fn resource_id(template: &str) -> String {
    let mut hash: u32 = 2166136261;
    for b in template.bytes() {
        hash = (hash ^ b as u32).wrapping_mul(16777619);
    }
    format!("{:06x}", hash & 0xff_ffff)
}

/// Splits a query string into decoded names and all their values, in order.
fn parse_query(raw: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(form_decode(k)).or_default().push(form_decode(v));
    }
    out
}

fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The HTTP response API Gateway makes of a function's answer.
#[derive(Debug)]
pub struct MappedResponse {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Maps the function's payload to an HTTP response. `Err` when the payload is not a valid proxy
/// response, which API Gateway answers with 502.
pub fn map_response(payload: &[u8]) -> Result<MappedResponse, String> {
    let response: ApiGatewayProxyResponse = serde_json::from_slice(payload)
        .map_err(|e| format!("malformed Lambda proxy response: {e}"))?;
    let status = u16::try_from(response.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("invalid statusCode {}", response.status_code))?;
    let body = match response.body {
        None | Some(Body::Empty) => Bytes::new(),
        Some(Body::Text(text)) if response.is_base64_encoded => Bytes::from(
            BASE64
                .decode(text.trim())
                .map_err(|e| format!("isBase64Encoded body is not base64: {e}"))?,
        ),
        Some(Body::Text(text)) => Bytes::from(text),
        Some(Body::Binary(bytes)) => Bytes::from(bytes),
        Some(_) => Bytes::new(),
    };
    // multiValueHeaders first; `headers` adds only names it does not already have (API
    // Gateway's documented merge: the multi-value list wins for a name in both).
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for (name, value) in response.multi_value_headers.iter() {
        headers.push((name.clone(), value.clone()));
    }
    for (name, value) in response.headers.iter() {
        if !response.multi_value_headers.contains_key(name) {
            headers.push((name.clone(), value.clone()));
        }
    }
    Ok(MappedResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_multi_value_headers_and_base64_bodies() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-one": "h"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"], "x-one": ["m"]},
            "body": BASE64.encode(b"\x00\x01binary"),
            "isBase64Encoded": true,
        });
        let mapped = map_response(payload.to_string().as_bytes()).unwrap();
        assert_eq!(mapped.status, StatusCode::CREATED);
        assert_eq!(&mapped.body[..], b"\x00\x01binary");
        let values = |n: &str| {
            mapped
                .headers
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(values("set-cookie"), vec!["a=1", "b=2"]);
        assert_eq!(values("x-one"), vec!["m"]);
        assert_eq!(values("content-type"), vec!["application/json"]);
    }

    #[test]
    fn rejects_what_api_gateway_rejects() {
        assert!(map_response(b"not json").is_err());
        assert!(map_response(br#"{"body":"x"}"#).is_err());
        assert!(map_response(br#"{"statusCode":42}"#).is_err());
        assert!(
            map_response(br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#).is_err()
        );
    }

    #[test]
    fn builds_a_rest_v1_event() {
        let mut headers = HeaderMap::new();
        headers.append("x-multi", HeaderValue::from_static("1"));
        headers.append("x-multi", HeaderValue::from_static("2"));
        headers.insert("host", HeaderValue::from_static("127.0.0.1:9"));
        let body = Bytes::from_static(b"{}");
        let request = IncomingRequest {
            method: Method::PATCH,
            headers: &headers,
            raw_query: Some("a=1&a=2&b=x+y%21"),
            body: &body,
            source_ip: "127.0.0.1".into(),
        };
        let target = Target {
            stage: "v1",
            api_id: "abc",
            account_id: "123456789012",
            resource: "/users/{id}",
            path: "/users/7",
            path_parameters: HashMap::from([("id".to_string(), "7".to_string())]),
            request_id: "0b7c3d1e-0000-4000-8000-000000000000",
            api_key: Some(("key", "key-id")),
            request_time: "22/Nov/2026:02:56:54 +0000".into(),
            request_time_epoch_ms: 1_795_000_000_000,
        };
        let event = serde_json::to_value(build(&request, &target)).unwrap();
        assert_eq!(event["resource"], "/users/{id}");
        assert_eq!(event["path"], "/users/7");
        assert_eq!(event["httpMethod"], "PATCH");
        assert_eq!(event["pathParameters"]["id"], "7");
        assert_eq!(event["headers"]["x-multi"], "2");
        assert_eq!(event["multiValueHeaders"]["x-multi"], json!(["1", "2"]));
        assert_eq!(event["queryStringParameters"]["a"], "2");
        assert_eq!(event["queryStringParameters"]["b"], "x y!");
        assert_eq!(
            event["multiValueQueryStringParameters"]["a"],
            json!(["1", "2"])
        );
        assert_eq!(event["requestContext"]["stage"], "v1");
        assert_eq!(event["requestContext"]["resourcePath"], "/users/{id}");
        assert_eq!(event["requestContext"]["path"], "/v1/users/7");
        assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
        assert_eq!(event["requestContext"]["identity"]["apiKey"], "key");
        assert_eq!(event["requestContext"]["identity"]["apiKeyId"], "key-id");
        assert_eq!(event["body"], "{}");
        assert_eq!(event["isBase64Encoded"], false);
        // The functions deserialise it with the same type.
        let back: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
        assert_eq!(back.path_parameters["id"], "7");
    }
}
