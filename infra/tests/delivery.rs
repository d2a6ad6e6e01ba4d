//! The delivery stack: GitHub's OIDC provider and the deploy role. Its trust (exactly one
//! repository and environment), what the role may do (explicit actions on this environment's
//! resources, `"*"` only for the listed exceptions, never itself), the `[delivery]` settings and
//! their errors, and an apply against the emulator.

mod common;

use infra::config::Delivery;
use infra::constructs::boundary;
use infra::constructs::delivery;
use infra::constructs::security;
use infra::iam::STAR_ACTIONS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn delivery_stack(config: &infra::Config) -> Option<Value> {
    infra::synth::render(config, &common::fixed_options(&config.name))
        .into_iter()
        .find(|(name, _)| name == infra::DELIVERY_STACK)
        .map(|(_, stack)| stack)
}

fn shipped(env: &str) -> (infra::Config, Value) {
    let config = infra::load_config(env).unwrap();
    let stack = delivery_stack(&config).unwrap_or_else(|| panic!("{env} has no delivery stack"));
    (config, stack)
}

/// Every statement of the deploy role's policies, in order.
fn statements(stack: &Value) -> Vec<Value> {
    role_statements(stack, "github_deploy")
}

/// Every statement of the managed policies attached to the role `role` (its Terraform name),
/// in order; every policy of the stack is attached to exactly one role.
fn role_statements(stack: &Value, role: &str) -> Vec<Value> {
    let policies = stack["resource"]["aws_iam_policy"].as_object().unwrap();
    let attachments: Vec<&Value> = stack["resource"]["aws_iam_role_policy_attachment"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert_eq!(
        attachments.len(),
        policies.len(),
        "every policy is attached"
    );
    let attached: BTreeSet<&str> = attachments
        .iter()
        .filter(|a| a["role"] == format!("${{aws_iam_role.{role}.name}}"))
        .map(|a| a["policy_arn"].as_str().unwrap())
        .collect();
    assert!(!attached.is_empty(), "no policy attached to {role}");
    policies
        .iter()
        .filter(|(name, _)| attached.contains(format!("${{aws_iam_policy.{name}.arn}}").as_str()))
        .flat_map(|(_, p)| {
            let doc: Value = serde_json::from_str(p["policy"].as_str().unwrap()).unwrap();
            doc["Statement"].as_array().unwrap().clone()
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        _ => panic!("unexpected {v}"),
    }
}

#[test]
fn only_environments_with_delivery_get_the_stack() {
    let local = infra::load_config("local").unwrap();
    assert!(local.delivery.is_none());
    assert!(delivery_stack(&local).is_none());
    for env in ["dev", "prod"] {
        let (config, stack) = shipped(env);
        let backend = &stack["terraform"]["backend"]["s3"];
        let infra::config::Backend::S3 { bucket, key_prefix } = &config.backend else {
            panic!("{env} keeps its state in S3");
        };
        assert_eq!(backend["bucket"], bucket.as_str());
        assert_eq!(backend["key"], format!("{key_prefix}/delivery.tfstate"));
    }
}

#[test]
fn trust_is_exactly_this_repository_and_environment() {
    for env in ["dev", "prod"] {
        let (config, stack) = shipped(env);
        let role = &stack["resource"]["aws_iam_role"]["github_deploy"];
        assert_eq!(role["name"], format!("{env}-service-github-deploy"));
        assert_eq!(role["max_session_duration"], 3600);
        let repo = &config.delivery.as_ref().unwrap().github_repository;
        assert_trusts_only(
            &stack,
            "github_deploy",
            &format!("repo:{repo}:environment:{env}"),
        );
        assert!(!repo.contains('*') && !repo.contains('?'));
        let provider = &stack["resource"]["aws_iam_openid_connect_provider"]["github"];
        assert_eq!(
            provider["url"],
            "https://token.actions.githubusercontent.com"
        );
        assert_eq!(
            provider["client_id_list"],
            serde_json::json!(["sts.amazonaws.com"])
        );
        assert_eq!(
            stack["output"]["deploy_role_arn"]["value"],
            "${aws_iam_role.github_deploy.arn}"
        );
        assert_eq!(
            stack["output"]["oidc_provider_arn"]["value"],
            "${aws_iam_openid_connect_provider.github.arn}"
        );
    }
}

#[test]
fn a_second_environment_looks_the_provider_up_and_may_name_its_github_environment() {
    let (mut config, _) = shipped("dev");
    config.delivery = Some(Delivery {
        github_repository: "Some-Org/some.repo_2".into(),
        github_owner_id: None,
        github_repository_id: None,
        github_environment: Some("development".into()),
        required_reviewers: false,
        create_oidc_provider: false,
    });
    let stack = delivery_stack(&config).unwrap();
    assert!(stack["resource"]["aws_iam_openid_connect_provider"].is_null());
    let lookup = &stack["data"]["aws_iam_openid_connect_provider"]["github"];
    assert_eq!(lookup["url"], "https://token.actions.githubusercontent.com");
    let role = &stack["resource"]["aws_iam_role"]["github_deploy"];
    let trust: Value = serde_json::from_str(role["assume_role_policy"].as_str().unwrap()).unwrap();
    let condition = &trust["Statement"][0]["Condition"]["StringEquals"];
    assert_eq!(
        condition["token.actions.githubusercontent.com:sub"],
        "repo:Some-Org/some.repo_2:environment:development"
    );
    assert_eq!(
        trust["Statement"][0]["Principal"]["Federated"],
        "${data.aws_iam_openid_connect_provider.github.arn}"
    );
    assert_eq!(
        stack["output"]["oidc_provider_arn"]["value"],
        "${data.aws_iam_openid_connect_provider.github.arn}"
    );
}

/// The `sub` condition of the deploy role's trust policy, for `config`.
fn trusted_subject(config: &infra::Config) -> Value {
    let stack = delivery_stack(config).unwrap();
    let role = &stack["resource"]["aws_iam_role"]["github_deploy"];
    let trust: Value = serde_json::from_str(role["assume_role_policy"].as_str().unwrap()).unwrap();
    trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        .clone()
}

#[test]
fn a_repository_without_ids_is_trusted_by_its_name_only_subject() {
    let (config, _) = shipped("prod");
    let delivery = config.delivery.as_ref().unwrap();
    assert_eq!(delivery.github_owner_id, None);
    assert_eq!(
        trusted_subject(&config),
        format!("repo:{}:environment:prod", delivery.github_repository)
    );
}

#[test]
fn a_repository_with_ids_is_trusted_by_its_immutable_subject_only() {
    // GitHub's immutable subject (repositories created or renamed on or after 2026-07-15):
    // the ids follow each name after `@`.
    let good =
        std::fs::read_to_string(infra::config::environments_dir().join("prod.toml")).unwrap();
    let line = "github_repository = \"example-org/serverless-rust-service\"";
    let text = good.replace(
        line,
        &format!("{line}\ngithub_owner_id = 123456\ngithub_repository_id = 456789"),
    );
    let config = infra::Config::parse(std::path::Path::new("prod.toml"), &text).unwrap();
    assert_eq!(
        trusted_subject(&config),
        "repo:example-org@123456/serverless-rust-service@456789:environment:prod",
        "exactly one subject, a string: the name-only form would let a recycled name in"
    );
    // One id without the other is refused, naming the key and where to read both.
    let half = parse_error(&good.replace(line, &format!("{line}\ngithub_owner_id = 123456")));
    assert!(
        half.contains("environments/bad.toml")
            && half.contains("delivery.github_owner_id")
            && half.contains("gh api repos/OWNER/REPO"),
        "{half}"
    );
    // The ids are numbers: an `@` in the repository stays refused.
    let at = parse_error(&good.replace(
        line,
        "github_repository = \"example-org@123456/serverless-rust-service@456789\"",
    ));
    assert!(at.contains("delivery.github_repository"), "{at}");
}

#[test]
fn the_release_check_role_trusts_its_own_environment_and_only_moves_aliases() {
    for env in ["dev", "prod"] {
        let (config, stack) = shipped(env);
        let delivery = config.delivery.as_ref().unwrap();
        let role = &stack["resource"]["aws_iam_role"]["github_release_check"];
        assert_eq!(role["name"], format!("{env}-service-github-release-check"));
        let trust: Value =
            serde_json::from_str(role["assume_role_policy"].as_str().unwrap()).unwrap();
        assert_eq!(trust["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(
            trust["Statement"][0]["Condition"],
            serde_json::json!({ "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": format!(
                    "repo:{}:environment:{env}-release-check",
                    delivery.github_repository
                ),
            } }),
            "{env}: not the deploy job's environment, whose prod reviewers a schedule can't wait for"
        );
        // One inline policy, exactly the actions `rollback --unfinished` calls, on this
        // environment's functions.
        let policies = stack["resource"]["aws_iam_role_policy"]
            .as_object()
            .unwrap();
        assert_eq!(policies.len(), 1, "{env}");
        let policy = &policies["github_release_check"];
        assert_eq!(policy["role"], "${aws_iam_role.github_release_check.name}");
        let document: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
        let statements = document["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1, "{env}");
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(
            statements[0]["Action"],
            serde_json::json!([
                "lambda:GetAlias",
                "lambda:GetFunction",
                "lambda:UpdateAlias"
            ])
        );
        let resources = statements[0]["Resource"].to_string();
        assert!(
            resources.contains(&format!(":function:{}*", config.prefix))
                && !resources.contains("\"*\""),
            "{env}: {resources}"
        );
        // The deploy role can't change it either.
        let deny = statements_of_deploy_role(&stack, delivery::SELF_PROTECTION_SID);
        assert!(
            deny["Resource"]
                .to_string()
                .contains(&format!("role/{}github-release-check", config.prefix)),
            "{env}: {deny}"
        );
        assert_eq!(
            stack["output"]["release_check_role_arn"]["value"],
            "${aws_iam_role.github_release_check.arn}"
        );
    }
}

fn statements_of_deploy_role(stack: &Value, sid: &str) -> Value {
    statements(stack)
        .into_iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

#[test]
fn the_role_names_every_action_and_uses_star_only_for_the_listed_ones() {
    let listed: BTreeSet<&str> = STAR_ACTIONS.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        listed.len(),
        STAR_ACTIONS.len(),
        "STAR_ACTIONS has duplicates"
    );
    for (action, why) in STAR_ACTIONS {
        assert!(why.len() > 20, "{action}: say why AWS needs \"*\"");
    }
    for env in ["dev", "prod"] {
        let (config, stack) = shipped(env);
        let mut sids = BTreeSet::new();
        for s in statements(&stack) {
            let sid = s["Sid"].as_str().unwrap();
            assert!(
                sid.chars().all(|c| c.is_ascii_alphanumeric()),
                "{env}: IAM wants alphanumeric Sids: {sid}"
            );
            assert!(sids.insert(sid.to_owned()), "{env}: Sid {sid} twice");
            let actions = strings(&s["Action"]);
            let resources = strings(&s["Resource"]);
            for a in &actions {
                assert!(!a.contains('*') && !a.contains('?'), "{env}: {sid}: {a}");
                assert!(a.contains(':'), "{env}: {sid}: {a}");
                assert!(
                    !a.starts_with("codedeploy:"),
                    "{env}: releases shift traffic with alias weights, not CodeDeploy"
                );
            }
            if resources.iter().any(|r| r == "*") {
                assert_eq!(resources.len(), 1, "{env}: {sid}");
                assert_eq!(s["Effect"], "Allow");
                for a in &actions {
                    assert!(
                        listed.contains(a.as_str()),
                        "{env}: {sid} grants {a} on \"*\""
                    );
                }
            }
            // Everything else is this environment's: by name, by the state bucket, or by a
            // kind whose ARNs carry generated ids (scoped to the account and region, and by
            // tag where AWS supports it).
            let generated = [
                "${data.aws_kms_alias.",
                "::/restapis",
                "::/restapis/*",
                "::/apikeys",
                "::/apikeys/*",
                "::/usageplans",
                "::/usageplans/*",
                "::/clientcertificates",
                "::/clientcertificates/*",
                "::/account",
                "::/tags/*",
                ":code-signing-config:*",
                ":event-source-mapping:*",
                ":scalable-target/*",
                "/signing-jobs/*",
                ":log-group:*",
                ":ec2:",
                "regional/managedruleset/*/*",
                "/restapis/*/stages/*",
                ":iam::aws:policy/service-role/",
                "role/aws-service-role/",
                "${aws_iam_openid_connect_provider.github.arn}",
            ];
            let signer = config.prefix.replace('-', "_");
            for r in resources.iter().filter(|r| *r != "*") {
                assert!(
                    r.contains(&config.prefix)
                        || r.contains(&signer)
                        || r.contains(&format!("{env}-service-tfstate-example"))
                        || generated.iter().any(|g| r.contains(g)),
                    "{env}: {sid} reaches {r}, outside the environment"
                );
                assert!(
                    !r.contains("delivery.tfstate"),
                    "{env}: the deploy role must not touch the delivery stack's state"
                );
            }
        }
        let used: BTreeSet<&str> = sids.iter().map(String::as_str).collect();
        for sid in [
            "TerraformState",
            "Functions",
            "RolesOfThisEnvironment",
            "ReadAlarms",
        ] {
            assert!(used.contains(sid), "{env}: no {sid}");
        }
    }
}

#[test]
fn the_role_can_never_change_itself_or_the_oidc_provider() {
    for env in ["dev", "prod"] {
        let (_, stack) = shipped(env);
        let all = statements(&stack);
        let deny: Vec<&Value> = all
            .iter()
            .filter(|s| s["Sid"] == delivery::SELF_PROTECTION_SID)
            .collect();
        assert_eq!(deny.len(), 1, "{env}");
        let deny = deny[0];
        assert_eq!(deny["Effect"], "Deny");
        assert!(deny.get("Condition").is_none(), "{env}: unconditional");
        let denied: BTreeSet<String> = strings(&deny["Action"]).into_iter().collect();
        let resources = strings(&deny["Resource"]);
        let role = format!(
            "arn:${{data.aws_partition.current.partition}}:iam::${{data.aws_caller_identity.current.account_id}}:role/{env}-service-github-deploy"
        );
        assert!(resources.contains(&role), "{env}: {resources:?}");
        assert!(
            resources.contains(&"${aws_iam_openid_connect_provider.github.arn}".to_owned()),
            "{env}: {resources:?}"
        );
        // Every IAM action granted on the environment's roles is denied on the deploy role.
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            let on_roles = strings(&s["Resource"])
                .iter()
                .any(|r| r.ends_with(&format!(":role/{env}-service-*")));
            if on_roles {
                for a in strings(&s["Action"]) {
                    assert!(
                        denied.contains(&a),
                        "{env}: {a} is not denied on the role itself"
                    );
                }
            }
        }
        for a in [
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
            "iam:CreatePolicyVersion",
            "iam:UpdateOpenIDConnectProviderThumbprint",
            "iam:AddClientIDToOpenIDConnectProvider",
        ] {
            assert!(denied.contains(a), "{env}: {a}");
        }
        // And nothing in the policies grants changing customer-managed policies or providers
        // (reading the permissions boundary is granted: Terraform refreshes it).
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            for a in strings(&s["Action"]) {
                let changes_a_policy = a.contains("PolicyVersion") && a != "iam:GetPolicyVersion";
                assert!(
                    !a.contains("OpenIDConnectProvider") && !changes_a_policy,
                    "{env}: {a}"
                );
                assert_ne!(a, "iam:CreatePolicy", "{env}");
            }
        }
    }
}

#[test]
fn roles_are_passed_only_to_their_services_and_tags_are_the_providers() {
    for env in ["dev", "prod"] {
        let (config, stack) = shipped(env);
        let all = statements(&stack);
        let find = |sid: &str| all.iter().find(|s| s["Sid"] == sid).unwrap().clone();
        let pass = find("PassRolesOfThisEnvironmentToTheirServices");
        let services = strings(&pass["Condition"]["StringEquals"]["iam:PassedToService"]);
        assert!(services.contains(&"lambda.amazonaws.com".to_owned()));
        assert!(services.iter().all(|s| s.ends_with(".amazonaws.com")));
        // The tags the conditions ask for are the ones the provider puts on everything.
        let provider = &stack["provider"]["aws"][0]["default_tags"][0]["tags"];
        let tags = &find("ApiPartsOfThisEnvironment")["Condition"]["StringEquals"];
        assert_eq!(tags["aws:ResourceTag/Environment"], provider["Environment"]);
        assert_eq!(tags["aws:ResourceTag/Project"], provider["Project"]);
        assert_eq!(provider["Environment"], config.name.as_str());
        // The state objects are the ones the service stack's backend uses.
        let service = infra::synth::render(&config, &common::fixed_options(env))
            .into_iter()
            .find(|(n, _)| n == "service")
            .unwrap()
            .1;
        let key = service["terraform"]["backend"]["s3"]["key"]
            .as_str()
            .unwrap();
        let state = strings(&find("TerraformState")["Resource"]);
        assert!(
            state.iter().any(|r| r.ends_with(&format!("/{key}"))),
            "{state:?}"
        );
    }
}

/// prod with every option a delivered environment may have on (custom domain); CloudFront is refused with `[delivery]`
/// (`escape_claiming_untagged_distributions_certificates_and_code_signing_configs`).
fn every_option() -> infra::Config {
    let mut config = infra::load_config("prod").unwrap();
    config.options.domain = Some(infra::config::Domain {
        name: "api.example.com".into(),
        hosted_zone: "example.com".into(),
    });
    config
}

/// dev, prod and prod with every option: the configurations with `[delivery]` checked here
/// (dev allows stages, so its stack has the stages role too).
fn delivery_configs() -> [infra::Config; 3] {
    [
        infra::load_config("dev").unwrap(),
        infra::load_config("prod").unwrap(),
        every_option(),
    ]
}

#[test]
fn every_policy_fits_iam_limits() {
    for config in delivery_configs() {
        let stack = delivery_stack(&config).unwrap();
        let policies = stack["resource"]["aws_iam_policy"].as_object().unwrap();
        let mut per_role: BTreeMap<&str, usize> = BTreeMap::new();
        for a in stack["resource"]["aws_iam_role_policy_attachment"]
            .as_object()
            .unwrap()
            .values()
        {
            *per_role.entry(a["role"].as_str().unwrap()).or_default() += 1;
        }
        assert_eq!(per_role.len(), 1 + usize::from(config.stages));
        for (role, n) in per_role {
            assert!(
                n <= 10,
                "{role}: a role carries at most 10 managed policies"
            );
        }
        for (name, p) in policies {
            let length = infra::iam::iam_length(p["policy"].as_str().unwrap());
            assert!(
                length <= infra::iam::MANAGED_POLICY_LIMIT,
                "{}: {name} is {length} characters",
                config.name
            );
            assert!(p["name"].as_str().unwrap().starts_with(&config.prefix));
        }
        // The permissions boundary is a managed policy too.
        let boundary = &stacks_of(&config)["bootstrap"]["resource"]["aws_iam_policy"]
            [boundary::LOGICAL]["policy"];
        let length = infra::iam::iam_length(boundary.as_str().unwrap());
        assert!(
            length <= infra::iam::MANAGED_POLICY_LIMIT,
            "{}: the boundary is {length} characters",
            config.name
        );
    }
}

// The permissions boundary of the environment's roles (`infra::constructs::boundary`).

const PARTITION: &str = "${data.aws_partition.current.partition}";
const ACCOUNT: &str = "${data.aws_caller_identity.current.account_id}";
const REGION: &str = "${data.aws_region.current.name}";

fn stacks_of(config: &infra::Config) -> BTreeMap<String, Value> {
    infra::synth::render(config, &common::fixed_options(&config.name))
        .into_iter()
        .collect()
}

/// The ARN every role carries, as the stacks spell it.
fn boundary_arn(config: &infra::Config) -> String {
    format!(
        "arn:{PARTITION}:iam::{ACCOUNT}:policy/{}{}",
        config.prefix,
        boundary::POLICY_SUFFIX
    )
}

/// The ARN every role of a pull request stage carries, as the stacks spell it.
fn stages_boundary_arn(config: &infra::Config) -> String {
    format!(
        "arn:{PARTITION}:iam::{ACCOUNT}:policy/{}{}",
        config.prefix,
        boundary::STAGES_POLICY_SUFFIX
    )
}

/// `arn:<partition>:<service>:<region>:<account>:<resource>` in `config`'s region, as the
/// stacks spell it.
fn arn_in(config: &infra::Config, service: &str, resource: &str) -> String {
    format!(
        "arn:{PARTITION}:{service}:{}:{ACCOUNT}:{resource}",
        config.region
    )
}

/// `(stack, type, name, body)` of every resource of the bootstrap and service stacks (a
/// stage's: of its service stack).
fn own_resources(stacks: &BTreeMap<String, Value>) -> Vec<(&str, &str, &str, &Value)> {
    infra::STACKS
        .iter()
        .filter(|stack| stacks.contains_key(**stack))
        .flat_map(|stack| {
            stacks[*stack]["resource"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(move |(ty, by_name)| {
                    by_name
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(move |(name, body)| (*stack, ty.as_str(), name.as_str(), body))
                })
        })
        .collect()
}

/// `*` and `?` wildcards, as IAM matches actions and ARNs (case-sensitively, which is stricter
/// than IAM's case-insensitive actions).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[test]
fn every_role_of_an_environment_with_delivery_carries_the_boundary() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let stacks = stacks_of(&config);
        let arn = boundary_arn(&config);
        let policy = &stacks["bootstrap"]["resource"]["aws_iam_policy"][boundary::LOGICAL];
        assert_eq!(
            policy["name"],
            format!("{}service-boundary", config.prefix),
            "{env}: the bootstrap stack creates the boundary"
        );
        let roles: Vec<_> = own_resources(&stacks)
            .into_iter()
            .filter(|(_, ty, _, _)| *ty == "aws_iam_role")
            .collect();
        assert!(roles.len() >= 4, "{env}: {} roles", roles.len());
        for (stack, _, name, body) in &roles {
            assert_eq!(
                body["permissions_boundary"], arn,
                "{env}: {stack} role {name} lacks the boundary"
            );
            if *stack == "bootstrap" {
                // Created in the same apply: IAM rejects a boundary that doesn't exist yet.
                assert_eq!(
                    body["depends_on"],
                    serde_json::json!([format!("aws_iam_policy.{}", boundary::LOGICAL)]),
                    "{env}: {name}"
                );
            }
        }
        if config.storage.replication_region.is_some() {
            assert!(
                roles.iter().any(|(stack, _, _, _)| *stack == "bootstrap"),
                "{env}: the replication role is checked too"
            );
        }
        // The deploy role's conditions name the same policy.
        let deny = statements(&stacks[infra::DELIVERY_STACK])
            .into_iter()
            .find(|s| s["Sid"] == security::BOUNDARY_SID)
            .unwrap();
        assert_eq!(
            deny["Condition"]["ArnNotEquals"]["iam:PermissionsBoundary"],
            deploy_role_boundaries(&config),
            "{env}"
        );
    }
    // Without `[delivery]` (local) nothing changes: no boundary, and no role carries one.
    let local = stacks_of(&infra::load_config("local").unwrap());
    assert!(local["bootstrap"]["resource"]["aws_iam_policy"].is_null());
    for (stack, ty, name, body) in own_resources(&local) {
        if ty == "aws_iam_role" {
            assert!(
                body.get("permissions_boundary").is_none(),
                "local: {stack} role {name}"
            );
        }
    }
}

