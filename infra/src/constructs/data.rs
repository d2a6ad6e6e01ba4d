//! DynamoDB tables, created as `catalog::tables` describes them, and the grants on them: a
//! function's role gets its table statements from here ([`Tables::grant`]), as in the AWS CDK
//! (`table.grantReadWriteData(role)`), so ARNs, conditions and what each grant needs of the
//! tables' key are decided in one place.

use super::security::Key;
use crate::config::{Autoscaling, Billing, Data};
use crate::iam::{Grant, KeyActions, Scope, Statement, service_linked_role, star};
use crate::tf::{Expr, Ref, Stack};
use catalog::tables::{SESSIONS, TableSpec, USERS};
use serde_json::{Value, json};

/// A table handle; `index_arn` only accepts indexes the table has.
#[derive(Clone, Debug)]
pub struct Table {
    r: Ref,
    spec: TableSpec,
}

impl Table {
    pub fn arn(&self) -> Expr {
        self.r.attr("arn")
    }
    pub fn name(&self) -> Expr {
        self.r.attr("name")
    }
    pub fn logical(&self) -> &'static str {
        self.spec.logical
    }

    /// The ARN of one of this table's indexes.
    ///
    /// # Panics
    /// When the table has no such index: a wrong index name in an IAM policy is a bug that
    /// would otherwise only show as AccessDenied in production.
    pub fn index_arn(&self, index: &str) -> String {
        assert!(
            self.spec.indexes.iter().any(|i| i.name == index),
            "table {} has no index {index}",
            self.spec.logical
        );
        format!("{}/index/{index}", self.arn())
    }
}

/// The service's tables.
#[derive(Clone, Debug)]
pub struct Tables {
    pub users: Table,
    pub sessions: Table,
}

impl Tables {
    /// The table called `logical`.
    ///
    /// # Panics
    /// When the service has no such table; the catalog's build already refuses grants on one.
    pub fn get(&self, logical: &str) -> &Table {
        [&self.users, &self.sessions]
            .into_iter()
            .find(|t| t.logical() == logical)
            .unwrap_or_else(|| panic!("the service has no table {logical}"))
    }

    /// The statement a function's declared grant stands for: its actions on its tables (or
    /// the index of its table), limited to its attributes (`dynamodb:Attributes`, the key
    /// included), to returning nothing (`dynamodb:ReturnValues`) and away from some keys
    /// (`dynamodb:LeadingKeys`) where it says so; and what its actions need of the tables' key
    /// ([`key_actions`]).
    pub fn grant(&self, grant: &catalog::Grant) -> Grant {
        let resources = grant
            .tables
            .iter()
            .map(|&logical| {
                let table = self.get(logical);
                match grant.index {
                    Some(index) => table.index_arn(index),
                    None => table.arn().to_string(),
                }
            })
            .collect();
        let mut statement = Statement::allow(grant.sid, grant.actions, resources);
        if !grant.only_attributes.is_empty() {
            statement = statement.only_attributes(grant.only_attributes);
        }
        if grant.returning_nothing {
            statement = statement.returning_nothing();
        }
        if !grant.except_keys.is_empty() {
            statement = statement.except_leading_keys(grant.except_keys);
        }
        Grant {
            statements: vec![statement],
            key: grant.actions.iter().fold(KeyActions::NONE, |key, action| {
                key.union(key_actions(action))
            }),
        }
    }
}

