//! Matching a request to a route.
//!
//! API Gateway REST (v1) events carry the matched resource template (`/users/{id}`) and the
//! path parameters, so we route on those: the URI path may carry the stage (`/prod/users/..`)
//! or a custom domain's base path. Other events (HTTP API v2, hand-built requests) are matched
//! by their raw path, stage stripped, against the same templates.

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

/// Matches a concrete path against a template, segment by segment; `{name}` takes one
/// non-empty segment. A single trailing slash is ignored.
fn match_template(template: &str, path: &str) -> Option<PathParams> {
    let trim = |p: &str| -> String {
        if p.len() > 1 {
            p.trim_end_matches('/').to_owned()
        } else {
            p.to_owned()
        }
    };
    let path = trim(path);
    let mut template_segments = template.split('/');
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(t), Some(p)) => {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if p.is_empty() {
                        return None;
                    }
                    params.push((name.to_owned(), p.to_owned()));
                } else if t != p {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

fn literal_segments(template: &str) -> Vec<bool> {
    template
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| !s.starts_with('{'))
        .collect()
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
            // The resource first, as API Gateway does: at each segment a literal beats a
            // parameter (`/users/me` is never `/users/{id}`); then the method on it.
            let resource = routes
                .iter()
                .filter(|route| match_template(route.template, &path).is_some())
                .map(|route| route.template)
                .max_by_key(|template| literal_segments(template));
            for route in routes.iter().filter(|r| Some(r.template) == resource) {
                if route.method == method {
                    let params = match_template(route.template, &path).unwrap_or_default();
                    return Ok((route, params));
                }
                allow.push(route.method.clone());
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

    #[test]
    fn templates_match_segments() {
        let params = match_template("/users/{id}", "/users/42").unwrap();
        assert_eq!(params.get("id"), Some("42"));
        assert!(match_template("/users/{id}", "/users/").is_none());
        assert!(match_template("/users/{id}", "/users/1/2").is_none());
        assert!(match_template("/users", "/users/").is_some());
        assert!(match_template("/sessions/current", "/sessions/other").is_none());
        assert!(match_template("/health", "/healthz").is_none());
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
