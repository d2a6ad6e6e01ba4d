//! GitHub Actions delivery: GitHub's OIDC provider and the role the `deploy` workflow assumes
//! with the job's OIDC token, so no AWS key is ever stored in GitHub.
//!
//! The role trusts exactly one subject, `repo:OWNER/REPO:environment:ENV` or its immutable
//! form `repo:OWNER@ID/REPO@ID:environment:ENV` ([`subject`]; the environment's branch rules on
//! GitHub then decide which refs can deploy), and may do what
//! `cargo xtask deploy`, `smoke`, `rollback` and `logs` and Terraform's apply of the bootstrap
//! and service stacks need, on this environment's resources only: names that start with the
//! prefix, the bootstrap stack's keys by exact ARN ([`EnvironmentKeys`]), resources with
//! generated ids by the environment's tags (created only with them, never re-tagged into it),
//! the state objects of those two stacks. It only reads the bootstrap stack, which an
//! administrator changes. Every action is named; the few AWS grants only on `"*"` are in
//! [`crate::iam::STAR_ACTIONS`], each with the reason. docs/security.md has the trust boundaries.
//!
//! It can never change itself: the role and the OIDC provider are in this stack, which only
//! `cargo xtask bootstrap` applies with administrator credentials, and an explicit `Deny`
//! ([`SELF_PROTECTION_SID`]) keeps the IAM actions it has on `role/<prefix>*` off its own role,
//! off the permissions boundary and off the provider.
//!
//! Nor can it make a role that does more than the stacks' roles need: it creates roles, sets
//! their boundary, writes inline policies and attaches managed ones only when
//! `iam:PermissionsBoundary` is `<prefix>service-boundary` ([`super::boundary`]; with stages,
//! or `<prefix>stages-boundary`, which allows less, for a pull request's stage), and an
//! explicit `Deny` ([`security::BOUNDARY_SID`]) refuses them otherwise and never lets it remove
//! a boundary. It never rewrites a trust policy ([`security::TRUST_SID`]); a role it creates may
//! trust anyone (IAM can't limit that), so the boundary keeps user data to the functions'
//! requests.
//!
//! An environment with `stages = true` gets a third role, `<prefix>github-stages`
//! ([`stages_role`]), for the stage workflow's GitHub environment `<ENV>-stages`: the same
//! statements for a scope over the pull request stages only (`<prefix>pr-*-` names, `Stage`
//! tags `pr-*`, their state and packages under `stages/pr-*/`), since the pull request's own
//! code runs with it. The roles it makes carry `<prefix>stages-boundary`, whose ceiling is the
//! pull request stages' own resources, instead of the environment's boundary, which reaches
//! the base's user data. The self-protection Deny of both roles covers all three roles and
//! both boundaries.
//!
//! Unlike the other constructs, it takes the whole [`Config`]: the deploy role manages what
//! every section of the environment creates, so it composes the statements each construct
//! offers for its own resources (`management_statements` and the like) for the environment as a
//! whole and hands each its own section. Only the statement that protects the role itself is
//! written here.

use super::security::EnvironmentKeys;
use super::security::{ATTACH_ACTIONS, BOUNDED_ROLE_ACTIONS, ROLE_ACTIONS, RoleKind};
use super::{
    api, boundary, compute, data, edge, network, observability, queues, schedules, secrets,
    security, state, storage,
};
use crate::config::{Backend, Config, Delivery};
use crate::iam::{Account, PolicyDocument, Scope, Statement, pack};
use crate::tf::{Expr, Ref, Stack};
use serde_json::json;

