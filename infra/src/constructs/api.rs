//! The REST API: one resource per path segment and one method per row of [`ROUTES`] (plus a
//! keyless `OPTIONS` per path where the environment allows CORS origins), Lambda proxy
//! integrations to the `live` aliases, invoke permissions scoped to this API, API Gateway's own
//! answers in the functions' error shape ([`GATEWAY_RESPONSES`]), a stage with JSON access
//! logs, X-Ray, metrics and throttling, and per client (`[[api.clients]]`) an API key with its
//! own usage plan, so one client's throttle or quota never reaches another's key.

use super::compute::Function;
use super::security::{Key, RoleKind, service_role};
use crate::config::{Api, Client, Names};
use crate::gateway_responses::{self, GATEWAY_RESPONSES};
use crate::iam::{Account, Scope, Statement, tags_except_ownership};
use crate::routes::{self, ROUTES, Route};
use crate::tf::{Expr, Ref, Stack, create_before_destroy, depends_on};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where API Gateway's access log goes: `/aws/apigateway/<prefix>api`.
pub const LOG_GROUP_PREFIX: &str = "/aws/apigateway/";

/// API Gateway's role for writing its logs to CloudWatch Logs.
pub const CLOUDWATCH_ROLE: RoleKind = RoleKind {
    service: "apigateway.amazonaws.com",
    managed: &["service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
    source_account: false,
};

/// Handle to the deployed API and its stage.
#[derive(Clone, Debug)]
pub struct RestApi {
    api: Ref,
    stage: Ref,
    clients: Vec<ClientKey>,
}

/// One client's API key and the usage plan that limits it, with the limits it was given.
#[derive(Clone, Debug)]
pub struct ClientKey {
    pub client: Client,
    key: Ref,
    plan: Ref,
}

impl ClientKey {
    pub fn key_id(&self) -> Expr {
        self.key.attr("id")
    }
    pub fn key_value(&self) -> Expr {
        self.key.attr("value")
    }
    pub fn plan_id(&self) -> Expr {
        self.plan.attr("id")
    }
}

impl RestApi {
    pub fn id(&self) -> Expr {
        self.api.attr("id")
    }
    pub fn name(&self) -> Expr {
        self.api.attr("name")
    }
    pub fn stage_name(&self) -> Expr {
        self.stage.attr("stage_name")
    }
    pub fn stage_arn(&self) -> Expr {
        self.stage.attr("arn")
    }
    /// `https://<id>.execute-api.<region>.amazonaws.com/<stage>`, no trailing slash.
    pub fn invoke_url(&self) -> Expr {
        self.stage.attr("invoke_url")
    }
    /// Every client's key and plan, in the environment file's order.
    pub fn clients(&self) -> &[ClientKey] {
        &self.clients
    }
    /// The first client's key: what smoke and the README's examples use.
    pub fn api_key_id(&self) -> Expr {
        self.clients[0].key_id()
    }
    pub fn api_key_value(&self) -> Expr {
        self.clients[0].key_value()
    }
}

/// The JSON access-log line: one object per request, with the request id that also appears in
/// the function logs and the `x-request-id` header.
fn access_log_format() -> String {
    let fields = [
        ("requestId", "$context.requestId"),
        ("extendedRequestId", "$context.extendedRequestId"),
        ("ip", "$context.identity.sourceIp"),
        ("requestTime", "$context.requestTime"),
        ("httpMethod", "$context.httpMethod"),
        ("resourcePath", "$context.resourcePath"),
        ("status", "$context.status"),
        ("protocol", "$context.protocol"),
        ("responseLength", "$context.responseLength"),
        ("integrationLatency", "$context.integrationLatency"),
        ("responseLatency", "$context.responseLatency"),
        ("xrayTraceId", "$context.xrayTraceId"),
        ("apiKeyId", "$context.identity.apiKeyId"),
        ("errorMessage", "$context.error.message"),
    ];
    let object: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    Value::Object(object).to_string()
}

/// Terraform-safe logical name for a path (`/users/{id}` -> `users_id`).
fn logical_path(segments: &[&str]) -> String {
    segments
        .iter()
        .map(|s| s.trim_matches(|c| c == '{' || c == '}').replace('-', "_"))
        .collect::<Vec<_>>()
        .join("_")
}

pub struct ApiInputs<'a> {
    pub names: Names<'a>,
    /// `[api]`.
    pub settings: &'a Api,
    /// The access logs keep their entries as long as the functions' (`[lambda]`).
    pub log_retention_days: u32,
    /// The permissions boundary of the CloudWatch role ([`super::boundary::permissions_boundary`]).
    pub boundary: Option<&'a str>,
    pub account: &'a Account,
    pub key: &'a Key,
    pub functions: &'a [Function],
    /// Whether this stack sets the account's API Gateway logging role. The base environment
    /// does; a stage (`Config::for_stage`) uses the one its base set: the setting is one per
    /// account and region, and a stage that set its own role would leave it pointing at a
    /// deleted role when the stage is destroyed.
    pub sets_account_logging_role: bool,
}

