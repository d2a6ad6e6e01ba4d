//! The route table: which HTTP method and path reach which function, as the function crates
//! declare it (`catalog`), plus the CORS preflight and catch-all routes infra adds per path.
//!
//! API Gateway resources and methods are generated from it here, and the local API server of
//! the life-cycle tooling routes requests with the same table, so the two can never disagree.

/// Which Lambda function serves a route: one of [`catalog::FUNCTIONS`], which the function
/// crates declare. Ordered as the catalog is (the workspace's `members`), so everything keyed by
/// function comes out in deployment order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName(usize);

impl FunctionName {
    /// Every function, in deployment order; constructs iterate this instead of repeating names.
    pub fn all() -> impl Iterator<Item = FunctionName> {
        (0..catalog::FUNCTIONS.len()).map(FunctionName)
    }

    /// The function called `name`, if the catalog has one.
    pub fn find(name: &str) -> Option<FunctionName> {
        catalog::FUNCTIONS
            .iter()
            .position(|f| f.name == name)
            .map(FunctionName)
    }

    /// What the function's crate declares.
    pub fn declaration(self) -> &'static catalog::Function {
        &catalog::FUNCTIONS[self.0]
    }

    /// The short name: Cargo package, binary, and the suffix after the prefix in AWS names.
    pub fn as_str(self) -> &'static str {
        self.declaration().name
    }
}

impl std::fmt::Display for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a route needs an API key. `Config` exists because `/health` is open in some
/// environments and keyed in others (the environment file decides, not the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKey {
    Required,
    /// Decided by `health_requires_api_key` in the environment file.
    Config,
    /// Never: a CORS preflight. Browsers send it without the request's headers (so without
    /// `x-api-key`) and treat any answer but a 2xx as a failed preflight.
    Never,
}

/// One row of the route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method as API Gateway spells it.
    pub method: &'static str,
    /// Path template in API Gateway syntax (`{id}` is a path parameter).
    pub path: &'static str,
    pub function: FunctionName,
    pub api_key: ApiKey,
    /// Query-string parameters the function reads. They are part of the API Gateway cache key
    /// when the stage cache is on, so two different pages never share a cached response.
    pub query: &'static [&'static str],
    /// Whether the stage cache, when on, may answer this route (a `GET` that the function's
    /// crate declares `cached`).
    pub cached: bool,
}

impl Route {
    /// Whether the route needs an API key, given the environment's health setting.
    pub fn api_key_required(&self, health_requires_api_key: bool) -> bool {
        match self.api_key {
            ApiKey::Required => true,
            ApiKey::Config => health_requires_api_key,
            ApiKey::Never => false,
        }
    }

    /// Path segments without the leading slash (`/users/{id}` -> `["users", "{id}"]`).
    pub fn segments(&self) -> impl Iterator<Item = &'static str> {
        route_matching::segments(self.path)
    }
}

/// Every route the service answers: the catalog's, function by function in deployment order,
/// each function's in its declaration's order (the order of the API documentation).
pub static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    FunctionName::all()
        .flat_map(|function| {
            function
                .declaration()
                .routes
                .iter()
                .map(move |route| Route {
                    method: route.method,
                    path: route.path,
                    function,
                    api_key: match route.api_key {
                        catalog::ApiKey::Required => ApiKey::Required,
                        catalog::ApiKey::Environment => ApiKey::Config,
                    },
                    query: route.query,
                    cached: route.cached,
                })
        })
        .collect()
});

/// Path parameters of a matched route, in template order (`[("id", "abc")]`).
pub type PathParams = Vec<(&'static str, String)>;

/// The method of a CORS preflight.
pub const PREFLIGHT_METHOD: &str = "OPTIONS";

/// API Gateway's catch-all method: it serves every method a resource has no method of its own
/// for.
pub const ANY_METHOD: &str = "ANY";

/// One route per path of [`ROUTES`] with `method`, to the function that serves that path's
/// other methods, with `api_key` (`None`: the same as the path's first route).
fn per_path(method: &'static str, api_key: Option<ApiKey>) -> Vec<Route> {
    // The catalog's build refuses a path that two functions declare, so the path's first
    // route names its only function.
    let mut routes: Vec<Route> = Vec::new();
    for route in ROUTES.iter() {
        if !routes.iter().any(|r| r.path == route.path) {
            routes.push(Route {
                method,
                path: route.path,
                function: route.function,
                api_key: api_key.unwrap_or(route.api_key),
                query: &[],
                cached: false,
            });
        }
    }
    routes
}

/// One `OPTIONS` route per path of [`ROUTES`], without an API key. Served only where the
/// environment configures CORS origins (`api.cors_allow_origins`): the function decides whether
/// the origin may call, so the gateway only has to let the preflight through to it.
pub fn preflight_routes() -> &'static [Route] {
    static PREFLIGHT: std::sync::LazyLock<Vec<Route>> =
        std::sync::LazyLock::new(|| per_path(PREFLIGHT_METHOD, Some(ApiKey::Never)));
    &PREFLIGHT
}