/// The issuer of GitHub Actions' OIDC tokens (the IAM provider's URL without the scheme).
pub const GITHUB_OIDC_HOST: &str = "token.actions.githubusercontent.com";
/// The audience `aws-actions/configure-aws-credentials` asks GitHub to put in the token.
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// `<prefix>github-deploy`.
pub const ROLE_SUFFIX: &str = "github-deploy";
/// One hour, what the workflow asks for (`role-duration-seconds: 3600`).
pub const MAX_SESSION_SECONDS: u32 = 3600;
/// `<prefix>github-release-check`: the scheduled release check's role.
pub const CHECK_ROLE_SUFFIX: &str = "github-release-check";
/// Appended to the GitHub environment's name for the release check's environment.
pub const CHECK_ENVIRONMENT_SUFFIX: &str = "-release-check";
/// Everything `cargo xtask rollback --unfinished` calls, and all the release check's role may do.
pub const CHECK_ACTIONS: &[&str] = &[
    "lambda:GetAlias",
    "lambda:GetFunction",
    "lambda:UpdateAlias",
];
/// `<prefix>github-stages`: the role of the stage workflow, which deploys pull requests.
pub const STAGES_ROLE_SUFFIX: &str = "github-stages";
/// Appended to the GitHub environment's name for the stage workflow's environment.
pub const STAGES_ENVIRONMENT_SUFFIX: &str = "-stages";
/// The statement that keeps the deploy role's IAM rights off itself and the OIDC provider.
pub const SELF_PROTECTION_SID: &str = "NeverItselfNorTheOidcProvider";

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

/// What [`github_deploy`] created, for the stack's outputs and the other roles.
#[derive(Clone, Debug)]
pub struct DeployRole {
    pub role_arn: Expr,
    pub provider_arn: Expr,
    /// The bootstrap stack's keys, looked up once for every role's policy.
    pub keys: EnvironmentKeys,
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
    let role = github_role(
        stack,
        ("github_deploy", &name),
        format!(
            "GitHub Actions deploy job of {} in environment {} (OIDC)",
            delivery.github_repository,
            delivery.environment(&config.name)
        ),
        (
            "GitHubDeployJobOfThisRepositoryAndEnvironment",
            subject(delivery, &config.name),
        ),
        &provider_arn,
    );
    let keys = EnvironmentKeys::lookup(
        stack,
        config.names(),
        config.storage.replication_region.is_some(),
    );
    let statements = deploy_statements(config, account, &provider_arn, &keys);
    attach_policies(
        stack,
        "github_deploy",
        &name,
        &format!("What the GitHub Actions deploy of {} may do", config.name),
        &role,
        statements,
    );
    DeployRole {
        role_arn: role.attr("arn"),
        provider_arn,
        keys,
    }
}

/// Customer-managed policies `<name>-<n>` with `statements`, attached to `role` (Terraform
/// names `<logical>_<n>`). Not an inline policy: a role's inline policies share 10,240
/// characters, which prod's explicit action lists exceed; each managed policy may have 6,144
/// and a role may carry ten.
fn attach_policies(
    stack: &mut Stack,
    logical: &str,
    name: &str,
    description: &str,
    role: &Ref,
    statements: Vec<Statement>,
) {
    for (i, chunk) in pack(statements).into_iter().enumerate() {
        let n = i + 1;
        let policy = stack.resource(
            "aws_iam_policy",
            &format!("{logical}_{n}"),
            json!({
                "name": format!("{name}-{n}"),
                "description": format!("{description} (part {n})"),
                "policy": PolicyDocument::new(chunk).render(),
            }),
        );
        stack.resource(
            "aws_iam_role_policy_attachment",
            &format!("{logical}_{n}"),
            json!({ "role": role.attr("name"), "policy_arn": policy.attr("arn") }),
        );
    }
}

/// What GitHub puts in `sub` for a job of this repository that declares `environment: ENV`
/// (the environment's GitHub environment): `repo:OWNER/REPO:environment:ENV`, or with the
/// immutable ids set in the environment file, `repo:OWNER@OWNER_ID/REPO@REPO_ID:environment:ENV`
/// (GitHub's immutable subject, the default for repositories created or renamed on or after
/// 2026-07-15). Only one of the two: the immutable subject exists so that a recycled owner or
/// repository name can't match.
pub fn subject(delivery: &Delivery, env_name: &str) -> String {
    subject_in(delivery, delivery.environment(env_name))
}

