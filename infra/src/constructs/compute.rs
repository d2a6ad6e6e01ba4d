//! Lambda functions: one per domain, each with its own log group, role, published versions
//! and a `live` alias that API Gateway invokes.
//!
//! Terraform publishes a version on every code or configuration change but never moves the
//! alias after creating it: `cargo xtask deploy` releases new versions onto `live` (all at once,
//! or in canary/linear steps gated by the alarms) and `cargo xtask rollback` moves it back, so a
//! later `terraform apply` can never undo a rollback by re-pointing `live` at a bad version.
//!
//! Each function's role gets exactly its grants, each with what it needs of the stack key; the
//! deploy role gets what managing the functions takes from [`management_statements`].

use super::data::Tables;
use super::network::Network;
use super::queues::{Queues, sqs_grant};
use super::secrets::Secrets;
use super::security::{Key, Role, RoleKind, service_role};
use crate::config::{Api, Lambda, Names};
use crate::iam::{Account, Grant, KeyActions, Scope, Statement};
use crate::routes::FunctionName;
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde_json::{Map, json};
use std::collections::BTreeMap;

/// The alias API Gateway calls; new versions reach traffic only through it.
pub const ALIAS: &str = "live";

/// The handler setting the seeds ask for; the custom runtime ignores it and runs `bootstrap`.
pub const HANDLER: &str = "lambda-handler.handler";

/// Where Lambda writes a function's logs: `/aws/lambda/<function name>`.
pub const LOG_GROUP_PREFIX: &str = "/aws/lambda/";

/// The functions' roles.
pub const ROLE: RoleKind = RoleKind {
    service: "lambda.amazonaws.com",
    managed: &[],
    source_account: false,
};
/// The functions' roles in a VPC: ENI management is only grantable on "*"; the AWS-managed
/// policy is the documented way and keeps the wildcard out of this code.
pub const VPC_ROLE: RoleKind = RoleKind {
    managed: &["service-role/AWSLambdaVPCAccessExecutionRole"],
    ..ROLE
};

/// The kind of the functions' roles, in a VPC or not.
pub fn role_kind(vpc: bool) -> RoleKind {
    if vpc { VPC_ROLE } else { ROLE }
}

/// Where each function's deployment package is, as Terraform variables xtask fills in.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub bucket: Expr,
    pub key: Expr,
    pub hash: Expr,
}

/// A deployed function and its alias.
#[derive(Clone, Debug)]
pub struct Function {
    pub which: FunctionName,
    function: Ref,
    alias: Ref,
    pub role: Role,
}

impl Function {
    pub fn name(&self) -> Expr {
        self.function.attr("function_name")
    }
    /// The newest version Terraform published: what xtask releases onto the alias.
    pub fn published_version(&self) -> Expr {
        self.function.attr("version")
    }
    pub fn alias_name(&self) -> Expr {
        self.alias.attr("name")
    }
    /// What API Gateway integrations call.
    pub fn alias_invoke_arn(&self) -> Expr {
        self.alias.attr("invoke_arn")
    }
    pub fn alias_arn(&self) -> Expr {
        self.alias.attr("arn")
    }
    pub fn alias_ref(&self) -> &Ref {
        &self.alias
    }
}

/// Everything the compute layer shares between functions.
pub struct ComputeInputs<'a> {
    pub names: Names<'a>,
    pub lambda: &'a Lambda,
    /// For the functions' CORS settings.
    pub api: &'a Api,
    /// The stack targets the emulator (which lacks some Lambda settings).
    pub emulator: bool,
    /// The permissions boundary every role carries ([`super::boundary::permissions_boundary`]).
    pub boundary: Option<&'a str>,
    pub account: &'a Account,
    pub key: &'a Key,
    pub tables: &'a Tables,
    pub network: Option<&'a Network>,
    /// The declared secrets: each function reads exactly its own.
    pub secrets: &'a Secrets,
    /// The declared queues: each function consumes and sends to exactly its own.
    pub queues: &'a Queues,
    pub artifacts: BTreeMap<FunctionName, Artifact>,
    pub service_version: Expr,
    /// `AWS_ENDPOINT_URL` for the functions when the stack targets the emulator.
    pub endpoint: Option<Expr>,
}

/// The shared dead-letter queue (encrypted) for failed asynchronous invocations.
struct DeadLetterQueue {
    r: Ref,
    key: Key,
}

impl DeadLetterQueue {
    fn new(stack: &mut Stack, names: Names, key: &Key) -> DeadLetterQueue {
        let r = stack.resource(
            "aws_sqs_queue",
            "dead_letters",
            json!({
                "name": names.name("dead-letters"),
                "kms_master_key_id": key.arn(),
                "kms_data_key_reuse_period_seconds": 300,
                "message_retention_seconds": 1_209_600,
            }),
        );
        DeadLetterQueue {
            r,
            key: key.clone(),
        }
    }

