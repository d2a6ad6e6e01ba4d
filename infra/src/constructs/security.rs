//! KMS keys, IAM roles and policy documents, Secrets Manager.
//!
//! Policies are typed statements, rendered to JSON strings whose resources are Terraform
//! references, so least privilege is visible in code review and checkable in tests.

use super::boundary;
use crate::config::Config;
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde::Serialize;
use serde_json::{Value, json};

/// Account, partition and region of the deployment, looked up once per stack.
#[derive(Clone, Debug)]
pub struct Account {
    pub account_id: Expr,
    pub partition: Expr,
    pub region: Expr,
}

impl Account {
    pub fn lookup(stack: &mut Stack) -> Account {
        let caller = stack.data("aws_caller_identity", "current", json!({}));
        let partition = stack.data("aws_partition", "current", json!({}));
        let region = stack.data("aws_region", "current", json!({}));
        Account {
            account_id: caller.attr("account_id"),
            partition: partition.attr("partition"),
            region: region.attr("name"),
        }
    }

    /// `arn:<partition>:iam::<account>:root`, the principal that lets IAM policies grant a key.
    pub fn root_arn(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account_id)
    }

    /// `arn:<partition>:iam::<account>:policy/<name>`: a customer-managed policy's ARN, known
    /// before the policy exists.
    pub fn policy_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:policy/{name}",
            self.partition, self.account_id
        )
    }
}

/// The permissions boundary every role of the environment carries: the ARN of
/// `<prefix>service-boundary` ([`boundary`]) when the environment has `[delivery]`, `None`
/// otherwise.
///
/// Only environments with `[delivery]` have a deploy role, whose right to create and pass
/// `<prefix>*` roles is what the boundary caps; the emulator environment stays as it was.
pub fn permissions_boundary(config: &Config, account: &Account) -> Option<String> {
    config
        .delivery
        .as_ref()
        .map(|_| account.policy_arn(&config.name(boundary::POLICY_SUFFIX)))
}

/// One IAM policy statement.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Value>,
    pub action: Vec<String>,
    pub resource: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

impl Statement {
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<String>) -> Statement {
        Statement {
            sid: Some(sid.to_owned()),
            effect: "Allow",
            principal: None,
            action: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource: resources,
            condition: None,
        }
    }

    pub fn principal(mut self, principal: Value) -> Statement {
        self.principal = Some(principal);
        self
    }

    pub fn condition(mut self, condition: Value) -> Statement {
        self.condition = Some(condition);
        self
    }

    /// Adds `key` with `values` under `operator`, beside the conditions already there (IAM
    /// requires every key under every operator to match).
    fn require(mut self, operator: &str, key: &str, values: &[&str]) -> Statement {
        let condition = self.condition.get_or_insert_with(|| json!({}));
        condition[operator][key] = json!(values);
        self
    }

    /// DynamoDB fine-grained access: every attribute the request names (the item's key, the
    /// attributes it writes, checks or mentions in an expression) must be one of `attributes`,
    /// so a statement that lets a function touch one field of an item can't change the others.
    /// The table's key attribute has to be in the list: every item request names it.
    pub fn only_attributes(self, attributes: &[&str]) -> Statement {
        self.require(
            "ForAllValues:StringEquals",
            "dynamodb:Attributes",
            attributes,
        )
    }

    /// DynamoDB: the request asks for no item values back (`ReturnValues` absent or `NONE`).
    /// Without it, an update limited by [`Statement::only_attributes`] could still read the
    /// whole item through `ALL_OLD` or `ALL_NEW`.
    pub fn returning_nothing(self) -> Statement {
        self.require("StringEqualsIfExists", "dynamodb:ReturnValues", &["NONE"])
    }

    /// Sending traces to X-Ray. PutTraceSegments/PutTelemetryRecords support no resource-level
    /// permissions: AWS only grants them on "*" (the one wildcard the policy tests allow in
    /// the service roles).
    pub fn xray_tracing() -> Statement {
        Statement::allow(
            "XRayTracing",
            &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            vec!["*".into()],
        )
    }
}

/// An IAM policy document; rendered as a JSON string so Terraform interpolates the references.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: "2012-10-17",
            statement,
        }
    }

    pub fn render(&self) -> String {
        serde_json::to_string(self).expect("policy documents are plain data")
    }
}

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

/// A role a service assumes, with one inline policy of exactly `statements` and any
/// AWS-managed policies (by name under `arn:<partition>:iam::aws:policy/`).
///
/// In environments with `[delivery]` the role carries the permissions boundary
/// ([`permissions_boundary`]). The deploy role may only create, and add permissions to,
/// `<prefix>*` roles that carry it. Without the boundary, the deploy role could create a role
/// with `*:*` and pass it to a function it controls. The boundary must allow what `statements`
/// and `managed` grant ([`boundary::statements`]; the tests check).
#[allow(clippy::too_many_arguments)]
pub fn service_role(
    stack: &mut Stack,
    config: &Config,
    account: &Account,
    logical: &str,
    name: &str,
    service: &str,
    statements: Vec<Statement>,
    managed: &[&str],
) -> Role {
    let assume = PolicyDocument::new(vec![Statement {
        sid: None,
        effect: "Allow",
        principal: Some(json!({ "Service": service })),
        action: vec!["sts:AssumeRole".into()],
        resource: Vec::new(),
        condition: None,
    }]);
    let mut assume = serde_json::to_value(&assume).expect("plain data");
    // Trust policies have no Resource element.
    assume["Statement"][0]
        .as_object_mut()
        .expect("object")
        .remove("Resource");
    let mut body = json!({ "name": name, "assume_role_policy": assume.to_string() });
    if let Some(arn) = permissions_boundary(config, account) {
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
    for (i, policy_name) in managed.iter().enumerate() {
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

/// The application secret (Secrets Manager), encrypted with the stack key. Functions get its
/// ARN, never its value, in their environment.
#[derive(Clone, Debug)]
pub struct Secret {
    r: Ref,
}

impl Secret {
    pub fn arn(&self) -> Expr {
        self.r.attr("arn")
    }
}

pub fn app_secret(
    stack: &mut Stack,
    name: &str,
    key: &Key,
    rotation: Option<(&str, u32)>,
) -> Secret {
    let secret = stack.resource(
        "aws_secretsmanager_secret",
        "app",
        json!({
            "name": name,
            "description": "Application secrets read by the functions at start-up",
            "kms_key_id": key.arn(),
            "recovery_window_in_days": 7,
        }),
    );
    if let Some((lambda_arn, days)) = rotation {
        stack.resource(
            "aws_secretsmanager_secret_rotation",
            "app",
            json!({
                "secret_id": secret.attr("id"),
                "rotation_lambda_arn": lambda_arn,
                "rotation_rules": [{ "automatically_after_days": days }],
            }),
        );
    }
    Secret { r: secret }
}