/// [`subject`] for the GitHub environment `github_environment`.
fn subject_in(delivery: &Delivery, github_environment: &str) -> String {
    let repository = match (delivery.github_owner_id, delivery.github_repository_id) {
        (Some(owner_id), Some(repository_id)) => {
            let (owner, repo) = delivery
                .github_repository
                .split_once('/')
                .expect("the environment file checks OWNER/REPO");
            format!("{owner}@{owner_id}/{repo}@{repository_id}")
        }
        _ => delivery.github_repository.clone(),
    };
    format!("repo:{repository}:environment:{github_environment}")
}

/// The GitHub environment of the scheduled release check (`.github/workflows/release-check.yml`):
/// `<ENV>-release-check`, without required reviewers, so a check of prod does not wait for an
/// approval; its role ([`release_check_role`]) can only put `live` aliases back.
pub fn release_check_environment(delivery: &Delivery, env_name: &str) -> String {
    RELEASE_CHECK.environment(delivery, env_name)
}

/// The GitHub environment of the stage workflow (`.github/workflows/stage.yml`):
/// `<ENV>-stages`, which only pull requests of this repository deploy to (never forks, whose
/// workflows get no secrets or OIDC token for it); its role ([`stages_role`]) reaches pull
/// request stages only.
pub fn stages_environment(delivery: &Delivery, env_name: &str) -> String {
    STAGES.environment(delivery, env_name)
}

/// A role beside the deploy role, for the jobs of a GitHub environment of its own
/// (`<ENV><environment_suffix>`), so a job of one never gets the other's rights.
struct SideRole {
    /// Its Terraform name.
    logical: &'static str,
    /// `<prefix><suffix>`.
    suffix: &'static str,
    environment_suffix: &'static str,
    /// Whose role it is, for its description.
    what: &'static str,
    /// The Sid of its trust policy's statement.
    sid: &'static str,
}

const RELEASE_CHECK: SideRole = SideRole {
    logical: "github_release_check",
    suffix: CHECK_ROLE_SUFFIX,
    environment_suffix: CHECK_ENVIRONMENT_SUFFIX,
    what: "release check",
    sid: "GitHubReleaseCheckOfThisRepositoryAndEnvironment",
};

const STAGES: SideRole = SideRole {
    logical: "github_stages",
    suffix: STAGES_ROLE_SUFFIX,
    environment_suffix: STAGES_ENVIRONMENT_SUFFIX,
    what: "pull request stages",
    sid: "GitHubStageWorkflowOfThisRepositoryAndEnvironment",
};

impl SideRole {
    fn environment(&self, delivery: &Delivery, env_name: &str) -> String {
        format!(
            "{}{}",
            delivery.environment(env_name),
            self.environment_suffix
        )
    }

    /// The role, trusted by exactly the subject of its GitHub environment; and its name.
    fn create(
        &self,
        stack: &mut Stack,
        config: &Config,
        delivery: &Delivery,
        provider_arn: &Expr,
    ) -> (Ref, String) {
        let name = config.name(self.suffix);
        let github_environment = self.environment(delivery, &config.name);
        let role = github_role(
            stack,
            (self.logical, &name),
            format!(
                "GitHub Actions {} of {} in environment {github_environment} (OIDC)",
                self.what, delivery.github_repository,
            ),
            (self.sid, subject_in(delivery, &github_environment)),
            provider_arn,
        );
        (role, name)
    }
}

