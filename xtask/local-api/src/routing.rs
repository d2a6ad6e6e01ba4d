//! Maps a request URL to a route the way execute-api does.
//!
//! The route table is `infra::routes::ROUTES`, the same table API Gateway's resources are
//! generated from; this module only adds what execute-api does around it: the stage prefix and
//! API Gateway's answers for a stage or route that does not exist.

use std::collections::HashMap;

use infra::routes::Route;

/// What the gateway does with a request URL.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A route of the API, with its path parameters and the path below the stage.
    Route {
        route: &'static Route,
        params: HashMap<String, String>,
        path: String,
    },
    /// The first segment is not the deployed stage: execute-api answers 403 `Forbidden`.
    UnknownStage,
    /// The stage exists but no resource/method does: API Gateway's
    /// `MISSING_AUTHENTICATION_TOKEN` gateway response.
    UnknownRoute,
}

/// Resolves `method` and the raw URL path (`/<stage>/users/123`); `cors` adds the preflight
/// routes an environment with CORS origins has.
pub fn resolve(stage: &str, method: &str, raw_path: &str, cors: bool) -> Resolution {
    let Some(rest) = raw_path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage))
    else {
        return Resolution::UnknownStage;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Resolution::UnknownStage;
    }
    let path = if rest.is_empty() {
        "/".to_string()
    } else {
        rest.to_string()
    };
    match infra::routes::find(method, &path, cors) {
        Some((route, params)) => Resolution::Route {
            route,
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), percent_decode(&v)))
                .collect(),
            path: percent_decode(&path),
        },
        None => Resolution::UnknownRoute,
    }
}

/// API Gateway hands functions decoded path parameters (`/users/a%20b` -> `a b`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_stage_and_finds_parameters() {
        let Resolution::Route {
            route,
            params,
            path,
        } = resolve("v1", "GET", "/v1/users/a%20b", false)
        else {
            panic!("expected a route");
        };
        assert_eq!(route.path, "/users/{id}");
        assert_eq!(params["id"], "a b");
        assert_eq!(path, "/users/a b");
    }

    #[test]
    fn answers_like_execute_api_for_unknown_stage_and_route() {
        assert_eq!(
            resolve("v1", "GET", "/v2/health", false),
            Resolution::UnknownStage
        );
        assert_eq!(
            resolve("v1", "GET", "/v1x/health", false),
            Resolution::UnknownStage
        );
        assert_eq!(resolve("v1", "GET", "/", false), Resolution::UnknownStage);
        assert_eq!(
            resolve("v1", "GET", "/v1/nope", false),
            Resolution::UnknownRoute
        );
        assert_eq!(resolve("v1", "GET", "/v1", false), Resolution::UnknownRoute);
        // A method the path lacks goes to the path's `ANY` method, and so to its function.
        let Resolution::Route { route, .. } = resolve("v1", "PUT", "/v1/users", false) else {
            panic!("expected the ANY route");
        };
        assert_eq!(route.method, infra::routes::ANY_METHOD);
    }

    #[test]
    fn options_is_a_keyless_route_only_with_cors() {
        let Resolution::Route { route, .. } = resolve("v1", "OPTIONS", "/v1/users/1", false) else {
            panic!("expected the ANY route");
        };
        assert!(
            route.api_key_required(true),
            "without CORS, OPTIONS needs the key"
        );
        let Resolution::Route { route, .. } = resolve("v1", "OPTIONS", "/v1/users/1", true) else {
            panic!("expected the preflight route");
        };
        assert_eq!(route.function.as_str(), "users");
        assert!(!route.api_key_required(true));
    }

    #[test]
    fn decodes_only_valid_escapes() {
        assert_eq!(percent_decode("a%2Fb%zz%"), "a/b%zz%");
        assert_eq!(percent_decode("%41"), "A");
    }
}
