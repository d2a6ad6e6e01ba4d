//! What a change does to an environment's stacks, for a pull request's reviewers
//! (`cargo xtask compare`): the Terraform resources it adds, changes and removes, the IAM
//! statements that widen access, and the price of both sides with the `bench` cost model.
//!
//! The base side is read from a folder another checkout synthesized (a pull request's target
//! commit, with its own `infra synth`): this binary carries only its own commit's infra code,
//! and reading the base's JSON needs no second build of xtask, only of the small `infra`
//! binary, in the workflow's job without credentials. The head side is this checkout's
//! synthesis of the environment's own configuration, all stacks: a stage deploys only the
//! service stack, but what a reviewer must see is what merging changes, the deploy role of
//! the delivery stack and the bootstrap stack's bucket and key policies included.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use serde_json::Value;

use crate::services::bench::cost::{self, Cost};

/// The line that marks the pull request comment the stage workflow keeps up to date: it finds
/// its one comment by it (`.github/workflows/stage.yml`).
pub const COMMENT_MARKER: &str = "<!-- stage-comment -->";

/// Synthesized stacks: `(stack name, Terraform JSON)`.
pub type Stacks = Vec<(String, Value)>;

/// What the head's stacks change against the base's.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub env: String,
    /// Resource addresses, `<stack>/<type>.<name>`, sorted.
    pub added: Vec<String>,
    /// Resources on both sides whose bodies differ.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// The policy statements that let through what the base's stopped.
    pub widened: Vec<Widening>,
    pub base_cost: Cost,
    pub head_cost: Cost,
}

/// One statement that lets something through that the base's policy stopped: an Allow of the
/// head that grants more, or a Deny of the base that the head no longer has or narrowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Widening {
    /// `<stack>/<type>.<name>` and the attribute holding the document (`policy`,
    /// `assume_role_policy`): the head's for an Allow, the base's for a Deny.
    pub policy: String,
    /// The statement's `Sid`, or its position (`#0`) when it has none.
    pub statement: String,
    pub effect: Effect,
    /// Allow: the actions, resources and principals the base's policy names nowhere. Deny:
    /// those no longer denied.
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub principals: Vec<String>,
    /// How many (action, resource, principal) grants of the statement the other side does not
    /// cover with the same or looser conditions (Allow: looser in the base; Deny: in the
    /// head): more than the names above when an Allow recombines what the base had, or
    /// drops a condition.
    pub grants: usize,
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// The stacks in a synthesized folder (`<dir>/stacks/<name>/cdk.tf.json`), sorted by name.
pub fn read_synthesized(dir: &Path) -> Result<Stacks> {
    let stacks_dir = dir.join("stacks");
    let entries = std::fs::read_dir(&stacks_dir).with_context(|| {
        format!(
            "reading {}: --base takes a folder `infra synth --out DIR` (or `cargo xtask synth`) wrote",
            stacks_dir.display()
        )
    })?;
    let mut stacks = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file = entry.path().join("cdk.tf.json");
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let json =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        stacks.push((entry.file_name().to_string_lossy().into_owned(), json));
    }
    stacks.sort_by(|a, b| a.0.cmp(&b.0));
    if stacks.is_empty() {
        return Err(anyhow!("no stack in {}", stacks_dir.display()));
    }
    Ok(stacks)
}

/// The environment's stacks as this checkout synthesizes them, in memory.
pub fn synthesize(env: &str) -> Result<Stacks> {
    let config = infra::load_config(env).map_err(|e| anyhow!("{e}"))?;
    let options = infra::synth::default_options(env, &infra::synth::default_out_dir());
    Ok(infra::synth::render(&config, &options))
}