pub fn rest_api(stack: &mut Stack, inputs: &ApiInputs<'_>) -> RestApi {
    let names = inputs.names;
    let settings = inputs.settings;
    let api = stack.resource(
        "aws_api_gateway_rest_api",
        "main",
        json!({
            "name": names.name("api"),
            "description": "Users and sessions service",
            "endpoint_configuration": [{ "types": ["REGIONAL"] }],
            "lifecycle": create_before_destroy(),
        }),
    );
    let validator = stack.resource(
        "aws_api_gateway_request_validator",
        "main",
        json!({ "name": names.name("validate"), "rest_api_id": api.attr("id"), "validate_request_body": true, "validate_request_parameters": true }),
    );

    // Resources: one per distinct path prefix, parents before children.
    let mut resources: BTreeMap<String, Ref> = BTreeMap::new();
    for route in ROUTES.iter() {
        let segments: Vec<&str> = route.segments().collect();
        for depth in 1..=segments.len() {
            let logical = logical_path(&segments[..depth]);
            if resources.contains_key(&logical) {
                continue;
            }
            let parent = if depth == 1 {
                api.attr("root_resource_id")
            } else {
                resources[&logical_path(&segments[..depth - 1])].attr("id")
            };
            let r = stack.resource(
                "aws_api_gateway_resource",
                &logical,
                json!({ "rest_api_id": api.attr("id"), "parent_id": parent, "path_part": segments[depth - 1] }),
            );
            resources.insert(logical, r);
        }
    }

    let by_function: BTreeMap<_, &Function> =
        inputs.functions.iter().map(|f| (f.which, f)).collect();
    let mut triggers: Vec<String> = Vec::new();
    let mut deployment_deps: Vec<Ref> = Vec::new();
    for route in routes::served(settings.cors()) {
        let (method, integration) = method(
            stack,
            settings,
            &api,
            &validator,
            &resources,
            route,
            by_function[&route.function],
        );
        triggers.push(method.attr("id").inner().to_owned());
        triggers.push(integration.attr("id").inner().to_owned());
        triggers.push(integration.attr("uri").inner().to_owned());
        deployment_deps.push(method);
        deployment_deps.push(integration);
    }
    triggers.extend(resources.values().map(|r| r.attr("id").inner().to_owned()));
    // Gateway responses take effect with the next deployment, so their content is part of
    // the trigger (their ids would not change when a template does).
    for response in gateway_responses(stack, &api) {
        for attr in ["status_code", "response_templates", "response_parameters"] {
            triggers.push(response.attr(attr).inner().to_owned());
        }
        deployment_deps.push(response);
    }
    // A new deployment whenever a route, resource or integration changes; the new one exists
    // before the stage moves to it and the old one goes, so there is no gap in service.
    let deployment = stack.resource(
        "aws_api_gateway_deployment",
        "main",
        json!({
            "rest_api_id": api.attr("id"),
            "description": "Managed by infra; replaced when routes change",
            "triggers": { "redeployment": Expr::raw(format!("sha1(jsonencode([{}]))", triggers.join(", "))) },
            "lifecycle": create_before_destroy(),
            "depends_on": depends_on(&deployment_deps.iter().collect::<Vec<_>>()),
        }),
    );

    // Execution logging needs an account-level CloudWatch role (what CDK's
    // `cloudWatchRole: true` creates). It is a per-region singleton.
    let account = inputs.sets_account_logging_role.then(|| {
        let cloudwatch_role = service_role(
            stack,
            inputs.boundary,
            inputs.account,
            "apigateway_cloudwatch",
            &names.name("apigateway-logs"),
            &CLOUDWATCH_ROLE,
            Vec::new(),
        );
        stack.resource(
            "aws_api_gateway_account",
            "main",
            json!({ "cloudwatch_role_arn": cloudwatch_role.arn(), "depends_on": depends_on(&cloudwatch_role.dependencies()) }),
        )
    });
    let access_logs = stack.resource(
        "aws_cloudwatch_log_group",
        "api_access",
        json!({
            "name": format!("{LOG_GROUP_PREFIX}{}", names.name("api")),
            "retention_in_days": inputs.log_retention_days,
            "kms_key_id": inputs.key.arn(),
        }),
    );
    let mut stage = json!({
        "rest_api_id": api.attr("id"),
        "deployment_id": deployment.attr("id"),
        "stage_name": settings.stage_name,
        "description": "The stage clients call",
        "xray_tracing_enabled": true,
        "access_log_settings": [{ "destination_arn": access_logs.attr("arn"), "format": access_log_format() }],
        "depends_on": depends_on(&account.iter().collect::<Vec<_>>()),
    });
    if let Some(cache) = &settings.cache {
        stage["cache_cluster_enabled"] = json!(true);
        stage["cache_cluster_size"] = json!(cache.size_gb);
    }
    if settings.client_certificate {
        let cert = stack.resource(
            "aws_api_gateway_client_certificate",
            "main",
            json!({ "description": format!("{}api backend client certificate", names.prefix()) }),
        );
        stage["client_certificate_id"] = cert.attr("id").into();
    }
    let stage = stack.resource("aws_api_gateway_stage", "main", stage);
    let mut method_settings = json!({
        "metrics_enabled": true,
        "logging_level": "INFO",
        // Request and response bodies carry passwords and tokens: never log them.
        "data_trace_enabled": false,
        "throttling_rate_limit": settings.throttling_rate_limit,
        "throttling_burst_limit": settings.throttling_burst_limit,
    });
    if let Some(cache) = &settings.cache {
        method_settings["caching_enabled"] = json!(true);
        method_settings["cache_data_encrypted"] = json!(true);
        method_settings["cache_ttl_in_seconds"] = json!(cache.ttl_seconds);
        method_settings["require_authorization_for_cache_control"] = json!(true);
        method_settings["unauthorized_cache_control_header_strategy"] = json!("FAIL_WITH_403");
    }
    stack.resource(
        "aws_api_gateway_method_settings",
        "all",
        json!({ "rest_api_id": api.attr("id"), "stage_name": stage.attr("stage_name"), "method_path": "*/*", "settings": [method_settings] }),
    );
    if settings.cache.is_some() {
        // Reads of users and sessions must see the write or log-out before them at once: a
        // logged-out token that still reads its session from the cache, or a stale `version`
        // that makes every update conflict, is wrong however short the TTL. A TTL of 0 makes
        // API Gateway answer these methods from the function every time, while /health (the
        // probe traffic the cache exists for, the one GET its crate declares `cached`) stays
        // cached.
        let mut uncached = method_settings.clone();
        uncached["cache_ttl_in_seconds"] = json!(0);
        for route in ROUTES.iter().filter(|r| r.method == "GET" && !r.cached) {
            let segments: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
            stack.resource(
                "aws_api_gateway_method_settings",
                &format!("uncached_{}", logical_path(&segments)),
                json!({
                    "rest_api_id": api.attr("id"),
                    "stage_name": stage.attr("stage_name"),
                    "method_path": format!("{}/GET", route.path.trim_start_matches('/')),
                    "settings": [uncached],
                }),
            );
        }
    }

    let clients = settings
        .clients
        .iter()
        .enumerate()
        .map(|(i, client)| client_key(stack, names, &api, &stage, client, i == 0))
        .collect();
    RestApi {
        api,
        stage,
        clients,
    }
}

