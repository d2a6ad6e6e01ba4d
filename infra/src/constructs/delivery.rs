//! GitHub Actions delivery: GitHub's OIDC provider and the role the `deploy` workflow assumes
//! with the job's OIDC token, so no AWS key is ever stored in GitHub.
//!
//! The role trusts exactly one subject, `repo:OWNER/REPO:environment:ENV` (the environment's
//! branch and tag rules on GitHub then decide which refs can deploy), and may do what
//! `cargo xtask deploy`, `smoke`, `rollback` and `logs` and Terraform's apply of the bootstrap
//! and service stacks need, on this environment's resources only: names that start with the
//! prefix, keys tagged with the environment, the state objects of those two stacks. Every action
//! is named; the few AWS grants only on `"*"` are in [`STAR_ACTIONS`], each with the reason.
//!
//! It can never change itself: the role and the OIDC provider are in this stack, which only
//! `cargo xtask bootstrap` applies with administrator credentials, and an explicit `Deny`
//! ([`SELF_PROTECTION_SID`]) keeps the IAM actions it has on `role/<prefix>*` off its own role,
//! off the permissions boundary and off the provider.
//!
//! Nor can it make a role that does more than the stacks' roles need: it creates roles, sets
//! their boundary, writes inline policies and attaches managed ones only when
//! `iam:PermissionsBoundary` is `<prefix>service-boundary` ([`super::boundary`]), and an
//! explicit `Deny` ([`BOUNDARY_SID`]) refuses them otherwise and never lets it remove a
//! boundary.

use super::security::{Account, PolicyDocument, Statement};
use super::{boundary, signing};
use crate::config::{Backend, Config, Delivery};
use crate::tf::{Expr, Stack};
use serde_json::json;

/// The issuer of GitHub Actions' OIDC tokens (the IAM provider's URL without the scheme).
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks GitHub to put in the token.
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// `<prefix>github-deploy`.
pub const ROLE_SUFFIX: &str = "github-deploy";
/// One hour, what the workflow asks for (`role-duration-seconds: 3600`).
pub const MAX_SESSION_SECONDS: u32 = 3600;
/// The statement that keeps the deploy role's IAM rights off itself and the OIDC provider.
pub const SELF_PROTECTION_SID: &str = "NeverItselfNorTheOidcProvider";

/// Every action the deploy role is granted on `"*"`, with the reason: the one list of
/// exceptions to "no `*` resource" (the policy tests and [`star`] accept nothing else). Each
/// is used only by statements for options the environment turns on.
pub const STAR_ACTIONS: &[(&str, &str)] = &[
    (
        "kms:CreateKey",
        "a key has no ARN before it exists; the statement requires the environment's Project and Environment tags in the request instead",
    ),
    (
        "kms:ListAliases",
        "no resource-level permissions (a List call); Terraform reads every aws_kms_alias through it",
    ),
    (
        "cloudwatch:DescribeAlarms",
        "no resource-level permissions for describing alarms; Terraform reads the alarms and xtask's release gate polls them",
    ),
    (
        "lambda:CreateCodeSigningConfig",
        "no resource type: the config's ARN carries an id Lambda generates",
    ),
    (
        "application-autoscaling:DescribeScalableTargets",
        "Describe calls of Application Auto Scaling have no resource-level permissions",
    ),
    (
        "application-autoscaling:DescribeScalingPolicies",
        "Describe calls of Application Auto Scaling have no resource-level permissions",
    ),
    (
        "sns:GetSubscriptionAttributes",
        "subscription calls of SNS have no resource-level permissions (Terraform reads the alarm e-mail subscription)",
    ),
    (
        "sns:Unsubscribe",
        "subscription calls of SNS have no resource-level permissions (replacing the alarm e-mail subscription)",
    ),
    (
        "ec2:DescribeVpcs",
        "EC2 Describe calls have no resource-level permissions (Terraform reads the VPC; Lambda checks a function's VPC with the caller's rights)",
    ),
    (
        "ec2:DescribeVpcAttribute",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeSubnets",
        "EC2 Describe calls have no resource-level permissions (also checked by Lambda for VPC functions)",
    ),
    (
        "ec2:DescribeRouteTables",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeInternetGateways",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeNatGateways",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeAddresses",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeAddressesAttribute",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeVpcEndpoints",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeVpcEndpointServices",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribePrefixLists",
        "EC2 Describe calls have no resource-level permissions (the DynamoDB gateway endpoint's prefix list)",
    ),
    (
        "ec2:DescribeSecurityGroups",
        "EC2 Describe calls have no resource-level permissions (also checked by Lambda for VPC functions)",
    ),
    (
        "ec2:DescribeSecurityGroupRules",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "ec2:DescribeNetworkAcls",
        "EC2 Describe calls have no resource-level permissions (the VPC's default network ACL)",
    ),
    (
        "ec2:DescribeNetworkInterfaces",
        "EC2 Describe calls have no resource-level permissions (ENIs Lambda leaves in the subnets)",
    ),
    (
        "ec2:DescribeFlowLogs",
        "EC2 Describe calls have no resource-level permissions",
    ),
    (
        "logs:CreateLogDelivery",
        "log deliveries (WAF logging to CloudWatch Logs) have no resource-level permissions",
    ),
    (
        "logs:GetLogDelivery",
        "log deliveries have no resource-level permissions",
    ),
    (
        "logs:UpdateLogDelivery",
        "log deliveries have no resource-level permissions",
    ),
    (
        "logs:DeleteLogDelivery",
        "log deliveries have no resource-level permissions",
    ),
    (
        "logs:ListLogDeliveries",
        "log deliveries have no resource-level permissions",
    ),
    (
        "logs:PutResourcePolicy",
        "CloudWatch Logs resource policies (WAF's delivery into the log group) are account-wide, without an ARN",
    ),
    (
        "logs:DescribeResourcePolicies",
        "CloudWatch Logs resource policies are account-wide, without an ARN",
    ),
    (
        "acm:RequestCertificate",
        "a certificate has no ARN before it is requested",
    ),
    (
        "route53:ListHostedZones",
        "no resource-level permissions; the aws_route53_zone lookup lists the zones",
    ),
    (
        "route53:ListHostedZonesByName",
        "no resource-level permissions; the aws_route53_zone lookup lists the zones",
    ),
];