/// What a DynamoDB action needs of the customer-managed key the tables are encrypted with.
/// DynamoDB decrypts the table's key with the caller's credentials for every item read and
/// write, so both need `kms:Decrypt`: a `PutItem` or `DeleteItem` without it is refused
/// (<https://github.com/aws/aws-cdk/issues/10010>, <https://github.com/aws/aws-cdk/issues/19531>;
/// the CDK's `grantWriteData` has carried the read key actions since
/// <https://github.com/aws/aws-cdk/pull/19102>). Writes also get `kms:Encrypt` and
/// `kms:GenerateDataKey`, as `KEY_WRITE_ACTIONS` of the CDK's `aws-dynamodb/lib/perms.ts`. Table
/// metadata (`DescribeTable`) is not encrypted with the key.
///
/// # Panics
/// For an action not classified here: granting it must decide what it needs of the key, and a
/// panic at synth (which every infra test runs) makes that decision happen.
pub fn key_actions(action: &str) -> KeyActions {
    match action {
        "dynamodb:DescribeTable" => KeyActions::NONE,
        "dynamodb:GetItem"
        | "dynamodb:BatchGetItem"
        | "dynamodb:Query"
        | "dynamodb:Scan"
        | "dynamodb:ConditionCheckItem" => KeyActions::DECRYPT,
        "dynamodb:PutItem"
        | "dynamodb:UpdateItem"
        | "dynamodb:DeleteItem"
        | "dynamodb:BatchWriteItem" => KeyActions::ENCRYPT_DECRYPT,
        other => panic!(
            "infra does not know what {other} needs of the tables' KMS key: classify it in `constructs::data::key_actions`"
        ),
    }
}

/// Creates the users and sessions tables.
pub fn tables(stack: &mut Stack, prefix: &str, data: &Data, key: &Key) -> Tables {
    Tables {
        users: table(stack, prefix, data, key, USERS),
        sessions: table(stack, prefix, data, key, SESSIONS),
    }
}

fn table(stack: &mut Stack, prefix: &str, data: &Data, key: &Key, spec: TableSpec) -> Table {
    let name = format!("{prefix}{}", spec.logical);
    let mut attributes = vec![spec.hash_key];
    for index in spec.indexes {
        attributes.push(index.hash_key);
        attributes.extend(index.range_key);
    }
    attributes.sort_unstable();
    attributes.dedup();
    let provisioned = match (data.billing, &data.autoscaling) {
        (Billing::Provisioned, Some(scaling)) => Some(scaling),
        _ => None,
    };
    let indexes: Vec<Value> = spec
        .indexes
        .iter()
        .map(|index| {
            let mut gsi = json!({ "name": index.name, "hash_key": index.hash_key, "projection_type": index.projection });
            if let Some(range) = index.range_key {
                gsi["range_key"] = json!(range);
            }
            if let Some(scaling) = provisioned {
                gsi["read_capacity"] = json!(scaling.min_capacity);
                gsi["write_capacity"] = json!(scaling.min_capacity);
            }
            gsi
        })
        .collect();
    let mut body = json!({
        "name": name,
        "billing_mode": if provisioned.is_some() { "PROVISIONED" } else { "PAY_PER_REQUEST" },
        "hash_key": spec.hash_key,
        "attribute": attributes.iter().map(|a| json!({ "name": a, "type": "S" })).collect::<Vec<_>>(),
        "global_secondary_index": indexes,
        "point_in_time_recovery": [{ "enabled": true }],
        "server_side_encryption": [{ "enabled": true, "kms_key_arn": key.arn() }],
        "deletion_protection_enabled": data.deletion_protection,
    });
    if let Some(attribute) = spec.ttl_attribute {
        body["ttl"] = json!([{ "attribute_name": attribute, "enabled": true }]);
    }
    if let Some(scaling) = provisioned {
        body["read_capacity"] = json!(scaling.min_capacity);
        body["write_capacity"] = json!(scaling.min_capacity);
        // Autoscaling owns capacity after creation; Terraform must not fight it.
        body["lifecycle"] = json!({ "ignore_changes": ["read_capacity", "write_capacity", "global_secondary_index"] });
    }
    let r = stack.resource("aws_dynamodb_table", spec.logical, body);
    let table = Table { r, spec };
    if let Some(scaling) = provisioned {
        autoscale(
            stack,
            &table,
            &format!("table/{name}"),
            "table",
            spec.logical,
            scaling,
        );
        for index in spec.indexes {
            let logical = format!("{}_{}", spec.logical, index.name.replace('-', "_"));
            autoscale(
                stack,
                &table,
                &format!("table/{name}/index/{}", index.name),
                "index",
                &logical,
                scaling,
            );
        }
    }
    table
}