    fn arn(&self) -> Expr {
        self.r.attr("arn")
    }

    /// Sending a failed event, which Lambda does with the function's role. SQS encrypts the
    /// message under the queue's key on the sender's behalf, so the role may use the key, but
    /// only through SQS: every function has this grant, the read-only ones too, and none of
    /// them can encrypt anything with the key directly.
    fn grant_send(&self, account: &Account) -> Option<Grant> {
        sqs_grant(
            &self.key,
            ("DeadLetters", &["sqs:SendMessage"]),
            KeyActions::SEND_TO_QUEUE,
            vec![self.arn().to_string()],
            account,
        )
    }
}

/// Creates every function of the catalog.
pub fn functions(stack: &mut Stack, inputs: &ComputeInputs<'_>) -> Vec<Function> {
    let dlq = inputs
        .lambda
        .dead_letter_queue
        .then(|| DeadLetterQueue::new(stack, inputs.names, inputs.key));
    let signing = inputs
        .lambda
        .code_signing
        .then(|| super::signing::code_signing_config(stack));
    FunctionName::all()
        .map(|which| function(stack, inputs, which, dlq.as_ref(), signing.as_ref()))
        .collect()
}

fn function(
    stack: &mut Stack,
    inputs: &ComputeInputs<'_>,
    which: FunctionName,
    dlq: Option<&DeadLetterQueue>,
    signing: Option<&Expr>,
) -> Function {
    let logical = which.as_str();
    let function_name = inputs.names.name(logical);
    let log_group = stack.resource(
        "aws_cloudwatch_log_group",
        logical,
        json!({
            "name": format!("{LOG_GROUP_PREFIX}{function_name}"),
            "retention_in_days": inputs.lambda.log_retention_days,
            "kms_key_id": inputs.key.arn(),
        }),
    );
    // Least privilege: each function reaches only the tables, indexes, actions and attributes
    // its crate declares, one statement per purpose (`catalog` checks the declarations,
    // `infra/tests/assertions.rs` pins the result), and each grant carries what it needs of
    // the stack key.
    let declaration = which.declaration();
    let mut grants: Vec<Grant> = declaration
        .grants
        .iter()
        .map(|g| inputs.tables.grant(g))
        .collect();
    grants.extend(dlq.and_then(|dlq| dlq.grant_send(inputs.account)));
    grants.extend(inputs.secrets.grant_read(which, inputs.account));
    grants.extend(inputs.secrets.grant_rotate(which, inputs.account));
    grants.extend(inputs.queues.grant_consume(which, inputs.account));
    grants.extend(inputs.queues.grant_send(which, inputs.account));
    // Lambda decrypts the function's environment variables, encrypted with the stack key
    // (`kms_key_arn`), with the function's role when it starts an execution environment;
    // without `kms:Decrypt` on it every start fails with KMSAccessDeniedException ("Lambda was
    // unable to decrypt the environment variables ... not authorized to perform: kms:Decrypt ...
    // because no identity-based policy allows": https://github.com/cattle-ops/terraform-aws-gitlab-runner/pull/1253,
    // https://aws.amazon.com/premiumsupport/knowledge-center/lambda-kmsaccessdeniedexception-errors/).
    let key = grants
        .iter()
        .fold(KeyActions::DECRYPT, |key, grant| key.union(grant.key));
    let mut statements = vec![
        Statement::allow(
            "OwnLogGroup",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![format!("{}:*", log_group.attr("arn"))],
        ),
        Statement::xray_tracing(),
    ];
    statements.extend(inputs.key.grant("StackKey", key));
    statements.extend(grants.into_iter().flat_map(|grant| grant.statements));
    let role = service_role(
        stack,
        inputs.boundary,
        inputs.account,
        &format!("{logical}_function"),
        &function_name,
        &role_kind(inputs.network.is_some()),
        statements,
    );

    // Every table's name, then what every function gets. All of them, not only the granted
    // ones: a name is no permission (the role's grants are), and the shared configuration
    // reads them all at start-up, so a function granted one table (or none, as a fresh
    // `cargo xtask new` may be) still starts.
    let mut variables = Map::new();
    for table in &catalog::tables::ALL {
        variables.insert(
            catalog::tables::variable(table.logical),
            inputs.tables.get(table.logical).name().into(),
        );
    }
    variables.insert(
        "SESSION_TTL_SECONDS".into(),
        json!(inputs.lambda.session_ttl_seconds.to_string()),
    );
    variables.insert(
        "SERVICE_VERSION".into(),
        inputs.service_version.clone().into(),
    );
    if inputs.api.cors() {
        variables.insert(
            "CORS_ALLOW_ORIGINS".into(),
            json!(inputs.api.cors_allow_origins.join(",")),
        );
    }
    if let Some(endpoint) = &inputs.endpoint {
        variables.insert("AWS_ENDPOINT_URL".into(), endpoint.into());
    }
    for (variable, arn) in inputs.secrets.variables(which) {
        variables.insert(variable, arn.into());
    }
    for (variable, url) in inputs.queues.variables(which) {
        variables.insert(variable, url.into());
    }
    let artifact = &inputs.artifacts[&which];
    let mut deps: Vec<&Ref> = role.dependencies();
    deps.push(&log_group);
    let mut body = json!({
        "function_name": function_name,
        "description": declaration.description,
        "role": role.arn(),
        "handler": HANDLER,
        "runtime": "provided.al2023",
        "architectures": [inputs.lambda.architecture.as_str()],
        "memory_size": inputs.lambda.memory_mb_of(declaration),
        "timeout": inputs.lambda.timeout_seconds_of(declaration),
        "s3_bucket": artifact.bucket,
        "s3_key": artifact.key,
        "source_code_hash": artifact.hash,
        "publish": true,
        "reserved_concurrent_executions": inputs.lambda.reserved_concurrency,
        "kms_key_arn": inputs.key.arn(),
        "environment": [{ "variables": variables }],
        "tracing_config": [{ "mode": "Active" }],
        "logging_config": [{
            "log_format": "JSON",
            "log_group": log_group.attr("name"),
            "application_log_level": "INFO",
            "system_log_level": "INFO",
        }],
        "depends_on": depends_on(&deps),
    });
    if inputs.emulator {
        // moto 5.2.5 stores but never returns LoggingConfig and DeadLetterConfig, so without
        // this every plan against the emulator would show a change. AWS returns both.
        body["lifecycle"] = json!({ "ignore_changes": ["logging_config", "dead_letter_config"] });
    }
    if let Some(dlq) = dlq {
        body["dead_letter_config"] = json!([{ "target_arn": dlq.arn() }]);
    }
    if let Some(signing) = signing {
        body["code_signing_config_arn"] = signing.into();
    }
    if let Some(network) = inputs.network {
        body["vpc_config"] = json!([{
            "subnet_ids": network.private_subnet_ids(),
            "security_group_ids": [network.lambda_security_group_id()],
        }]);
    }
    let function = stack.resource("aws_lambda_function", logical, body);
    let alias = json!({
        "name": ALIAS,
        "description": "The version API Gateway serves",
        "function_name": function.attr("function_name"),
        // Only the first version: from then on xtask owns where the alias points, and its
        // description, which records the last release (xtask `rollback`).
        "function_version": function.attr("version"),
        "lifecycle": { "ignore_changes": ["function_version", "routing_config", "description"] },
    });
    let alias = stack.resource("aws_lambda_alias", logical, alias);
    Function {
        which,
        function,
        alias,
        role,
    }
}

