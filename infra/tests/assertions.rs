//! Focused assertions on the synthesized stacks: naming, least privilege, routes, and the
//! environment-file error messages.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn stacks(env: &str) -> Vec<(String, Value)> {
    infra::synth::render(
        &infra::load_config(env).unwrap(),
        &common::fixed_options(env),
    )
}

fn resources(stack: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    stack["resource"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(ty, by_name)| {
            by_name
                .as_object()
                .unwrap()
                .iter()
                .map(move |(name, body)| (ty.as_str(), name.as_str(), body))
        })
}

/// Keys that hold an AWS name, per resource type.
const NAME_KEYS: [&str; 6] = [
    "name",
    "function_name",
    "alarm_name",
    "dashboard_name",
    "name_prefix",
    "bucket",
];

/// The AWS names `body` (a resource of type `ty`) gives, without Terraform references: the
/// alias name `live` is fixed by the contract; a bucket sub-resource's `bucket` is a
/// reference, not a name.
fn names_of<'a>(ty: &str, body: &'a Value) -> Vec<&'a str> {
    if ty == "aws_lambda_alias" {
        return Vec::new();
    }
    let mut names: Vec<&str> = NAME_KEYS
        .iter()
        .filter(|k| **k != "bucket" || ty == "aws_s3_bucket")
        .filter_map(|k| body.get(*k).and_then(Value::as_str))
        .collect();
    names.extend(body.pointer("/tags/Name").and_then(Value::as_str));
    names.retain(|n| !n.starts_with("${"));
    names
}

#[test]
fn every_named_resource_carries_the_prefix() {
    for env in infra::ENVIRONMENTS {
        let prefix = infra::load_config(env).unwrap().prefix;
        let underscored = prefix.replace('-', "_");
        for (_, stack) in stacks(env) {
            for (ty, name, body) in resources(&stack) {
                for n in names_of(ty, body) {
                    assert!(
                        n.contains(&prefix) || n.contains(&underscored),
                        "{env}: {ty}.{name} is named {n:?}, without {prefix:?}"
                    );
                }
            }
        }
    }
}

/// AWS's length limit of a resource type's name (the key [`names_of`] reads it from), for the
/// types whose limit is under 255; every other name is held to 255.
fn name_limit(ty: &str, key: &str) -> usize {
    match (ty, key) {
        (_, "name_prefix") => 38, // IAM: the prefix plus a 26-character suffix in 64
        ("aws_lambda_function", _) => 64,
        ("aws_iam_role", _) => 64,
        ("aws_scheduler_schedule" | "aws_scheduler_schedule_group", _) => 64,
        ("aws_signer_signing_profile", _) => 64,
        ("aws_s3_bucket", _) => 63,
        ("aws_sqs_queue", _) => 80,
        ("aws_iam_policy" | "aws_iam_role_policy" | "aws_wafv2_web_acl", _) => 128,
        _ => 255,
    }
}

/// `name` with each Terraform interpolation at the longest value it takes: an account id has 12
/// digits, a region name at most 14 characters (`ap-southeast-4`).
fn at_longest(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let reference = &rest[start..end];
        let longest = if reference.contains("account_id") {
            12
        } else if reference.contains("region") {
            14
        } else {
            panic!("{name:?}: no longest value known for {reference}")
        };
        out.push_str(&"x".repeat(longest));
        rest = &rest[end..];
    }
    out + rest
}

/// Every AWS name fits its limit at the longest prefix an environment may have
/// (`config::PREFIX_MAX`), whether the file sets it or a stage makes it: each shipped
/// environment's stacks with its prefix padded to the limit, and, where the file allows
/// stages, the service stack of its longest stage name.
#[test]
fn every_name_fits_its_limit() {
    let mut checked = 0;
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let mut configs = Vec::new();
        let mut padded = config.clone();
        padded.prefix = format!("{}-", "p".repeat(infra::config::PREFIX_MAX - 1));
        configs.push(padded);
        if config.stages {
            let room = infra::config::PREFIX_MAX - config.prefix.len() - 1;
            let longest = format!("pr-{}", "9".repeat(room - 3));
            let staged = config.for_stage(&longest).unwrap();
            assert_eq!(staged.prefix.len(), infra::config::PREFIX_MAX);
            assert!(
                config.for_stage(&format!("{longest}9")).is_err(),
                "{env}: a stage name one longer is refused"
            );
            configs.push(staged);
        }
        for config in configs {
            for (stack_name, stack) in infra::synth::render(&config, &common::fixed_options(env)) {
                for (ty, name, body) in resources(&stack) {
                    for key in NAME_KEYS {
                        let Some(n) = body.get(key).and_then(Value::as_str) else {
                            continue;
                        };
                        if ty == "aws_lambda_alias" || (key == "bucket" && ty != "aws_s3_bucket") {
                            continue;
                        }
                        if n.starts_with("${") && n.ends_with('}') && n.matches("${").count() == 1 {
                            continue; // a reference to another resource's name
                        }
                        let longest = at_longest(n);
                        let limit = name_limit(ty, key);
                        checked += 1;
                        assert!(
                            longest.len() <= limit,
                            "{env} (prefix {:?}): {stack_name} {ty}.{name} {key} {n:?} is {} characters at its longest; AWS allows {limit}",
                            config.prefix,
                            longest.len()
                        );
                    }
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} names checked");
}

/// The stages role reaches every name that starts with `<prefix>pr-`
/// (`infra::constructs::delivery::stages_role`): no resource of an environment's own stacks may
/// be named so, whatever the catalog (functions, queues, secrets, schedules) and the
/// environment file (clients) add.
#[test]
fn no_name_of_an_environment_is_a_pull_request_stages() {
    use infra::config::PR_STAGE_PREFIX;
    for env in infra::ENVIRONMENTS {
        let prefix = infra::load_config(env).unwrap().prefix;
        let reserved = format!("{prefix}{PR_STAGE_PREFIX}");
        let underscored = reserved.replace('-', "_");
        let mut checked = 0;
        for (stack_name, stack) in stacks(env) {
            if !infra::STACKS.contains(&stack_name.as_str()) {
                continue;
            }
            for (ty, name, body) in resources(&stack) {
                for n in names_of(ty, body) {
                    checked += 1;
                    assert!(
                        !n.starts_with(&reserved) && !n.starts_with(&underscored),
                        "{env}: {stack_name} {ty}.{name} is named {n:?}, which the stages role of {reserved:?}* may change"
                    );
                }
            }
        }
        assert!(checked > 30, "{env}: only {checked} names");
    }
}

/// The actions and resources of one policy statement.
type Statement = (Vec<String>, Vec<String>);

/// `(actions, resources)` of every statement of every role policy in a stack: inline ones
/// and customer-managed ones (the delivery stack's deploy role).
fn role_policies(stack: &Value) -> BTreeMap<String, Vec<Statement>> {
    let mut out = BTreeMap::new();
    for (ty, name, body) in resources(stack) {
        if ty != "aws_iam_role_policy" && ty != "aws_iam_policy" {
            continue;
        }
        let doc: Value = serde_json::from_str(body["policy"].as_str().unwrap()).unwrap();
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
                _ => panic!("unexpected {v}"),
            }
        };
        let statements = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (strings(&s["Action"]), strings(&s["Resource"])))
            .collect();
        out.insert(name.to_owned(), statements);
    }
    out
}

/// No policy of any stack names a wildcard action, and `"*"` resources are only granted to
/// X-Ray (the function roles) and to the actions in the one exceptions list,
/// `infra::iam::STAR_ACTIONS` (the deploy role), each listed with its reason.
#[test]
fn no_wildcards_except_xray_and_the_listed_exceptions() {
    let listed = |a: &str| {
        infra::iam::STAR_ACTIONS
            .iter()
            .any(|(action, why)| *action == a && !why.is_empty())
    };
    for env in infra::ENVIRONMENTS {
        for (_, stack) in stacks(env) {
            for (role, statements) in role_policies(&stack) {
                for (actions, resources) in statements {
                    assert!(
                        actions.iter().all(|a| !a.contains('*')),
                        "{env}: {role} has a wildcard action in {actions:?}"
                    );
                    if resources.iter().any(|r| r == "*") {
                        assert!(
                            actions.iter().all(|a| a.starts_with("xray:") || listed(a)),
                            "{env}: {role} grants {actions:?} on \"*\"; only X-Ray (no resource-level permissions) and iam::STAR_ACTIONS may"
                        );
                    }
                }
            }
        }
    }
}