/// A role's effective permissions are what both its policies and its boundary allow: the
/// boundary must allow every action on every resource any role's inline policy grants (with the
/// Terraform references resolved to the ARNs they stand for) and every action of the
/// AWS-managed policies the stacks attach. And it allows nothing no role uses.
#[test]
fn the_boundary_allows_everything_the_roles_are_granted_and_nothing_else() {
    for config in delivery_configs() {
        assert_boundary_fits(&config, boundary::LOGICAL, &config, &config.prefix, true);
    }
}

/// A developer stage's roles carry the environment's boundary, whose patterns cover the
/// stage's names (its secrets, queues and scheduled aliases are `<prefix><stage>-...`); a pull
/// request stage's carry the stages boundary, which allows everything they are granted and
/// nothing no role of theirs uses.
#[test]
fn each_stages_boundary_allows_everything_its_roles_are_granted() {
    for base in staged_configs() {
        let developer = base.for_stage("alice").unwrap();
        assert_boundary_fits(&base, boundary::LOGICAL, &developer, &base.prefix, false);
        let pull_request = base.for_stage(STAGE).unwrap();
        assert_boundary_fits(
            &base,
            boundary::STAGES_LOGICAL,
            &pull_request,
            &pr_stages_prefix(&base),
            true,
        );
    }
}