/// A statement on `"*"`; panics (at synth, so tests catch it) for an action not in
/// [`STAR_ACTIONS`].
fn star(sid: &str, actions: &[&str]) -> Statement {
    for action in actions {
        assert!(
            STAR_ACTIONS.iter().any(|(a, _)| a == action),
            "{action} is granted on \"*\" but is not in STAR_ACTIONS"
        );
    }
    Statement::allow(sid, actions, vec!["*".into()])
}

/// IAM actions on the stack's roles (`role/<prefix>*`) that add no permissions. Creating a
/// role, setting its boundary, putting its inline policy and attaching managed policies are
/// separate: only with the permissions boundary ([`BOUNDED_ROLE_ACTIONS`], [`ATTACH_ACTIONS`]).
const ROLE_ACTIONS: &[&str] = &[
    "iam:GetRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
];
/// IAM actions on `role/<prefix>*` granted only when `iam:PermissionsBoundary` is the
/// environment's boundary. For `CreateRole` and `PutRolePermissionsBoundary` the key is the
/// boundary in the request, for `PutRolePolicy` the boundary the role has (IAM supports the key
/// on these and on `AttachRolePolicy`, `DetachRolePolicy` and `DeleteRolePolicy`). So the role
/// can only make roles that the boundary caps, and only write policies into such roles.
const BOUNDED_ROLE_ACTIONS: &[&str] = &[
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
];
const ATTACH_ACTIONS: &[&str] = &["iam:AttachRolePolicy", "iam:DetachRolePolicy"];
/// Reading the permissions boundary, which the bootstrap stack declares (Terraform refreshes it
/// on every apply). Changing it is denied ([`POLICY_ACTIONS`]).
const BOUNDARY_READ_ACTIONS: &[&str] = &["iam:GetPolicy", "iam:GetPolicyVersion"];
/// The statement that keeps the permissions boundary on the environment's roles.
pub const BOUNDARY_SID: &str = "NeverARoleWithoutTheBoundary";
/// Everything that changes a customer-managed policy (the deploy role's own and the permissions
/// boundary); never granted, and denied as well.
const POLICY_ACTIONS: &[&str] = &[
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
];
/// Everything that changes the GitHub OIDC provider; never granted, and denied as well.
const OIDC_PROVIDER_ACTIONS: &[&str] = &[
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
];

/// What [`github_deploy`] created, for the stack's outputs.
#[derive(Clone, Debug)]
pub struct DeployRole {
    pub role_arn: Expr,
    pub provider_arn: Expr,
}