/// The whole statements (conditions included) of the function roles' inline policies in a
/// stack, by function: `users_function` -> `users`.
fn function_statements(stack: &Value) -> BTreeMap<String, Vec<Value>> {
    resources(stack)
        .filter(|(ty, _, _)| *ty == "aws_iam_role_policy")
        .filter_map(|(_, name, body)| {
            let function = name.strip_suffix("_function")?;
            let doc: Value = serde_json::from_str(body["policy"].as_str().unwrap()).unwrap();
            Some((
                function.to_owned(),
                doc["Statement"].as_array().unwrap().clone(),
            ))
        })
        .collect()
}

/// A string or a list of strings, as IAM allows either.
fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        _ => panic!("expected a string or a list of strings, got {v}"),
    }
}

/// A condition block in one canonical text: keys sorted, a single value and a one-element list
/// alike, lists as sets (IAM reads them so). `-` when there is none.
fn canonical_condition(condition: Option<&Value>) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Value> =
                    map.iter().map(|(k, v)| (k, canonical(v))).collect();
                serde_json::to_value(sorted).unwrap()
            }
            Value::String(_) | Value::Array(_) => {
                let set: BTreeSet<String> = string_list(v).into_iter().collect();
                serde_json::to_value(set).unwrap()
            }
            other => other.clone(),
        }
    }
    match condition {
        None | Some(Value::Null) => "-".to_owned(),
        Some(c) => canonical(c).to_string(),
    }
}

/// What a DynamoDB resource of a function policy is: `table users`, `index by-kind`, ...
fn table_resource_kind(resource: &str) -> Option<String> {
    let rest = resource.strip_prefix("${aws_dynamodb_table.")?;
    let (table, after) = rest.split_once(".arn}")?;
    Some(match after.strip_prefix("/index/") {
        Some(index) => format!("index {index}"),
        None if after.is_empty() => format!("table {table}"),
        None => panic!("unexpected table resource {resource}"),
    })
}

/// Exactly these DynamoDB grants, per function: (action, resource, condition). Any other action,
/// resource or condition, and any missing one, fails with the function and the action named.
#[test]
fn each_function_has_exactly_its_table_grants() {
    let only = |attributes: &[&str]| serde_json::json!({ "ForAllValues:StringEquals": { "dynamodb:Attributes": attributes } });
    // The users function may touch session items only: never a log-in counter (it would
    // reset the guessing limit) nor a log-out marker (it would revive revoked sessions).
    let session_keys_only = serde_json::json!({
        "ForAllValues:StringNotLike": { "dynamodb:LeadingKeys": ["login#*", "logout#*"] },
    });
    let session_claim = serde_json::json!({
        "ForAllValues:StringEquals": {
            "dynamodb:Attributes": ["token_hash", "generation", "reauth_claim"]
        },
        "StringEqualsIfExists": { "dynamodb:ReturnValues": ["NONE"] },
        "ForAllValues:StringNotLike": { "dynamodb:LeadingKeys": ["login#*", "logout#*"] },
    });
    let generation_check = only(&["pk", "session_generation"]);
    // The one write on the users table for sessions is a log-in's password hash upgrade (to
    // the current pepper key): that attribute only, on user items only, returning nothing. A
    // compromised sessions function cannot lower a session generation (reviving revoked
    // tokens) or plant an `EMAIL#` item.
    let hash_upgrade = serde_json::json!({
        "ForAllValues:StringEquals": { "dynamodb:Attributes": ["password_hash", "pk"] },
        "StringEqualsIfExists": { "dynamodb:ReturnValues": ["NONE"] },
        "ForAllValues:StringNotLike": { "dynamodb:LeadingKeys": ["EMAIL#*"] },
    });
    let grants: &[(&str, &str, &str, Option<&Value>)] = &[
        ("health", "DescribeTable", "table users", None),
        ("health", "DescribeTable", "table sessions", None),
        ("users", "GetItem", "table users", None),
        ("users", "PutItem", "table users", None),
        ("users", "DeleteItem", "table users", None),
        ("users", "Query", "index by-kind", None),
        ("users", "GetItem", "table sessions", None),
        ("users", "ConditionCheckItem", "table sessions", None),
        (
            "users",
            "DeleteItem",
            "table sessions",
            Some(&session_keys_only),
        ),
        (
            "users",
            "UpdateItem",
            "table sessions",
            Some(&session_claim),
        ),
        ("sessions", "GetItem", "table users", None),
        (
            "sessions",
            "ConditionCheckItem",
            "table users",
            Some(&generation_check),
        ),
        ("sessions", "UpdateItem", "table users", Some(&hash_upgrade)),
        ("sessions", "GetItem", "table sessions", None),
        ("sessions", "PutItem", "table sessions", None),
        ("sessions", "UpdateItem", "table sessions", None),
        ("sessions", "DeleteItem", "table sessions", None),
        ("sessions", "ConditionCheckItem", "table sessions", None),
        (
            "sweeper",
            "DeleteItem",
            "table sessions",
            Some(&session_keys_only),
        ),
        ("sweeper", "Query", "index by-user", None),
        ("sweeper", "GetItem", "table users", Some(&generation_check)),
        (
            "sweeper",
            "GetItem",
            "table sessions",
            Some(&only(&["token_hash", "logouts"])),
        ),
        ("table_report", "DescribeTable", "table users", None),
        ("table_report", "DescribeTable", "table sessions", None),
    ];
    let want: BTreeSet<(String, String, String, String)> = grants
        .iter()
        .map(|(function, action, kind, condition)| {
            (
                (*function).to_owned(),
                format!("dynamodb:{action}"),
                (*kind).to_owned(),
                canonical_condition(*condition),
            )
        })
        .collect();
    for env in infra::ENVIRONMENTS {
        let service = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap()
            .1;
        let policies = function_statements(&service);
        assert_eq!(
            policies.keys().collect::<Vec<_>>(),
            [
                "health",
                "rotation",
                "sessions",
                "sweeper",
                "table_report",
                "users"
            ],
            "{env}: the function roles"
        );
        let mut got = BTreeSet::new();
        for (function, statements) in &policies {
            for statement in statements {
                let actions = string_list(&statement["Action"]);
                for resource in string_list(&statement["Resource"]) {
                    if resource.starts_with("${aws_cloudwatch_log_group") {
                        assert_eq!(
                            resource,
                            format!("${{aws_cloudwatch_log_group.{function}.arn}}:*"),
                            "{env}: {function} reaches another log group"
                        );
                    }
                    let dynamo = actions.iter().any(|a| a.starts_with("dynamodb:"));
                    let Some(kind) = table_resource_kind(&resource) else {
                        assert!(
                            !dynamo,
                            "{env}: {function} grants {actions:?} on {resource}, not a table or \
                             index of the stack"
                        );
                        continue;
                    };
                    for action in &actions {
                        got.insert((
                            function.clone(),
                            action.clone(),
                            kind.clone(),
                            canonical_condition(statement.get("Condition")),
                        ));
                    }
                }
            }
        }
        let line = |(function, action, kind, condition): &(String, String, String, String)| {
            format!("  {function}: {action} on {kind}, condition {condition}")
        };
        let extra: Vec<String> = got.difference(&want).map(line).collect();
        let missing: Vec<String> = want.difference(&got).map(line).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{env}: the functions' table grants differ from the list in this test \
             (compute::table_statements).\nGranted but not listed:\n{}\nListed but not granted:\n{}",
            extra.join("\n"),
            missing.join("\n")
        );
    }
}

