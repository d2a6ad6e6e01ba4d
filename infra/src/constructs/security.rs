//! KMS keys and IAM roles (their policies built from [`crate::iam`]), and what they offer: a
//! key's grant of exactly the actions a role's grants need ([`Key::grant`]), and the deploy
//! role's statements (and guard-rail Denies) for the keys and the stacks' roles. The declared
//! secrets are [`super::secrets`].

use super::boundary;
use crate::config::Names;
use crate::iam::{Account, KeyActions, PolicyDocument, Scope, Statement, star};
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde_json::{Value, json};

/// Alias (after the prefix) of the key of the artifacts, access-log and state buckets.
pub const BUCKETS_KEY_ALIAS: &str = "buckets";
/// Alias (after the prefix) of the service's key.
pub const SERVICE_KEY_ALIAS: &str = "key";
/// Alias (after the prefix) of the bucket replicas' key.
pub const REPLICA_KEY_ALIAS: &str = "replica";
/// Logical name of the service's key in the bootstrap stack and of its lookup in the others.
pub const SERVICE_KEY_LOGICAL: &str = "stack";

/// The stack's customer-managed key: DynamoDB, logs, SNS, SQS, Lambda environment variables
/// and secrets are all encrypted with it, so revoking it revokes access to all data.
#[derive(Clone, Debug)]
pub struct Key {
    arn: Expr,
    id: Expr,
}

impl Key {
    pub fn arn(&self) -> Expr {
        self.arn.clone()
    }
    pub fn id(&self) -> Expr {
        self.id.clone()
    }

    /// The statement that lets a role use the key as `actions` say; none for
    /// [`KeyActions::NONE`]. A role composes the key actions of all its grants
    /// ([`crate::iam::Grant`]) into this one statement.
    pub fn grant(&self, sid: &str, actions: KeyActions) -> Option<Statement> {
        let actions = actions.actions();
        (!actions.is_empty()).then(|| Statement::allow(sid, &actions, vec![self.arn.to_string()]))
    }

    /// [`Key::grant`], only for requests that `service` (`sqs.<region>.amazonaws.com`) makes
    /// on the role's behalf (`kms:ViaService`): the role can't use the key directly, only
    /// through that service's requests.
    pub fn grant_through(
        &self,
        sid: &str,
        actions: KeyActions,
        service: &str,
    ) -> Option<Statement> {
        self.grant(sid, actions)
            .map(|s| s.condition(json!({ "StringEquals": { "kms:ViaService": service } })))
    }

    /// A key another stack created, found by its alias `alias/<alias>` (`data.aws_kms_alias`):
    /// every key lives in the bootstrap stack, which only an administrator changes, so the
    /// deploy role never needs the account-wide rights that creating and tagging a key take.
    pub fn lookup(stack: &mut Stack, logical: &str, alias: &str, provider: Option<&str>) -> Key {
        let mut body = json!({ "name": format!("alias/{alias}") });
        if let Some(provider) = provider {
            body["provider"] = provider.into();
        }
        let alias = stack.data("aws_kms_alias", logical, body);
        Key {
            arn: alias.attr("target_key_arn"),
            id: alias.attr("target_key_id"),
        }
    }
}

/// The environment's KMS keys, all created by the bootstrap stack (which only an administrator
/// changes), found by alias so the deploy role's policy names each key's exact ARN.
#[derive(Clone, Debug)]
pub struct EnvironmentKeys {
    /// Artifacts, access-log and state buckets.
    pub buckets: Expr,
    /// The service stack's tables, logs, topic, queue and function settings.
    pub service: Expr,
    /// The bucket replicas (environments with `replication_region`).
    pub replica: Option<Expr>,
}

impl EnvironmentKeys {
    /// `replicated`: the environment has a `replication_region`, so a replica key exists.
    pub fn lookup(stack: &mut Stack, names: Names, replicated: bool) -> EnvironmentKeys {
        let buckets = Key::lookup(stack, "buckets", &names.name(BUCKETS_KEY_ALIAS), None);
        let service = Key::lookup(
            stack,
            SERVICE_KEY_LOGICAL,
            &names.name(SERVICE_KEY_ALIAS),
            None,
        );
        let replica = replicated.then(|| {
            Key::lookup(
                stack,
                "replica",
                &names.name(REPLICA_KEY_ALIAS),
                Some("aws.replica"),
            )
            .arn()
        });
        EnvironmentKeys {
            buckets: buckets.arn(),
            service: service.arn(),
            replica,
        }
    }