/// The OIDC provider (or its lookup) and the deploy role with its trust and permissions.
pub fn github_deploy(
    stack: &mut Stack,
    config: &Config,
    delivery: &Delivery,
    account: &Account,
) -> DeployRole {
    let url = format!("https://{GITHUB_OIDC_HOST}");
    let provider_arn = if delivery.create_oidc_provider {
        // No thumbprint: AWS trusts GitHub's certificate through its own CA store for this
        // issuer, and provider 5.x makes the field optional.
        stack
            .resource(
                "aws_iam_openid_connect_provider",
                "github",
                json!({ "url": url, "client_id_list": [AUDIENCE] }),
            )
            .attr("arn")
    } else {
        stack
            .data(
                "aws_iam_openid_connect_provider",
                "github",
                json!({ "url": url }),
            )
            .attr("arn")
    };
    let name = config.name(ROLE_SUFFIX);
    let role = stack.resource(
        "aws_iam_role",
        "github_deploy",
        json!({
            "name": name,
            "description": format!(
                "GitHub Actions deploy job of {} in environment {} (OIDC)",
                delivery.github_repository,
                delivery.environment(&config.name)
            ),
            "assume_role_policy": trust_policy(delivery, &config.name, &provider_arn),
            "max_session_duration": MAX_SESSION_SECONDS,
        }),
    );
    // Customer-managed policies, not an inline one: a role's inline policies share 10,240
    // characters, which prod's explicit action lists exceed; each managed policy may have
    // 6,144 and a role may carry ten.
    let statements = deploy_statements(config, account, &provider_arn);
    for (i, chunk) in pack(statements).into_iter().enumerate() {
        let n = i + 1;
        let policy = stack.resource(
            "aws_iam_policy",
            &format!("github_deploy_{n}"),
            json!({
                "name": format!("{name}-{n}"),
                "description": format!("What the GitHub Actions deploy of {} may do (part {n})", config.name),
                "policy": PolicyDocument::new(chunk).render(),
            }),
        );
        stack.resource(
            "aws_iam_role_policy_attachment",
            &format!("github_deploy_{n}"),
            json!({ "role": role.attr("name"), "policy_arn": policy.attr("arn") }),
        );
    }
    DeployRole {
        role_arn: role.attr("arn"),
        provider_arn,
    }
}

/// What IAM counts against a managed policy's 6,144 characters (whitespace excluded), with
/// every Terraform interpolation at the longest value it can take.
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// Length of a rendered policy as IAM will count it: whitespace left out, the partition as
/// `aws-us-gov`, the account as 12 digits, any other reference (the OIDC provider's ARN) as 100
/// characters.
pub fn iam_length(policy: &str) -> usize {
    let mut length = 0;
    let mut rest = policy;
    while let Some(start) = rest.find("${") {
        length += rest[..start].chars().filter(|c| !c.is_whitespace()).count();
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let reference = &rest[start..end];
        length += if reference.contains("partition") {
            "aws-us-gov".len()
        } else if reference.contains("account_id") {
            12
        } else {
            100
        };
        rest = &rest[end..];
    }
    length + rest.chars().filter(|c| !c.is_whitespace()).count()
}

/// Splits the statements, in order, into as few policies as fit [`MANAGED_POLICY_LIMIT`] with
/// room to spare (a statement is never split).
fn pack(statements: Vec<Statement>) -> Vec<Vec<Statement>> {
    const BUDGET: usize = MANAGED_POLICY_LIMIT - 400;
    let mut chunks: Vec<Vec<Statement>> = vec![Vec::new()];
    for statement in statements {
        let current = chunks.last_mut().expect("never empty");
        current.push(statement);
        if current.len() > 1 && iam_length(&PolicyDocument::new(current.clone()).render()) > BUDGET
        {
            let statement = current.pop().expect("just pushed");
            chunks.push(vec![statement]);
        }
    }
    chunks
}

/// `repo:OWNER/REPO:environment:ENV`: what GitHub puts in `sub` for a job that declares
/// `environment: ENV`.
pub fn subject(delivery: &Delivery, env_name: &str) -> String {
    format!(
        "repo:{}:environment:{}",
        delivery.github_repository,
        delivery.environment(env_name)
    )
}

/// Only GitHub's tokens for this audience and exactly this subject. `StringEquals`, never a
/// wildcard on `sub`: `repo:OWNER/*` would let every repository of the owner deploy.
fn trust_policy(delivery: &Delivery, env_name: &str, provider_arn: &Expr) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GitHubDeployJobOfThisRepositoryAndEnvironment",
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                format!("{GITHUB_OIDC_HOST}:aud"): AUDIENCE,
                format!("{GITHUB_OIDC_HOST}:sub"): subject(delivery, env_name),
            } },
        }],
    })
    .to_string()
}