/// A grant on an encrypted resource carries what it needs of the stack key, as the CDK's
/// `table.grantReadData()` carries `kms:Decrypt`: a function whose declared grants only read or
/// describe (health) may decrypt with the key (its environment variables, the items it reads)
/// and never use it to encrypt; a function that writes items may do both. The dead-letter queue's
/// use of the key is a separate statement that holds only for requests SQS makes
/// (`kms:ViaService`), so it gives no function the key directly.
#[test]
fn function_roles_use_the_stack_key_only_as_their_grants_need() {
    const ITEM_WRITES: [&str; 4] = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ];
    let via = |service: &str| {
        serde_json::json!({ "StringEquals": {
            "kms:ViaService": format!("{service}.${{data.aws_region.current.name}}.amazonaws.com"),
        } })
    };
    let (via_sqs, via_secrets) = (via("sqs"), via("secretsmanager"));
    let mut seen = BTreeMap::new();
    for env in infra::ENVIRONMENTS {
        for (stack_name, stack) in stacks(env) {
            for (function, statements) in function_statements(&stack) {
                let writes = catalog::find(&function)
                    .unwrap_or_else(|| panic!("{function} is in no catalog"))
                    .grants
                    .iter()
                    .flat_map(|g| g.actions)
                    .any(|a| ITEM_WRITES.contains(a));
                let mut direct = BTreeSet::new();
                for statement in &statements {
                    let key_actions: Vec<String> = string_list(&statement["Action"])
                        .into_iter()
                        .filter(|a| a.starts_with("kms:"))
                        .collect();
                    if key_actions.is_empty() {
                        continue;
                    }
                    match statement.get("Condition") {
                        None => direct.extend(key_actions),
                        Some(condition) => assert!(
                            condition == &via_sqs || condition == &via_secrets,
                            "{env}/{stack_name}: {function}'s {} uses the key under another condition",
                            statement["Sid"]
                        ),
                    }
                }
                let expected: &[&str] = if writes {
                    &["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
                } else {
                    &["kms:Decrypt"]
                };
                let expected: BTreeSet<String> = expected.iter().map(|a| (*a).to_owned()).collect();
                assert_eq!(
                    direct, expected,
                    "{env}/{stack_name}: {function} (writes items: {writes}) may use the stack key directly for"
                );
                seen.insert(function, writes);
            }
        }
    }
    // Both kinds exist, so the test checked something of each.
    assert_eq!(seen.get("health"), Some(&false), "{seen:?}");
    assert_eq!(seen.get("users"), Some(&true), "{seen:?}");
}

/// One empty secret per declared name, never a value in Terraform; each function reads exactly
/// the secrets it declares (their ARNs in `SECRET_ARN_<NAME>`, `GetSecretValue` on exactly
/// them, the key only through Secrets Manager), and a function that declares none gets none
/// of it.
/// The references to the ARNs of the declared secrets `names`, as the synthesized JSON holds them.
fn secret_arns(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|s| {
            format!(
                "${{aws_secretsmanager_secret.secret_{}.arn}}",
                s.replace('-', "_")
            )
        })
        .collect()
}

/// A secret with `rotation_days` rotates on its schedule (not at apply) through the `live`
/// alias of the function that `rotates` it, which only Secrets Manager, for that secret, may
/// invoke; a secret without it has no rotation.
#[test]
fn rotated_secrets_invoke_only_their_rotation_function() {
    for env in infra::ENVIRONMENTS {
        let stack = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap()
            .1;
        let rotations: Vec<_> = resources(&stack)
            .filter(|(ty, _, _)| *ty == "aws_secretsmanager_secret_rotation")
            .collect();
        let rotated: Vec<_> = catalog::GENERATED
            .iter()
            .filter(|g| g.rotation_days.is_some())
            .collect();
        assert_eq!(rotations.len(), rotated.len(), "{env}");
        for generated in rotated {
            let logical = format!("secret_{}", generated.name.replace('-', "_"));
            let rotator = catalog::rotator(generated.name).unwrap().name;
            let (_, _, rotation) = rotations.iter().find(|(_, n, _)| *n == logical).unwrap();
            let secret = format!("${{aws_secretsmanager_secret.{logical}.arn}}");
            assert_eq!(rotation["secret_id"], secret, "{env}");
            assert_eq!(
                rotation["rotation_lambda_arn"],
                format!("${{aws_lambda_alias.{rotator}.arn}}"),
                "{env}"
            );
            assert_eq!(rotation["rotate_immediately"], false, "{env}");
            assert_eq!(
                rotation["rotation_rules"][0]["automatically_after_days"],
                generated.rotation_days.unwrap(),
                "{env}"
            );
            let (_, _, permission) = resources(&stack)
                .find(|(ty, n, _)| {
                    *ty == "aws_lambda_permission" && *n == format!("rotate_{logical}")
                })
                .unwrap();
            assert_eq!(
                permission["principal"], "secretsmanager.amazonaws.com",
                "{env}"
            );
            assert_eq!(permission["source_arn"], secret, "{env}");
            assert_eq!(
                permission["function_name"],
                format!("${{aws_lambda_function.{rotator}.function_name}}"),
                "{env}"
            );
            assert_eq!(
                permission["qualifier"],
                format!("${{aws_lambda_alias.{rotator}.name}}"),
                "{env}"
            );
        }
    }
}

#[test]
fn only_declaring_functions_read_their_secrets() {
    let via_secrets = serde_json::json!({ "StringEquals": {
        "kms:ViaService": "secretsmanager.${data.aws_region.current.name}.amazonaws.com",
    } });
    // Both kinds exist, so the test checks something of each.
    assert_eq!(
        catalog::find("users").unwrap().secrets,
        ["password-peppers"]
    );
    assert!(catalog::find("health").unwrap().secrets.is_empty());
    for env in infra::ENVIRONMENTS {
        let prefix = infra::load_config(env).unwrap().prefix;
        for (stack_name, stack) in stacks(env) {
            assert!(
                resources(&stack).all(|(ty, _, _)| ty != "aws_secretsmanager_secret_version"),
                "{env}/{stack_name}: a secret value would pass through Terraform"
            );
            let secrets: BTreeMap<&str, &Value> = resources(&stack)
                .filter(|(ty, _, _)| *ty == "aws_secretsmanager_secret")
                .map(|(_, name, body)| (name, body))
                .collect();
            if stack_name != "service" {
                assert!(secrets.is_empty(), "{env}/{stack_name}: {secrets:?}");
                continue;
            }
            let secret = secrets["secret_password_peppers"];
            assert_eq!(
                secret["name"],
                format!("{prefix}secret-password-peppers"),
                "{env}"
            );
            assert_eq!(
                secret["kms_key_id"], "${data.aws_kms_alias.stack.target_key_arn}",
                "{env}: the stack's customer-managed key"
            );
            assert_eq!(secrets.len(), 1, "{env}: one secret per declared name");
            let policies = function_statements(&stack);
            for function in catalog::FUNCTIONS.iter() {
                let declared = secret_arns(function.secrets);
                let reads: Vec<String> = policies[function.name]
                    .iter()
                    .filter(|s| {
                        s["Sid"] != "RotatedSecrets"
                            && string_list(&s["Action"])
                                .iter()
                                .any(|a| a.starts_with("secretsmanager:"))
                    })
                    .flat_map(|s| {
                        assert_eq!(string_list(&s["Action"]), ["secretsmanager:GetSecretValue"]);
                        string_list(&s["Resource"])
                    })
                    .collect();
                assert_eq!(
                    reads, declared,
                    "{env}: {} reads exactly its secrets",
                    function.name
                );
                let through_secrets = policies[function.name]
                    .iter()
                    .any(|s| s.get("Condition") == Some(&via_secrets));
                assert_eq!(
                    through_secrets,
                    !declared.is_empty() || !function.rotates.is_empty(),
                    "{env}: {}",
                    function.name
                );
                // Only the rotating function writes a secret, and only the ones it rotates.
                let rotated = secret_arns(function.rotates);
                let writes: Vec<String> = policies[function.name]
                    .iter()
                    .filter(|s| s["Sid"] == "RotatedSecrets")
                    .flat_map(|s| {
                        assert_eq!(
                            string_list(&s["Action"]),
                            [
                                "secretsmanager:DescribeSecret",
                                "secretsmanager:GetSecretValue",
                                "secretsmanager:PutSecretValue",
                                "secretsmanager:UpdateSecretVersionStage"
                            ]
                        );
                        string_list(&s["Resource"])
                    })
                    .collect();
                assert_eq!(
                    writes, rotated,
                    "{env}: {} rotates exactly its secrets",
                    function.name
                );
                if !rotated.is_empty() {
                    let key = policies[function.name]
                        .iter()
                        .find(|s| s["Sid"] == "RotatedSecretsKey")
                        .expect("the key through Secrets Manager");
                    assert_eq!(
                        string_list(&key["Action"]),
                        ["kms:Decrypt", "kms:GenerateDataKey"]
                    );
                    assert_eq!(key.get("Condition"), Some(&via_secrets));
                }
                let lambda = resources(&stack)
                    .find(|(ty, name, _)| *ty == "aws_lambda_function" && *name == function.name)
                    .unwrap()
                    .2;
                let variables = &lambda["environment"][0]["variables"];
                let handed: Vec<String> = variables
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| k.starts_with("SECRET_ARN_"))
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                    .collect();
                let want: Vec<String> = function
                    .secrets
                    .iter()
                    .zip(&declared)
                    .map(|(s, arn)| format!("{}={arn}", catalog::secrets::variable(s)))
                    .collect();
                assert_eq!(handed, want, "{env}: {}'s secret variables", function.name);
                assert!(variables.get("APP_SECRET_ARN").is_none());
            }
        }
    }
}

