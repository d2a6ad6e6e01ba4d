//! Matching a request to a route.
//!
//! API Gateway REST (v1) events carry the matched resource template (`/users/{id}`) and the
//! path parameters, so we route on those: the URI path may carry the stage (`/prod/users/..`)
//! or a custom domain's base path. Other events (HTTP API v2, hand-built requests) are matched
//! by their raw path, stage stripped, against the same templates with the same rule API
//! Gateway and the local API server use (`route_matching`).

use http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _};

use crate::error::ServiceError;

/// One method on one path template, served by the operation `op`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route<Op> {
    pub method: Method,
    pub template: &'static str,
    pub op: Op,
}

impl<Op> Route<Op> {
    /// A route table entry; `const` so tables are statics.
    pub const fn new(method: Method, template: &'static str, op: Op) -> Self {
        Self {
            method,
            template,
            op,
        }
    }
}

/// Path parameters of the matched template, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The value of `{name}`, if the template has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A routed request, as handlers receive it.
#[derive(Debug)]
pub struct Call<Op> {
    pub op: Op,
    pub template: &'static str,
    pub params: PathParams,
    pub request: Request,
    pub request_id: String,
}

impl<Op> Call<Op> {
    /// The request body's bytes.
    pub fn body(&self) -> &[u8] {
        match self.request.body() {
            Body::Empty => &[],
            Body::Text(text) => text.as_bytes(),
            Body::Binary(bytes) => bytes,
            _ => &[],
        }
    }
}

/// What to match against: a template API Gateway already chose, or a concrete path.
enum Target {
    Template {
        template: String,
        params: PathParams,
    },
    Path(String),
}

fn target(request: &Request) -> Target {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => {
            if let Some(template) = context.resource_path.as_deref().filter(|t| !t.is_empty()) {
                let params = request
                    .path_parameters_ref()
                    .map(|map| {
                        map.iter()
                            .map(|(key, value)| (key.to_owned(), value.to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                return Target::Template {
                    template: template.to_owned(),
                    params: PathParams(params),
                };
            }
            Target::Path(strip_stage(raw_path(request), context.stage.as_deref()))
        }
        Some(RequestContext::ApiGatewayV2(context)) => {
            Target::Path(strip_stage(raw_path(request), context.stage.as_deref()))
        }
        _ => Target::Path(raw_path(request).to_owned()),
    }
}

fn raw_path(request: &Request) -> &str {
    let raw = request.raw_http_path();
    if raw.is_empty() {
        request.uri().path()
    } else {
        raw
    }
}

/// HTTP APIs put a named stage in `rawPath` (`/dev/users`); `$default` adds nothing.
fn strip_stage(path: &str, stage: Option<&str>) -> String {
    let stripped = match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| if rest.is_empty() { "/" } else { rest }),
        _ => None,
    };
    stripped.unwrap_or(path).to_owned()
}

/// Picks the route for `request`: [`ServiceError::RouteNotFound`] when no template matches,
/// [`ServiceError::MethodNotAllowed`] (with the allowed methods) when only the method is wrong.
pub fn resolve<'r, Op>(
    routes: &'r [Route<Op>],
    request: &Request,
) -> Result<(&'r Route<Op>, PathParams), ServiceError> {
    let method = request.method();
    let mut allow = Vec::new();
    match target(request) {
        Target::Template { template, params } => {
            for route in routes.iter().filter(|r| r.template == template) {
                if route.method == method {
                    return Ok((route, params));
                }
                allow.push(route.method.clone());
            }
        }
        Target::Path(path) => {
            // The resource first, as API Gateway does (`route_matching`); then the method on it.
            if let Some((template, params)) =
                route_matching::resource(routes.iter().map(|route| route.template), &path)
            {
                for route in routes.iter().filter(|r| r.template == template) {
                    if route.method == method {
                        let params = params
                            .iter()
                            .map(|&(name, value)| (name.to_owned(), value.to_owned()))
                            .collect();
                        return Ok((route, PathParams(params)));
                    }
                    allow.push(route.method.clone());
                }
            }
        }
    }
    if allow.is_empty() {
        Err(ServiceError::RouteNotFound)
    } else {
        Err(ServiceError::MethodNotAllowed { allow })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as a test or `cargo lambda` builds it: no API Gateway context, so it is
    /// routed by its path.
    fn bare(method: Method, path: &str) -> Request {
        let mut request = Request::new(Body::Empty);
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap();
        request
    }

    #[test]
    fn a_path_reaches_its_resource_then_its_method_or_405() {
        let routes = [
            Route::new(Method::GET, "/users/{id}", "get"),
            Route::new(Method::PATCH, "/users/{id}", "update"),
            Route::new(Method::GET, "/users/me", "me"),
        ];
        let (route, params) = resolve(&routes, &bare(Method::GET, "/users/42/")).unwrap();
        assert_eq!((route.op, params.get("id")), ("get", Some("42")));
        let (route, _) = resolve(&routes, &bare(Method::GET, "/users/me")).unwrap();
        assert_eq!(route.op, "me");
        // `/users/me` is the resource, whatever the method: 405 with its methods, never
        // `/users/{id}`'s PATCH.
        match resolve(&routes, &bare(Method::PATCH, "/users/me")) {
            Err(ServiceError::MethodNotAllowed { allow }) => assert_eq!(allow, [Method::GET]),
            other => panic!("expected 405, got {other:?}"),
        }
        assert!(matches!(
            resolve(&routes, &bare(Method::GET, "/nope")),
            Err(ServiceError::RouteNotFound)
        ));
    }

    #[test]
    fn stages_are_stripped_only_as_a_whole_segment() {
        assert_eq!(strip_stage("/dev/users", Some("dev")), "/users");
        assert_eq!(strip_stage("/dev", Some("dev")), "/");
        assert_eq!(strip_stage("/devices", Some("dev")), "/devices");
        assert_eq!(strip_stage("/users", Some("$default")), "/users");
        assert_eq!(strip_stage("/users", None), "/users");
    }
}