/// The deploy role's permissions, derived from what the bootstrap and service stacks create for
/// this configuration and from the AWS calls xtask makes.
///
/// Deleting the stateful resources (buckets, tables, KMS keys, the dead-letter queue, the
/// signing profile) is left to an administrator: no deploy removes them, so the role can't.
/// CodeDeploy is not granted: releases shift traffic with weighted alias routing in xtask.
/// No statement for `sts:GetCallerIdentity`: AWS allows it to every principal.
fn deploy_statements(config: &Config, account: &Account, provider_arn: &Expr) -> Vec<Statement> {
    let p = &account.partition;
    let a = &account.account_id;
    let r = config.region.as_str();
    let pre = config.prefix.as_str();
    let env = config.name.as_str();
    let project = config.prefix.trim_end_matches('-');
    let opts = &config.options;
    let mut regions = vec![r];
    regions.extend(config.storage.replication_region.as_deref());
    let in_region = |service: &str, resource: &str| format!("arn:{p}:{service}:{r}:{a}:{resource}");
    let every_region = |service: &str, resource: &str| -> Vec<String> {
        regions
            .iter()
            .map(|region| format!("arn:{p}:{service}:{region}:{a}:{resource}"))
            .collect()
    };
    // The provider's default_tags put these on everything the stacks create, KMS keys included
    // (in the CreateKey request itself), so they identify this environment's keys.
    let tagged = json!({ "StringEquals": {
        "aws:ResourceTag/Project": project,
        "aws:ResourceTag/Environment": env,
    } });
    let role_arn = format!("arn:{p}:iam::{a}:role/{pre}*");
    let mut s = Vec::new();

    // Terraform state: the objects and lock files of the bootstrap and service stacks only
    // (not the delivery stack's). Listing and bucket settings are in BucketsOfThisEnvironment.
    let mut bucket_arns = vec![format!("arn:{p}:s3:::{pre}*")];
    if let Backend::S3 { bucket, key_prefix } = &config.backend {
        let key = |stack: &str| {
            format!(
                "arn:{p}:s3:::{bucket}/{}/{stack}.tfstate",
                key_prefix.trim_end_matches('/')
            )
        };
        let stacks = crate::STACKS;
        s.push(Statement::allow(
            "TerraformState",
            &["s3:GetObject", "s3:PutObject"],
            stacks.iter().map(|st| key(st)).collect(),
        ));
        s.push(Statement::allow(
            "TerraformStateLockFiles",
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            stacks
                .iter()
                .map(|st| format!("{}.tflock", key(st)))
                .collect(),
        ));
        if !bucket.starts_with(pre) {
            bucket_arns.push(format!("arn:{p}:s3:::{bucket}"));
        }
    }

    // Buckets (the bootstrap stack's artifacts, access-log, replica and state buckets).
    let mut bucket_actions = vec![
        "s3:CreateBucket",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketWebsite",
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketVersioning",
        "s3:PutBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:GetBucketLogging",
        "s3:GetReplicationConfiguration",
        "s3:GetBucketNotification",
    ];
    if config.storage.tls_only {
        bucket_actions.extend(["s3:PutBucketPolicy", "s3:DeleteBucketPolicy"]);
    }
    if config.storage.access_logging {
        bucket_actions.push("s3:PutBucketLogging");
    }
    if config.storage.replication_region.is_some() {
        bucket_actions.push("s3:PutReplicationConfiguration");
    }
    if config.storage.event_notifications {
        bucket_actions.push("s3:PutBucketNotification");
    }
    s.push(Statement::allow(
        "BucketsOfThisEnvironment",
        &bucket_actions,
        bucket_arns,
    ));
    // Packages: xtask uploads and checks them (and their signing records), Lambda reads them
    // with the caller's rights, Signer reads a version and writes the signed copy.
    s.push(Statement::allow(
        "ArtifactObjects",
        &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
        vec![format!("arn:{p}:s3:::{pre}artifacts-{a}-{r}/*")],
    ));

    // KMS: keys are found by their tags (they have random ids), aliases by name.
    s.push(
        star("CreateKeysTaggedForThisEnvironment", &["kms:CreateKey"]).condition(json!({
            "StringEquals": {
                "aws:RequestTag/Project": project,
                "aws:RequestTag/Environment": env,
            }
        })),
    );
    s.push(star("ReadKeyAliases", &["kms:ListAliases"]));
    let keys = every_region("kms", "key/*");
    s.push(
        Statement::allow(
            "KeysOfThisEnvironment",
            &[
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:EnableKeyRotation",
                "kms:UpdateKeyDescription",
                "kms:ListResourceTags",
                "kms:CreateAlias",
                "kms:UpdateAlias",
                "kms:DeleteAlias",
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:GenerateDataKey",
            ],
            keys.clone(),
        )
        .condition(tagged.clone()),
    );
    // CreateKey with tags also needs kms:TagResource on the account's keys: only with this
    // environment's tags, and only on a key that has no Environment tag yet (the new one), so
    // another environment's key can't be claimed by re-tagging it.
    s.push(
        Statement::allow(
            "TagNewKeysForThisEnvironment",
            &["kms:TagResource"],
            keys.clone(),
        )
        .condition(json!({
            "StringEquals": {
                "aws:RequestTag/Project": project,
                "aws:RequestTag/Environment": env,
            },
            "Null": { "aws:ResourceTag/Environment": "true" },
        })),
    );
    // Tags of this environment's keys change, but never the two that make them its own.
    s.push(
        Statement::allow(
            "KeyTagsExceptOwnership",
            &["kms:TagResource", "kms:UntagResource"],
            keys.clone(),
        )
        .condition(json!({
            "StringEquals": tagged["StringEquals"],
            "ForAllValues:StringNotEquals": { "aws:TagKeys": ["Project", "Environment"] },
        })),
    );
    // DynamoDB, Lambda and CloudWatch Logs take grants on the stack key for the resources
    // they encrypt.
    s.push(
        Statement::allow("KeyGrantsForAwsServices", &["kms:CreateGrant"], keys).condition(json!({
            "StringEquals": tagged["StringEquals"],
            "Bool": { "kms:GrantIsForAWSResource": "true" },
        })),
    );
    s.push(Statement::allow(
        "KeyAliasesOfThisEnvironment",
        &["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
        every_region("kms", &format!("alias/{pre}*")),
    ));

    // DynamoDB: the tables' settings, and the items smoke checks and cleans up.
    s.push(Statement::allow(
        "Tables",
        &[
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:ListTagsOfResource",
            "dynamodb:TagResource",
            "dynamodb:UntagResource",
        ],
        vec![in_region("dynamodb", &format!("table/{pre}*"))],
    ));
    let users = in_region("dynamodb", &format!("table/{pre}users"));
    let sessions = in_region("dynamodb", &format!("table/{pre}sessions"));
    s.push(Statement::allow(
        "SmokeTestItems",
        &[
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:Scan",
        ],
        vec![users, sessions.clone(), format!("{sessions}/index/by-user")],
    ));
    if config.data.autoscaling.is_some() {
        s.push(star(
            "TableAutoscalingReads",
            &[
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
            ],
        ));
        s.push(Statement::allow(
            "TableAutoscaling",
            &[
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:ListTagsForResource",
                "application-autoscaling:TagResource",
                "application-autoscaling:UntagResource",
            ],
            vec![in_region("application-autoscaling", "scalable-target/*")],
        ));
        s.push(service_linked_role(
            p,
            a,
            "TableAutoscalingServiceLinkedRole",
            "dynamodb.application-autoscaling.amazonaws.com",
            "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable",
        ));
    }

    // Lambda: the functions, versions, aliases and invoke permissions; xtask publishes,
    // hotswaps, shifts and rolls back `live` through the same actions.
    let mut function_actions = vec![
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
    ];
    if config.lambda.code_signing {
        function_actions.extend([
            "lambda:PutFunctionCodeSigningConfig",
            "lambda:DeleteFunctionCodeSigningConfig",
        ]);
    }
    s.push(Statement::allow(
        "Functions",
        &function_actions,
        vec![in_region("lambda", &format!("function:{pre}*"))],
    ));
    if config.lambda.dead_letter_queue {
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
            vec![in_region("sqs", &format!("{pre}*"))],
        ));
    }
    if config.lambda.code_signing {
        let profile = signing::profile_name(pre);
        let profile_arn = in_region("signer", &format!("/signing-profiles/{profile}"));
        s.push(Statement::allow(
            "SigningProfile",
            &[
                "signer:PutSigningProfile",
                "signer:GetSigningProfile",
                "signer:ListTagsForResource",
                "signer:TagResource",
                "signer:UntagResource",
                "signer:StartSigningJob",
            ],
            vec![profile_arn.clone(), format!("{profile_arn}/*")],
        ));
        s.push(Statement::allow(
            "SigningJobs",
            &["signer:DescribeSigningJob"],
            vec![in_region("signer", "/signing-jobs/*")],
        ));
        s.push(star(
            "CreateCodeSigningConfig",
            &["lambda:CreateCodeSigningConfig"],
        ));
        s.push(Statement::allow(
            "CodeSigningConfigs",
            &[
                "lambda:GetCodeSigningConfig",
                "lambda:UpdateCodeSigningConfig",
                "lambda:DeleteCodeSigningConfig",
                "lambda:ListTags",
                "lambda:TagResource",
                "lambda:UntagResource",
            ],
            vec![in_region("lambda", "code-signing-config:*")],
        ));
    }

    // IAM: the stack's roles (function roles, API Gateway's logging role, flow logs,
    // replication), the managed policies it attaches, and passing those roles to the services
    // that use them. Every role it creates or adds permissions to carries the permissions
    // boundary (`boundary`), so no role it makes can do more than the boundary allows.
    let boundary_arn = account.policy_arn(&config.name(boundary::POLICY_SUFFIX));
    let with_boundary = json!({ "StringEquals": { "iam:PermissionsBoundary": boundary_arn } });
    s.push(Statement::allow(
        "RolesOfThisEnvironment",
        ROLE_ACTIONS,
        vec![role_arn.clone()],
    ));
    s.push(
        Statement::allow(
            "RolesOfThisEnvironmentOnlyWithTheBoundary",
            BOUNDED_ROLE_ACTIONS,
            vec![role_arn.clone()],
        )
        .condition(with_boundary.clone()),
    );
    s.push(Statement::allow(
        "ReadTheBoundary",
        BOUNDARY_READ_ACTIONS,
        vec![boundary_arn.clone()],
    ));
    let mut managed = vec![format!(
        "arn:{p}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    )];
    let mut passed_to = vec!["lambda.amazonaws.com", "apigateway.amazonaws.com"];
    if opts.vpc.is_some() {
        managed.push(format!(
            "arn:{p}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
        ));
    }
    if opts.vpc.as_ref().is_some_and(|v| v.flow_logs) {
        passed_to.push("vpc-flow-logs.amazonaws.com");
    }
    if config.storage.replication_region.is_some() {
        passed_to.push("s3.amazonaws.com");
    }
    s.push(
        Statement::allow(
            "OnlyTheManagedPoliciesTheStackAttaches",
            &["iam:AttachRolePolicy"],
            vec![role_arn.clone()],
        )
        .condition(json!({
            "ArnEquals": { "iam:PolicyARN": managed },
            "StringEquals": with_boundary["StringEquals"],
        })),
    );
    s.push(
        Statement::allow(
            "DetachTheManagedPoliciesTheStackAttaches",
            &["iam:DetachRolePolicy"],
            vec![role_arn.clone()],
        )
        .condition(json!({ "ArnEquals": { "iam:PolicyARN": managed } })),
    );
    s.push(
        Statement::allow(
            "PassRolesOfThisEnvironmentToTheirServices",
            &["iam:PassRole"],
            vec![role_arn.clone()],
        )
        .condition(json!({ "StringEquals": { "iam:PassedToService": passed_to } })),
    );

    // API Gateway: its ARNs name API parts by path (no account, ids are generated).
    let api = |path: &str| format!("arn:{p}:apigateway:{r}::{path}");
    let mut api_paths = vec![
        "/restapis",
        "/restapis/*",
        "/apikeys",
        "/apikeys/*",
        "/usageplans",
        "/usageplans/*",
        "/account",
        "/tags/*",
    ];
    if config.api.client_certificate {
        api_paths.extend(["/clientcertificates", "/clientcertificates/*"]);
    }
    if opts.domain.is_some() {
        api_paths.extend(["/domainnames", "/domainnames/*"]);
    }
    s.push(Statement::allow(
        "RestApi",
        &[
            "apigateway:GET",
            "apigateway:POST",
            "apigateway:PUT",
            "apigateway:PATCH",
            "apigateway:DELETE",
        ],
        api_paths.iter().map(|path| api(path)).collect(),
    ));

    // CloudWatch Logs: the log groups the stacks create, and `cargo xtask logs`.
    let mut groups = vec![
        format!("/aws/lambda/{pre}*"),
        format!("/aws/apigateway/{pre}*"),
    ];
    if opts.vpc.as_ref().is_some_and(|v| v.flow_logs) {
        groups.push(format!("/aws/vpc/{pre}*"));
    }
    if opts.waf.is_some() {
        groups.push(format!("aws-waf-logs-{pre}*"));
    }
    s.push(Statement::allow(
        "LogGroupsOfThisEnvironment",
        &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:DeleteRetentionPolicy",
            "logs:AssociateKmsKey",
            "logs:DisassociateKmsKey",
            "logs:ListTagsForResource",
            "logs:TagResource",
            "logs:UntagResource",
            "logs:TagLogGroup",
        ],
        groups
            .iter()
            .map(|g| in_region("logs", &format!("log-group:{g}")))
            .collect(),
    ));
    s.push(Statement::allow(
        "FindLogGroups",
        &["logs:DescribeLogGroups"],
        vec![in_region("logs", "log-group:*")],
    ));
    s.push(Statement::allow(
        "TailFunctionLogs",
        &["logs:FilterLogEvents"],
        vec![in_region("logs", &format!("log-group:/aws/lambda/{pre}*"))],
    ));

    // Alarms, the alarm topic and the dashboard.
    s.push(Statement::allow(
        "AlarmTopic",
        &[
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:DeleteTopic",
            "sns:ListTagsForResource",
            "sns:TagResource",
            "sns:UntagResource",
            "sns:Subscribe",
        ],
        vec![in_region("sns", &format!("{pre}*"))],
    ));
    if config.alarms.email.is_some() {
        s.push(star(
            "AlarmEmailSubscription",
            &["sns:GetSubscriptionAttributes", "sns:Unsubscribe"],
        ));
    }
    s.push(Statement::allow(
        "Alarms",
        &[
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:ListTagsForResource",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
        ],
        vec![in_region("cloudwatch", &format!("alarm:{pre}*"))],
    ));
    s.push(star("ReadAlarms", &["cloudwatch:DescribeAlarms"]));
    s.push(Statement::allow(
        "Dashboard",
        &[
            "cloudwatch:PutDashboard",
            "cloudwatch:GetDashboard",
            "cloudwatch:DeleteDashboards",
        ],
        vec![format!("arn:{p}:cloudwatch::{a}:dashboard/{pre}*")],
    ));

    if opts.vpc.is_some() {
        s.extend(network_statements(config, account));
    }
    if opts.waf.is_some() {
        let webacl = in_region("wafv2", &format!("regional/webacl/{pre}*/*"));
        let stages = api("/restapis/*/stages/*");
        s.push(Statement::allow(
            "WebAcl",
            &[
                "wafv2:CreateWebACL",
                "wafv2:GetWebACL",
                "wafv2:UpdateWebACL",
                "wafv2:DeleteWebACL",
                "wafv2:ListTagsForResource",
                "wafv2:TagResource",
                "wafv2:UntagResource",
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "wafv2:GetWebACLForResource",
                "wafv2:PutLoggingConfiguration",
                "wafv2:GetLoggingConfiguration",
                "wafv2:DeleteLoggingConfiguration",
            ],
            vec![
                webacl,
                in_region("wafv2", "regional/managedruleset/*/*"),
                stages.clone(),
            ],
        ));
        s.push(Statement::allow(
            "WebAclOnTheStage",
            &["apigateway:SetWebACL"],
            vec![stages],
        ));
        s.push(star(
            "WafLogDelivery",
            &[
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
            ],
        ));
    }
    if opts.cloudfront.is_some() {
        s.push(Statement::allow(
            "Distribution",
            &[
                "cloudfront:CreateDistribution",
                "cloudfront:GetDistribution",
                "cloudfront:UpdateDistribution",
                "cloudfront:DeleteDistribution",
                "cloudfront:ListTagsForResource",
                "cloudfront:TagResource",
                "cloudfront:UntagResource",
            ],
            vec![format!("arn:{p}:cloudfront::{a}:distribution/*")],
        ));
    }
    if let Some(domain) = &opts.domain {
        s.push(star("RequestCertificate", &["acm:RequestCertificate"]));
        s.push(Statement::allow(
            "Certificates",
            &[
                "acm:DescribeCertificate",
                "acm:ListTagsForCertificate",
                "acm:AddTagsToCertificate",
                "acm:RemoveTagsFromCertificate",
                "acm:DeleteCertificate",
            ],
            vec![in_region("acm", "certificate/*")],
        ));
        s.push(star(
            "FindHostedZone",
            &["route53:ListHostedZones", "route53:ListHostedZonesByName"],
        ));
        s.push(Statement::allow(
            "ReadHostedZone",
            &[
                "route53:GetHostedZone",
                "route53:ListResourceRecordSets",
                "route53:ListTagsForResource",
            ],
            vec![format!("arn:{p}:route53:::hostedzone/*")],
        ));
        // Only the API's own name and its certificate validation records.
        s.push(
            Statement::allow(
                "ApiRecordsOnly",
                &["route53:ChangeResourceRecordSets"],
                vec![format!("arn:{p}:route53:::hostedzone/*")],
            )
            .condition(json!({ "ForAllValues:StringLike": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                    domain.name.to_ascii_lowercase(),
                    format!("_*.{}", domain.name.to_ascii_lowercase()),
                ],
            } })),
        );
        s.push(Statement::allow(
            "RecordChanges",
            &["route53:GetChange"],
            vec![format!("arn:{p}:route53:::change/*")],
        ));
    }
    if let Some(secrets) = &opts.secrets {
        s.push(Statement::allow(
            "AppSecret",
            &[
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:UpdateSecret",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:RotateSecret",
                "secretsmanager:CancelRotateSecret",
            ],
            vec![in_region("secretsmanager", &format!("secret:{pre}*"))],
        ));
        if let Some(rotation) = &secrets.rotation_lambda_arn {
            s.push(Statement::allow(
                "StartSecretRotation",
                &["lambda:InvokeFunction"],
                vec![rotation.clone()],
            ));
        }
    }

    // Explicit Deny, which no Allow above can override: the IAM rights on `role/<prefix>*`
    // would otherwise cover `<prefix>github-deploy` itself, letting a deploy widen its own
    // permissions or trust. Its policies, the permissions boundary and the OIDC provider are
    // denied too (nothing above grants changing them; this makes it hold whatever is added
    // later).
    let mut denied: Vec<&str> = ROLE_ACTIONS.to_vec();
    denied.extend(BOUNDED_ROLE_ACTIONS);
    denied.extend(ATTACH_ACTIONS);
    denied.extend([
        "iam:PassRole",
        "iam:UpdateRoleDescription",
        "iam:DeleteRolePermissionsBoundary",
    ]);
    denied.extend(POLICY_ACTIONS);
    denied.extend(OIDC_PROVIDER_ACTIONS);
    let deny = |statement: Statement| Statement {
        effect: "Deny",
        ..statement
    };
    // First, so it opens part 1 of the policies.
    s.insert(
        0,
        deny(Statement::allow(
            SELF_PROTECTION_SID,
            &denied,
            vec![
                format!("arn:{p}:iam::{a}:role/{}", config.name(ROLE_SUFFIX)),
                format!("arn:{p}:iam::{a}:policy/{}-*", config.name(ROLE_SUFFIX)),
                boundary_arn.clone(),
                provider_arn.to_string(),
            ],
        )),
    );
    // The boundary stays on the environment's roles: never removed, and every action that
    // makes a role or adds to what it may do is refused unless the role (or the request) has
    // exactly this boundary, whatever an Allow says.
    let mut bounded: Vec<&str> = BOUNDED_ROLE_ACTIONS.to_vec();
    bounded.push("iam:AttachRolePolicy");
    s.insert(
        1,
        deny(
            Statement::allow(BOUNDARY_SID, &bounded, vec![role_arn.clone()]).condition(
                json!({ "StringNotEquals": { "iam:PermissionsBoundary": boundary_arn } }),
            ),
        ),
    );
    s.insert(
        2,
        deny(Statement::allow(
            "NeverLiftTheBoundary",
            &["iam:DeleteRolePermissionsBoundary"],
            vec![role_arn],
        )),
    );
    s
}