/// One `ANY` route per path of [`ROUTES`], keyed like the path's other routes. API Gateway
/// answers a method a resource does not have as if the path did not exist; with these, the
/// function answers it instead, with 405 and the `allow` header the path really has.
pub fn fallback_routes() -> &'static [Route] {
    static FALLBACK: std::sync::LazyLock<Vec<Route>> =
        std::sync::LazyLock::new(|| per_path(ANY_METHOD, None));
    &FALLBACK
}

/// The routes an environment serves: [`ROUTES`], [`preflight_routes`] when it configures CORS
/// origins, and [`fallback_routes`]. API Gateway's methods and the local API server's routing
/// both come from here.
pub fn served(cors: bool) -> impl Iterator<Item = &'static Route> {
    let preflight: &'static [Route] = if cors { preflight_routes() } else { &[] };
    ROUTES.iter().chain(preflight).chain(fallback_routes())
}

/// Finds the route for a method and concrete path among [`served`]`(cors)`, API Gateway
/// style: first the resource (`route_matching::resource`: a literal beats a parameter, so
/// `/users/me` is never `/users/{id}`), then the resource's own method, else its `ANY`. `None`
/// when no resource has that path.
pub fn find(method: &str, path: &str, cors: bool) -> Option<(&'static Route, PathParams)> {
    let (template, params) = route_matching::resource(served(cors).map(|route| route.path), path)?;
    // A method of the resource's own first, as API Gateway picks it; then its `ANY`.
    let on_resource = || served(cors).filter(move |route| route.path == template);
    let route = on_resource()
        .find(|route| route.method.eq_ignore_ascii_case(method))
        .or_else(|| on_resource().find(|route| route.method == ANY_METHOD))?;
    let params = params
        .into_iter()
        .map(|(name, value)| (name, value.to_owned()))
        .collect();
    Some((route, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_catalogs_routes_with_their_parameters() {
        let (route, params) = find("GET", "/users/abc", false).unwrap();
        assert_eq!(route.path, "/users/{id}");
        assert_eq!(route.function.as_str(), "users");
        assert_eq!(params, vec![("id", "abc".to_owned())]);
        let (route, params) = find("DELETE", "/sessions/current", false).unwrap();
        assert_eq!(route.path, "/sessions/current");
        assert!(params.is_empty());
        assert!(find("GET", "/nope", false).is_none());
    }

    #[test]
    fn other_methods_of_a_path_go_to_its_function_with_its_key() {
        let (route, _) = find("PUT", "/users", false).unwrap();
        assert_eq!(
            (route.method, route.function),
            (ANY_METHOD, FunctionName::find("users").unwrap())
        );
        assert!(route.api_key_required(false));
        let (route, _) = find("POST", "/health", false).unwrap();
        assert_eq!(route.method, ANY_METHOD);
        assert_eq!(route.api_key, ApiKey::Config, "keyed like GET /health");
        let paths: std::collections::BTreeSet<_> = ROUTES.iter().map(|r| r.path).collect();
        assert_eq!(fallback_routes().len(), paths.len());
    }

    #[test]
    fn preflights_exist_only_with_cors_and_need_no_key() {
        let (route, _) = find("OPTIONS", "/users", false).unwrap();
        assert_eq!(
            route.method, ANY_METHOD,
            "without CORS, OPTIONS is any other method"
        );
        assert!(route.api_key_required(true));
        let (route, params) = find("OPTIONS", "/users/abc", true).unwrap();
        assert_eq!(route.method, PREFLIGHT_METHOD);
        assert_eq!(route.path, "/users/{id}");
        assert_eq!(route.function.as_str(), "users");
        assert_eq!(params, vec![("id", "abc".to_owned())]);
        assert!(!route.api_key_required(true));
        assert!(find("OPTIONS", "/nope", true).is_none());
        let paths: std::collections::BTreeSet<_> = ROUTES.iter().map(|r| r.path).collect();
        assert_eq!(preflight_routes().len(), paths.len());
    }

    #[test]
    fn the_resource_is_chosen_before_the_method() {
        // API Gateway matched the `/users/me` resource, which has no PATCH: its ANY, not
        // `/users/{id}`'s PATCH.
        let (route, _) = find("PATCH", "/users/me", false).unwrap();
        assert_eq!((route.path, route.method), ("/users/me", ANY_METHOD));
    }
}