/// `<prefix>pr-*-`: every pull request stage's names, as an IAM pattern.
fn pr_stages_prefix(base: &infra::Config) -> String {
    format!("{}{}*-", base.prefix, infra::config::PR_STAGE_PREFIX)
}

/// The boundary `logical` of `base`'s bootstrap stack allows every grant of every role of
/// `config`'s stacks (`base` itself or a stage of it), user data only to requests from the
/// functions `<functions>*`; with `all_used`, it allows no action none of those roles has.
fn assert_boundary_fits(
    base: &infra::Config,
    logical: &str,
    config: &infra::Config,
    functions: &str,
    all_used: bool,
) {
    let env = config.prefix.clone();
    let base_stacks = stacks_of(base);
    let stacks = stacks_of(config);
    let resources = own_resources(&stacks);
    let normalize = |arn: &str| {
        arn.replace(PARTITION, "aws")
            .replace(ACCOUNT, "123456789012")
            .replace(REGION, &config.region)
    };
    let boundary: Vec<Value> = {
        let policy = &base_stacks["bootstrap"]["resource"]["aws_iam_policy"][logical];
        let doc: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
        doc["Statement"].as_array().unwrap().clone()
    };
    for s in &boundary {
        assert_eq!(s["Effect"], "Allow", "{env}: the boundary only allows");
    }
    // What each `${<type>.<name>.arn}` the role policies and the boundary use stands for: the
    // boundary's keys are the bootstrap stack's, which a stage shares.
    let shared = own_resources(&base_stacks)
        .into_iter()
        .filter(|(stack, ..)| *stack == "bootstrap");
    let mut arns: BTreeMap<String, String> = BTreeMap::new();
    for (_, ty, name, body) in shared.chain(resources.iter().copied()) {
        let region = if body["provider"] == "aws.replica" {
            config.storage.replication_region.clone().unwrap()
        } else {
            config.region.clone()
        };
        let id = |key: &str| body[key].as_str().unwrap().to_owned();
        let arn = match ty {
            "aws_cloudwatch_log_group" => {
                format!(
                    "arn:aws:logs:{region}:123456789012:log-group:{}",
                    id("name")
                )
            }
            "aws_dynamodb_table" => {
                format!(
                    "arn:aws:dynamodb:{region}:123456789012:table/{}",
                    id("name")
                )
            }
            "aws_sqs_queue" => format!("arn:aws:sqs:{region}:123456789012:{}", id("name")),
            "aws_kms_key" => format!(
                "arn:aws:kms:{region}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
            "aws_secretsmanager_secret" => format!(
                "arn:aws:secretsmanager:{region}:123456789012:secret:{}-AbCdEf",
                id("name")
            ),
            "aws_s3_bucket" => format!("arn:aws:s3:::{}", normalize(&id("bucket"))),
            _ => continue,
        };
        arns.insert(format!("${{{ty}.{name}.arn}}"), arn);
    }
    // The service stack finds its key (the bootstrap stack's) by alias.
    arns.insert(
        "${data.aws_kms_alias.stack.target_key_arn}".into(),
        format!(
            "arn:aws:kms:{}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            config.region
        ),
    );
    let allowed = |action: &str, resource: &str| -> bool {
        boundary.iter().any(|s| {
            let actions = strings(&s["Action"]);
            let on = strings(&s["Resource"]);
            if !actions.iter().any(|a| glob(a, action))
                || !on.iter().any(|r| {
                    let mut r = r.clone();
                    for (reference, arn) in &arns {
                        r = r.replace(reference, arn);
                    }
                    glob(&normalize(&r), resource)
                })
            {
                return false;
            }
            match s.get("Condition") {
                None => true,
                // Only requests from the environment's functions (which is what the function
                // roles' grants are for).
                Some(c) => {
                    assert_eq!(
                        c,
                        &serde_json::json!({ "ArnLike": {
                            "lambda:SourceFunctionArn": format!(
                                "arn:{PARTITION}:lambda:{}:{ACCOUNT}:function:{functions}*",
                                config.region
                            ),
                        } }),
                        "{env}: {}",
                        s["Sid"]
                    );
                    true
                }
            }
        })
    };
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut checked = 0;
    for (stack, ty, name, body) in &resources {
        if *ty != "aws_iam_role_policy" {
            continue;
        }
        let doc: Value = serde_json::from_str(body["policy"].as_str().unwrap()).unwrap();
        for s in doc["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            for resource in strings(&s["Resource"]) {
                let mut resolved = resource.clone();
                for (reference, arn) in &arns {
                    resolved = resolved.replace(reference, arn);
                }
                let resolved = normalize(&resolved);
                assert!(
                    !resolved.contains("${"),
                    "{env}: {stack} {name}: teach this test what {resource} stands for"
                );
                for action in strings(&s["Action"]) {
                    assert!(
                        allowed(&action, &resolved),
                        "{env}: the boundary does not allow {action} on {resolved} ({stack} role policy {name})"
                    );
                    used.insert(action);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 20, "{env}: only {checked} grants checked");
    let managed: BTreeMap<&str, &[&str]> = boundary::MANAGED_POLICIES.iter().copied().collect();
    for (stack, ty, name, body) in &resources {
        if *ty != "aws_iam_role_policy_attachment" {
            continue;
        }
        let arn = body["policy_arn"].as_str().unwrap();
        let policy = arn
            .strip_prefix(&format!("arn:{PARTITION}:iam::aws:policy/"))
            .unwrap_or_else(|| panic!("{env}: {stack} {name} attaches {arn}"));
        let actions = managed.get(policy).unwrap_or_else(|| {
            panic!("{env}: {policy} is attached but not in boundary::MANAGED_POLICIES")
        });
        for action in *actions {
            assert!(
                boundary
                    .iter()
                    .any(|s| strings(&s["Action"]).iter().any(|a| glob(a, action))),
                "{env}: the boundary does not allow {action} ({policy})"
            );
            used.insert((*action).to_owned());
        }
    }
    if !all_used {
        return;
    }
    for s in &boundary {
        for action in strings(&s["Action"]) {
            assert!(
                used.contains(&action),
                "{env}: the boundary allows {action}, which no role has ({})",
                s["Sid"]
            );
        }
    }
}

/// The boundaries the deploy role may give a role: the environment's, and with stages the
/// stages boundary too (a `pr-*` stage's roles carry it, whoever deploys the stage), which
/// allows less (`each_stages_boundary_allows_everything_its_roles_are_granted`).
fn deploy_role_boundaries(config: &infra::Config) -> Value {
    if config.stages {
        serde_json::json!([boundary_arn(config), stages_boundary_arn(config)])
    } else {
        boundary_arn(config).into()
    }
}

#[test]
fn the_deploy_role_makes_roles_only_under_the_boundary_and_never_changes_it() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let stack = delivery_stack(&config).unwrap();
        let all = statements(&stack);
        let arn = boundary_arn(&config);
        let boundaries = deploy_role_boundaries(&config);
        let roles = format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{}*", config.prefix);
        let bounded = [
            "iam:CreateRole",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
        ];
        // Every Allow of these carries the condition.
        let mut granted = BTreeSet::new();
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            for a in strings(&s["Action"]) {
                if bounded.contains(&a.as_str()) {
                    assert_eq!(
                        s["Condition"]["ArnEquals"]["iam:PermissionsBoundary"], boundaries,
                        "{env}: {} grants {a} without the boundary",
                        s["Sid"]
                    );
                    assert_eq!(strings(&s["Resource"]), [roles.as_str()], "{env}: {a}");
                    granted.insert(a.clone());
                }
                assert!(
                    !a.contains("PermissionsBoundary") || a == "iam:PutRolePermissionsBoundary",
                    "{env}: {a}"
                );
            }
        }
        assert_eq!(granted.len(), bounded.len(), "{env}: {granted:?}");
        // And a Deny refuses them under any other boundary (or none), whatever an Allow says.
        let find = |sid: &str| {
            all.iter()
                .find(|s| s["Sid"] == sid)
                .unwrap_or_else(|| panic!("{env}: no {sid}"))
        };
        let deny = find(security::BOUNDARY_SID);
        assert_eq!(deny["Effect"], "Deny");
        assert_eq!(strings(&deny["Resource"]), [roles.as_str()]);
        let denied = strings(&deny["Action"]);
        for a in bounded {
            assert!(denied.contains(&a.to_owned()), "{env}: {a}");
        }
        assert_eq!(
            deny["Condition"],
            serde_json::json!({ "ArnNotEquals": { "iam:PermissionsBoundary": boundaries } })
        );
        // Never lifted from a role.
        let lift = all
            .iter()
            .find(|s| {
                s["Effect"] == "Deny"
                    && strings(&s["Action"]).contains(&"iam:DeleteRolePermissionsBoundary".into())
                    && strings(&s["Resource"]).contains(&roles)
            })
            .unwrap_or_else(|| panic!("{env}: DeleteRolePermissionsBoundary is not denied"));
        assert!(lift.get("Condition").is_none(), "{env}");
        // The boundaries themselves: read, never changed.
        let protect = find(delivery::SELF_PROTECTION_SID);
        let policies: Vec<String> = match &boundaries {
            Value::String(one) => vec![one.clone()],
            several => strings(several),
        };
        assert_eq!(policies[0], arn);
        for policy in &policies {
            assert!(
                strings(&protect["Resource"]).contains(policy),
                "{env}: {policy}"
            );
        }
        let protected = strings(&protect["Action"]);
        for a in [
            "iam:CreatePolicy",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicy",
            "iam:DeletePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:TagPolicy",
            "iam:UntagPolicy",
        ] {
            assert!(protected.contains(&a.to_owned()), "{env}: {a}");
        }
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            if strings(&s["Resource"]).iter().any(|r| policies.contains(r)) {
                for a in strings(&s["Action"]) {
                    assert!(a.starts_with("iam:Get"), "{env}: {a} on a boundary");
                }
            }
        }
    }
}

// Issue #11: the deploy role can touch nothing outside its own environment. One test per way
// out the review of the synthesized prod stacks found; each fails if that way comes back.

/// The `Allow` statements of the deploy role that grant any action starting with `prefix`.
fn allows_of<'a>(all: &'a [Value], prefix: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| strings(&s["Action"]).iter().any(|a| a.starts_with(prefix)))
        .collect()
}

/// KMS takeover: the role could tag any untagged key of the account into the environment and
/// then re-policy and decrypt it. Now every key is the bootstrap stack's, named by exact ARN
/// (a lookup of its alias), and no statement creates, tags, re-policies or re-aliases a key.
#[test]
fn escape_kms_takeover_keys_are_named_by_arn_and_never_tagged_or_repoliced() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let stacks = stacks_of(&config);
        let delivery = &stacks[infra::DELIVERY_STACK];
        let all = statements(delivery);
        let never = [
            "kms:CreateKey",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:PutKeyPolicy",
            "kms:CreateAlias",
            "kms:UpdateAlias",
            "kms:DeleteAlias",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
            "kms:ReplicateKey",
        ];
        let lookups = delivery["data"]["aws_kms_alias"].as_object().unwrap();
        let expected: BTreeSet<String> = lookups
            .keys()
            .map(|name| format!("${{data.aws_kms_alias.{name}.target_key_arn}}"))
            .collect();
        for s in allows_of(&all, "kms:") {
            for a in strings(&s["Action"]) {
                assert!(
                    !never.contains(&a.as_str()),
                    "{env}: {} grants {a}",
                    s["Sid"]
                );
            }
            if strings(&s["Action"]) == ["kms:ListAliases"] {
                continue;
            }
            for r in strings(&s["Resource"]) {
                assert!(
                    expected.contains(&r),
                    "{env}: {} reaches {r}, not one of the environment's keys",
                    s["Sid"]
                );
            }
            if let Some(c) = s.get("Condition") {
                assert!(
                    !c.to_string().contains("aws:ResourceTag"),
                    "{env}: {}: a key's tags never decide",
                    s["Sid"]
                );
            }
        }
        // The lookups find the bootstrap stack's keys by their aliases.
        let aliases: BTreeSet<String> = stacks["bootstrap"]["resource"]["aws_kms_alias"]
            .as_object()
            .unwrap()
            .values()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect();
        for (name, lookup) in lookups {
            let alias = lookup["name"].as_str().unwrap();
            assert!(aliases.contains(alias), "{env}: {name} looks up {alias}");
            assert!(alias.starts_with(&format!("alias/{}", config.prefix)));
        }
        assert_eq!(
            lookups.len(),
            aliases.len(),
            "{env}: every key is named, no other"
        );
        // Only the bootstrap stack (an administrator's) creates keys.
        for stack in ["service", infra::DELIVERY_STACK] {
            assert!(
                stacks[stack]["resource"]["aws_kms_key"].is_null(),
                "{env}: {stack} creates a key"
            );
        }
        // And the boundary names the keys too: no tag makes a key usable by a role.
        let policy = &stacks["bootstrap"]["resource"]["aws_iam_policy"][boundary::LOGICAL];
        let doc: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
        for s in doc["Statement"].as_array().unwrap() {
            if strings(&s["Action"]).iter().any(|a| a.starts_with("kms:")) {
                assert!(s.get("Condition").is_none(), "{env}");
                for r in strings(&s["Resource"]) {
                    assert!(
                        r.starts_with("${aws_kms_key.") && r.ends_with(".arn}"),
                        "{env}: the boundary's key grant reaches {r}"
                    );
                }
            }
        }
    }
}