/// A client's API key, its own usage plan on the stage (the throttle, and the daily quota only
/// where the environment file gives one), and the link between them. One plan per client:
/// throttle and quota are a plan's, so clients sharing a plan would share the one off switch.
///
/// `first`: the environment's first client takes over the single key and plan environments
/// had before `[[api.clients]]` (Terraform addresses `*.client`), through `moved` blocks, so
/// that key keeps its value and the apps that ship it keep working.
fn client_key(
    stack: &mut Stack,
    names: Names<'_>,
    api: &Ref,
    stage: &Ref,
    client: &Client,
    first: bool,
) -> ClientKey {
    let logical = format!("client_{}", client.ident());
    let name = names.name(&format!("client-{}", client.name));
    let key = stack.resource(
        "aws_api_gateway_api_key",
        &logical,
        json!({ "name": name, "description": format!("API key of client {}", client.name), "enabled": true }),
    );
    let mut plan = json!({
        "name": name,
        "description": format!("Throttle{} of client {}", if client.quota_per_day.is_some() { " and daily quota" } else { "" }, client.name),
        "api_stages": [{ "api_id": api.attr("id"), "stage": stage.attr("stage_name") }],
        "throttle_settings": [{ "rate_limit": client.rate_per_second, "burst_limit": client.burst }],
    });
    if let Some(limit) = client.quota_per_day {
        plan["quota_settings"] = json!([{ "limit": limit, "period": "DAY" }]);
    }
    let plan = stack.resource("aws_api_gateway_usage_plan", &logical, plan);
    let link = stack.resource(
        "aws_api_gateway_usage_plan_key",
        &logical,
        json!({ "key_id": key.attr("id"), "key_type": "API_KEY", "usage_plan_id": plan.attr("id") }),
    );
    if first {
        stack.moved("aws_api_gateway_api_key.client", &key);
        stack.moved("aws_api_gateway_usage_plan.client", &plan);
        stack.moved("aws_api_gateway_usage_plan_key.client", &link);
    }
    ClientKey {
        client: client.clone(),
        key,
        plan,
    }
}