/// Compares the head's stacks with the base's.
pub fn compare(env: &str, base: &[(String, Value)], head: &[(String, Value)]) -> Comparison {
    let base_resources = resources(base);
    let head_resources = resources(head);
    let mut comparison = Comparison {
        env: env.to_owned(),
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        widened: widenings(&base_resources, &head_resources),
        base_cost: cost::price(base),
        head_cost: cost::price(head),
    };
    for (address, body) in &head_resources {
        match base_resources.get(address) {
            None => comparison.added.push(address.clone()),
            Some(before) if before != body => comparison.changed.push(address.clone()),
            Some(_) => {}
        }
    }
    comparison.removed = base_resources
        .keys()
        .filter(|address| !head_resources.contains_key(*address))
        .cloned()
        .collect();
    comparison
}

/// Every managed resource by address, `<stack>/<type>.<name>`.
fn resources(stacks: &[(String, Value)]) -> BTreeMap<String, &Value> {
    stacks
        .iter()
        .filter_map(|(stack, json)| Some((stack, json["resource"].as_object()?)))
        .flat_map(|(stack, kinds)| {
            kinds.iter().flat_map(move |(kind, named)| {
                named
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(move |(name, body)| (format!("{stack}/{kind}.{name}"), body))
            })
        })
        .collect()
}

/// One thing a statement allows or denies; `conditions` narrow it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    action: String,
    resource: String,
    principal: String,
    /// `Operator key=values`, one per condition key.
    conditions: BTreeSet<String>,
}

impl Grant {
    /// Whether this grant reaches at least as far as `other`: the same action, resource and
    /// principal, with no condition `other` lacks.
    fn covers(&self, other: &Grant) -> bool {
        self.action == other.action
            && self.resource == other.resource
            && self.principal == other.principal
            && self.conditions.is_subset(&other.conditions)
    }
}

/// An IAM policy document found in a resource.
struct Policy {
    /// `<address> (<attribute>)`.
    address: String,
    /// The address without a numbered part's suffix: the deploy role's policy is split into
    /// `github_deploy_1`, `_2`, ... of at most 6,144 characters each
    /// (`infra/src/constructs/delivery.rs`), and a statement moving from one part to the
    /// next changes nothing.
    family: String,
    statements: Vec<Value>,
}

/// The statements that let more through on the head than on the base: the head's Allows
/// that the base's policy of the same family did not grant, and the base's Denies that the
/// head's does not deny as widely.
fn widenings(base: &BTreeMap<String, &Value>, head: &BTreeMap<String, &Value>) -> Vec<Widening> {
    let (base, head) = (policies(base), policies(head));
    let mut found = uncovered(&head, Effect::Allow, &base);
    found.extend(uncovered(&base, Effect::Deny, &head));
    found
}

/// The statements of `effect` in `policies` with grants that no statement of the same effect
/// and family in `other` covers.
fn uncovered(policies: &[Policy], effect: Effect, other: &[Policy]) -> Vec<Widening> {
    let mut others: BTreeMap<&str, Vec<Grant>> = BTreeMap::new();
    for policy in other {
        let all = others.entry(policy.family.as_str()).or_default();
        for statement in &policy.statements {
            all.extend(grants(statement, effect));
        }
    }
    let mut found = Vec::new();
    for policy in policies {
        let known = others
            .get(policy.family.as_str())
            .map_or(&[][..], Vec::as_slice);
        for (index, statement) in policy.statements.iter().enumerate() {
            let new: Vec<Grant> = grants(statement, effect)
                .into_iter()
                .filter(|grant| !known.iter().any(|old| old.covers(grant)))
                .collect();
            if new.is_empty() {
                continue;
            }
            // An Allow names what the other side names nowhere; a Deny, all it stopped.
            let names = |field: fn(&Grant) -> &String| -> Vec<String> {
                new.iter()
                    .map(field)
                    .filter(|value| {
                        !value.is_empty()
                            && (effect == Effect::Deny || !known.iter().any(|g| field(g) == *value))
                    })
                    .cloned()
                    .collect::<BTreeSet<String>>()
                    .into_iter()
                    .collect()
            };
            found.push(Widening {
                policy: policy.address.clone(),
                statement: statement["Sid"]
                    .as_str()
                    .map_or_else(|| format!("#{index}"), str::to_owned),
                effect,
                actions: names(|g| &g.action),
                resources: names(|g| &g.resource),
                principals: names(|g| &g.principal),
                grants: new.len(),
            });
        }
    }
    found
}