/// Trust rewrite: `iam:UpdateAssumeRolePolicy` on `role/<prefix>*` let the role make a function
/// role trust another account. Now it is never granted and always denied; and a role the deploy
/// role creates (whose trust it sets) reaches user data only from the environment's functions.
#[test]
fn escape_trust_rewrite_is_denied_and_user_data_needs_a_function() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let stacks = stacks_of(&config);
        let all = statements(&stacks[infra::DELIVERY_STACK]);
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            assert!(
                !strings(&s["Action"]).contains(&"iam:UpdateAssumeRolePolicy".to_owned()),
                "{env}: {} grants iam:UpdateAssumeRolePolicy",
                s["Sid"]
            );
        }
        let deny = all
            .iter()
            .find(|s| s["Sid"] == security::TRUST_SID)
            .unwrap_or_else(|| panic!("{env}: no {}", security::TRUST_SID));
        assert_eq!(deny["Effect"], "Deny");
        assert!(deny.get("Condition").is_none(), "{env}: unconditional");
        assert_eq!(strings(&deny["Action"]), ["iam:UpdateAssumeRolePolicy"]);
        assert_eq!(
            strings(&deny["Resource"]),
            [format!(
                "arn:{PARTITION}:iam::{ACCOUNT}:role/{}*",
                config.prefix
            )]
        );
        let policy = &stacks["bootstrap"]["resource"]["aws_iam_policy"][boundary::LOGICAL];
        let doc: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
        let functions = format!(
            "arn:{PARTITION}:lambda:{}:{ACCOUNT}:function:{}*",
            config.region, config.prefix
        );
        let mut data = 0;
        for s in doc["Statement"].as_array().unwrap() {
            let actions = strings(&s["Action"]);
            if actions
                .iter()
                .any(|a| a.starts_with("dynamodb:") || a.starts_with("secretsmanager:"))
            {
                assert_eq!(
                    s["Condition"],
                    serde_json::json!({ "ArnLike": { "lambda:SourceFunctionArn": functions } }),
                    "{env}: {}",
                    s["Sid"]
                );
                data += 1;
            }
        }
        assert!(data >= 1, "{env}: the boundary grants no table access?");
    }
}

/// EC2: route, security group, gateway and attribute changes were allowed on any resource of
/// the account and region, and CreateTags on untagged resources made them ours. Now every EC2
/// write needs this environment's tags on what it touches, or in the create request of the one
/// kind it creates; tags are written only at creation or on resources already ours.
#[test]
fn escape_ec2_every_network_write_needs_this_environments_tags() {
    let config = infra::load_config("prod").unwrap();
    assert!(config.options.vpc.is_some(), "prod has the VPC option");
    let stack = delivery_stack(&config).unwrap();
    let all = statements(&stack);
    let default_sg = format!("{}default-deny", config.prefix);
    let owned = |c: &Value| {
        c["StringEquals"]["aws:ResourceTag/Environment"] == "prod"
            && c["StringEquals"]["aws:ResourceTag/Project"] == "prod-service"
    };
    let tagging = |c: &Value| {
        c["StringEquals"]["aws:RequestTag/Environment"] == "prod"
            && c["StringEquals"]["aws:RequestTag/Project"] == "prod-service"
    };
    let mut checked = 0;
    for s in allows_of(&all, "ec2:") {
        let sid = s["Sid"].as_str().unwrap();
        let actions = strings(&s["Action"]);
        let resources = strings(&s["Resource"]);
        if actions.iter().all(|a| a.starts_with("ec2:Describe")) {
            continue;
        }
        checked += 1;
        let c = s.get("Condition").cloned().unwrap_or(Value::Null);
        if resources
            .iter()
            .any(|r| r.ends_with(":security-group-rule/*"))
        {
            // A rule has its own ARN but no tags; EC2 authorizes these four actions on the
            // group too (required), so the group's statements decide. Nothing else, and on
            // nothing else.
            assert_eq!(resources.len(), 1, "{sid}: rules only");
            for a in &actions {
                assert!(RULE_ACTIONS.contains(&a.as_str()), "{sid}: {a} on rules");
                let on_groups: Vec<&Value> = allows_of(&all, "ec2:")
                    .into_iter()
                    .filter(|g| strings(&g["Action"]).contains(a))
                    .filter(|g| {
                        strings(&g["Resource"])
                            .iter()
                            .any(|r| r.ends_with(":security-group/*") || r.ends_with(":*"))
                    })
                    .collect();
                assert!(!on_groups.is_empty(), "{sid}: {a} on no group");
                for g in on_groups {
                    assert!(owned(&g["Condition"]), "{a} in {}", g["Sid"]);
                }
            }
            continue;
        }
        if c["StringEquals"]["ec2:CreateAction"].is_array() {
            assert_eq!(
                actions,
                ["ec2:CreateTags"],
                "{sid}: tags only in a create request"
            );
            continue;
        }
        if c["Null"]["aws:ResourceTag/Environment"] == "true" {
            // The default security group, named once; nothing else is granted on it.
            assert_eq!(actions, ["ec2:CreateTags"], "{sid}");
            assert!(tagging(&c), "{sid}");
            assert_eq!(
                c["StringEquals"]["aws:RequestTag/Name"],
                default_sg.as_str()
            );
            // Exactly the tags Terraform writes: the provider's default tags and the name.
            let mut keys: Vec<String> = stack["provider"]["aws"][0]["default_tags"][0]["tags"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .chain(["Name".to_owned()])
                .collect();
            keys.sort();
            let mut allowed = strings(&c["ForAllValues:StringEquals"]["aws:TagKeys"]);
            allowed.sort();
            assert_eq!(allowed, keys, "{sid}");
            continue;
        }
        if owned(&c) {
            if c["StringEquals"]["aws:ResourceTag/Name"] == default_sg.as_str() {
                assert!(
                    actions
                        .iter()
                        .all(|a| a.starts_with("ec2:RevokeSecurityGroup")),
                    "{sid}: the default group is only ever stripped"
                );
            } else {
                assert_eq!(
                    c["StringNotEquals"]["aws:ResourceTag/Name"],
                    default_sg.as_str(),
                    "{sid}: never on the default group's name"
                );
            }
            if actions.iter().any(|a| a.ends_with("Tags")) {
                assert_eq!(
                    c["ForAllValues:StringNotEquals"]["aws:TagKeys"],
                    serde_json::json!(["Project", "Environment"]),
                    "{sid}: never the ownership tags"
                );
            }
            continue;
        }
        // A create statement: one action, on exactly the kind it creates, with our tags.
        assert!(
            tagging(&c),
            "{sid}: {actions:?} without this environment's tags"
        );
        assert_eq!(actions.len(), 1, "{sid}");
        assert_eq!(resources.len(), 1, "{sid}");
        assert!(
            actions[0].starts_with("ec2:Create") || actions[0] == "ec2:AllocateAddress",
            "{sid}"
        );
        assert!(!resources[0].ends_with(":*"), "{sid}: {}", resources[0]);
    }
    assert!(checked >= 10, "only {checked} EC2 statements");
    // The actions the review named are granted only on resources already this environment's.
    for a in [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:CreateRoute",
        "ec2:ReplaceRoute",
        "ec2:AttachInternetGateway",
        "ec2:ModifyVpcAttribute",
        "ec2:ModifySubnetAttribute",
        "ec2:ModifyVpcEndpoint",
    ] {
        let granting: Vec<_> = allows_of(&all, "ec2:")
            .into_iter()
            .filter(|s| strings(&s["Action"]).contains(&a.to_owned()))
            .filter(|s| {
                !strings(&s["Resource"])
                    .iter()
                    .all(|r| r.ends_with(":security-group-rule/*"))
            })
            .collect();
        assert!(!granting.is_empty(), "{a} is needed");
        for s in granting {
            assert!(owned(&s["Condition"]), "{a} in {}", s["Sid"]);
        }
    }
}

/// The four actions EC2 authorizes on a security group rule as well as on its group.
const RULE_ACTIONS: [&str; 4] = [
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
];

/// API Gateway, ACM and Lambda code signing configs: every API (with every API key's value),
/// certificate and code signing config of the account was reachable. Now each is reached only
/// while it carries this environment's tags (API parts are also created only with them); no
/// collection is listed (`GET /apikeys` returns every key's value).
#[test]
fn escape_account_wide_apis_certificates_and_code_signing_need_tags() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let all = statements(&delivery_stack(&config).unwrap());
        let mut checked = 0;
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            let sid = s["Sid"].as_str().unwrap();
            let resources = strings(&s["Resource"]);
            let actions = strings(&s["Action"]);
            let reaches = resources.iter().any(|r| {
                r.contains(":apigateway:")
                    || r.contains(":cloudfront:")
                    || r.contains(":acm:")
                    || r.contains(":code-signing-config:")
            }) || actions.iter().any(|a| {
                a.starts_with("acm:")
                    || a.starts_with("cloudfront:")
                    || a == "lambda:CreateCodeSigningConfig"
            });
            // wafv2's association actions name the stage too, but associating a web ACL with a
            // stage also takes apigateway:SetWebACL on it, which is checked here.
            if !reaches || actions.iter().all(|a| a.starts_with("wafv2:")) {
                continue;
            }
            checked += 1;
            if resources.iter().all(|r| r.ends_with("::/account")) {
                // The account's API Gateway logging role: one setting, no tags.
                assert_eq!(
                    actions,
                    ["apigateway:GET", "apigateway:PATCH"],
                    "{env}: {sid}"
                );
                continue;
            }
            for r in &resources {
                assert!(
                    !r.ends_with("::/apikeys") || actions == ["apigateway:POST"],
                    "{env}: {sid}: listing API keys returns their values"
                );
            }
            let c = s
                .get("Condition")
                .unwrap_or_else(|| panic!("{env}: {sid} has no condition"));
            let on = |key: &str| c["StringEquals"][key] == env.as_str();
            assert!(
                on("aws:ResourceTag/Environment") || on("aws:RequestTag/Environment"),
                "{env}: {sid} is not limited to this environment's tags: {c}"
            );
            if !on("aws:ResourceTag/Environment") {
                // Creating (tags in the request) or tagging a new resource: nothing that reads
                // or changes what exists.
                for a in &actions {
                    let creates = a.contains("Create")
                        || a.contains("Request")
                        || a.contains("Tag")
                        || a == "apigateway:POST";
                    assert!(creates, "{env}: {sid} grants {a} on request tags alone");
                }
            }
            let tags = actions.iter().any(|a| {
                (a.contains("Tag") && !a.contains("ListTags")) && a != "acm:ListTagsForCertificate"
            }) || resources.iter().any(|r| r.contains("::/tags/"));
            if tags {
                assert!(on("aws:ResourceTag/Environment"), "{env}: {sid}");
                assert_eq!(
                    c["ForAllValues:StringNotEquals"]["aws:TagKeys"],
                    serde_json::json!(["Project", "Environment"]),
                    "{env}: {sid} may change the ownership tags"
                );
            }
        }
        assert!(checked >= 4, "{env}: only {checked} statements checked");
    }
}