/// Target tracking on read and write capacity for a table or index.
fn autoscale(
    stack: &mut Stack,
    table: &Table,
    resource_id: &str,
    dimension: &str,
    logical: &str,
    scaling: &Autoscaling,
) {
    for (direction, metric) in [
        ("read", "DynamoDBReadCapacityUtilization"),
        ("write", "DynamoDBWriteCapacityUtilization"),
    ] {
        let capacity = if direction == "read" {
            "ReadCapacityUnits"
        } else {
            "WriteCapacityUnits"
        };
        let target = stack.resource(
            "aws_appautoscaling_target",
            &format!("{logical}_{direction}"),
            json!({
                "service_namespace": "dynamodb",
                "resource_id": resource_id,
                "scalable_dimension": format!("dynamodb:{dimension}:{capacity}"),
                "min_capacity": scaling.min_capacity,
                "max_capacity": scaling.max_capacity,
                "depends_on": [table.r.addr()],
            }),
        );
        stack.resource(
            "aws_appautoscaling_policy",
            &format!("{logical}_{direction}"),
            json!({
                "name": format!("{}-{direction}", resource_id.replace('/', "-")),
                "policy_type": "TargetTrackingScaling",
                "service_namespace": target.attr("service_namespace"),
                "resource_id": target.attr("resource_id"),
                "scalable_dimension": target.attr("scalable_dimension"),
                "target_tracking_scaling_policy_configuration": [{
                    "target_value": scaling.target_utilization,
                    "predefined_metric_specification": [{ "predefined_metric_type": metric }],
                }],
            }),
        );
    }
}

/// What the deploy role needs to manage the tables' settings (smoke's item rights are
/// [`smoke_statements`]).
pub fn management_statements(scope: &Scope) -> Vec<Statement> {
    vec![Statement::allow(
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
        vec![scope.in_region("dynamodb", &format!("table/{}*", scope.prefix))],
    )]
}

/// What the deploy role needs to manage the tables' autoscaling (`[data.autoscaling]`).
pub fn autoscaling_management_statements(scope: &Scope) -> Vec<Statement> {
    vec![
        star(
            "TableAutoscalingReads",
            &[
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
            ],
        ),
        Statement::allow(
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
            vec![scope.in_region("application-autoscaling", "scalable-target/*")],
        ),
        service_linked_role(
            &scope.account.partition,
            &scope.account.account_id,
            "TableAutoscalingServiceLinkedRole",
            "dynamodb.application-autoscaling.amazonaws.com",
            "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable",
        ),
    ]
}

/// What smoke needs of the tables' items: by key only, the items it created (`USER#<id>`,
/// `EMAIL#<email>`, its sessions' token hashes, its users' `logout#<id>` markers, the user's
/// sessions through `by-user`), read and deleted. No Scan: it would let the deploy job dump every
/// e-mail address and password hash.
pub fn smoke_statements(scope: &Scope) -> Vec<Statement> {
    let table = |spec: &TableSpec| {
        scope.in_region(
            "dynamodb",
            &format!("table/{}{}", scope.prefix, spec.logical),
        )
    };
    let by_user = "by-user";
    assert!(
        SESSIONS.indexes.iter().any(|i| i.name == by_user),
        "the sessions table has no index {by_user}"
    );
    vec![Statement::allow(
        "SmokeTestItems",
        &["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:Query"],
        vec![
            table(&USERS),
            table(&SESSIONS),
            format!("{}/index/{by_user}", table(&SESSIONS)),
        ],
    )]
}