/// Every IAM policy document in the resources: a top-level attribute whose string is JSON
/// with a `Statement` (identity policies, trust policies, bucket and key policies alike).
fn policies(resources: &BTreeMap<String, &Value>) -> Vec<Policy> {
    let mut found = Vec::new();
    for (address, body) in resources {
        let Some(attributes) = body.as_object() else {
            continue;
        };
        for (attribute, value) in attributes {
            let Some(document) = value
                .as_str()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
            else {
                continue;
            };
            let statements = match &document["Statement"] {
                Value::Array(all) => all.clone(),
                one @ Value::Object(_) => vec![one.clone()],
                _ => continue,
            };
            let family = address
                .trim_end_matches(|c: char| c.is_ascii_digit())
                .strip_suffix('_')
                .unwrap_or(address);
            found.push(Policy {
                address: format!("{address} ({attribute})"),
                family: format!("{family} ({attribute})"),
                statements,
            });
        }
    }
    found
}

/// What a statement of `effect` allows or denies, one grant per action, resource and
/// principal (none for a statement of the other effect). A `NotAction`, `NotResource` or
/// `NotPrincipal` list is one value, so any change to it counts (the project writes none).
fn grants(statement: &Value, effect: Effect) -> Vec<Grant> {
    let wanted = match effect {
        Effect::Allow => "Allow",
        Effect::Deny => "Deny",
    };
    if statement["Effect"].as_str() != Some(wanted) {
        return Vec::new();
    }
    let list = |value: &Value| -> Vec<String> {
        match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect(),
            _ => vec![String::new()],
        }
    };
    let element = |name: &str| match &statement[format!("Not{name}")] {
        Value::Null => None,
        negated => Some(vec![format!("Not{name} {negated}")]),
    };
    let principals = element("Principal").unwrap_or_else(|| match &statement["Principal"] {
        Value::Object(kinds) => kinds
            .iter()
            .flat_map(|(kind, who)| list(who).into_iter().map(move |w| format!("{kind}:{w}")))
            .collect(),
        other => list(other),
    });
    let actions = element("Action").unwrap_or_else(|| list(&statement["Action"]));
    let resources = element("Resource").unwrap_or_else(|| list(&statement["Resource"]));
    let conditions: BTreeSet<String> = statement["Condition"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(operator, keys)| {
            keys.as_object()
                .into_iter()
                .flatten()
                .map(move |(key, values)| format!("{operator} {key}={}", list(values).join(",")))
        })
        .collect();
    let mut all = Vec::new();
    for action in &actions {
        for resource in &resources {
            for principal in &principals {
                all.push(Grant {
                    action: action.clone(),
                    resource: resource.clone(),
                    principal: principal.clone(),
                    conditions: conditions.clone(),
                });
            }
        }
    }
    all
}