/// CloudFront, ACM and Lambda authorize a new distribution's, certificate's or code signing
/// config's tags as a separate tagging action with no key that tells a create request from a
/// later one, so the right to create one with tags was the right to tag any untagged one of the
/// account into this environment, and then to change it. Now the deploy role creates and tags
/// none: the certificate and the config are the bootstrap stack's (an administrator's), the
/// service stack reads them from its outputs, and CloudFront is refused with `[delivery]`.
#[test]
fn escape_claiming_untagged_distributions_certificates_and_code_signing_configs() {
    let mut checked_both = false;
    for config in delivery_configs() {
        let env = config.name.clone();
        let stacks = stacks_of(&config);
        let all = statements(&stacks[infra::DELIVERY_STACK]);
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            let sid = s["Sid"].as_str().unwrap();
            let resources = strings(&s["Resource"]);
            for a in strings(&s["Action"]) {
                assert!(!a.starts_with("cloudfront:"), "{env}: {sid} grants {a}");
                if a.starts_with("acm:") {
                    assert!(
                        ["acm:DescribeCertificate", "acm:ListTagsForCertificate"]
                            .contains(&a.as_str()),
                        "{env}: {sid} grants {a}"
                    );
                }
                assert!(
                    !a.contains("CodeSigningConfig")
                        || a.contains("Get")
                        || a.contains("FunctionCodeSigningConfig"),
                    "{env}: {sid} grants {a}"
                );
                // Event source mappings too: no right of the role depends on their tags
                // (changing one is conditioned on its function, `lambda:FunctionArn`).
                if a == "lambda:TagResource" || a == "lambda:UntagResource" {
                    for r in &resources {
                        assert!(
                            r.contains(":function:") || r.ends_with(":event-source-mapping:*"),
                            "{env}: {sid} tags {r}"
                        );
                    }
                }
            }
            // Tagging what has no Environment tag yet is claiming it: only the VPC's default
            // security group, named once and then only stripped of rules.
            if s["Condition"]["Null"]["aws:ResourceTag/Environment"] == "true" {
                assert_eq!(sid, "NameTheDefaultSecurityGroup", "{env}");
            }
        }
        let signs = config.lambda.code_signing;
        let domain = config.options.domain.is_some();
        checked_both |= signs && domain;
        let bootstrap = &stacks["bootstrap"];
        let service = &stacks["service"];
        for (ty, output, on) in [
            (
                "aws_lambda_code_signing_config",
                "code_signing_config_arn",
                signs,
            ),
            ("aws_acm_certificate", "certificate_arn", domain),
        ] {
            assert!(service["resource"][ty].is_null(), "{env}: {ty}");
            assert_eq!(bootstrap["resource"][ty].is_object(), on, "{env}: {ty}");
            assert_eq!(
                bootstrap["output"][output].is_object(),
                on,
                "{env}: {output}"
            );
            let read = format!("${{data.terraform_remote_state.bootstrap.outputs.{output}}}");
            assert_eq!(service.to_string().contains(&read), on, "{env}: {read}");
        }
        if signs || domain {
            // The outputs are read where the bootstrap stack keeps its state.
            let remote = &service["data"]["terraform_remote_state"]["bootstrap"];
            assert_eq!(remote["backend"], "s3", "{env}");
            let backend = &bootstrap["terraform"]["backend"]["s3"];
            for key in ["bucket", "key", "region"] {
                assert_eq!(remote["config"][key], backend[key], "{env}: {key}");
            }
        }
    }
    let good =
        std::fs::read_to_string(infra::config::environments_dir().join("prod.toml")).unwrap();
    let message = parse_error(&format!(
        "{good}\n[options.cloudfront]\nprice_class = \"PriceClass_100\"\n"
    ));
    assert!(
        message.contains("options.cloudfront") && message.contains("[delivery]"),
        "{message}"
    );
    // Without [delivery] (deployed with administrator credentials) CloudFront stays allowed.
    let local =
        std::fs::read_to_string(infra::config::environments_dir().join("local.toml")).unwrap();
    let cloudfront = format!("{local}\n[options.cloudfront]\nprice_class = \"PriceClass_100\"\n");
    let config = infra::Config::parse(std::path::Path::new("local.toml"), &cloudfront).unwrap();
    assert!(config.delivery.is_none() && config.options.cloudfront.is_some());
    assert!(
        checked_both,
        "a configuration with code signing and a custom domain"
    );
}

/// Data exfiltration from CI: smoke's Scan let the deploy job read every user. The role grants
/// no Scan, and smoke's code asks for none (it reads its own items by key).
#[test]
fn escape_smoke_reads_items_by_key_never_scans() {
    for config in delivery_configs() {
        let all = statements(&delivery_stack(&config).unwrap());
        for s in allows_of(&all, "dynamodb:") {
            for a in strings(&s["Action"]) {
                assert!(
                    !matches!(
                        a.as_str(),
                        "dynamodb:Scan" | "dynamodb:BatchGetItem" | "dynamodb:PartiQLSelect"
                    ),
                    "{}: {} grants {a}",
                    config.name,
                    s["Sid"]
                );
            }
        }
    }
    let src = deploy_files::workspace_root().join("smoke").join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for call in [".scan()", ".batch_get_item()", ".execute_statement()"] {
            assert!(
                !text.contains(call),
                "{} calls {call}: the deploy role may not read the table wholesale",
                path.display()
            );
        }
    }
}

/// What the deploy role must be able to call for each kind of resource the stacks hold
/// (Terraform's create, read, update and delete of it, from the AWS provider's calls) and for
/// xtask's own steps. The bootstrap stack's resources only need reading: the deploy role
/// applies that stack, but only an administrator changes it.
fn needed(stack: &str, ty: &str, config: &infra::Config) -> Vec<&'static str> {
    let api = vec![
        "apigateway:POST",
        "apigateway:GET",
        "apigateway:PUT",
        "apigateway:PATCH",
        "apigateway:DELETE",
    ];
    let read_only = stack == "bootstrap";
    let mut actions: Vec<&'static str> = match (read_only, ty) {
        (_, "data.aws_caller_identity" | "data.aws_partition" | "data.aws_region") => vec![],
        (true, "aws_iam_policy") => vec!["iam:GetPolicy", "iam:GetPolicyVersion"],
        (true, "aws_iam_role") => vec![
            "iam:GetRole",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
        ],
        (true, "aws_iam_role_policy") => vec!["iam:GetRolePolicy"],
        (true, "aws_kms_alias") => vec!["kms:ListAliases"],
        (true, "aws_kms_key") => vec![
            "kms:DescribeKey",
            "kms:GetKeyPolicy",
            "kms:GetKeyRotationStatus",
            "kms:ListResourceTags",
        ],
        (true, "aws_s3_bucket") => vec![
            "s3:ListBucket",
            "s3:GetBucketTagging",
            "s3:GetBucketPolicy",
            "s3:GetBucketAcl",
            "s3:GetBucketCORS",
            "s3:GetBucketWebsite",
            "s3:GetBucketVersioning",
            "s3:GetAccelerateConfiguration",
            "s3:GetBucketRequestPayment",
            "s3:GetBucketLogging",
            "s3:GetLifecycleConfiguration",
            "s3:GetReplicationConfiguration",
            "s3:GetEncryptionConfiguration",
            "s3:GetBucketObjectLockConfiguration",
        ],
        (true, "aws_s3_bucket_lifecycle_configuration") => vec!["s3:GetLifecycleConfiguration"],
        (true, "aws_s3_bucket_logging") => vec!["s3:GetBucketLogging"],
        (true, "aws_s3_bucket_notification") => vec!["s3:GetBucketNotification"],
        (true, "aws_s3_bucket_ownership_controls") => vec!["s3:GetBucketOwnershipControls"],
        (true, "aws_s3_bucket_policy") => vec!["s3:GetBucketPolicy"],
        (true, "aws_s3_bucket_public_access_block") => vec!["s3:GetBucketPublicAccessBlock"],
        (true, "aws_s3_bucket_replication_configuration") => {
            vec!["s3:GetReplicationConfiguration"]
        }
        (true, "aws_s3_bucket_server_side_encryption_configuration") => {
            vec!["s3:GetEncryptionConfiguration"]
        }
        (true, "aws_s3_bucket_versioning") => vec!["s3:GetBucketVersioning"],
        (true, "aws_signer_signing_profile") | (false, "data.aws_signer_signing_profile") => {
            vec!["signer:GetSigningProfile"]
        }
        (false, "data.aws_kms_alias") => vec!["kms:ListAliases", "kms:DescribeKey"],
        (false, "aws_api_gateway_account") => {
            vec!["apigateway:GET", "apigateway:PATCH", "iam:PassRole"]
        }
        (false, t) if t.starts_with("aws_api_gateway_") => api,
        (false, "aws_appautoscaling_policy") => vec![
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:DeleteScalingPolicy",
        ],
        (false, "aws_appautoscaling_target") => vec![
            "application-autoscaling:RegisterScalableTarget",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DeregisterScalableTarget",
        ],
        (false, "aws_cloudwatch_dashboard") => vec![
            "cloudwatch:PutDashboard",
            "cloudwatch:GetDashboard",
            "cloudwatch:DeleteDashboards",
        ],
        (false, "aws_cloudwatch_log_group") => vec![
            "logs:CreateLogGroup",
            "logs:DescribeLogGroups",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:AssociateKmsKey",
            "logs:ListTagsForResource",
        ],
        (false, "aws_cloudwatch_metric_alarm") => vec![
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:ListTagsForResource",
        ],
        (false, "aws_default_security_group") => vec![
            "ec2:DescribeSecurityGroups",
            "ec2:CreateTags",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        ],
        (false, "aws_dynamodb_table") => vec![
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:DescribeContinuousBackups",
            "dynamodb:UpdateContinuousBackups",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:ListTagsOfResource",
            "kms:CreateGrant",
            "kms:DescribeKey",
        ],
        (false, "aws_eip") => vec![
            "ec2:AllocateAddress",
            "ec2:DescribeAddresses",
            "ec2:ReleaseAddress",
        ],
        (false, "aws_flow_log") => vec![
            "ec2:CreateFlowLogs",
            "ec2:DescribeFlowLogs",
            "ec2:DeleteFlowLogs",
            "iam:PassRole",
        ],
        (false, "aws_iam_role") => vec![
            "iam:CreateRole",
            "iam:GetRole",
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:ListInstanceProfilesForRole",
        ],
        (false, "aws_iam_role_policy") => vec![
            "iam:PutRolePolicy",
            "iam:GetRolePolicy",
            "iam:DeleteRolePolicy",
        ],
        (false, "aws_iam_role_policy_attachment") => vec![
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:ListAttachedRolePolicies",
        ],
        (false, "aws_internet_gateway") => vec![
            "ec2:CreateInternetGateway",
            "ec2:AttachInternetGateway",
            "ec2:DescribeInternetGateways",
            "ec2:DetachInternetGateway",
            "ec2:DeleteInternetGateway",
        ],
        (false, "aws_lambda_alias") => vec![
            "lambda:CreateAlias",
            "lambda:GetAlias",
            "lambda:UpdateAlias",
            "lambda:DeleteAlias",
        ],
        (true, "aws_lambda_code_signing_config") => {
            vec!["lambda:GetCodeSigningConfig", "lambda:ListTags"]
        }
        // The service stack reads the bootstrap stack's outputs from its state object.
        (false, "data.terraform_remote_state") => vec!["s3:GetObject", "kms:Decrypt"],
        (false, "aws_lambda_function") => vec![
            "lambda:CreateFunction",
            "lambda:GetFunction",
            "lambda:UpdateFunctionCode",
            "lambda:UpdateFunctionConfiguration",
            "lambda:DeleteFunction",
            "lambda:PublishVersion",
            "lambda:ListVersionsByFunction",
            "lambda:GetFunctionCodeSigningConfig",
            "lambda:PutFunctionConcurrency",
            "iam:PassRole",
            "s3:GetObject",
            "kms:Encrypt",
            "kms:CreateGrant",
        ],
        (false, "aws_lambda_permission") => vec![
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "lambda:GetPolicy",
        ],
        (false, "aws_nat_gateway") => vec![
            "ec2:CreateNatGateway",
            "ec2:DescribeNatGateways",
            "ec2:DeleteNatGateway",
        ],
        (false, "aws_route") => vec![
            "ec2:CreateRoute",
            "ec2:ReplaceRoute",
            "ec2:DeleteRoute",
            "ec2:DescribeRouteTables",
        ],
        (false, "aws_route_table") => vec![
            "ec2:CreateRouteTable",
            "ec2:DescribeRouteTables",
            "ec2:DeleteRouteTable",
        ],
        (false, "aws_route_table_association") => {
            vec!["ec2:AssociateRouteTable", "ec2:DisassociateRouteTable"]
        }
        (false, "aws_security_group") => vec![
            "ec2:CreateSecurityGroup",
            "ec2:DescribeSecurityGroups",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:DeleteSecurityGroup",
        ],
        (false, "aws_sns_topic") => vec![
            "sns:CreateTopic",
            "sns:GetTopicAttributes",
            "sns:SetTopicAttributes",
            "sns:DeleteTopic",
            "sns:ListTagsForResource",
        ],
        (false, "aws_sns_topic_subscription") => vec![
            "sns:Subscribe",
            "sns:GetSubscriptionAttributes",
            "sns:Unsubscribe",
        ],
        (false, "aws_sqs_queue") => vec![
            "sqs:CreateQueue",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:ListQueueTags",
            "sqs:TagQueue",
        ],
        (false, "aws_lambda_event_source_mapping") => vec![
            "lambda:CreateEventSourceMapping",
            "lambda:GetEventSourceMapping",
            "lambda:UpdateEventSourceMapping",
            "lambda:DeleteEventSourceMapping",
            "lambda:ListTags",
            "lambda:TagResource",
        ],
        (false, "aws_scheduler_schedule") => vec![
            "scheduler:CreateSchedule",
            "scheduler:GetSchedule",
            "scheduler:UpdateSchedule",
            "scheduler:DeleteSchedule",
            "iam:PassRole",
            "kms:DescribeKey",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        ],
        (false, "aws_subnet") => vec![
            "ec2:CreateSubnet",
            "ec2:DescribeSubnets",
            "ec2:ModifySubnetAttribute",
            "ec2:DeleteSubnet",
        ],
        (false, "aws_vpc") => vec![
            "ec2:CreateVpc",
            "ec2:DescribeVpcs",
            "ec2:DescribeVpcAttribute",
            "ec2:ModifyVpcAttribute",
            "ec2:DeleteVpc",
        ],
        (false, "aws_vpc_endpoint") => vec![
            "ec2:CreateVpcEndpoint",
            "ec2:DescribeVpcEndpoints",
            "ec2:ModifyVpcEndpoint",
            "ec2:DeleteVpcEndpoints",
            "ec2:DescribePrefixLists",
        ],
        (false, "aws_wafv2_web_acl") => vec![
            "wafv2:CreateWebACL",
            "wafv2:GetWebACL",
            "wafv2:UpdateWebACL",
            "wafv2:DeleteWebACL",
            "wafv2:ListTagsForResource",
        ],
        (false, "aws_wafv2_web_acl_association") => vec![
            "wafv2:AssociateWebACL",
            "wafv2:GetWebACLForResource",
            "wafv2:DisassociateWebACL",
            "apigateway:SetWebACL",
        ],
        (false, "aws_wafv2_web_acl_logging_configuration") => vec![
            "wafv2:PutLoggingConfiguration",
            "wafv2:GetLoggingConfiguration",
            "wafv2:DeleteLoggingConfiguration",
            "logs:CreateLogDelivery",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
        ],
        (true, "aws_acm_certificate") => {
            vec!["acm:DescribeCertificate", "acm:ListTagsForCertificate"]
        }
        (true, "aws_acm_certificate_validation") => vec!["acm:DescribeCertificate"],
        (true, "aws_route53_record") => vec!["route53:ListResourceRecordSets"],
        (false, "aws_route53_record") => vec![
            "route53:ChangeResourceRecordSets",
            "route53:ListResourceRecordSets",
            "route53:GetChange",
        ],
        (_, "data.aws_route53_zone") => {
            vec!["route53:ListHostedZonesByName", "route53:GetHostedZone"]
        }
        // RotateSecret checks the caller may invoke the rotation function.
        (false, "aws_secretsmanager_secret_rotation") => vec![
            "secretsmanager:RotateSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:CancelRotateSecret",
            "lambda:InvokeFunction",
        ],
        (false, "aws_secretsmanager_secret") => vec![
            "secretsmanager:CreateSecret",
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetResourcePolicy",
            "secretsmanager:UpdateSecret",
            "secretsmanager:TagResource",
            "secretsmanager:DeleteSecret",
        ],
        _ => panic!(
            "{}: teach this test what the deploy role needs for {ty} in the {stack} stack",
            config.name
        ),
    };
    if ty == "aws_lambda_function" && config.lambda.code_signing {
        actions.push("lambda:PutFunctionCodeSigningConfig");
    }
    actions
}