    /// What the deploy role may do with the keys: read them, use the bucket and service keys,
    /// and let AWS services take grants on the service key.
    pub fn management_statements(&self) -> Vec<Statement> {
        // KMS: every key is the bootstrap stack's (created by an administrator), named here by its
        // exact ARN. No CreateKey, TagResource, PutKeyPolicy or alias change: creating a key with
        // tags takes kms:TagResource on every key of the account ("at a minimum, the permission
        // must cover all KMS keys in the account and Region",
        // https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html), which would
        // let the role tag another team's key into this environment.
        let mut every_key = vec![self.buckets.to_string(), self.service.to_string()];
        every_key.extend(self.replica.as_ref().map(ToString::to_string));
        self.statements(
            "ReadTheKeysOfThisEnvironment",
            &[
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
            ],
            every_key,
        )
    }

    /// What the stages role may do with the keys: what a stage's service stack and xtask use
    /// (find the service key by its alias, encrypt and decrypt with the bucket and service
    /// keys, let AWS services take grants on the service key); never read their policies or the
    /// replica key, which only the bootstrap stack's apply refreshes.
    pub fn stage_statements(&self) -> Vec<Statement> {
        self.statements(
            "DescribeTheKeysStagesUse",
            &["kms:DescribeKey"],
            vec![self.buckets.to_string(), self.service.to_string()],
        )
    }

