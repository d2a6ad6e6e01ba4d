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

/// Whether a JSON key or header names a secret: a password, token, secret or key, in any
/// spelling (`current_password`, `refreshToken`, `x-api-key`, `client_secret`). Broad on
/// purpose: the report goes into world-readable job summaries and artifacts, and a masked
/// non-secret costs nothing.
fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "token", "secret", "key"]
        .iter()
        .any(|word| name.contains(word))
}

const REDACTED: &str = "<redacted>";

/// Masks every value under a secret-named key, at any depth (objects inside arrays too).
fn mask(mut body: Value) -> Value {
    mask_in_place(&mut body);
    body
}

fn mask_in_place(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if names_a_secret(key) {
                    *value = Value::String(REDACTED.to_string());
                } else {
                    mask_in_place(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_in_place),
        _ => {}
    }
}

/// Masks the secrets in a response (the login response's token, any secret-named header)
/// before it is reported.
pub fn mask_response(exchange: &mut Exchange) {
    if let Some(response) = exchange.response.as_mut() {
        response.body = mask(std::mem::take(&mut response.body));
        for (name, value) in &mut response.headers {
            if names_a_secret(name) {
                *value = REDACTED.to_string();
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_secret_named_key_is_masked_at_any_depth() {
        let body = json!({
            "email": "a@example.com",
            "password": "p1",
            "current_password": "p2",
            "profile": {"newPassword": "p3", "name": "n", "tokens": ["t1"]},
            "sessions": [{"token": "t2", "id": "s"}, {"refresh_token": "t3"}],
            "client_secret": "s1",
            "x-api-key": "k1",
            "version": 2,
        });
        let masked = mask(body);
        let text = masked.to_string();
        for secret in ["p1", "p2", "p3", "t1", "t2", "t3", "s1", "k1"] {
            assert!(
                !text.contains(&format!("\"{secret}\"")),
                "{secret} in {text}"
            );
        }
        assert_eq!(masked["email"], "a@example.com");
        assert_eq!(masked["profile"]["name"], "n");
        assert_eq!(masked["sessions"][0]["id"], "s");
        assert_eq!(masked["current_password"], REDACTED);
        assert_eq!(masked["version"], 2);
    }

    #[test]
    fn secret_named_response_headers_are_masked() {
        let mut exchange = Exchange {
            request: RequestRecord {
                method: "POST".into(),
                url: "http://x/sessions".into(),
                body: None,
                authorized: false,
            },
            response: Some(ResponseRecord {
                status: 201,
                headers: vec![
                    ("x-amzn-requestid".into(), "r".into()),
                    ("x-api-key".into(), "k".into()),
                ],
                body: json!({"token": "t", "expires_at": "later"}),
            }),
            error: None,
            millis: 1,
        };
        mask_response(&mut exchange);
        let response = exchange.response.unwrap();
        assert_eq!(response.headers[0].1, "r");
        assert_eq!(response.headers[1].1, REDACTED);
        assert_eq!(
            response.body,
            json!({"token": REDACTED, "expires_at": "later"})
        );
    }
}