/// What Terraform calls for every kind of resource of `stacks` (`(stack name, stack)`) and
/// what xtask's upload, sign, release, rollback, smoke and logs steps call, each with why.
fn wanted_actions<'a>(
    stacks: impl IntoIterator<Item = (&'a str, &'a Value)>,
    config: &infra::Config,
) -> BTreeMap<&'static str, String> {
    let mut wanted: BTreeMap<&str, String> = BTreeMap::new();
    for (stack, body) in stacks {
        let kinds = body["resource"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys().cloned())
            .chain(
                body["data"]
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys().map(|k| format!("data.{k}"))),
            );
        for ty in kinds {
            for action in needed(stack, &ty, config) {
                wanted.entry(action).or_insert(format!("{stack} {ty}"));
            }
        }
    }
    // xtask: upload and check the packages, sign them, release and roll back `live` with
    // the alarms as gate, smoke's items by key, `logs`.
    let mut steps = vec![
        "s3:PutObject",
        "s3:GetObject",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:PublishVersion",
        "cloudwatch:DescribeAlarms",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "logs:FilterLogEvents",
        "logs:DescribeLogGroups",
    ];
    if config.stage.is_none() {
        steps.push("s3:GetObjectVersion");
    }
    if config.lambda.code_signing {
        steps.extend(["signer:StartSigningJob", "signer:DescribeSigningJob"]);
    }
    for action in steps {
        wanted.entry(action).or_insert("xtask".into());
    }
    wanted
}

/// The `wanted` actions that no Allow of `all` grants, each with why it is wanted.
fn missing(all: &[Value], wanted: &BTreeMap<&str, String>) -> Vec<String> {
    let granted: BTreeSet<String> = all
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    wanted
        .iter()
        .filter(|(action, _)| !granted.contains(**action))
        .map(|(action, why)| format!("{action} ({why})"))
        .collect()
}

/// The deploy role is still sufficient: for every kind of resource the bootstrap and service
/// stacks hold, it has what Terraform calls on it (reads only, for the bootstrap stack), and it
/// has what xtask's upload, sign, release, rollback, smoke and logs steps call. The conditions
/// and resources of those grants are checked by the tests above; moto can't evaluate them
/// (docs/security.md).
#[test]
fn the_role_has_every_action_the_delivery_path_calls() {
    for config in delivery_configs() {
        let env = config.name.clone();
        let stacks = stacks_of(&config);
        let all = statements(&stacks[infra::DELIVERY_STACK]);
        let wanted = wanted_actions(
            infra::STACKS.iter().map(|stack| (*stack, &stacks[*stack])),
            &config,
        );
        let missing = missing(&all, &wanted);
        assert!(
            missing.is_empty(),
            "{env}: the deploy role lacks {missing:?}"
        );
    }
}

// The stages role (`infra::constructs::delivery::stages_role`): what a pull request's own code
// runs with.

/// The longest pull request stage name dev's prefix leaves room for.
const STAGE: &str = "pr-1234";

/// The environments whose files allow stages and have a delivery stack.
fn staged_configs() -> Vec<infra::Config> {
    let configs: Vec<infra::Config> = delivery_configs()
        .into_iter()
        .filter(|c| c.stages)
        .collect();
    assert!(!configs.is_empty(), "dev allows stages");
    configs
}

/// The role `role` (its Terraform name) trusts GitHub's OIDC tokens for exactly `subject`:
/// one statement, only `StringEquals`, on exactly `aud` and `sub`.
fn assert_trusts_only(stack: &Value, role: &str, subject: &str) {
    let trust = trust_of(stack, role);
    assert_eq!(trust["Effect"], "Allow");
    assert_eq!(trust["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        trust["Principal"],
        serde_json::json!({ "Federated": "${aws_iam_openid_connect_provider.github.arn}" })
    );
    assert_eq!(
        trust["Condition"],
        serde_json::json!({ "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": subject,
        } }),
        "{role}: only StringEquals, on exactly aud and sub"
    );
}

/// The trust policy's only statement of the role `role` (its Terraform name).
fn trust_of(stack: &Value, role: &str) -> Value {
    let role = &stack["resource"]["aws_iam_role"][role];
    let trust: Value = serde_json::from_str(role["assume_role_policy"].as_str().unwrap()).unwrap();
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    statements[0].clone()
}

#[test]
fn only_environments_with_stages_get_the_stages_role_trusted_by_their_stages_environment() {
    let (prod, stack) = shipped("prod");
    assert!(!prod.stages);
    assert!(stack["resource"]["aws_iam_role"]["github_stages"].is_null());
    assert!(stack["output"]["stages_role_arn"].is_null());
    for config in staged_configs() {
        let env = config.name.clone();
        let stack = delivery_stack(&config).unwrap();
        let role = &stack["resource"]["aws_iam_role"]["github_stages"];
        assert_eq!(role["name"], format!("{}github-stages", config.prefix));
        assert_eq!(role["max_session_duration"], 3600);
        let repo = &config.delivery.as_ref().unwrap().github_repository;
        assert_trusts_only(
            &stack,
            "github_stages",
            &format!("repo:{repo}:environment:{env}-stages"),
        );
        assert_eq!(
            stack["output"]["stages_role_arn"]["value"],
            "${aws_iam_role.github_stages.arn}"
        );
        // With the immutable ids, only the immutable subject.
        let mut with_ids = config.clone();
        let delivery = with_ids.delivery.as_mut().unwrap();
        delivery.github_owner_id = Some(123456);
        delivery.github_repository_id = Some(456789);
        let (owner, name) = repo.split_once('/').unwrap();
        assert_eq!(
            trust_of(&delivery_stack(&with_ids).unwrap(), "github_stages")["Condition"]["StringEquals"]
                ["token.actions.githubusercontent.com:sub"],
            format!("repo:{owner}@123456/{name}@456789:environment:{env}-stages")
        );
    }
}