/// What the deploy role needs to manage the functions, their versions, aliases and invoke
/// permissions (xtask publishes, hotswaps, shifts and rolls back `live` through the same
/// actions), the dead-letter queue and the code signing configuration.
pub fn management_statements(scope: &Scope, lambda: &Lambda) -> Vec<Statement> {
    let pre = scope.prefix;
    let mut s = vec![Statement::allow(
        "Functions",
        &[
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:GetFunctionConfiguration",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
            "lambda:PublishVersion",
            "lambda:ListVersionsByFunction",
            "lambda:GetFunctionCodeSigningConfig",
            "lambda:PutFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            "lambda:ListTags",
            "lambda:TagResource",
            "lambda:UntagResource",
            "lambda:CreateAlias",
            "lambda:GetAlias",
            "lambda:UpdateAlias",
            "lambda:DeleteAlias",
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:GetPolicy",
        ],
        vec![scope.in_region("lambda", &format!("function:{pre}*"))],
    )];
    if lambda.dead_letter_queue {
        s.push(Statement::allow(
            "DeadLetterQueue",
            &[
                "sqs:CreateQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
            ],
            vec![scope.in_region("sqs", &format!("{pre}*"))],
        ));
    }
    if lambda.code_signing {
        s.extend(super::signing::management_statements(scope));
    }
    s
}

/// What `cargo xtask logs` needs to read the functions' logs.
pub fn log_reading_statements(scope: &Scope) -> Vec<Statement> {
    vec![Statement::allow(
        "TailFunctionLogs",
        &["logs:FilterLogEvents"],
        vec![scope.in_region(
            "logs",
            &format!("log-group:{LOG_GROUP_PREFIX}{}*", scope.prefix),
        )],
    )]
}