    /// Listing the aliases, reading `read` of the keys `read_keys` (statement `read_sid`), and
    /// using the bucket and service keys.
    fn statements(&self, read_sid: &str, read: &[&str], read_keys: Vec<String>) -> Vec<Statement> {
        vec![
            star("ReadKeyAliases", &["kms:ListAliases"]),
            Statement::allow(read_sid, read, read_keys),
            Statement::allow(
                "UseTheKeysOfThisEnvironment",
                &["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                vec![self.buckets.to_string(), self.service.to_string()],
            ),
            // DynamoDB, Lambda and CloudWatch Logs take grants on the service key for the
            // resources they encrypt.
            Statement::allow(
                "KeyGrantsForAwsServices",
                &["kms:CreateGrant"],
                vec![self.service.to_string()],
            )
            .condition(json!({ "Bool": { "kms:GrantIsForAWSResource": "true" } })),
        ]
    }
}

/// Creates a rotating KMS key with alias `alias/<alias>` whose policy lets the account's IAM
/// policies grant it and lets CloudWatch Logs (for log groups in this account and region),
/// CloudWatch alarms and SNS (for the encrypted alarm topic) use it.
pub fn kms_key(
    stack: &mut Stack,
    account: &Account,
    logical: &str,
    alias: &str,
    description: &str,
) -> Key {
    let logs_principal = format!("logs.{}.amazonaws.com", account.region);
    let log_group_arns = format!(
        "arn:{}:logs:{}:{}:log-group:*",
        account.partition, account.region, account.account_id
    );
    let policy = PolicyDocument::new(vec![
        // Key policies must name the key as "*" (it means "this key"); the account root is the
        // only principal with administrative rights, delegated through IAM.
        Statement::allow("AccountAdministers", &["kms:*"], vec!["*".into()])
            .principal(json!({ "AWS": account.root_arn() })),
        Statement::allow(
            "CloudWatchLogsUse",
            &[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            vec!["*".into()],
        )
        .principal(json!({ "Service": logs_principal }))
        .condition(json!({ "ArnLike": { "kms:EncryptionContext:aws:logs:arn": log_group_arns } })),
        Statement::allow(
            "AlarmsPublishToEncryptedTopic",
            &["kms:Decrypt", "kms:GenerateDataKey*"],
            vec!["*".into()],
        )
        .principal(json!({ "Service": ["cloudwatch.amazonaws.com", "sns.amazonaws.com"] }))
        .condition(
            json!({ "StringEquals": { "aws:SourceAccount": account.account_id.to_string() } }),
        ),
    ]);
    let key = stack.resource(
        "aws_kms_key",
        logical,
        json!({
            "description": description,
            "enable_key_rotation": true,
            "deletion_window_in_days": 30,
            "policy": policy.render(),
        }),
    );
    stack.resource(
        "aws_kms_alias",
        logical,
        json!({ "name": format!("alias/{alias}"), "target_key_id": key.attr("key_id") }),
    );
    Key {
        arn: key.attr("arn"),
        id: key.attr("key_id"),
    }
}

/// What kind of role a construct creates: the service that assumes it and the AWS-managed
/// policies (by name under `arn:<partition>:iam::aws:policy/`) attached to it. The construct
/// creates its roles from it and the deploy role may pass such a role to that service and
/// attach those policies ([`role_management_statements`]), so the two can't disagree.
#[derive(Clone, Copy, Debug)]
pub struct RoleKind {
    pub service: &'static str,
    pub managed: &'static [&'static str],
    /// The service may assume the role only for this account's resources
    /// (`aws:SourceAccount` in the trust policy): the confused-deputy guard for a service
    /// that acts for many accounts, like Scheduler.
    pub source_account: bool,
}

/// IAM actions on the stack's roles (`role/<prefix>*`) that add no permissions and change no
/// trust. `iam:UpdateAssumeRolePolicy` is never granted and always denied ([`TRUST_SID`]): a
/// function role made to trust another account would hand that account the role's rights. Creating a
/// role, setting its boundary, putting its inline policy and attaching managed policies are
/// separate: only with the permissions boundary ([`BOUNDED_ROLE_ACTIONS`], [`ATTACH_ACTIONS`]).
pub const ROLE_ACTIONS: &[&str] = &[
    "iam:GetRole",
    "iam:UpdateRole",
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
pub const BOUNDED_ROLE_ACTIONS: &[&str] = &[
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
];
/// Attaching and detaching the AWS-managed policies of [`RoleKind::managed`].
pub const ATTACH_ACTIONS: &[&str] = &["iam:AttachRolePolicy", "iam:DetachRolePolicy"];
/// Reading the permissions boundary, which the bootstrap stack declares (Terraform refreshes it
/// on every apply). Changing it is never granted (`constructs::delivery` denies it).
const BOUNDARY_READ_ACTIONS: &[&str] = &["iam:GetPolicy", "iam:GetPolicyVersion"];
/// The statement that keeps every trust policy of the environment's roles as created.
pub const TRUST_SID: &str = "NeverRewriteATrustPolicy";
/// The statement that keeps the permissions boundary on the environment's roles.
pub const BOUNDARY_SID: &str = "NeverARoleWithoutTheBoundary";

/// `arn:<partition>:iam::<account>:role/<prefix>*`: every role the stacks create.
fn roles_of(scope: &Scope) -> String {
    let (p, a) = (&scope.account.partition, &scope.account.account_id);
    format!("arn:{p}:iam::{a}:role/{}*", scope.prefix)
}

/// The `iam:PermissionsBoundary` value of a condition: the one boundary, or any of several
/// (`ArnEquals` matches any listed value, `ArnNotEquals` none of them).
fn boundary_condition_value(boundaries: &[String]) -> Value {
    match boundaries {
        [one] => json!(one),
        several => json!(several),
    }
}

/// What the deploy role needs to manage the stack's roles of `kinds` (function roles, API
/// Gateway's logging role, flow logs, replication): the roles themselves, the managed policies
/// they carry, and passing them to the services that assume them. Every role it creates or adds
/// permissions to carries one of the permissions boundaries `boundaries` (`super::boundary`), so
/// no role it makes can do more than its boundary allows; [`role_guard_rails`] holds that
/// against any Allow.
pub fn role_management_statements(
    scope: &Scope,
    boundaries: &[String],
    kinds: &[RoleKind],
) -> Vec<Statement> {
    let boundary_arn = boundary_condition_value(boundaries);
    let roles = roles_of(scope);
    let mut managed: Vec<String> = Vec::new();
    let mut passed_to: Vec<&str> = Vec::new();
    for kind in kinds {
        for policy in kind.managed {
            let arn = format!("arn:{}:iam::aws:policy/{policy}", scope.account.partition);
            if !managed.contains(&arn) {
                managed.push(arn);
            }
        }
        if !passed_to.contains(&kind.service) {
            passed_to.push(kind.service);
        }
    }
    // iam:PermissionsBoundary is an ARN-typed key, so the ARN operators:
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
    let mut s = vec![
        Statement::allow("RolesOfThisEnvironment", ROLE_ACTIONS, vec![roles.clone()]),
        Statement::allow(
            "RolesOfThisEnvironmentOnlyWithTheBoundary",
            BOUNDED_ROLE_ACTIONS,
            vec![roles.clone()],
        )
        .condition(json!({ "ArnEquals": { "iam:PermissionsBoundary": boundary_arn } })),
        Statement::allow(
            "ReadTheBoundary",
            BOUNDARY_READ_ACTIONS,
            boundaries.to_vec(),
        ),
    ];
    // None for roles that carry no managed policy (a stage's, without a VPC).
    if !managed.is_empty() {
        s.push(
            Statement::allow(
                "OnlyTheManagedPoliciesTheStackAttaches",
                &["iam:AttachRolePolicy"],
                vec![roles.clone()],
            )
            .condition(json!({ "ArnEquals": {
                "iam:PolicyARN": managed,
                "iam:PermissionsBoundary": boundary_arn,
            } })),
        );
        s.push(
            Statement::allow(
                "DetachTheManagedPoliciesTheStackAttaches",
                &["iam:DetachRolePolicy"],
                vec![roles.clone()],
            )
            .condition(json!({ "ArnEquals": { "iam:PolicyARN": managed } })),
        );
    }
    s.push(
        Statement::allow(
            "PassRolesOfThisEnvironmentToTheirServices",
            &["iam:PassRole"],
            vec![roles],
        )
        .condition(json!({ "StringEquals": { "iam:PassedToService": passed_to } })),
    );
    s
}

/// The explicit Denies that keep the environment's roles as [`role_management_statements`]
/// means them, whatever an Allow says (an explicit Deny always wins).
pub fn role_guard_rails(scope: &Scope, boundaries: &[String]) -> Vec<Statement> {
    let roles = roles_of(scope);
    let boundary_arn = boundary_condition_value(boundaries);
    // The boundary stays on the environment's roles: never removed, and every action that
    // makes a role or adds to what it may do is refused unless the role (or the request) has
    // one of these boundaries.
    let mut bounded: Vec<&str> = BOUNDED_ROLE_ACTIONS.to_vec();
    bounded.push("iam:AttachRolePolicy");
    vec![
        Statement::deny(BOUNDARY_SID, &bounded, vec![roles.clone()])
            .condition(json!({ "ArnNotEquals": { "iam:PermissionsBoundary": boundary_arn } })),
        Statement::deny(
            "NeverLiftTheBoundary",
            &["iam:DeleteRolePermissionsBoundary"],
            vec![roles.clone()],
        ),
        // A trust policy stays what the stack created: no IAM condition key limits whom a trust
        // policy names (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
        // lists none for UpdateAssumeRolePolicy), so the action is refused outright. A role the
        // deploy role creates could still name any principal; the boundary keeps user data to
        // requests from the environment's functions (`super::boundary`).
        Statement::deny(TRUST_SID, &["iam:UpdateAssumeRolePolicy"], vec![roles]),
    ]
}

/// An IAM role with its inline policy.
#[derive(Clone, Debug)]
pub struct Role {
    r: Ref,
    policy: Option<Ref>,
}

impl Role {
    pub fn arn(&self) -> Expr {
        self.r.attr("arn")
    }
    pub fn name(&self) -> Expr {
        self.r.attr("name")
    }
    /// Everything a consumer must wait for before the role is usable.
    pub fn dependencies(&self) -> Vec<&Ref> {
        std::iter::once(&self.r)
            .chain(self.policy.as_ref())
            .collect()
    }
}

/// A role of `kind`, with one inline policy of exactly `statements` and the kind's
/// AWS-managed policies.
///
/// In environments with `[delivery]` the role carries the permissions boundary
/// `boundary_arn` ([`boundary::permissions_boundary`]). The deploy role may only create, and add permissions to,
/// `<prefix>*` roles that carry it. Without the boundary, the deploy role could create a role
/// with `*:*` and pass it to a function it controls. The boundary must allow what `statements`
/// and the managed policies grant ([`boundary::statements`]; the tests check).
pub fn service_role(
    stack: &mut Stack,
    boundary_arn: Option<&str>,
    account: &Account,
    logical: &str,
    name: &str,
    kind: &RoleKind,
    statements: Vec<Statement>,
) -> Role {
    let assume = PolicyDocument::new(vec![Statement {
        sid: None,
        effect: "Allow",
        principal: Some(json!({ "Service": kind.service })),
        action: vec!["sts:AssumeRole".into()],
        resource: Vec::new(),
        condition: kind.source_account.then(
            || json!({ "StringEquals": { "aws:SourceAccount": account.account_id.to_string() } }),
        ),
    }]);
    let mut assume = serde_json::to_value(&assume).expect("plain data");
    // Trust policies have no Resource element.
    assume["Statement"][0]
        .as_object_mut()
        .expect("object")
        .remove("Resource");
    let mut body = json!({ "name": name, "assume_role_policy": assume.to_string() });
    if let Some(arn) = boundary_arn {
        body["permissions_boundary"] = arn.into();
        // The ARN is known in advance, so the service stack names it as a string. In the stack
        // that creates the policy (bootstrap), the role waits for it: IAM rejects a boundary
        // that does not exist.
        if let Some(policy) = stack.find_resource("aws_iam_policy", boundary::LOGICAL) {
            body["depends_on"] = depends_on(&[&policy]);
        }
    }
    let role = stack.resource("aws_iam_role", logical, body);
    let policy = (!statements.is_empty()).then(|| {
        stack.resource(
            "aws_iam_role_policy",
            logical,
            json!({
                "name": name,
                "role": role.attr("id"),
                "policy": PolicyDocument::new(statements).render(),
            }),
        )
    });
    for (i, policy_name) in kind.managed.iter().enumerate() {
        stack.resource(
            "aws_iam_role_policy_attachment",
            &format!("{logical}_managed_{i}"),
            json!({
                "role": role.attr("name"),
                "policy_arn": format!("arn:{}:iam::aws:policy/{policy_name}", account.partition),
            }),
        );
    }
    Role { r: role, policy }
}