/// Every resource of the stages role is a pull request stage's: a name under `<prefix>pr-`,
/// the state, records and packages under `stages/pr-*/`, the shared keys, the boundary
/// (reading) and the two buckets (listing) by exact ARN, or a kind whose ARNs carry generated ids with a `Stage` condition
/// of `pr-*` (or, for event source mappings, the stage functions'). Every action is named,
/// `"*"` only for `STAR_ACTIONS`, and nothing sets the account's API Gateway logging role.
#[test]
fn the_stages_role_names_every_action_and_reaches_only_pull_request_stages() {
    let listed: BTreeSet<&str> = STAR_ACTIONS.iter().map(|(a, _)| *a).collect();
    for config in staged_configs() {
        let env = config.name.clone();
        let stack = delivery_stack(&config).unwrap();
        let stages = format!("{}{}", config.prefix, infra::config::PR_STAGE_PREFIX);
        let infra::config::Backend::S3 { bucket, key_prefix } = &config.backend else {
            panic!("{env} keeps its state in S3");
        };
        let state_bucket = format!("arn:{PARTITION}:s3:::{bucket}");
        let artifacts = format!(
            "arn:{PARTITION}:s3:::{}artifacts-{ACCOUNT}-{}",
            config.prefix, config.region
        );
        let by_exact_arn = [
            format!("{state_bucket}/{key_prefix}/stages/pr-*/service.tfstate"),
            format!("{state_bucket}/{key_prefix}/stages/pr-*/service.tfstate.tflock"),
            format!("{state_bucket}/{key_prefix}/stages/pr-*/stage.json"),
            format!("{artifacts}/stages/pr-*/*"),
            state_bucket.clone(),
            artifacts.clone(),
            "${data.aws_kms_alias.buckets.target_key_arn}".to_owned(),
            "${data.aws_kms_alias.stack.target_key_arn}".to_owned(),
            stages_boundary_arn(&config),
        ];
        let stage_condition = |s: &Value| {
            let like = &s["Condition"]["StringLike"];
            like["aws:ResourceTag/Stage"] == "pr-*" || like["aws:RequestTag/Stage"] == "pr-*"
        };
        let mut sids = BTreeSet::new();
        for s in role_statements(&stack, "github_stages") {
            let sid = s["Sid"].as_str().unwrap().to_owned();
            assert!(sids.insert(sid.clone()), "{env}: Sid {sid} twice");
            let actions = strings(&s["Action"]);
            let resources = strings(&s["Resource"]);
            for a in &actions {
                assert!(!a.contains('*') && !a.contains('?'), "{env}: {sid}: {a}");
            }
            if s["Effect"] == "Deny" {
                continue;
            }
            if resources.iter().any(|r| r == "*") {
                assert_eq!(resources.len(), 1, "{env}: {sid}");
                for a in &actions {
                    assert!(
                        listed.contains(a.as_str()),
                        "{env}: {sid} grants {a} on \"*\""
                    );
                }
                continue;
            }
            for r in &resources {
                let generated_id = [
                    "::/restapis",
                    "::/apikeys",
                    "::/usageplans",
                    "::/clientcertificates",
                    "::/tags/*",
                    ":event-source-mapping:*",
                ]
                .iter()
                .any(|g| r.contains(g));
                let reaches_a_stage = if generated_id {
                    stage_condition(&s)
                        || s["Condition"]["ArnLike"]["lambda:FunctionArn"]
                            .as_str()
                            .is_some_and(|f| f.contains(&format!(":function:{stages}")))
                        // Reading and tagging a mapping: no name, no condition; changing one
                        // needs its Stage tag and a stage function (ChangeEventSourceMappings).
                        || sid == "ReadEventSourceMappings"
                } else {
                    r.contains(&stages) || by_exact_arn.contains(r)
                };
                assert!(
                    reaches_a_stage,
                    "{env}: {sid} reaches {r}, outside the pull request stages"
                );
                assert!(
                    !r.ends_with("::/account"),
                    "{env}: {sid}: a stage never sets the account's logging role"
                );
            }
        }
        for sid in [
            delivery::SELF_PROTECTION_SID,
            security::BOUNDARY_SID,
            security::TRUST_SID,
            "TerraformState",
            "StageRecords",
            "StageArtifactObjects",
            "Functions",
            "ApiPartsOfThisEnvironment",
        ] {
            assert!(sids.contains(sid), "{env}: no {sid}");
        }
        assert!(!sids.contains("ApiGatewayAccountLoggingRole"), "{env}");
        assert!(
            !sids.contains("ArtifactObjects"),
            "{env}: the base's packages"
        );
    }
}

#[test]
fn no_delivery_role_can_change_another_or_itself() {
    for config in staged_configs() {
        let env = config.name.clone();
        let stack = delivery_stack(&config).unwrap();
        let role = |suffix: &str| {
            format!(
                "arn:{PARTITION}:iam::{ACCOUNT}:role/{}{suffix}",
                config.prefix
            )
        };
        for holder in ["github_deploy", "github_stages"] {
            let all = role_statements(&stack, holder);
            let deny = all
                .iter()
                .find(|s| s["Sid"] == delivery::SELF_PROTECTION_SID)
                .unwrap_or_else(|| panic!("{env}: {holder} has no self-protection"));
            assert_eq!(deny["Effect"], "Deny");
            assert!(deny.get("Condition").is_none());
            let resources = strings(&deny["Resource"]);
            for protected in [
                role(delivery::ROLE_SUFFIX),
                role(delivery::CHECK_ROLE_SUFFIX),
                role(delivery::STAGES_ROLE_SUFFIX),
                format!(
                    "arn:{PARTITION}:iam::{ACCOUNT}:policy/{}{}-*",
                    config.prefix,
                    delivery::STAGES_ROLE_SUFFIX
                ),
                boundary_arn(&config),
                stages_boundary_arn(&config),
            ] {
                assert!(
                    resources.contains(&protected),
                    "{env}: {holder}: {protected}"
                );
            }
            // Every IAM action it has on roles is denied on the delivery roles.
            let denied: BTreeSet<String> = strings(&deny["Action"]).into_iter().collect();
            for s in all.iter().filter(|s| s["Effect"] == "Allow") {
                if strings(&s["Resource"]).iter().any(|r| r.contains(":role/")) {
                    for a in strings(&s["Action"]) {
                        assert!(denied.contains(&a), "{env}: {holder}: {a} is not denied");
                    }
                }
            }
        }
        // The stages role makes roles only under the stages boundary: every Allow of an action
        // that makes a role or adds to what it may do asks for it, and a Deny refuses them
        // under any other boundary (the environment's, whose ceiling is the base's user data)
        // or none.
        let all = role_statements(&stack, "github_stages");
        let stage_roles = format!(
            "arn:{PARTITION}:iam::{ACCOUNT}:role/{}*",
            pr_stages_prefix(&config)
        );
        let guard = all
            .iter()
            .find(|s| s["Sid"] == security::BOUNDARY_SID)
            .unwrap();
        assert_eq!(guard["Effect"], "Deny");
        assert_eq!(
            guard["Condition"],
            serde_json::json!({ "ArnNotEquals": {
                "iam:PermissionsBoundary": stages_boundary_arn(&config)
            } })
        );
        assert_eq!(strings(&guard["Resource"]), [stage_roles.as_str()]);
        let bounded = [
            "iam:CreateRole",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
        ];
        for a in bounded {
            assert!(
                strings(&guard["Action"]).contains(&a.to_owned()),
                "{env}: {a}"
            );
        }
        let mut granted = BTreeSet::new();
        for s in all.iter().filter(|s| s["Effect"] == "Allow") {
            for a in strings(&s["Action"]) {
                if bounded.contains(&a.as_str()) {
                    assert_eq!(
                        s["Condition"]["ArnEquals"]["iam:PermissionsBoundary"],
                        stages_boundary_arn(&config),
                        "{env}: {} grants {a} without the stages boundary",
                        s["Sid"]
                    );
                    assert_eq!(
                        strings(&s["Resource"]),
                        [stage_roles.as_str()],
                        "{env}: {a}"
                    );
                    granted.insert(a);
                }
            }
        }
        assert!(granted.contains("iam:CreateRole"), "{env}: {granted:?}");
    }
}

/// The stages boundary (`<prefix>stages-boundary`, bootstrap stack, environments with stages)
/// reaches only the pull request stages: every name-scoped ARN is `<prefix>pr-*-`, user data
/// only for requests from their functions, the shared keys by reference and X-Ray on `"*"`
/// (no resource-level permissions); and none of its statements matches a resource of the base
/// environment. The roles of a pull request stage carry it, a developer stage's and the
/// environment's carry the environment's boundary.
#[test]
fn pull_request_stages_are_bounded_to_their_own_resources() {
    for base in staged_configs() {
        let env = base.name.clone();
        let stages = pr_stages_prefix(&base);
        let base_stacks = stacks_of(&base);
        let policies = &base_stacks["bootstrap"]["resource"]["aws_iam_policy"];
        let policy = &policies[boundary::STAGES_LOGICAL];
        assert_eq!(
            policy["name"],
            format!("{}stages-boundary", base.prefix),
            "{env}"
        );
        let doc: Value = serde_json::from_str(policy["policy"].as_str().unwrap()).unwrap();
        let boundary = doc["Statement"].as_array().unwrap();
        let functions = format!(
            "arn:{PARTITION}:lambda:{}:{ACCOUNT}:function:{stages}*",
            base.region
        );
        for s in boundary {
            let sid = s["Sid"].as_str().unwrap();
            assert_eq!(s["Effect"], "Allow", "{env}: {sid}");
            for r in strings(&s["Resource"]) {
                let scoped = r.contains(&format!(":{stages}"))
                    || r.contains(&format!("/{stages}"))
                    || (r.starts_with("${aws_kms_key.") && sid == "KeysOfThisEnvironment")
                    || (r == "*" && sid == "XRayTracing");
                assert!(scoped, "{env}: {sid} reaches {r}");
            }
            if let Some(c) = s.get("Condition") {
                assert_eq!(
                    c,
                    &serde_json::json!({ "ArnLike": { "lambda:SourceFunctionArn": functions } }),
                    "{env}: {sid}"
                );
            }
        }
        // Nothing of the base: its tables, secrets, queues, log groups and functions.
        let in_region = |service: &str, resource: String| arn_in(&base, service, &resource);
        let mut checked = 0;
        for (stack, ty, name, body) in own_resources(&base_stacks) {
            let field = |key: &str| body[key].as_str().unwrap().to_owned();
            let arn = match ty {
                "aws_dynamodb_table" => in_region("dynamodb", format!("table/{}", field("name"))),
                "aws_sqs_queue" => in_region("sqs", field("name")),
                "aws_secretsmanager_secret" => {
                    in_region("secretsmanager", format!("secret:{}-AbCdEf", field("name")))
                }
                "aws_cloudwatch_log_group" => {
                    in_region("logs", format!("log-group:{}:*", field("name")))
                }
                "aws_lambda_function" => in_region(
                    "lambda",
                    format!("function:{}:live", field("function_name")),
                ),
                _ => continue,
            };
            checked += 1;
            for s in boundary {
                // `"*"` is X-Ray's only (checked above).
                for r in strings(&s["Resource"]).into_iter().filter(|r| r != "*") {
                    assert!(
                        !glob(&r, &arn),
                        "{env}: the stages boundary's {} reaches {stack} {ty}.{name} ({arn})",
                        s["Sid"]
                    );
                }
            }
        }
        assert!(checked > 10, "{env}: only {checked} resources of the base");
        // Who carries which.
        for (config, arn) in [
            (base.clone(), boundary_arn(&base)),
            (base.for_stage("alice").unwrap(), boundary_arn(&base)),
            (base.for_stage(STAGE).unwrap(), stages_boundary_arn(&base)),
        ] {
            let stacks = stacks_of(&config);
            let mut roles = 0;
            for (stack, ty, name, body) in own_resources(&stacks) {
                if ty == "aws_iam_role" {
                    roles += 1;
                    assert_eq!(
                        body["permissions_boundary"], arn,
                        "{}: {stack} role {name}",
                        config.prefix
                    );
                }
            }
            assert!(roles >= 3, "{}: {roles} roles", config.prefix);
        }
    }
    // Without stages, no stages boundary.
    let prod = stacks_of(&infra::load_config("prod").unwrap());
    assert!(prod["bootstrap"]["resource"]["aws_iam_policy"][boundary::STAGES_LOGICAL].is_null());
}

/// `cargo xtask destroy --stage` deletes the stage's packages (`stages/<stage>/...` of the
/// artifacts bucket): the stages role those of the pull request stages, the deploy role of an
/// environment with stages those of any stage; neither ever deletes the environment's own
/// packages, and an environment without stages deletes none.
#[test]
fn stage_packages_can_be_deleted_but_never_the_environments() {
    let deletes = |all: &[Value], arn: &str| {
        all.iter().any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"]).iter().any(|a| a == "s3:DeleteObject")
                && strings(&s["Resource"]).iter().any(|r| glob(r, arn))
        })
    };
    for config in delivery_configs() {
        let env = config.name.clone();
        let stack = delivery_stack(&config).unwrap();
        let artifacts = format!(
            "arn:{PARTITION}:s3:::{}artifacts-{ACCOUNT}-{}",
            config.prefix, config.region
        );
        let package = |stage: &str| format!("{artifacts}/stages/{stage}/functions/users/0a1b.zip");
        let own = format!("{artifacts}/functions/users/0a1b.zip");
        let deploy = statements(&stack);
        assert!(!deletes(&deploy, &own), "{env}: the deploy role");
        assert_eq!(
            deletes(&deploy, &package("alice")),
            config.stages,
            "{env}: the deploy role and a developer stage's packages"
        );
        if config.stages {
            let stages = role_statements(&stack, "github_stages");
            assert!(deletes(&stages, &package(STAGE)), "{env}");
            assert!(!deletes(&stages, &package("alice")), "{env}");
            assert!(!deletes(&stages, &own), "{env}");
        }
    }
}