/// `iam:CreateServiceLinkedRole` for exactly one service's role, by its fixed ARN.
fn service_linked_role(p: &Expr, a: &Expr, sid: &str, service: &str, role: &str) -> Statement {
    Statement::allow(
        sid,
        &["iam:CreateServiceLinkedRole"],
        vec![format!(
            "arn:{p}:iam::{a}:role/aws-service-role/{service}/{role}"
        )],
    )
    .condition(json!({ "StringEquals": { "iam:AWSServiceName": service } }))
}

/// The VPC option (`[options.vpc]`): creating and changing network pieces in this account and
/// region (EC2 ARNs carry generated ids, so names can't scope them), deleting only what carries
/// this environment's tag, and never re-tagging another environment's resources into this one.
fn network_statements(config: &Config, account: &Account) -> Vec<Statement> {
    let p = &account.partition;
    let a = &account.account_id;
    let r = &config.region;
    let ec2 = format!("arn:{p}:ec2:{r}:{a}:*");
    let env = config.name.as_str();
    let mut s = vec![star(
        "NetworkReads",
        &[
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeSubnets",
            "ec2:DescribeRouteTables",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeNatGateways",
            "ec2:DescribeAddresses",
            "ec2:DescribeAddressesAttribute",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeVpcEndpointServices",
            "ec2:DescribePrefixLists",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeFlowLogs",
        ],
    )];
    s.push(Statement::allow(
        "NetworkCreateAndChange",
        &[
            "ec2:CreateVpc",
            "ec2:ModifyVpcAttribute",
            "ec2:CreateSubnet",
            "ec2:ModifySubnetAttribute",
            "ec2:CreateRouteTable",
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:AssociateRouteTable",
            "ec2:DisassociateRouteTable",
            "ec2:CreateInternetGateway",
            "ec2:AttachInternetGateway",
            "ec2:AllocateAddress",
            "ec2:CreateNatGateway",
            "ec2:CreateVpcEndpoint",
            "ec2:ModifyVpcEndpoint",
            "ec2:CreateSecurityGroup",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:CreateFlowLogs",
            "ec2:CreateTags",
            "ec2:DeleteTags",
        ],
        vec![ec2.clone()],
    ));
    s.push(
        Statement::allow(
            "NetworkDeleteOwnOnly",
            &[
                "ec2:DeleteVpc",
                "ec2:DeleteSubnet",
                "ec2:DeleteRouteTable",
                "ec2:DeleteRoute",
                "ec2:DeleteInternetGateway",
                "ec2:DetachInternetGateway",
                "ec2:ReleaseAddress",
                "ec2:DisassociateAddress",
                "ec2:DeleteNatGateway",
                "ec2:DeleteVpcEndpoints",
                "ec2:DeleteSecurityGroup",
                "ec2:DeleteFlowLogs",
            ],
            vec![ec2.clone()],
        )
        .condition(json!({ "StringEquals": { "aws:ResourceTag/Environment": env } })),
    );
    s.push(Statement {
        effect: "Deny",
        ..Statement::allow(
            "NeverRetagAnotherEnvironmentsNetwork",
            &["ec2:CreateTags", "ec2:DeleteTags"],
            vec![ec2],
        )
        .condition(json!({
            "ForAnyValue:StringEquals": { "aws:TagKeys": ["Project", "Environment"] },
            "Null": { "aws:ResourceTag/Environment": "false" },
            "StringNotEquals": { "aws:ResourceTag/Environment": env },
        }))
    });
    s
}