/// Whatever the list above becomes: no function role of any stack batch-writes, scans, or holds
/// a wildcard action or resource on DynamoDB.
#[test]
fn no_function_batch_writes_scans_or_wildcards_dynamodb() {
    for env in infra::ENVIRONMENTS {
        for (stack_name, stack) in stacks(env) {
            for (function, statements) in function_statements(&stack) {
                for statement in statements {
                    let actions = string_list(&statement["Action"]);
                    let resources = string_list(&statement["Resource"]);
                    for action in actions.iter().filter(|a| a.starts_with("dynamodb:")) {
                        assert!(
                            !["dynamodb:BatchWriteItem", "dynamodb:Scan"]
                                .contains(&action.as_str())
                                && !action.contains('*'),
                            "{env}/{stack_name}: {function} grants {action}"
                        );
                        assert!(
                            resources.iter().all(|r| !r.contains('*')),
                            "{env}/{stack_name}: {function} grants {action} on {resources:?}"
                        );
                    }
                    assert!(
                        !actions.iter().any(|a| a == "*" || a.starts_with("*:")),
                        "{env}/{stack_name}: {function} grants {actions:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_route_has_a_method_integration_and_scoped_permission() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let service = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap()
            .1;
        let methods = &service["resource"]["aws_api_gateway_method"];
        let permissions = &service["resource"]["aws_lambda_permission"];
        assert_eq!(
            methods.as_object().unwrap().len(),
            infra::routes::served(config.api.cors()).count()
        );
        for route in infra::routes::served(config.api.cors()) {
            let found = methods
                .as_object()
                .unwrap()
                .iter()
                .find(|(name, m)| {
                    m["http_method"] == route.method
                        && name.ends_with(
                            &route
                                .path
                                .replace(['/', '{', '}'], "_")
                                .replace("__", "_")
                                .trim_end_matches('_')
                                .to_owned(),
                        )
                })
                .unwrap_or_else(|| panic!("{env}: no method for {} {}", route.method, route.path));
            assert_eq!(
                found.1["api_key_required"],
                route.api_key_required(config.api.health_requires_api_key)
            );
            let permission = &permissions[found.0];
            let source = permission["source_arn"].as_str().unwrap();
            assert!(
                source.starts_with("${aws_api_gateway_rest_api.main.execution_arn}/*/"),
                "{source}"
            );
            assert_eq!(
                permission["qualifier"],
                "${aws_lambda_alias.".to_owned() + route.function.as_str() + ".name}"
            );
        }
    }
}

#[test]
fn prod_keys_health_and_dev_leaves_it_open() {
    assert!(
        infra::load_config("prod")
            .unwrap()
            .api
            .health_requires_api_key
    );
    assert!(
        !infra::load_config("dev")
            .unwrap()
            .api
            .health_requires_api_key
    );
}

/// A usage plan's quota is an off switch for everyone holding its key; so each client gets its
/// own key and plan, and only a trusted client's plan has a quota. Checked on an environment
/// with a public client (no quota) and a trusted one (with one), and on every shipped one.
#[test]
fn every_client_has_its_own_key_plan_and_link() {
    let dev = std::fs::read_to_string(infra::config::environments_dir().join("dev.toml")).unwrap();
    let two = dev.replace(
        "[data]\n",
        "[[api.clients]]\nname = \"billing-sync\"\nrate_per_second = 5\nburst = 10\nquota_per_day = 20000\ntrusted = true\n\n[data]\n",
    );
    let two = infra::Config::parse(std::path::Path::new("environments/dev.toml"), &two).unwrap();
    assert_eq!(two.api.clients.len(), 2);
    let mut configs: Vec<infra::Config> = infra::ENVIRONMENTS
        .iter()
        .map(|env| infra::load_config(env).unwrap())
        .collect();
    configs.push(two);
    for config in configs {
        let env = config.name.clone();
        let stacks = infra::synth::render(&config, &common::fixed_options(&env));
        let (_, service) = stacks.iter().find(|(name, _)| name == "service").unwrap();
        let of = |ty: &str| -> BTreeMap<String, Value> {
            service["resource"][ty]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect()
        };
        let (keys, plans, links) = (
            of("aws_api_gateway_api_key"),
            of("aws_api_gateway_usage_plan"),
            of("aws_api_gateway_usage_plan_key"),
        );
        let want: BTreeSet<String> = config
            .api
            .clients
            .iter()
            .map(|c| format!("client_{}", c.ident()))
            .collect();
        for (what, found) in [("keys", &keys), ("plans", &plans), ("links", &links)] {
            assert_eq!(
                found.keys().cloned().collect::<BTreeSet<_>>(),
                want,
                "{env}: {what}"
            );
        }
        for client in &config.api.clients {
            let logical = format!("client_{}", client.ident());
            let name = config.name(&format!("client-{}", client.name));
            assert_eq!(keys[&logical]["name"], name.as_str(), "{env}");
            assert_eq!(keys[&logical]["enabled"], true, "{env}");
            let plan = &plans[&logical];
            assert_eq!(plan["name"], name.as_str(), "{env}");
            assert_eq!(
                plan["api_stages"][0]["stage"], "${aws_api_gateway_stage.main.stage_name}",
                "{env}"
            );
            assert_eq!(
                plan["throttle_settings"],
                serde_json::json!([{ "rate_limit": client.rate_per_second, "burst_limit": client.burst }]),
                "{env}: {}",
                client.name
            );
            match client.quota_per_day {
                Some(limit) => {
                    assert!(client.trusted, "{env}: {}", client.name);
                    assert_eq!(
                        plan["quota_settings"],
                        serde_json::json!([{ "limit": limit, "period": "DAY" }]),
                        "{env}"
                    );
                }
                None => assert_eq!(plan.get("quota_settings"), None, "{env}: {}", client.name),
            }
            assert_eq!(
                links[&logical],
                serde_json::json!({
                    "key_id": format!("${{aws_api_gateway_api_key.{logical}.id}}"),
                    "key_type": "API_KEY",
                    "usage_plan_id": format!("${{aws_api_gateway_usage_plan.{logical}.id}}"),
                }),
                "{env}"
            );
            let output = &service["output"][deploy_files::outputs::api_key_output(&client.name)];
            assert_eq!(output["sensitive"], true, "{env}");
            assert_eq!(
                output["value"],
                format!("${{aws_api_gateway_api_key.{logical}.value}}"),
                "{env}"
            );
        }
        // The single key of before `[[api.clients]]` becomes the first client's: same value.
        let first = format!("client_{}", config.api.clients[0].ident());
        let moved: Vec<(String, String)> = service["moved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["from"].as_str().unwrap().to_owned(),
                    m["to"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want_moved: Vec<(String, String)> = [
            "aws_api_gateway_api_key",
            "aws_api_gateway_usage_plan",
            "aws_api_gateway_usage_plan_key",
        ]
        .iter()
        .map(|ty| (format!("{ty}.client"), format!("{ty}.{first}")))
        .collect();
        assert_eq!(moved, want_moved, "{env}");
        assert_eq!(
            service["output"]["api_key_value"]["value"],
            format!("${{aws_api_gateway_api_key.{first}.value}}"),
            "{env}"
        );
        let listed = service["output"]["api_clients"]["value"]
            .as_array()
            .unwrap();
        assert_eq!(listed.len(), config.api.clients.len(), "{env}");
        for (entry, client) in listed.iter().zip(&config.api.clients) {
            assert_eq!(entry["name"], client.name.as_str(), "{env}");
            assert_eq!(entry["burst"], client.burst, "{env}");
            assert_eq!(
                entry["quota_per_day"],
                serde_json::json!(client.quota_per_day),
                "{env}"
            );
            assert!(!entry.to_string().contains(".value}"), "{env}: a key value");
        }
    }
}

/// prod's daily quota counted every request with the key, 401s included, so a handful of IPs
/// under the WAF's limit switched the API off for every client until midnight. No shipped
/// environment gives a public key a quota.
#[test]
fn prod_has_no_quota_on_the_apps_key() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        assert!(!config.api.clients.is_empty(), "{env}");
        for client in &config.api.clients {
            assert!(
                client.trusted || client.quota_per_day.is_none(),
                "{env}: {}",
                client.name
            );
        }
    }
    let prod = infra::load_config("prod").unwrap();
    let app = &prod.api.clients[0];
    assert_eq!(
        (app.name.as_str(), app.trusted, app.quota_per_day),
        ("app", false, None)
    );
}

#[test]
fn client_settings_are_checked() {
    let good = std::fs::read_to_string(infra::config::environments_dir().join("dev.toml")).unwrap();
    let app = "[[api.clients]]\nname = \"app\"\nrate_per_second = 50\nburst = 100\n";
    assert!(good.contains(app));
    let old = parse_error(&good.replace(
        "client_certificate = true\n",
        "client_certificate = true\nquota_per_day = 1000000\n",
    ));
    assert!(
        old.contains("api.quota_per_day") && old.contains("[[api.clients]]"),
        "{old}"
    );
    let none = parse_error(&good.replace(app, ""));
    assert!(
        none.contains("api.clients") && none.contains("at least one"),
        "{none}"
    );
    for bad in ["App", "1app", "app-", "a_b", "", &"a".repeat(33)] {
        let error = parse_error(&good.replace("name = \"app\"", &format!("name = {bad:?}")));
        assert!(
            error.contains("api.clients[0].name") && error.contains("1-32 characters"),
            "{bad}: {error}"
        );
    }
    let twice = parse_error(&good.replace(app, &format!("{app}\n{app}")));
    assert!(
        twice.contains("api.clients[1].name") && twice.contains("twice"),
        "{twice}"
    );
    let rate = parse_error(&good.replace("rate_per_second = 50", "rate_per_second = 0"));
    assert!(rate.contains("api.clients[0].rate_per_second"), "{rate}");
    let burst = parse_error(&good.replace("burst = 100\n", "burst = 0\n"));
    assert!(burst.contains("api.clients[0].burst"), "{burst}");
    let public_quota = parse_error(&good.replace(app, &format!("{app}quota_per_day = 1000\n")));
    assert!(
        public_quota.contains("api.clients[0].quota_per_day")
            && public_quota.contains("trusted = true"),
        "{public_quota}"
    );
    let trusted = good.replace(app, &format!("{app}quota_per_day = 1000\ntrusted = true\n"));
    let config = infra::Config::parse(std::path::Path::new("environments/dev.toml"), &trusted)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.api.clients[0].quota_per_day, Some(1000));
    assert_eq!(config.api.clients[0].ident(), "app");
}

/// Terraform publishes versions and creates `live` once; xtask releases onto it. An alias that
/// Terraform kept in step would undo every rollback at the next apply, and one whose description
/// it reset would erase the release record xtask keeps there (what `rollback` returns to).
#[test]
fn terraform_creates_the_alias_and_xtask_moves_it() {
    for env in infra::ENVIRONMENTS {
        let service = stacks(env)
            .into_iter()
            .find(|(name, _)| name == "service")
            .unwrap()
            .1;
        let mut aliases = 0;
        for (ty, name, body) in resources(&service) {
            assert!(!ty.starts_with("aws_codedeploy"), "{env}: {ty}.{name}");
            if ty == "aws_lambda_function" {
                assert_eq!(body["publish"], true, "{env}: {name}");
            }
            if ty == "aws_lambda_alias" {
                aliases += 1;
                assert_eq!(
                    body["lifecycle"]["ignore_changes"],
                    serde_json::json!(["function_version", "routing_config", "description"]),
                    "{env}: {name}"
                );
                assert_eq!(
                    body["function_version"],
                    format!("${{aws_lambda_function.{name}.version}}"),
                    "{env}: {name}"
                );
            }
        }
        assert_eq!(aliases, catalog::NAMES.len(), "{env}");
        let gate = service["output"]["release_alarms"]["value"]
            .as_array()
            .unwrap();
        for function in catalog::NAMES.iter() {
            assert!(
                gate.iter().any(|a| a
                    .as_str()
                    .unwrap()
                    .contains(&format!("aws_cloudwatch_metric_alarm.{function}_"))),
                "{env}: no release alarm of {function}: {gate:?}"
            );
            assert_eq!(
                service["output"][deploy_files::outputs::version_output(function)]["value"],
                format!("${{aws_lambda_function.{function}.version}}")
            );
        }
    }
}

/// The service stack's outputs are exactly the fields of `deploy_files::Outputs`, the type
/// every reader of the outputs file uses: none missing (reading them would fail), none extra
/// (reading names it), for every environment file; and Terraform masks exactly the secrets.
#[test]
fn service_outputs_are_the_outputs_type() {
    let files = std::fs::read_dir(infra::config::environments_dir()).unwrap();
    let mut envs: Vec<String> = files
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    envs.sort();
    assert!(!envs.is_empty());
    for env in &envs {
        let (_, service) = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap();
        let declared = service["output"].as_object().unwrap().clone();
        let typed = deploy_files::Outputs::from_map(declared.clone())
            .unwrap_or_else(|e| panic!("{env}: {e}"));
        assert_eq!(
            typed.to_map().keys().collect::<Vec<_>>(),
            declared.keys().collect::<Vec<_>>(),
            "{env}"
        );
        let mut functions = catalog::NAMES.to_vec();
        functions.sort_unstable();
        assert!(
            typed.functions.keys().map(String::as_str).eq(functions),
            "{env}: {:?}",
            typed.functions.keys()
        );
        for (name, output) in &declared {
            assert_eq!(
                output["sensitive"] == true,
                deploy_files::outputs::is_secret(name),
                "{env}: output {name}"
            );
        }
    }
}

#[test]
fn other_stacks_outputs() {
    for env in infra::ENVIRONMENTS {
        for (name, stack) in stacks(env) {
            let outputs: Vec<&str> = stack["output"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            if name == infra::DELIVERY_STACK {
                let mut expected = vec![
                    "deploy_role_arn",
                    "oidc_provider_arn",
                    "release_check_role_arn",
                ];
                if infra::load_config(env).unwrap().stages {
                    expected.push("stages_role_arn");
                }
                assert_eq!(outputs, expected, "{env}");
            } else if name != "service" {
                assert!(outputs.contains(&"artifacts_bucket"), "{env}");
            }
        }
    }
}

#[test]
fn tables_follow_the_contract_schema() {
    let service = stacks("local")
        .into_iter()
        .find(|(n, _)| n == "service")
        .unwrap()
        .1;
    let users = &service["resource"]["aws_dynamodb_table"]["users"];
    assert_eq!(users["name"], "prod-service-users");
    assert_eq!(users["hash_key"], "pk");
    assert_eq!(users["global_secondary_index"][0]["name"], "by-kind");
    assert_eq!(
        users["global_secondary_index"][0]["range_key"],
        "created_at"
    );
    let sessions = &service["resource"]["aws_dynamodb_table"]["sessions"];
    assert_eq!(sessions["hash_key"], "token_hash");
    assert_eq!(sessions["ttl"][0]["attribute_name"], "expires_at");
    assert_eq!(
        sessions["global_secondary_index"][0]["projection_type"],
        "KEYS_ONLY"
    );
    assert_eq!(sessions["billing_mode"], "PAY_PER_REQUEST");
    let prod = stacks("prod")
        .into_iter()
        .find(|(n, _)| n == "service")
        .unwrap()
        .1;
    assert_eq!(
        prod["resource"]["aws_dynamodb_table"]["users"]["deletion_protection_enabled"],
        true
    );
    assert_eq!(
        prod["resource"]["aws_dynamodb_table"]["users"]["billing_mode"],
        "PROVISIONED"
    );
}

#[test]
fn us_west_2_and_other_regions_work() {
    let mut config = infra::load_config("prod").unwrap();
    config.region = "us-west-2".into();
    config.storage.replication_region = Some("us-east-2".into());
    let stacks = infra::synth::render(&config, &common::fixed_options("prod"));
    let service = &stacks[1].1;
    assert_eq!(service["provider"]["aws"][0]["region"], "us-west-2");
    assert_eq!(
        service["resource"]["aws_subnet"]["private_1"]["availability_zone"],
        "us-west-2b"
    );
    let text = service.to_string();
    assert!(
        !text.contains("us-east-1"),
        "a us-west-2 stack mentions us-east-1"
    );
}

#[test]
fn every_gateway_response_has_the_error_body_and_request_id_header() {
    use infra::gateway_responses::GATEWAY_RESPONSES;
    for env in infra::ENVIRONMENTS {
        let (_, service) = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap();
        let responses = service["resource"]["aws_api_gateway_gateway_response"]
            .as_object()
            .unwrap_or_else(|| panic!("{env}: no gateway responses"));
        assert_eq!(responses.len(), GATEWAY_RESPONSES.len(), "{env}");
        for row in GATEWAY_RESPONSES {
            let (name, body) = responses
                .iter()
                .find(|(_, b)| b["response_type"] == row.response_type)
                .unwrap_or_else(|| panic!("{env}: no {}", row.response_type));
            let template = body["response_templates"]["application/json"]
                .as_str()
                .unwrap();
            let expected = format!(
                r#"{{"error":{{"code":"{}","message":"{}","request_id":"$context.requestId"}}}}"#,
                row.code, row.message
            );
            assert_eq!(template, expected, "{env}: {name}");
            assert_eq!(
                body["response_parameters"],
                serde_json::json!({
                    "gatewayresponse.header.x-request-id": "context.requestId",
                    "gatewayresponse.header.cache-control": "'no-store'",
                }),
                "{env}: {name}"
            );
            assert_eq!(
                body.get("status_code").and_then(Value::as_str),
                row.status.map(|s| s.to_string()).as_deref(),
                "{env}: {name}"
            );
            assert_eq!(body["rest_api_id"], "${aws_api_gateway_rest_api.main.id}");
        }
        // A changed template must reach clients: it is part of the deployment trigger.
        let trigger =
            service["resource"]["aws_api_gateway_deployment"]["main"]["triggers"]["redeployment"]
                .as_str()
                .unwrap();
        for name in responses.keys() {
            assert!(
                trigger.contains(&format!(
                    "aws_api_gateway_gateway_response.{name}.response_templates"
                )),
                "{env}: {name} is not in the deployment trigger"
            );
        }
    }
}

/// dev allows a browser origin: every path has a keyless OPTIONS method proxied to the
/// function of that path's other methods, with its own scoped permission and in the
/// deployment trigger. local and prod allow none and have no OPTIONS method at all.
#[test]
fn preflight_methods_exist_exactly_where_origins_are_configured() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let (_, service) = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap();
        let options: Vec<_> = resources(&service)
            .filter(|(ty, _, body)| {
                *ty == "aws_api_gateway_method" && body["http_method"] == "OPTIONS"
            })
            .collect();
        let functions = &service["resource"]["aws_lambda_function"];
        assert_eq!(
            functions["users"]["environment"][0]["variables"]
                .get("CORS_ALLOW_ORIGINS")
                .is_some(),
            config.api.cors(),
            "{env}"
        );
        if !config.api.cors() {
            assert!(options.is_empty(), "{env}: OPTIONS without origins");
            continue;
        }
        assert_eq!(
            functions["users"]["environment"][0]["variables"]["CORS_ALLOW_ORIGINS"],
            config.api.cors_allow_origins.join(",")
        );
        assert_eq!(
            options.len(),
            infra::routes::preflight_routes().len(),
            "{env}"
        );
        let trigger =
            service["resource"]["aws_api_gateway_deployment"]["main"]["triggers"]["redeployment"]
                .as_str()
                .unwrap();
        for route in infra::routes::preflight_routes() {
            let (_, name, method) = options
                .iter()
                .find(|(_, name, _)| {
                    let path = route.path.replace(['{', '}'], "").replace('/', "_");
                    format!("options{path}") == **name
                })
                .unwrap_or_else(|| panic!("{env}: no OPTIONS for {}", route.path));
            assert_eq!(method["api_key_required"], false, "{env}: {name}");
            assert_eq!(method["authorization"], "NONE", "{env}: {name}");
            let integration = &service["resource"]["aws_api_gateway_integration"][name];
            assert_eq!(integration["type"], "AWS_PROXY");
            assert_eq!(
                integration["uri"],
                format!("${{aws_lambda_alias.{}.invoke_arn}}", route.function)
            );
            let permission = &service["resource"]["aws_lambda_permission"][name];
            assert!(
                permission["source_arn"]
                    .as_str()
                    .unwrap()
                    .contains("/*/OPTIONS/"),
                "{env}: {name}"
            );
            assert!(
                trigger.contains(&format!("aws_api_gateway_method.{name}.id")),
                "{env}: {name} is not in the deployment trigger"
            );
        }
    }
}

#[test]
fn cors_origins_must_be_exact_origins() {
    let good = std::fs::read_to_string(infra::config::environments_dir().join("dev.toml")).unwrap();
    for bad in [
        "*",
        "https://*.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://App.example.com",
        "https://app.example.com:0",
        "https://app.example.com:99999",
    ] {
        let error = parse_error(&good.replace(
            r#"cors_allow_origins = ["http://localhost:3000"]"#,
            &format!("cors_allow_origins = [\"https://ok.example.com\", {bad:?}]"),
        ));
        assert!(
            error.contains("api.cors_allow_origins") && error.contains(bad),
            "{bad}: {error}"
        );
    }
    for ok in [
        "https://app.example.com",
        "http://127.0.0.1:8080",
        "http://localhost",
    ] {
        let text = good.replace(
            r#"cors_allow_origins = ["http://localhost:3000"]"#,
            &format!("cors_allow_origins = [{ok:?}]"),
        );
        infra::Config::parse(std::path::Path::new("environments/dev.toml"), &text)
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

fn parse_error(text: &str) -> String {
    infra::Config::parse(std::path::Path::new("environments/bad.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_configuration_names_file_key_and_allowed_values() {
    let good = std::fs::read_to_string(infra::config::environments_dir().join("dev.toml")).unwrap();
    let unknown = parse_error(&good.replace("[lambda]\n", "[lambda]\nmemroy_mb = 3\n"));
    assert!(
        unknown.contains("environments/bad.toml")
            && unknown.contains("memroy_mb")
            && unknown.contains("memory_mb"),
        "{unknown}"
    );
    let arch = parse_error(&good.replace("architecture = \"arm64\"", "architecture = \"arm\""));
    assert!(
        arch.contains("architecture") && arch.contains("arm64") && arch.contains("x86_64"),
        "{arch}"
    );
    let memory = parse_error(&good.replace("memory_mb = 256", "memory_mb = 64"));
    assert!(
        memory.contains("lambda.memory_mb") && memory.contains("128..=10240"),
        "{memory}"
    );
    let retention =
        parse_error(&good.replace("log_retention_days = 14", "log_retention_days = 13"));
    assert!(
        retention.contains("lambda.log_retention_days") && retention.contains("365"),
        "{retention}"
    );
    let billing =
        parse_error(&good.replace("billing = \"on_demand\"", "billing = \"provisioned\""));
    assert!(billing.contains("data.autoscaling"), "{billing}");
    let region = parse_error(&good.replace("region = \"us-east-1\"", "region = \"useast\""));
    assert!(region.contains("key `region`"), "{region}");
    let unknown_env = infra::load_config("staging").unwrap_err().to_string();
    assert!(
        unknown_env.contains("staging") && unknown_env.contains("local, dev, prod"),
        "{unknown_env}"
    );
}

/// prod signs its packages: the Signer profile is in the bootstrap stack (it must exist before
/// the service stack's first apply, when xtask signs), and so is the code signing config that
/// trusts it (an administrator's to create: `constructs::signing`); the service stack reads the
/// config's ARN from the bootstrap stack's outputs and Lambda enforces the signature on every
/// function. local and dev deploy unsigned packages and carry none of it.
#[test]
fn prod_enforces_code_signing_with_the_bootstrap_profile() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let signs = config.lambda.code_signing;
        assert_eq!(signs, env == "prod", "{env}: only prod signs");
        let name = infra::constructs::signing::profile_name(&config.prefix);
        for (stack_name, stack) in stacks(env) {
            let profiles = &stack["resource"]["aws_signer_signing_profile"];
            let configs = &stack["resource"]["aws_lambda_code_signing_config"];
            match (signs, stack_name.as_str()) {
                (true, "bootstrap") => {
                    assert_eq!(profiles["functions"]["name"], name.as_str());
                    assert_eq!(
                        profiles["functions"]["platform_id"],
                        "AWSLambda-SHA384-ECDSA"
                    );
                    assert!(profiles["functions"].get("name_prefix").is_none());
                    for output in [
                        "signing_profile_name",
                        "signing_profile_version_arn",
                        "code_signing_config_arn",
                    ] {
                        assert!(stack["output"].get(output).is_some(), "{env}: {output}");
                    }
                    let csc = &configs["functions"];
                    assert_eq!(
                        csc["policies"][0]["untrusted_artifact_on_deployment"],
                        "Enforce"
                    );
                    assert_eq!(
                        csc["allowed_publishers"][0]["signing_profile_version_arns"][0],
                        "${aws_signer_signing_profile.functions.version_arn}"
                    );
                    assert_eq!(
                        stack["output"]["code_signing_config_arn"]["value"],
                        "${aws_lambda_code_signing_config.functions.arn}"
                    );
                }
                (true, "service") => {
                    assert!(profiles.is_null(), "{env}: the profile moved to bootstrap");
                    assert!(configs.is_null(), "{env}: the config moved to bootstrap");
                    let functions: Vec<_> = resources(&stack)
                        .filter(|(ty, _, _)| *ty == "aws_lambda_function")
                        .collect();
                    assert_eq!(functions.len(), catalog::FUNCTIONS.len());
                    for (_, function, body) in functions {
                        assert_eq!(
                            body["code_signing_config_arn"],
                            "${data.terraform_remote_state.bootstrap.outputs.code_signing_config_arn}",
                            "{env}: {function}"
                        );
                    }
                }
                _ => {
                    assert!(profiles.is_null() && configs.is_null());
                    assert!(stack["output"].get("signing_profile_name").is_none());
                    let text = stack.to_string();
                    assert!(!text.contains("code_signing_config_arn"), "{env}");
                }
            }
        }
    }
}

#[test]
fn every_route_has_its_own_error_and_latency_alarms_on_the_functions_metrics() {
    for env in infra::ENVIRONMENTS {
        let service = stacks(env)
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap()
            .1;
        let alarms: Vec<&Value> = resources(&service)
            .filter(|(ty, _, _)| *ty == "aws_cloudwatch_metric_alarm")
            .map(|(_, _, body)| body)
            .filter(|body| body["namespace"] == "ProdService")
            .collect();
        for route in infra::routes::ROUTES.iter() {
            let label = format!("{} {}", route.method, route.path);
            let function = format!("${{aws_lambda_function.{}.function_name}}", route.function);
            for (metric, stat) in [("Errors", "statistic"), ("Duration", "extended_statistic")] {
                let found = alarms.iter().find(|a| {
                    a["metric_name"] == metric
                        && a["dimensions"]["Route"] == label.as_str()
                        && a[stat].is_string()
                });
                let found =
                    found.unwrap_or_else(|| panic!("{env}: no {metric} alarm for route {label}"));
                assert_eq!(
                    found["dimensions"]["Function"],
                    function.as_str(),
                    "{env}: {label}"
                );
            }
        }
        let dashboard = resources(&service)
            .find(|(ty, _, _)| *ty == "aws_cloudwatch_dashboard")
            .unwrap()
            .2;
        let body = dashboard["dashboard_body"].as_str().unwrap();
        assert!(
            body.contains("\"ProdService\",\"Duration\""),
            "{env}: {body}"
        );
    }
}

fn service(env: &str) -> Value {
    stacks(env)
        .into_iter()
        .find(|(n, _)| n == "service")
        .unwrap()
        .1
}

/// `${aws_sqs_queue.queue_<name>.arn}`, or the dead-letter queue's.
fn queue_ref(name: &str, dead_letter: bool, attr: &str) -> String {
    let dlq = if dead_letter { "_dlq" } else { "" };
    format!(
        "${{aws_sqs_queue.queue_{}{dlq}.{attr}}}",
        name.replace('-', "_")
    )
}

/// Every declared queue and its dead-letter queue are encrypted with the stack key, the queue
/// hands a message to its dead-letter queue after `max_receives`, the dead-letter queue takes
/// messages from it alone and keeps them 14 days; Lambda polls the queue for the consumer's
/// `live` alias and deletes only the records the function does not report as failed; both
/// queues have their alarm in the release gate.
#[test]
fn queues_are_encrypted_redriven_and_polled_for_their_consumers_alias() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let stack = service(env);
        let queues = &stack["resource"]["aws_sqs_queue"];
        let mappings = &stack["resource"]["aws_lambda_event_source_mapping"];
        let gate = string_list(&stack["output"]["release_alarms"]["value"]);
        let mut declared = 0;
        for (consumer, queue) in catalog::queues() {
            declared += 1;
            let logical = format!("queue_{}", queue.name.replace('-', "_"));
            let (source, dlq) = (&queues[&logical], &queues[format!("{logical}_dlq")]);
            let name = format!("{}queue-{}", config.prefix, queue.name);
            assert_eq!(source["name"], name.as_str(), "{env}");
            assert_eq!(dlq["name"], format!("{name}-dlq"), "{env}");
            for q in [source, dlq] {
                assert_eq!(
                    q["kms_master_key_id"], "${data.aws_kms_alias.stack.target_key_arn}",
                    "{env}: {logical} is encrypted with the stack key"
                );
                assert!(q["kms_data_key_reuse_period_seconds"].is_u64(), "{env}");
            }
            let redrive: Value =
                serde_json::from_str(source["redrive_policy"].as_str().unwrap()).unwrap();
            assert_eq!(redrive["maxReceiveCount"], queue.max_receives, "{env}");
            assert_eq!(
                redrive["deadLetterTargetArn"],
                queue_ref(queue.name, true, "arn"),
                "{env}"
            );
            let allow: Value =
                serde_json::from_str(dlq["redrive_allow_policy"].as_str().unwrap()).unwrap();
            assert_eq!(allow["redrivePermission"], "byQueue", "{env}");
            let sources = string_list(&allow["sourceQueueArns"]);
            assert_eq!(sources.len(), 1, "{env}");
            assert!(
                sources[0].ends_with(&format!(":{name}")),
                "{env}: {sources:?}"
            );
            assert_eq!(dlq["message_retention_seconds"], 1_209_600, "{env}");
            assert!(
                source["message_retention_seconds"].as_u64()
                    < dlq["message_retention_seconds"].as_u64(),
                "{env}: a message must outlive its move to the dead-letter queue"
            );
            assert_eq!(
                source["visibility_timeout_seconds"],
                catalog::queues::visibility_timeout_seconds(
                    config.lambda.timeout_seconds_of(consumer),
                    queue.batching_window_seconds
                ),
                "{env}"
            );
            let mapping = &mappings[&logical];
            assert_eq!(
                mapping["event_source_arn"],
                queue_ref(queue.name, false, "arn"),
                "{env}"
            );
            assert_eq!(
                mapping["function_name"],
                format!("${{aws_lambda_alias.{}.arn}}", consumer.name),
                "{env}: Lambda invokes the consumer's live alias"
            );
            assert_eq!(
                mapping["function_response_types"],
                serde_json::json!(["ReportBatchItemFailures"]),
                "{env}"
            );
            assert_eq!(mapping["batch_size"], queue.batch_size, "{env}");
            for alarm in ["dead_letters", "oldest_message"] {
                let alarm =
                    format!("${{aws_cloudwatch_metric_alarm.{logical}_{alarm}.alarm_name}}");
                assert!(
                    gate.contains(&alarm),
                    "{env}: {alarm} is not in the release gate"
                );
            }
            let alarms = &stack["resource"]["aws_cloudwatch_metric_alarm"];
            assert_eq!(
                alarms[format!("{logical}_dead_letters")]["dimensions"]["QueueName"],
                queue_ref(queue.name, true, "name"),
                "{env}"
            );
        }
        assert_eq!(
            queues.as_object().map_or(0, |q| q.len()),
            2 * declared + usize::from(config.lambda.dead_letter_queue),
            "{env}: a queue and its dead-letter queue per declared queue, and the functions' own"
        );
        assert_eq!(
            mappings.as_object().map_or(0, |m| m.len()),
            declared,
            "{env}"
        );
    }
}

/// Only a queue's consumer receives from it, and a function may send to a queue only if it
/// declares it in `sends`, to exactly those queues (and the functions' shared dead-letter
/// queue, where Lambda puts a failed asynchronous event with the function's role); a sender
/// gets the queue's URL.
#[test]
fn only_consumers_receive_and_only_senders_send_to_their_queues() {
    for env in infra::ENVIRONMENTS {
        let stack = service(env);
        let statements = function_statements(&stack);
        assert_eq!(statements.len(), catalog::FUNCTIONS.len(), "{env}");
        for function in catalog::FUNCTIONS.iter() {
            let granted = |action: &str| -> BTreeSet<String> {
                statements[function.name]
                    .iter()
                    .filter(|s| string_list(&s["Action"]).iter().any(|a| a == action))
                    .flat_map(|s| string_list(&s["Resource"]))
                    .collect()
            };
            let consumed: BTreeSet<String> = function
                .queues
                .iter()
                .map(|q| queue_ref(q.name, false, "arn"))
                .collect();
            for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
                assert_eq!(
                    granted(action),
                    consumed,
                    "{env}: {} {action}",
                    function.name
                );
            }
            let sent: BTreeSet<String> = function
                .sends
                .iter()
                .map(|q| queue_ref(q, false, "arn"))
                .collect();
            let mut sends = granted("sqs:SendMessage");
            sends.remove("${aws_sqs_queue.dead_letters.arn}");
            assert_eq!(sends, sent, "{env}: {} may send to", function.name);
            let body = &stack["resource"]["aws_lambda_function"][function.name];
            let variables = &body["environment"][0]["variables"];
            for queue in function.sends {
                let url = variables[catalog::queues::variable(queue)].as_str();
                assert_eq!(url, Some(queue_ref(queue, false, "url").as_str()), "{env}");
            }
            let queue_variables = variables
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with("QUEUE_URL_"))
                .count();
            assert_eq!(
                queue_variables,
                function.sends.len(),
                "{env}: {}",
                function.name
            );
        }
    }
}