/// A role (Terraform and IAM names `(logical, name)`) that GitHub's jobs assume for exactly the
/// subject of `(sid, subject)` ([`trust_policy`]), for at most [`MAX_SESSION_SECONDS`].
fn github_role(
    stack: &mut Stack,
    (logical, name): (&str, &str),
    description: String,
    (sid, subject): (&str, String),
    provider_arn: &Expr,
) -> Ref {
    stack.resource(
        "aws_iam_role",
        logical,
        json!({
            "name": name,
            "description": description,
            "assume_role_policy": trust_policy(sid, subject, provider_arn),
            "max_session_duration": MAX_SESSION_SECONDS,
        }),
    )
}

/// Only GitHub's tokens for this audience and exactly this subject. `StringEquals`, never a
/// wildcard on `sub`: `repo:OWNER/*` would let every repository of the owner deploy.
fn trust_policy(sid: &str, subject: String, provider_arn: &Expr) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                format!("{GITHUB_OIDC_HOST}:aud"): AUDIENCE,
                format!("{GITHUB_OIDC_HOST}:sub"): subject,
            } },
        }],
    })
    .to_string()
}

/// The role of the scheduled release check: `cargo xtask rollback --unfinished`, which reads
/// every `live` alias, moves an unfinished release's aliases back to their recorded previous
/// versions and rewrites the record (GetAlias, UpdateAlias), then waits until the functions
/// are active (GetFunction). Nothing else: it can't deploy, so its GitHub environment needs
/// no reviewer, and the worst it can do is point `live` at another published version of this
/// environment's functions, which `rollback` can do as well.
pub fn release_check_role(
    stack: &mut Stack,
    config: &Config,
    delivery: &Delivery,
    account: &Account,
    provider_arn: &Expr,
) -> Expr {
    let (role, name) = RELEASE_CHECK.create(stack, config, delivery, provider_arn);
    let scope = config.scope(account);
    let functions = scope.in_region("lambda", &format!("function:{}*", config.prefix));
    let statements = vec![Statement::allow(
        "PutUnfinishedReleasesBack",
        CHECK_ACTIONS,
        vec![functions],
    )];
    stack.resource(
        "aws_iam_role_policy",
        "github_release_check",
        json!({
            "name": format!("{name}-aliases"),
            "role": role.attr("name"),
            "policy": PolicyDocument::new(statements).render(),
        }),
    );
    role.attr("arn")
}

/// The role of the stage workflow, for environments with `stages = true`: deploying, smoking,
/// reading the logs of and destroying the stages `pr-<number>` ([`stages_statements`]). The
/// pull request's own code (its xtask binary) runs with it, so it reaches nothing of the base
/// environment: no name that doesn't start with `<prefix>pr-`, no resource with a generated id
/// whose `Stage` tag isn't `pr-*`, the state and packages under `stages/pr-*/` only, the shared
/// keys only to use them.
pub fn stages_role(
    stack: &mut Stack,
    config: &Config,
    delivery: &Delivery,
    account: &Account,
    deploy: &DeployRole,
) -> Expr {
    let (role, name) = STAGES.create(stack, config, delivery, &deploy.provider_arn);
    let statements = stages_statements(config, account, &deploy.provider_arn, &deploy.keys);
    attach_policies(
        stack,
        "github_stages",
        &name,
        &format!(
            "What the GitHub Actions pull request stages of {} may do",
            config.name
        ),
        &role,
        statements,
    );
    role.attr("arn")
}

