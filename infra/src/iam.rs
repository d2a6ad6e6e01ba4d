//! IAM primitives every construct builds policies from: the account a stack deploys into (the
//! ARNs IAM needs), typed statements, policy documents, and packing statements into managed
//! policies under IAM's size limit. Depends on no construct, so each construct can offer the
//! statements for its own resources and the roles compose them.
//!
//! Policies are typed statements, rendered to JSON strings whose resources are Terraform
//! references, so least privilege is visible in code review and checkable in tests.

use crate::config::{Names, STAGE_TAG};
use crate::tf::{Expr, Stack};
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

    /// An explicit Deny, which no Allow can override.
    pub fn deny(sid: &str, actions: &[&str], resources: Vec<String>) -> Statement {
        Statement {
            effect: "Deny",
            ..Statement::allow(sid, actions, resources)
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

    /// DynamoDB fine-grained access: no item whose partition key is like one of `patterns`
    /// (IAM `*` wildcards), so a function that must delete sessions cannot delete the log-in
    /// counters and log-out markers that share their table.
    pub fn except_leading_keys(self, patterns: &[&str]) -> Statement {
        self.require(
            "ForAllValues:StringNotLike",
            "dynamodb:LeadingKeys",
            patterns,
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

/// What a grant on an encrypted resource needs of the customer-managed key under it, as the AWS
/// CDK's grants carry `keyActions` beside their resource actions (`table.grantReadData()` also
/// grants the key's `kms:Decrypt`): a role that only reads never gets the actions that encrypt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyActions {
    decrypt: bool,
    encrypt: bool,
    generate_data_key: bool,
}

impl KeyActions {
    /// No data under the key: metadata calls (`dynamodb:DescribeTable`).
    pub const NONE: KeyActions = KeyActions {
        decrypt: false,
        encrypt: false,
        generate_data_key: false,
    };
    /// Reading what the key protects: `kms:Decrypt`.
    pub const DECRYPT: KeyActions = KeyActions {
        decrypt: true,
        encrypt: false,
        generate_data_key: false,
    };
    /// Writing what the key protects: `kms:Encrypt` and `kms:GenerateDataKey`, with the
    /// `kms:Decrypt` a write needs as well.
    pub const ENCRYPT_DECRYPT: KeyActions = KeyActions {
        decrypt: true,
        encrypt: true,
        generate_data_key: true,
    };
    /// Sending to an encrypted SQS queue: `kms:GenerateDataKey` and `kms:Decrypt`, no
    /// `kms:Encrypt` (what a producer needs, "Configure KMS permissions for producers" in
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html>).
    pub const SEND_TO_QUEUE: KeyActions = KeyActions {
        decrypt: true,
        encrypt: false,
        generate_data_key: true,
    };

    /// Writing a Secrets Manager secret's value: Secrets Manager makes a data key to encrypt
    /// it (`kms:GenerateDataKey`) and decrypts the current one (`kms:Decrypt`); no
    /// `kms:Encrypt` (the rotation template's policy).
    pub const PUT_SECRET: KeyActions = KeyActions {
        decrypt: true,
        encrypt: false,
        generate_data_key: true,
    };

    /// What both need.
    pub fn union(self, other: KeyActions) -> KeyActions {
        KeyActions {
            decrypt: self.decrypt || other.decrypt,
            encrypt: self.encrypt || other.encrypt,
            generate_data_key: self.generate_data_key || other.generate_data_key,
        }
    }

    /// The KMS actions, in a fixed order; empty for [`KeyActions::NONE`].
    pub fn actions(self) -> Vec<&'static str> {
        [
            (self.decrypt, "kms:Decrypt"),
            (self.encrypt, "kms:Encrypt"),
            (self.generate_data_key, "kms:GenerateDataKey"),
        ]
        .into_iter()
        .filter_map(|(granted, action)| granted.then_some(action))
        .collect()
    }
}

/// A grant on a resource for a service role: its statements and what it needs of the key the
/// resource is encrypted with. The role composes the key actions of all its grants into one
/// statement on the key (`constructs::compute`).
#[derive(Clone, Debug)]
pub struct Grant {
    pub statements: Vec<Statement>,
    pub key: KeyActions,
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

/// Where a role's statements apply: the account and region a stack deploys into and the
/// environment's names and ownership tags. Each construct builds the statements that manage its
/// resources from it, and the deploy role composes them (`constructs::delivery`); the stages
/// role composes the same statements with a scope over the environment's pull-request stages.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub account: &'a Account,
    /// The configured region (a literal, so ARNs in policies are exact).
    pub region: &'a str,
    /// The name prefix of what the statements reach: the environment's (`prod-service-`), a
    /// stage's (`dev-service-pr-12-`), or every pull-request stage's as an IAM pattern
    /// (`dev-service-pr-*-`), which every name-scoped ARN is built from.
    pub prefix: &'a str,
    /// The environment's name (`prod`), its `Environment` tag.
    pub environment: &'a str,
    /// The environment's own prefix (`dev-service-`), the same for its stages: what names the
    /// bootstrap stack's resources, which the stages share, and its `Project` tag.
    pub base_prefix: &'a str,
    /// The `Stage` tags of the resources reached (`pr-*`, an IAM pattern), or `None` for the
    /// environment as a whole. With a pattern, every tag condition also asks for it, so a
    /// statement on resources with generated ids never reaches the base environment's.
    pub stage: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The naming handle for `<prefix><name>`.
    pub fn names(&self) -> Names<'_> {
        Names(self.prefix)
    }

    /// The scope of what the bootstrap stack made (keys, buckets, the signing profile and
    /// config), which the stages share with their environment.
    pub fn shared(&self) -> Scope<'a> {
        Scope {
            prefix: self.base_prefix,
            stage: None,
            ..self.clone()
        }
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn in_region(&self, service: &str, resource: &str) -> String {
        let (p, a) = (&self.account.partition, &self.account.account_id);
        format!("arn:{p}:{service}:{}:{a}:{resource}", self.region)
    }

    /// The `Project` tag: the environment's prefix without its trailing `-`.
    pub fn project(&self) -> &str {
        self.base_prefix.trim_end_matches('-')
    }

    /// The provider's default tags put these on everything the stacks create. Where AWS names a
    /// resource by a generated id, they are what makes it this environment's: `owned` for what
    /// exists ([`Scope::tagging`] for a create request). See
    /// https://docs.aws.amazon.com/IAM/latest/UserGuide/access_tags.html
    pub fn owned(&self) -> Value {
        json!({
            "aws:ResourceTag/Project": self.project(),
            "aws:ResourceTag/Environment": self.environment,
        })
    }

    /// This environment's tags in a create request (tag-on-create).
    pub fn tagging(&self) -> Value {
        json!({
            "aws:RequestTag/Project": self.project(),
            "aws:RequestTag/Environment": self.environment,
        })
    }

    /// The condition that a resource is this scope's: [`Scope::owned`], and its `Stage` tag
    /// for a scope over stages.
    pub fn owned_condition(&self) -> Value {
        self.within_stages(json!({ "StringEquals": self.owned() }))
    }

    /// The condition that a create request tags the resource as this scope's:
    /// [`Scope::tagging`], and the `Stage` tag for a scope over stages.
    pub fn tagging_condition(&self) -> Value {
        let mut condition = json!({ "StringEquals": self.tagging() });
        if let Some(stage) = self.stage {
            condition["StringLike"] = json!({ format!("aws:RequestTag/{STAGE_TAG}"): stage });
        }
        condition
    }

    /// `condition` and, for a scope over stages, that the resource's `Stage` tag is one of
    /// them (a resource without the tag, the base environment's, never is).
    pub fn within_stages(&self, mut condition: Value) -> Value {
        if let Some(stage) = self.stage {
            condition["StringLike"] = json!({ format!("aws:ResourceTag/{STAGE_TAG}"): stage });
        }
        condition
    }

    /// The tags that make a resource this scope's, which only a create request sets: changing
    /// them would move a resource out of the scope, or another in.
    pub fn ownership_tag_keys(&self) -> Vec<&'static str> {
        let mut keys = vec!["Project", "Environment"];
        if self.stage.is_some() {
            keys.push(STAGE_TAG);
        }
        keys
    }
}

