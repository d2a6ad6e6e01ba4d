//! The service's HTTP API, with every exchange recorded for the report.
//!
//! A failed step prints the request it sent and the response it got; secrets (passwords,
//! session tokens, the API key) are masked in what is recorded.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::target::Target;

/// One request and its response, as the report shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub request: RequestRecord,
    pub response: Option<ResponseRecord>,
    /// Transport error (connection refused, timeout) when there was no response.
    pub error: Option<String>,
    pub millis: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    pub authorized: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResponseRecord {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Exchange {
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    /// The response body (JSON, or the raw text as a string).
    pub fn body(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.response.as_ref().map(|r| &r.body).unwrap_or(&NULL)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let response = self.response.as_ref()?;
        response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The API client.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl Api {
    pub fn new(target: &Target) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(35))
            .build()
            .expect("the HTTP client builds with default TLS settings");
        Api {
            http,
            base: target.api_url.clone(),
            api_key: target.api_key.clone(),
        }
    }

    /// Sends one request; never fails: a transport error is recorded in the exchange.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Exchange {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("x-api-key", &self.api_key);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let record = RequestRecord {
            method: method.to_string(),
            url,
            body: body.map(mask),
            authorized: token.is_some(),
        };
        let started = Instant::now();
        let outcome = request.send().await;
        let (response, error) = match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("<binary>").to_string()))
                    .collect();
                match response.bytes().await {
                    Ok(bytes) => {
                        let body = if bytes.is_empty() {
                            Value::Null
                        } else {
                            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                                Value::String(String::from_utf8_lossy(&bytes).into_owned())
                            })
                        };
                        (
                            Some(ResponseRecord {
                                status,
                                headers,
                                body,
                            }),
                            None,
                        )
                    }
                    Err(e) => (None, Some(format!("reading the response body: {e}"))),
                }
            }
            Err(e) => (None, Some(error_chain(&e))),
        };
        Exchange {
            request: record,
            response,
            error,
            millis: started.elapsed().as_millis(),
        }
    }
}

/// Masks secrets in a request body before it is recorded.
fn mask(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        for key in ["password", "token"] {
            if map.contains_key(key) {
                map.insert(key.to_string(), Value::String("<redacted>".to_string()));
            }
        }
    }
    body
}

/// Masks the session token in a response body (the login response) before it is reported.
pub fn mask_response(exchange: &mut Exchange) {
    if let Some(response) = exchange.response.as_mut() {
        response.body = mask(std::mem::take(&mut response.body));
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