/// The deploy role's permissions, derived from what the bootstrap and service stacks create for
/// this configuration and from the AWS calls xtask makes: the guard rails first
/// ([`guard_rails`]), then what each construct offers for its resources, in the order the
/// stacks create them.
///
/// Deleting the stateful resources (buckets, tables, KMS keys, the functions' shared
/// dead-letter queue, the signing profile) is left to an administrator: no deploy removes them, so the role can't.
/// CodeDeploy is not granted: releases shift traffic with weighted alias routing in xtask.
/// No statement for `sts:GetCallerIdentity`: AWS allows it to every principal.
fn deploy_statements(
    config: &Config,
    account: &Account,
    provider_arn: &Expr,
    keys: &EnvironmentKeys,
) -> Vec<Statement> {
    let scope = config.scope(account);
    // With stages, also the stages boundary: a stage named `pr-*` carries it whoever deploys
    // it, so the deploy role deploys a pull request's stage too. It allows less than the
    // environment's.
    let mut boundaries = vec![boundary::service_boundary_arn(config, account)];
    if config.stages {
        boundaries.push(boundary::stages_boundary_arn(config, account));
    }
    let state_bucket = match &config.backend {
        Backend::S3 { bucket, .. } => Some(bucket.as_str()),
        Backend::Local => None,
    };
    let mut s = guard_rails(config, &scope, provider_arn, &boundaries);
    s.extend(state::management_statements(&scope, &config.backend));
    s.extend(storage::management_statements(
        &scope,
        state_bucket,
        config.stages,
    ));
    s.extend(keys.management_statements());
    s.extend(service_statements(config, &scope, &boundaries));
    s
}

/// The stages role's permissions: the deploy role's guard rails and the statements each
/// construct offers for the service stack's resources ([`service_statements`]), composed for a
/// scope over every pull request stage ([`Config::pull_request_stages`]: names `<prefix>pr-*-`,
/// `Stage` tags `pr-*`), with the state, packages and keys a stage uses instead of the
/// bootstrap stack's. The roles it makes carry the stages boundary, not the environment's
/// ([`boundary::stages_boundary_arn`]). A stage never sets the account's API Gateway logging
/// role (the base does).
fn stages_statements(
    config: &Config,
    account: &Account,
    provider_arn: &Expr,
    keys: &EnvironmentKeys,
) -> Vec<Statement> {
    let stages = config.pull_request_stages();
    let scope = stages.scope(account);
    let stage = scope.stage.expect("a scope over stages");
    let boundaries = [boundary::stages_boundary_arn(config, account)];
    let bootstrap_outputs = config.lambda.code_signing || config.options.domain.is_some();
    let mut s = guard_rails(config, &scope, provider_arn, &boundaries);
    s.extend(state::stage_statements(
        &scope,
        &config.backend,
        stage,
        bootstrap_outputs,
    ));
    s.extend(storage::stage_statements(&scope, stage));
    s.extend(keys.stage_statements());
    s.extend(service_statements(config, &scope, &boundaries));
    s
}

/// What both roles' policies open with (part 1): [`self_protection`], then
/// [`security::role_guard_rails`] on the roles of `scope` under one of `boundaries`.
fn guard_rails(
    config: &Config,
    scope: &Scope,
    provider_arn: &Expr,
    boundaries: &[String],
) -> Vec<Statement> {
    let mut s = vec![self_protection(config, scope.account, provider_arn)];
    s.extend(security::role_guard_rails(scope, boundaries));
    s
}

/// What each construct offers for the service stack's resources of `scope` (the environment,
/// or its pull request stages), in the order the stack creates them; for the environment also
/// the roles of the bootstrap stack and the account's API Gateway logging role.
fn service_statements(config: &Config, scope: &Scope, boundaries: &[String]) -> Vec<Statement> {
    let opts = &config.options;
    let environment = scope.stage.is_none();
    let mut s = data::management_statements(scope);
    s.extend(data::smoke_statements(scope));
    if config.data.autoscaling.is_some() {
        s.extend(data::autoscaling_management_statements(scope));
    }
    s.extend(compute::management_statements(scope, &config.lambda));
    s.extend(security::role_management_statements(
        scope,
        boundaries,
        &role_kinds(config, environment),
    ));
    s.extend(api::management_statements(
        scope,
        &config.api,
        opts.domain.is_some(),
        environment,
    ));
    s.extend(observability::log_group_management_statements(
        scope,
        &log_group_prefixes(config),
    ));
    s.extend(compute::log_reading_statements(scope));
    s.extend(observability::management_statements(scope, &config.alarms));
    if let Some(vpc) = &opts.vpc {
        s.extend(network::management_statements(scope, vpc));
    }
    if opts.waf.is_some() {
        s.extend(edge::waf_management_statements(scope));
    }
    if let Some(domain) = &opts.domain {
        s.extend(edge::domain_management_statements(scope, domain));
    }
    s.extend(secrets::management_statements(scope));
    s.extend(queues::management_statements(scope));
    s.extend(schedules::management_statements(scope));
    s
}