/// Every action the deploy role is granted on `"*"`, with the reason: the one list of
/// exceptions to "no `*` resource" (the policy tests and [`star`] accept nothing else). Each
/// is used only by statements for options the environment turns on.
pub const STAR_ACTIONS: &[(&str, &str)] = &[
    (
        "logs:DescribeLogGroups",
        "a List call without resource-level permissions (CloudWatch Logs authorizes it only on \"*\"): https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html",
    ),
    (
        "kms:ListAliases",
        "no resource-level permissions (a List call); Terraform reads every aws_kms_alias through it",
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
        "lambda:CreateEventSourceMapping",
        "the mapping's ARN holds an id Lambda makes at creation, so no resource can name it; the statement's lambda:FunctionArn condition keeps it to this environment's functions",
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
pub fn star(sid: &str, actions: &[&str]) -> Statement {
    for action in actions {
        assert!(
            STAR_ACTIONS.iter().any(|(a, _)| a == action),
            "{action} is granted on \"*\" but is not in STAR_ACTIONS"
        );
    }
    Statement::allow(sid, actions, vec!["*".into()])
}

/// Tagging and untagging a resource that is already `scope`'s, but never its ownership tags
/// ([`Scope::ownership_tag_keys`]): changing those would move it out of the scope, or another in.
pub fn tags_except_ownership(
    sid: &str,
    actions: &[&str],
    resources: Vec<String>,
    scope: &Scope,
) -> Statement {
    let mut condition = scope.owned_condition();
    condition["ForAllValues:StringNotEquals"] =
        json!({ "aws:TagKeys": scope.ownership_tag_keys() });
    Statement::allow(sid, actions, resources).condition(condition)
}

/// `iam:CreateServiceLinkedRole` for exactly one service's role, by its fixed ARN.
pub fn service_linked_role(p: &Expr, a: &Expr, sid: &str, service: &str, role: &str) -> Statement {
    Statement::allow(
        sid,
        &["iam:CreateServiceLinkedRole"],
        vec![format!(
            "arn:{p}:iam::{a}:role/aws-service-role/{service}/{role}"
        )],
    )
    .condition(json!({ "StringEquals": { "iam:AWSServiceName": service } }))
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
pub fn pack(statements: Vec<Statement>) -> Vec<Vec<Statement>> {
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
