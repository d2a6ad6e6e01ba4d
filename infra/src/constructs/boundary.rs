//! The permissions boundaries of the environment's roles, customer-managed policies for
//! environments with `[delivery]`: `<prefix>service-boundary` for the environment's roles (and
//! its developer stages'), and with `stages = true`, `<prefix>stages-boundary` for the roles of
//! its pull request stages.
//!
//! The deploy role creates the stacks' roles (`role/<prefix>*`), writes their policies and
//! passes them to Lambda and API Gateway. Without a ceiling it could create a `<prefix>x` role
//! with `*:*` and hand it to a function it controls. So every role the bootstrap and service
//! stacks create carries this policy as its permissions boundary
//! ([`super::security::service_role`]), and the deploy role may create a role, set a boundary,
//! put an inline policy or attach a managed one only when the boundary is exactly this policy
//! or, with stages, the stages boundary, which allows less (`iam:PermissionsBoundary`). It may
//! never remove a boundary or change either policy ([`super::delivery`]).
//!
//! The stages role does the same for the pull request stages (`role/<prefix>pr-*-*`), and the
//! pull request's own code decides what their roles' inline policies say. Under the service
//! boundary, which lets any `<prefix>*` function reach the environment's tables and secrets, a
//! pull request could write a role that reads the base environment's user data. So its roles
//! carry the stages boundary instead, and the stages role may make roles only under it: the
//! same statements ([`statements`]) built for the scope over every pull request stage
//! ([`Config::pull_request_stages`]), so their tables, secrets, queues, scheduled aliases,
//! log groups and the functions whose requests reach user data are all `<prefix>pr-*-`.
//!
//! A role's effective permissions are the intersection of its own policies and its boundary.
//! So the boundary is the union of what the stacks' roles need, scoped like the deploy role's
//! policy: names that start with the prefix, the environment's own keys by ARN, this account
//! and region, and for user data (tables, the declared secrets) only requests from the environment's
//! functions. If it were narrower than any role's policy, that role would fail with AccessDenied at
//! run time. The tests check that it covers every action of every role's inline policy (the
//! environment's, a developer stage's, and under the stages boundary a pull request stage's)
//! and of the AWS-managed policies in [`MANAGED_POLICIES`].
//!
//! Both live in the bootstrap stack, not the delivery stack: `cargo xtask bootstrap` applies the
//! bootstrap stack first (the delivery stack keeps its state in the bucket the bootstrap stack
//! creates), the bootstrap stack's replication role carries the boundary, and IAM rejects a
//! boundary policy that does not exist yet. The deploy role applies the bootstrap stack too,
//! but can only read these policies: an explicit `Deny` in its and the stages role's policies
//! covers every change to them. A change to a boundary therefore fails the deploy with
//! AccessDenied until an administrator runs `cargo xtask bootstrap`, instead of silently
//! leaving the roles with a stale ceiling.
//!
//! Unlike the other constructs, it takes the whole [`Config`]: the ceiling follows every
//! section that turns a role on (`[lambda]`, `[options]`, `[storage]`, the backend,
//! `[delivery]`), so it reads the environment as a whole, as [`super::delivery`] does.

use crate::config::{Backend, Config};
use crate::iam::{Account, PolicyDocument, Scope, Statement};
use crate::tf::{Expr, Ref, Stack};
use serde_json::json;

/// `<prefix>service-boundary`.
pub const POLICY_SUFFIX: &str = "service-boundary";
/// The policy's address in the bootstrap stack: `aws_iam_policy.service_boundary`.
pub const LOGICAL: &str = "service_boundary";
/// `<prefix>stages-boundary`: the pull request stages' boundary.
pub const STAGES_POLICY_SUFFIX: &str = "stages-boundary";
/// Its address in the bootstrap stack: `aws_iam_policy.stages_boundary`.
pub const STAGES_LOGICAL: &str = "stages_boundary";

/// The AWS-managed policies the stacks attach to their roles, with the actions each grants
/// (all on `"*"`, from AWS's published policy documents). The boundary must allow every one of
/// them, or the feature the policy serves breaks. Nothing else is attached (the tests check).
pub const MANAGED_POLICIES: &[(&str, &[&str])] = &[
    (
        // API Gateway's account-level CloudWatch role (every REST API in the region logs
        // through it).
        "service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        &[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogGroups",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
        ],
    ),
    (
        // The function roles when `[options.vpc]` is on: the ENIs Lambda creates in the subnets.
        "service-role/AWSLambdaVPCAccessExecutionRole",
        &[
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
    ),
];

/// What a function's role does with its own log group (`compute::function`), all that the
/// roles of a pull request stage write to CloudWatch Logs.
const FUNCTION_LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];

/// Every CloudWatch Logs action a role of the stacks has: the functions' and the flow logs'
/// writes to their own groups, and `AmazonAPIGatewayPushToCloudWatchLogs`.
/// (`logs:DescribeLogGroups` is apart: it has no resource-level permissions.)
const LOG_ACTIONS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
];