/// The kinds of role the environment's stacks create, each from the construct that creates it;
/// without `environment`, only the service stack's of a stage (no API Gateway logging role,
/// no bootstrap stack).
fn role_kinds(config: &Config, environment: bool) -> Vec<RoleKind> {
    let opts = &config.options;
    let mut kinds = vec![compute::role_kind(opts.vpc.is_some())];
    if environment {
        kinds.push(api::CLOUDWATCH_ROLE);
    }
    if opts.vpc.as_ref().is_some_and(|v| v.flow_logs) {
        kinds.push(network::FLOW_LOGS_ROLE);
    }
    if environment && config.storage.replication_region.is_some() {
        kinds.push(storage::REPLICATION_ROLE);
    }
    kinds
}

/// The prefixes of the log groups the environment's stacks create, each from the construct that
/// creates the group.
fn log_group_prefixes(config: &Config) -> Vec<&'static str> {
    let opts = &config.options;
    let mut prefixes = vec![compute::LOG_GROUP_PREFIX, api::LOG_GROUP_PREFIX];
    if opts.vpc.as_ref().is_some_and(|v| v.flow_logs) {
        prefixes.push(network::LOG_GROUP_PREFIX);
    }
    if opts.waf.is_some() {
        prefixes.push(edge::WAF_LOG_GROUP_PREFIX);
    }
    prefixes
}

/// The delivery roles' own guard rail, an explicit Deny that no Allow can override: the IAM
/// rights on `role/<prefix>*` would otherwise cover `<prefix>github-deploy` itself, letting a
/// deploy widen its own permissions or trust (and those of the release check's and the stages'
/// roles beside it). Their policies, the permissions boundaries (the environment's and, with
/// stages, the pull request stages', both in the bootstrap stack, which only an administrator
/// changes) and the OIDC provider are denied too (nothing grants changing them; this makes it
/// hold whatever is added later). Both the deploy and the stages role carry it.
fn self_protection(config: &Config, account: &Account, provider_arn: &Expr) -> Statement {
    let p = &account.partition;
    let a = &account.account_id;
    let mut denied: Vec<&str> = ROLE_ACTIONS.to_vec();
    denied.extend(BOUNDED_ROLE_ACTIONS);
    denied.extend(ATTACH_ACTIONS);
    denied.extend([
        "iam:PassRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateRoleDescription",
        "iam:DeleteRolePermissionsBoundary",
    ]);
    denied.extend(POLICY_ACTIONS);
    denied.extend(OIDC_PROVIDER_ACTIONS);
    let mut roles = vec![ROLE_SUFFIX, CHECK_ROLE_SUFFIX];
    let mut policies = vec![ROLE_SUFFIX];
    if config.stages {
        roles.push(STAGES_ROLE_SUFFIX);
        policies.push(STAGES_ROLE_SUFFIX);
    }
    let mut resources: Vec<String> = roles
        .iter()
        .map(|r| format!("arn:{p}:iam::{a}:role/{}", config.name(r)))
        .collect();
    resources.extend(
        policies
            .iter()
            .map(|r| format!("arn:{p}:iam::{a}:policy/{}-*", config.name(r))),
    );
    resources.push(boundary::service_boundary_arn(config, account));
    if config.stages {
        resources.push(boundary::stages_boundary_arn(config, account));
    }
    resources.push(provider_arn.to_string());
    Statement::deny(SELF_PROTECTION_SID, &denied, resources)
}