/// A stage subscribes no alarm e-mail (each would mail the address a confirmation request),
/// so the stages role has no `sns:Unsubscribe`, which SNS grants only on `"*"`; the
/// environment keeps its subscription.
#[test]
fn stages_subscribe_no_alarm_email_and_the_stages_role_cant_unsubscribe() {
    for mut base in staged_configs() {
        base.alarms.email = Some("alarms@example.com".into());
        let env = base.name.clone();
        let subscription = |config: &infra::Config| {
            stacks_of(config)["service"]["resource"]["aws_sns_topic_subscription"]["alarms_email"]
                .clone()
        };
        assert_eq!(
            subscription(&base)["endpoint"],
            "alarms@example.com",
            "{env}"
        );
        assert!(subscription(&base.for_stage(STAGE).unwrap()).is_null());
        assert!(subscription(&base.for_stage("alice").unwrap()).is_null());
        let stack = delivery_stack(&base).unwrap();
        let unsubscribes = |all: Vec<Value>| {
            all.iter()
                .any(|s| strings(&s["Action"]).iter().any(|a| a == "sns:Unsubscribe"))
        };
        assert!(unsubscribes(statements(&stack)), "{env}: the deploy role");
        assert!(
            !unsubscribes(role_statements(&stack, "github_stages")),
            "{env}: the stages role"
        );
    }
}

/// The stages role is sufficient for a pull request stage: it has what Terraform calls for every
/// kind of resource of the stage's service stack and what xtask's steps call; each named
/// resource of the stack is in the resources of a statement with the action that creates it;
/// its state key is the one the role may write; the tags its provider puts on everything meet
/// the role's tag conditions.
#[test]
fn the_stages_role_has_every_action_and_resource_a_pull_request_stage_needs() {
    for base in staged_configs() {
        let env = base.name.clone();
        let all = role_statements(&delivery_stack(&base).unwrap(), "github_stages");
        let config = base.for_stage(STAGE).unwrap();
        let stacks = stacks_of(&config);
        assert_eq!(stacks.keys().collect::<Vec<_>>(), ["service"], "{env}");
        let service = &stacks["service"];
        let missing = missing(&all, &wanted_actions([("service", service)], &config));
        assert!(
            missing.is_empty(),
            "{env}: the stages role lacks {missing:?}"
        );
        let allows = |action: &str, arn: &str| {
            all.iter().any(|s| {
                s["Effect"] == "Allow"
                    && strings(&s["Action"]).iter().any(|a| a == action)
                    && strings(&s["Resource"]).iter().any(|r| glob(r, arn))
            })
        };
        let in_region = |service: &str, resource: &str| arn_in(&config, service, resource);
        let mut checked = 0;
        for (stack, ty, name, body) in own_resources(&stacks) {
            let field = |key: &str| body[key].as_str().unwrap().to_owned();
            let (action, arn) = match ty {
                "aws_lambda_function" => (
                    "lambda:CreateFunction",
                    in_region("lambda", &format!("function:{}", field("function_name"))),
                ),
                "aws_dynamodb_table" => (
                    "dynamodb:CreateTable",
                    in_region("dynamodb", &format!("table/{}", field("name"))),
                ),
                "aws_iam_role" => (
                    "iam:CreateRole",
                    format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{}", field("name")),
                ),
                "aws_cloudwatch_log_group" => (
                    "logs:CreateLogGroup",
                    in_region("logs", &format!("log-group:{}", field("name"))),
                ),
                "aws_sqs_queue" => ("sqs:CreateQueue", in_region("sqs", &field("name"))),
                "aws_sns_topic" => ("sns:CreateTopic", in_region("sns", &field("name"))),
                "aws_cloudwatch_metric_alarm" => (
                    "cloudwatch:PutMetricAlarm",
                    in_region("cloudwatch", &format!("alarm:{}", field("alarm_name"))),
                ),
                "aws_secretsmanager_secret" => (
                    "secretsmanager:CreateSecret",
                    in_region(
                        "secretsmanager",
                        &format!("secret:{}-AbCdEf", field("name")),
                    ),
                ),
                "aws_scheduler_schedule" => (
                    "scheduler:CreateSchedule",
                    in_region(
                        "scheduler",
                        &format!("schedule/{}/{}", field("group_name"), field("name")),
                    ),
                ),
                _ => continue,
            };
            checked += 1;
            assert!(
                allows(action, &arn),
                "{env}: {stack} {ty}.{name}: the stages role can't {action} on {arn}"
            );
        }
        assert!(checked > 20, "{env}: only {checked} resources checked");
        // The state objects are the ones the stage's backend uses.
        let key = service["terraform"]["backend"]["s3"]["key"]
            .as_str()
            .unwrap();
        let infra::config::Backend::S3 { bucket, .. } = &config.backend else {
            panic!("{env} keeps its state in S3");
        };
        let object = format!("arn:{PARTITION}:s3:::{bucket}/{key}");
        assert!(allows("s3:PutObject", &object), "{env}: {object}");
        assert!(allows("s3:PutObject", &format!("{object}.tflock")), "{env}");
        // The tags the provider puts on everything meet the tag conditions.
        let tags = &service["provider"]["aws"][0]["default_tags"][0]["tags"];
        let api = all
            .iter()
            .find(|s| s["Sid"] == "ApiPartsOfThisEnvironment")
            .unwrap();
        let condition = &api["Condition"];
        assert_eq!(
            condition["StringEquals"]["aws:ResourceTag/Project"],
            tags["Project"]
        );
        assert_eq!(
            condition["StringEquals"]["aws:ResourceTag/Environment"],
            tags["Environment"]
        );
        assert!(
            glob(
                condition["StringLike"]["aws:ResourceTag/Stage"]
                    .as_str()
                    .unwrap(),
                tags["Stage"].as_str().unwrap()
            ),
            "{env}: {tags}"
        );
        // The environment's own resources never carry the Stage tag the conditions ask for.
        let base_tags =
            &stacks_of(&base)["service"]["provider"]["aws"][0]["default_tags"][0]["tags"];
        assert!(base_tags["Stage"].is_null(), "{env}: {base_tags}");
    }
}

fn parse_error(text: &str) -> String {
    infra::Config::parse(std::path::Path::new("environments/bad.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_delivery_settings_name_file_key_and_what_is_allowed() {
    let good =
        std::fs::read_to_string(infra::config::environments_dir().join("prod.toml")).unwrap();
    let line = "github_repository = \"example-org/serverless-rust-service\"";
    assert!(good.contains(line));
    for bad in [
        "example-org/*",
        "example-org",
        "example-org/a/b",
        "-org/repo",
        "org/..",
        "org/re po",
        "",
    ] {
        let message = parse_error(&good.replace(line, &format!("github_repository = {bad:?}")));
        assert!(
            message.contains("environments/bad.toml")
                && message.contains("delivery.github_repository")
                && message.contains("OWNER/REPO"),
            "{bad}: {message}"
        );
    }
    let environment = parse_error(&good.replace(
        line,
        &format!("{line}\ngithub_environment = \"prod:ref:refs/heads/main\""),
    ));
    assert!(
        environment.contains("delivery.github_environment"),
        "{environment}"
    );
    let unknown = parse_error(&good.replace(line, &format!("{line}\ngithub_repo = \"x/y\"")));
    assert!(
        unknown.contains("github_repo") && unknown.contains("create_oidc_provider"),
        "{unknown}"
    );
    let config = infra::Config::parse(std::path::Path::new("prod.toml"), &good).unwrap();
    let settings = config.delivery.unwrap();
    assert!(settings.create_oidc_provider);
    assert_eq!(settings.environment("prod"), "prod");
}

/// The stack applied to moto: the provider, the role and its policies are created as
/// synthesized (moto checks policy documents' grammar), then destroyed. The permissions
/// boundary and the keys, which the bootstrap stack holds, are applied first (on their own):
/// the delivery stack finds the keys by alias.
/// Stages of an environment with `[delivery]` and an option whose stage copy the stages role
/// can't keep apart from the base's are refused, naming both keys.
#[test]
fn stages_are_refused_with_the_options_the_stages_role_cant_scope() {
    let prod =
        std::fs::read_to_string(infra::config::environments_dir().join("prod.toml")).unwrap();
    let staged = format!("stages = true\n{prod}");
    let message = parse_error(&staged);
    assert!(
        message.contains("environments/bad.toml")
            && message.contains("key `stages`")
            && message.contains("options.vpc"),
        "{message}"
    );
    // dev allows stages: it has none of them.
    let dev = infra::load_config("dev").unwrap();
    assert!(dev.stages && dev.delivery.is_some());
}

#[test]
fn applies_to_the_emulator_and_destroys() {
    let moto = emulator::Emulator::start().expect("start moto");
    let endpoint = moto.endpoint().to_owned();
    let dir = common::scratch("apply-delivery");
    let rc = common::cli_config(&dir);
    let (dev, _) = shipped("dev");
    let mut config = infra::load_config("local").unwrap();
    config.delivery = dev.delivery;
    let options = infra::stack::StackOptions {
        local_state_dir: dir.join("state").display().to_string(),
        local_endpoint: endpoint.clone(),
    };
    let out = infra::synth_with(&config, &options, &dir.join("cdktf.out")).unwrap();
    let stack = out.stack_dir(infra::DELIVERY_STACK).unwrap();
    let endpoint_var = format!("aws_endpoint={endpoint}");
    let args = |verb: &'static str| {
        vec![
            verb,
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var",
            endpoint_var.as_str(),
        ]
    };
    // The bootstrap stack first, only what the delivery stack looks up: the permissions
    // boundary and the aliases of the keys it names (`-target` pulls in what each references,
    // the keys themselves). One apply: each is a provider start and a plan more.
    let bootstrap = out.stack_dir("bootstrap").unwrap();
    let policy = format!("-target=aws_iam_policy.{}", boundary::LOGICAL);
    common::terraform_ok(bootstrap, &rc, &["init", "-input=false", "-no-color"]);
    let mut apply = args("apply");
    apply.extend([
        policy.as_str(),
        "-target=aws_kms_alias.stack",
        "-target=aws_kms_alias.buckets",
    ]);
    common::terraform_ok(bootstrap, &rc, &apply);
    let list = common::terraform_ok(bootstrap, &rc, &["state", "list", "-no-color"]);
    for address in [
        format!("aws_iam_policy.{}", boundary::LOGICAL),
        "aws_kms_key.stack".to_owned(),
        "aws_kms_key.buckets".to_owned(),
        "aws_kms_alias.stack".to_owned(),
        "aws_kms_alias.buckets".to_owned(),
    ] {
        assert!(
            list.lines().any(|l| l == address),
            "{address} not in {list}"
        );
    }

    common::terraform_ok(stack, &rc, &["init", "-input=false", "-no-color"]);
    common::terraform_ok(stack, &rc, &args("apply"));
    let outputs: Value =
        serde_json::from_str(&common::terraform_ok(stack, &rc, &["output", "-json"])).unwrap();
    assert_eq!(
        outputs["deploy_role_arn"]["value"],
        "arn:aws:iam::123456789012:role/prod-service-github-deploy"
    );
    assert_eq!(
        outputs["oidc_provider_arn"]["value"],
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    );
    // local allows stages: the stages role and its policies apply too.
    assert!(config.stages);
    assert_eq!(
        outputs["stages_role_arn"]["value"],
        "arn:aws:iam::123456789012:role/prod-service-github-stages"
    );
    common::terraform_ok(stack, &rc, &args("destroy"));
    let list = common::terraform_ok(stack, &rc, &["state", "list", "-no-color"]);
    assert!(list.trim().is_empty(), "destroy left {list}");

    common::terraform_ok(bootstrap, &rc, &args("destroy"));
    let list = common::terraform_ok(bootstrap, &rc, &["state", "list", "-no-color"]);
    assert!(list.trim().is_empty(), "destroy left {list}");
}