/// The item and table actions of the function roles (`compute::table_statements`).
const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
];

/// The replication role's actions (`storage::replication_statements`).
const REPLICATION_ACTIONS: &[&str] = &[
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionTagging",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:ReplicateTags",
];

/// The permissions boundary every role of this configuration carries when the environment has
/// `[delivery]`, `None` otherwise: the stages boundary for a pull request's stage
/// ([`Config::is_pull_request_stage`]), the environment's otherwise (its own stacks and its
/// developer stages, which the deploy role or a developer deploys).
///
/// Only environments with `[delivery]` have a deploy role, whose right to create and pass
/// `<prefix>*` roles is what the boundary caps; the emulator environment stays as it was.
pub fn permissions_boundary(config: &Config, account: &Account) -> Option<String> {
    config.delivery.as_ref().map(|_| {
        if config.is_pull_request_stage() {
            stages_boundary_arn(config, account)
        } else {
            service_boundary_arn(config, account)
        }
    })
}

/// The ARN of `<prefix>service-boundary`, the environment's.
pub fn service_boundary_arn(config: &Config, account: &Account) -> String {
    account.policy_arn(&config.shared_name(POLICY_SUFFIX))
}

/// The ARN of `<prefix>stages-boundary`, the pull request stages'.
pub fn stages_boundary_arn(config: &Config, account: &Account) -> String {
    account.policy_arn(&config.shared_name(STAGES_POLICY_SUFFIX))
}

