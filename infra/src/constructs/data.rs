//! DynamoDB tables, created exactly as the cross-crate contract's schema says.

use super::security::Key;
use crate::config::{Autoscaling, Billing, Data};
use crate::iam::{Scope, Statement, service_linked_role, star};
use crate::tf::{Expr, Ref, Stack};
use serde_json::{Value, json};

/// A global secondary index of a table.
#[derive(Clone, Copy, Debug)]
pub struct Index {
    pub name: &'static str,
    pub hash_key: &'static str,
    pub range_key: Option<&'static str>,
    pub projection: &'static str,
}

/// What a table looks like; attributes are all strings except the TTL attribute, which is
/// never a key and so needs no definition.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    pub logical: &'static str,
    pub hash_key: &'static str,
    pub indexes: &'static [Index],
    pub ttl_attribute: Option<&'static str>,
}

/// Users: `pk` (USER#<id> and EMAIL#<email> items), listed through `by-kind`.
pub const USERS: TableSpec = TableSpec {
    logical: "users",
    hash_key: "pk",
    indexes: &[Index {
        name: "by-kind",
        hash_key: "kind",
        range_key: Some("created_at"),
        projection: "ALL",
    }],
    ttl_attribute: None,
};

/// Sessions: keyed by the token's SHA-256, expiring through TTL on `expires_at`.
pub const SESSIONS: TableSpec = TableSpec {
    logical: "sessions",
    hash_key: "token_hash",
    indexes: &[Index {
        name: "by-user",
        hash_key: "user_id",
        range_key: None,
        projection: "KEYS_ONLY",
    }],
    ttl_attribute: Some("expires_at"),
};

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

/// What the deploy role needs to manage the tables' settings (smoke's item rights are the deploy
/// role's own, `constructs::delivery`).
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