impl Comparison {
    /// The pull request comment's body: Markdown, opened by [`COMMENT_MARKER`].
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "{COMMENT_MARKER}\n### What this change does to `{}`\n\n",
            self.env
        );
        out += &format!(
            "**{} added, {} changed, {} removed** (Terraform resources, all stacks, base against head)\n\n",
            self.added.len(),
            self.changed.len(),
            self.removed.len()
        );
        for (title, addresses) in [
            ("Added", &self.added),
            ("Changed", &self.changed),
            ("Removed", &self.removed),
        ] {
            if addresses.is_empty() {
                continue;
            }
            out += &format!(
                "<details><summary>{title} ({})</summary>\n\n",
                addresses.len()
            );
            for address in addresses {
                out += &format!("- `{address}`\n");
            }
            out += "\n</details>\n\n";
        }
        if self.widened.is_empty() {
            out += "**IAM:** no statement widens access.\n\n";
        } else {
            out += &format!(
                "**IAM: {} statement(s) widen access** (review these):\n\n",
                self.widened.len()
            );
            for w in &self.widened {
                let (kind, named, counted) = match w.effect {
                    Effect::Allow => ("allows more", " new", "new grant(s)"),
                    Effect::Deny => (
                        "no longer denies (a Deny removed or narrowed)",
                        "",
                        "grant(s)",
                    ),
                };
                out += &format!(
                    "- :warning: `{}` statement `{}` {kind}:",
                    w.policy, w.statement
                );
                for (what, values) in [
                    ("actions", &w.actions),
                    ("resources", &w.resources),
                    ("principals", &w.principals),
                ] {
                    if !values.is_empty() {
                        let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                        out += &format!("{named} {what} {};", quoted.join(", "));
                    }
                }
                out += &format!(" {} {counted}\n", w.grants);
            }
            out += "\n";
        }
        let row = |what: &str, base: f64, head: f64| {
            format!(
                "| {what} | ${base:.2} | ${head:.2} | {:+.2} |\n",
                head - base
            )
        };
        out += "| cost (USD, `cargo xtask bench` model) | base | head | change |\n";
        out += "| --- | ---: | ---: | ---: |\n";
        out += &row(
            "idle, per month",
            self.base_cost.idle_per_month,
            self.head_cost.idle_per_month,
        );
        out += &row(
            "per million requests",
            self.base_cost.per_million,
            self.head_cost.per_million,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites the policy document held in `resource[attribute]` of a stack.
    fn edit_policy(stack: &mut Value, kind: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let holder = &mut stack["resource"][kind][name]["policy"];
        let mut document: Value = serde_json::from_str(holder.as_str().unwrap()).unwrap();
        edit(&mut document);
        *holder = Value::String(document.to_string());
    }

    fn statement<'a>(document: &'a mut Value, sid: &str) -> &'a mut Value {
        document["Statement"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"))
    }

    /// The base is dev as this checkout synthesizes it to disk, then edited as an older
    /// commit could differ: one alarm fewer; for `users` one action fewer on a table (an action
    /// it has elsewhere) and no index query; a condition more on `health`'s tracing; a bucket
    /// this checkout no longer has; one deploy role statement in the next part of the policy
    /// and a Deny more. The head must add the alarm (priced at $0.10 a month), remove the
    /// bucket, and flag exactly the action, the query, the dropped condition and the Deny.
    #[test]
    fn a_real_synthesis_against_an_edited_one_reports_resources_grants_and_cost() {
        let dir = std::env::temp_dir().join(format!("xtask-compare-{}", std::process::id()));
        let config = infra::load_config("dev").unwrap();
        let options = infra::synth::default_options("dev", &dir);
        infra::synth_with(&config, &options, &dir).unwrap();
        let file = |stack: &str| dir.join("stacks").join(stack).join("cdk.tf.json");
        let edit = |stack: &str, change: &dyn Fn(&mut Value)| {
            let mut json: Value =
                serde_json::from_str(&std::fs::read_to_string(file(stack)).unwrap()).unwrap();
            change(&mut json);
            std::fs::write(file(stack), json.to_string()).unwrap();
        };
        let alarm = {
            let head = synthesize("dev").unwrap();
            let service = &head.iter().find(|(n, _)| n == "service").unwrap().1;
            let alarms = service["resource"]["aws_cloudwatch_metric_alarm"]
                .as_object()
                .unwrap();
            alarms.keys().next().unwrap().clone()
        };
        edit("service", &|json| {
            json["resource"]["aws_cloudwatch_metric_alarm"]
                .as_object_mut()
                .unwrap()
                .remove(&alarm);
            edit_policy(json, "aws_iam_role_policy", "users_function", |doc| {
                statement(doc, "UserAndEmailItems")["Action"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|a| a != "dynamodb:DeleteItem");
                doc["Statement"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|s| s["Sid"] != "ListUsersByKind");
            });
            edit_policy(json, "aws_iam_role_policy", "health_function", |doc| {
                statement(doc, "XRayTracing")["Condition"] =
                    serde_json::json!({ "Bool": { "aws:SecureTransport": "true" } });
            });
        });
        edit("bootstrap", &|json| {
            let buckets = json["resource"]["aws_s3_bucket"].as_object_mut().unwrap();
            let copy = buckets.values().next().unwrap().clone();
            buckets.insert("retired".to_owned(), copy);
        });
        edit("delivery", &|json| {
            let mut moved = Value::Null;
            edit_policy(json, "aws_iam_policy", "github_deploy_1", |doc| {
                moved = doc["Statement"].as_array_mut().unwrap().pop().unwrap();
            });
            edit_policy(json, "aws_iam_policy", "github_deploy_2", |doc| {
                let statements = doc["Statement"].as_array_mut().unwrap();
                statements.insert(0, moved);
                statements.push(serde_json::json!({
                    "Sid": "NeverDeleteTheTables",
                    "Effect": "Deny",
                    "Action": ["dynamodb:DeleteTable"],
                    "Resource": ["*"],
                }));
            });
        });

        let base = read_synthesized(&dir).unwrap();
        let head = synthesize("dev").unwrap();
        let comparison = compare("dev", &base, &head);
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(
            comparison.added,
            [format!("service/aws_cloudwatch_metric_alarm.{alarm}")]
        );
        assert_eq!(comparison.removed, ["bootstrap/aws_s3_bucket.retired"]);
        assert_eq!(
            comparison.changed,
            [
                "delivery/aws_iam_policy.github_deploy_1",
                "delivery/aws_iam_policy.github_deploy_2",
                "service/aws_iam_role_policy.health_function",
                "service/aws_iam_role_policy.users_function",
            ]
        );
        let widening = |policy: &str, statement: &str, effect, names: [&[&str]; 2], grants| {
            let owned = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
            Widening {
                policy: policy.to_owned(),
                statement: statement.to_owned(),
                effect,
                actions: owned(names[0]),
                resources: owned(names[1]),
                principals: Vec::new(),
                grants,
            }
        };
        let health = "service/aws_iam_role_policy.health_function (policy)";
        let users = "service/aws_iam_role_policy.users_function (policy)";
        assert_eq!(
            comparison.widened,
            [
                widening(health, "XRayTracing", Effect::Allow, [&[], &[]], 2),
                widening(users, "UserAndEmailItems", Effect::Allow, [&[], &[]], 1),
                widening(
                    users,
                    "ListUsersByKind",
                    Effect::Allow,
                    [
                        &["dynamodb:Query"],
                        &["${aws_dynamodb_table.users.arn}/index/by-kind"]
                    ],
                    1
                ),
                widening(
                    "delivery/aws_iam_policy.github_deploy_2 (policy)",
                    "NeverDeleteTheTables",
                    Effect::Deny,
                    [&["dynamodb:DeleteTable"], &["*"]],
                    1
                ),
            ],
            "the deploy role's statement that moved between its parts grants nothing new"
        );
        let idle = comparison.head_cost.idle_per_month - comparison.base_cost.idle_per_month;
        assert!((idle - 0.10).abs() < 1e-9, "one alarm more: {idle}");
        assert_eq!(
            comparison.head_cost.per_million,
            comparison.base_cost.per_million
        );
        let markdown = comparison.markdown();
        assert!(markdown.starts_with(COMMENT_MARKER), "{markdown}");
        for needle in [
            "**1 added, 4 changed, 1 removed**",
            "**IAM: 4 statement(s) widen access**",
            "statement `UserAndEmailItems` allows more: 1 new grant(s)",
            "statement `NeverDeleteTheTables` no longer denies (a Deny removed or narrowed): \
             actions `dynamodb:DeleteTable`; resources `*`; 1 grant(s)",
            "statement `ListUsersByKind` allows more: new actions `dynamodb:Query`; new resources \
             `${aws_dynamodb_table.users.arn}/index/by-kind`; 1 new grant(s)",
            "| idle, per month | $8.60 | $8.70 | +0.10 |",
        ] {
            assert!(markdown.contains(needle), "`{needle}` in:\n{markdown}");
        }
    }
}