/// Each declared schedule invokes its function's `live` alias with the Scheduled Event, its
/// input encrypted with the stack key, through a role of its own that Scheduler assumes only
/// for this account and that may invoke only that alias.
#[test]
fn schedules_invoke_only_their_functions_alias() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        let stack = service(env);
        let schedules = &stack["resource"]["aws_scheduler_schedule"];
        assert_eq!(
            schedules.as_object().map_or(0, |s| s.len()),
            catalog::schedules().count(),
            "{env}"
        );
        for (function, schedule) in catalog::schedules() {
            let logical = format!("schedule_{}", schedule.name.replace('-', "_"));
            let body = &schedules[&logical];
            assert_eq!(
                body["name"],
                format!("{}schedule-{}", config.prefix, schedule.name),
                "{env}"
            );
            assert_eq!(body["schedule_expression"], schedule.expression, "{env}");
            assert_eq!(body["flexible_time_window"][0]["mode"], "OFF", "{env}");
            assert_eq!(
                body["kms_key_arn"], "${data.aws_kms_alias.stack.target_key_arn}",
                "{env}"
            );
            let target = &body["target"][0];
            assert_eq!(
                target["arn"],
                format!("${{aws_lambda_alias.{}.arn}}", function.name),
                "{env}"
            );
            assert_eq!(
                target["role_arn"],
                format!("${{aws_iam_role.{logical}.arn}}")
            );
            let event: Value = serde_json::from_str(target["input"].as_str().unwrap()).unwrap();
            assert_eq!(event["detail-type"], "Scheduled Event", "{env}");
            let detail: Value = serde_json::from_str(schedule.input).unwrap();
            assert_eq!(event["detail"], detail, "{env}");
            let role = &stack["resource"]["aws_iam_role"][&logical];
            let trust: Value =
                serde_json::from_str(role["assume_role_policy"].as_str().unwrap()).unwrap();
            let trust = &trust["Statement"][0];
            assert_eq!(trust["Principal"]["Service"], "scheduler.amazonaws.com");
            assert_eq!(
                trust["Condition"]["StringEquals"]["aws:SourceAccount"],
                "${data.aws_caller_identity.current.account_id}",
                "{env}"
            );
            let policy = &stack["resource"]["aws_iam_role_policy"][&logical];
            let doc: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
            for s in doc["Statement"].as_array().unwrap() {
                let actions = string_list(&s["Action"]);
                if actions == ["kms:Decrypt"] {
                    assert!(
                        s["Condition"]["StringEquals"]
                            ["kms:EncryptionContext:aws:scheduler:schedule:arn"]
                            .is_string(),
                        "{env}: the role decrypts its own schedule's input only"
                    );
                    continue;
                }
                assert_eq!(actions, ["lambda:InvokeFunction"], "{env}");
                assert_eq!(
                    string_list(&s["Resource"]),
                    [format!(
                        "arn:${{data.aws_partition.current.partition}}:lambda:{}:${{data.aws_caller_identity.current.account_id}}:function:{}{}:live",
                        config.region, config.prefix, function.name
                    )],
                    "{env}"
                );
            }
        }
    }
}