/// One `aws_api_gateway_gateway_response` per row of [`GATEWAY_RESPONSES`]: the functions'
/// error body with the request id, and the same id in `x-request-id`.
fn gateway_responses(stack: &mut Stack, api: &Ref) -> Vec<Ref> {
    let parameters: serde_json::Map<String, Value> = gateway_responses::HEADERS
        .iter()
        .map(|(name, expression)| (format!("gatewayresponse.header.{name}"), json!(expression)))
        .collect();
    GATEWAY_RESPONSES
        .iter()
        .map(|row| {
            let mut body = json!({
                "rest_api_id": api.attr("id"),
                "response_type": row.response_type,
                "response_templates": { gateway_responses::CONTENT_TYPE: row.template() },
                "response_parameters": parameters,
            });
            if let Some(status) = row.status {
                body["status_code"] = json!(status.to_string());
            }
            stack.resource(
                "aws_api_gateway_gateway_response",
                &row.response_type.to_ascii_lowercase(),
                body,
            )
        })
        .collect()
}

/// One route: method, proxy integration to the alias and the permission to invoke it.
fn method(
    stack: &mut Stack,
    settings: &Api,
    api: &Ref,
    validator: &Ref,
    resources: &BTreeMap<String, Ref>,
    route: &Route,
    function: &Function,
) -> (Ref, Ref) {
    let segments: Vec<&str> = route.segments().collect();
    let resource = &resources[&logical_path(&segments)];
    let logical = format!(
        "{}_{}",
        route.method.to_ascii_lowercase(),
        logical_path(&segments)
    );
    let mut parameters = serde_json::Map::new();
    for segment in &segments {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            parameters.insert(format!("method.request.path.{name}"), json!(true));
        }
    }
    // With the stage cache on, a response is cached per path, query and bearer token: a
    // user's data is never served to another caller, nor one page in place of another.
    let cache_keys: Vec<String> = if settings.cache.is_some() {
        for q in route.query {
            parameters.insert(format!("method.request.querystring.{q}"), json!(false));
        }
        parameters.insert("method.request.header.Authorization".into(), json!(false));
        if settings.cors() {
            // The answer names the caller's origin (or not): never serve one origin's answer
            // to another.
            parameters.insert("method.request.header.Origin".into(), json!(false));
        }
        parameters.keys().cloned().collect()
    } else {
        Vec::new()
    };
    let method = stack.resource(
        "aws_api_gateway_method",
        &logical,
        json!({
            "rest_api_id": api.attr("id"),
            "resource_id": resource.attr("id"),
            "http_method": route.method,
            // Callers are identified by the API key (usage plan) and, inside the function, by
            // the session token; there is no IAM or Cognito caller identity.
            "authorization": "NONE",
            "api_key_required": route.api_key_required(settings.health_requires_api_key),
            "request_validator_id": validator.attr("id"),
            "request_parameters": parameters,
        }),
    );
    let integration = stack.resource(
        "aws_api_gateway_integration",
        &logical,
        json!({
            "rest_api_id": api.attr("id"),
            "resource_id": resource.attr("id"),
            "http_method": method.attr("http_method"),
            "type": "AWS_PROXY",
            "integration_http_method": "POST",
            "uri": function.alias_invoke_arn(),
            "cache_key_parameters": cache_keys,
        }),
    );
    // Only this API, this method and this path may invoke the alias.
    // `ANY` is `*` in an execute-api ARN.
    let source_method = if route.method == routes::ANY_METHOD {
        "*"
    } else {
        route.method
    };
    let source_path: String = segments
        .iter()
        .map(|s| if s.starts_with('{') { "*" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    stack.resource(
        "aws_lambda_permission",
        &logical,
        json!({
            "statement_id": format!("AllowApiGateway-{}-{}", route.method, logical_path(&segments)),
            "action": "lambda:InvokeFunction",
            "function_name": function.name(),
            "qualifier": function.alias_name(),
            "principal": "apigateway.amazonaws.com",
            "source_arn": format!("{}/*/{source_method}/{source_path}", api.attr("execution_arn")),
            "depends_on": [function.alias_ref().addr()],
        }),
    );
    (method, integration)
}

/// `arn:<partition>:apigateway:<region>::<path>`: API Gateway's ARNs name API parts by path,
/// with no account.
pub fn arn(scope: &Scope, path: &str) -> String {
    format!(
        "arn:{}:apigateway:{}::{path}",
        scope.account.partition, scope.region
    )
}

/// What the deploy role needs to manage the REST API and its parts (API keys, usage plans,
/// client certificates, the custom domain's name) and, with `account_logging_role` (the base
/// environment's stacks set it, a stage's never do), the account's logging role setting.
pub fn management_statements(
    scope: &Scope,
    settings: &Api,
    domain: bool,
    account_logging_role: bool,
) -> Vec<Statement> {
    let mut s = Vec::new();
    // API Gateway: its ARNs name API parts by path with generated ids (no account), so what
    // makes a part this environment's is its tags. Created only with them (POST on the
    // collections); everything under a REST API, usage plan or domain name inherits its tags
    // for access control (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-supported-resources.html,
    // https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-tagging-iam-policy.html).
    // No GET on a collection: `GET /apikeys?includeValues=true` returns every key's value.
    let api = |path: &str| arn(scope, path);
    let mut collections = vec!["/restapis", "/apikeys", "/usageplans"];
    if settings.client_certificate {
        collections.push("/clientcertificates");
    }
    if domain {
        collections.push("/domainnames");
    }
    s.push(
        Statement::allow(
            "NewApiPartsTaggedForThisEnvironment",
            &["apigateway:POST"],
            collections.iter().map(|c| api(c)).collect(),
        )
        .condition(scope.tagging_condition()),
    );
    s.push(
        Statement::allow(
            "ApiPartsOfThisEnvironment",
            &[
                "apigateway:GET",
                "apigateway:POST",
                "apigateway:PUT",
                "apigateway:PATCH",
                "apigateway:DELETE",
            ],
            collections.iter().map(|c| api(&format!("{c}/*"))).collect(),
        )
        .condition(scope.owned_condition()),
    );
    s.push(tags_except_ownership(
        "ApiTagsExceptOwnership",
        &["apigateway:PUT", "apigateway:DELETE"],
        vec![api("/tags/*")],
        scope,
    ));
    // The account's CloudWatch role for API Gateway logging (`aws_api_gateway_account`): one
    // setting per account and region, with no tags and no narrower ARN.
    if account_logging_role {
        s.push(Statement::allow(
            "ApiGatewayAccountLoggingRole",
            &["apigateway:GET", "apigateway:PATCH"],
            vec![api("/account")],
        ));
    }
    s
}