/// The boundary's statements for the roles of `scope`: the environment (`config.scope`), or
/// every pull request stage of it ([`Config::pull_request_stages`]). Only what the roles of the
/// options the environment turns on need. `keys` are the ARNs of the environment's KMS keys
/// (all in the bootstrap stack), which the stages share.
///
/// The environment's boundary also covers its developer stages (`<prefix><stage>-`), whose
/// roles carry it: the names of declared things (secrets `<prefix>secret-<name>`, queues
/// `<prefix>queue-<name>`, the scheduled functions' aliases) are matched as
/// `<prefix>*secret-*`, `<prefix>*queue-*`, `<prefix>*<function>:live`, which are the base's
/// and every stage's and, since every name starting with the prefix is the environment's, no
/// one else's. Tables, dead-letter queues and the functions of the conditions are
/// `<prefix>*` already. Without `stages = true` there are no stages, and the patterns stay the
/// base's own.
pub fn statements(config: &Config, scope: &Scope, keys: &[Expr]) -> Vec<Statement> {
    let p = &scope.account.partition;
    let pre = scope.prefix;
    let for_stages = scope.stage.is_some();
    let in_region = |service: &str, resource: &str| scope.in_region(service, resource);
    let from_functions = json!({ "ArnLike": {
        "lambda:SourceFunctionArn": in_region("lambda", &format!("function:{pre}*")),
    } });
    let with_developer_stages = format!("{pre}*");
    let declared = Scope {
        prefix: if config.stages && !for_stages {
            &with_developer_stages
        } else {
            pre
        },
        ..scope.clone()
    };
    let mut s = if for_stages {
        // A stage's functions write only to their own groups; nothing of a stage logs through
        // API Gateway's account-level role (the base sets it).
        vec![Statement::allow(
            "LogsOfTheStagesFunctions",
            FUNCTION_LOG_ACTIONS,
            vec![in_region(
                "logs",
                &format!("log-group:{}{pre}*", super::compute::LOG_GROUP_PREFIX),
            )],
        )]
    } else {
        vec![
            // Any log group of this account and region. The functions and the flow logs write
            // only to `/aws/lambda/<prefix>*` and `/aws/vpc/<prefix>*`, but API Gateway's
            // CloudWatch role is one per region, shared by every REST API there, and writes to
            // groups named after each API's generated id
            // (`API-Gateway-Execution-Logs_<id>/<stage>`): its managed policy can't be scoped
            // by name.
            Statement::allow(
                "LogsInThisAccountAndRegion",
                LOG_ACTIONS,
                vec![in_region("logs", "log-group:*")],
            ),
            // A List call CloudWatch Logs authorizes only on "*" (names and settings, no
            // events): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
            Statement::allow(
                "ListLogGroups",
                &["logs:DescribeLogGroups"],
                vec!["*".into()],
            ),
        ]
    };
    s.extend([
        Statement::xray_tracing(),
        // Exactly the environment's keys, which the bootstrap stack creates beside this
        // policy: no tag decides which keys a role may use, so tagging a key (which the deploy
        // role can't do anyway) never widens this.
        Statement::allow(
            "KeysOfThisEnvironment",
            &["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            keys.iter().map(ToString::to_string).collect(),
        ),
        // The tables and their indexes (`table/<prefix>users/index/by-kind` matches too), and
        // only from the code of this environment's functions. The deploy role creates
        // `<prefix>*` roles, and a role's trust policy is set when it is created: no IAM
        // condition key limits whom it trusts. A role made to trust another account would hold
        // this boundary, but its sessions carry no `lambda:SourceFunctionArn` (Lambda injects
        // it only into requests from a function's execution environment), so user data stays
        // out of reach. https://docs.aws.amazon.com/lambda/latest/dg/permissions-source-function-arn.html
        Statement::allow(
            "TablesOfThisEnvironment",
            TABLE_ACTIONS,
            vec![in_region("dynamodb", &format!("table/{pre}*"))],
        )
        .condition(from_functions.clone()),
    ]);
    if config.lambda.dead_letter_queue {
        s.push(Statement::allow(
            "DeadLetters",
            &["sqs:SendMessage"],
            vec![in_region("sqs", &format!("{pre}*"))],
        ));
    }
    if !super::secrets::declared().is_empty() {
        s.push(
            Statement::allow(
                "DeclaredSecrets",
                &["secretsmanager:GetSecretValue"],
                vec![super::secrets::arn_pattern(&declared)],
            )
            .condition(from_functions.clone()),
        );
    }
    if super::secrets::rotated().next().is_some() {
        // The rotation functions' writes (`secrets::Secrets::grant_rotate`).
        s.push(
            Statement::allow(
                "RotatedSecrets",
                &[
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                vec![super::secrets::arn_pattern(&declared)],
            )
            .condition(from_functions.clone()),
        );
    }
    if catalog::queues().next().is_some() {
        // What Lambda's poller does with a consumer's role (`queues::Queues::grant_consume`):
        // its requests carry no `lambda:SourceFunctionArn`, they come from Lambda, not from
        // the function's code.
        s.push(Statement::allow(
            "ConsumeQueues",
            &[
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ],
            vec![super::queues::arn_pattern(&declared)],
        ));
    }
    if catalog::FUNCTIONS.iter().any(|f| !f.sends.is_empty()) {
        // The senders (`queues::Queues::grant_send`), from their code.
        s.push(
            Statement::allow(
                "SendToQueues",
                &["sqs:SendMessage"],
                vec![super::queues::arn_pattern(&declared)],
            )
            .condition(from_functions),
        );
    }
    let scheduled = super::schedules::invoked_aliases(&declared);
    if !scheduled.is_empty() {
        // The schedules' roles (`schedules::schedules`), assumed by Scheduler.
        s.push(Statement::allow(
            "InvokeScheduledFunctions",
            &["lambda:InvokeFunction"],
            scheduled,
        ));
    }
    if config.options.vpc.is_some() {
        // `AWSLambdaVPCAccessExecutionRole`. EC2 Describe calls have no resource-level
        // permissions; the ENI's own ARNs carry generated ids, so this account and region.
        s.push(Statement::allow(
            "VpcFunctionNetworkReads",
            &["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            vec!["*".into()],
        ));
        s.push(Statement::allow(
            "VpcFunctionNetworkInterfaces",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            vec![in_region("ec2", "*")],
        ));
    }
    // The replication role is the bootstrap stack's, never a stage's.
    if config.storage.replication_region.is_some() && !for_stages {
        // The source buckets, the replica and their objects: `<prefix>*`, and the state bucket
        // when its name doesn't start with the prefix.
        let mut buckets = vec![format!("arn:{p}:s3:::{pre}*")];
        if let Backend::S3 { bucket, .. } = &config.backend
            && !bucket.starts_with(pre)
        {
            buckets.push(format!("arn:{p}:s3:::{bucket}"));
            buckets.push(format!("arn:{p}:s3:::{bucket}/*"));
        }
        s.push(Statement::allow(
            "ReplicateTheBuckets",
            REPLICATION_ACTIONS,
            buckets,
        ));
    }
    s
}

/// Creates `<prefix>service-boundary` and, for an environment with stages,
/// `<prefix>stages-boundary` (bootstrap stack, environments with `[delivery]`); returns the
/// first.
pub fn policy(stack: &mut Stack, config: &Config, account: &Account, keys: &[Expr]) -> Option<Ref> {
    permissions_boundary(config, account)?;
    let environment = config.scope(account);
    let service = boundary_policy(
        stack,
        (LOGICAL, &config.name(POLICY_SUFFIX)),
        format!(
            "Permissions boundary of every role of {}: the most its roles may ever do",
            config.name
        ),
        statements(config, &environment, keys),
    );
    if config.stages {
        let stages = config.pull_request_stages();
        boundary_policy(
            stack,
            (STAGES_LOGICAL, &config.name(STAGES_POLICY_SUFFIX)),
            format!(
                "Permissions boundary of every role of the pull request stages of {}: the most their roles may ever do",
                config.name
            ),
            statements(config, &stages.scope(account), keys),
        );
    }
    Some(service)
}

/// One boundary policy (Terraform and IAM names `(logical, name)`).
fn boundary_policy(
    stack: &mut Stack,
    (logical, name): (&str, &str),
    description: String,
    statements: Vec<Statement>,
) -> Ref {
    stack.resource(
        "aws_iam_policy",
        logical,
        json!({
            "name": name,
            "description": description,
            "policy": PolicyDocument::new(statements).render(),
        }),
    )
}
