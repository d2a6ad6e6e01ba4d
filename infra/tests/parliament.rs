//! parliament (an IAM policy linter, pinned in `emulator::PARLIAMENT_REQUIREMENT`) on every
//! policy document of every stack of every environment: identity policies, the permissions
//! boundary, trust policies, key policies and bucket policies. Each finding must be one of
//! `infra::checks::PARLIAMENT_FALSE_POSITIVES`, each listed with the AWS documentation that
//! shows parliament is wrong there; a listed one that no longer occurs fails too.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// Fields of a resource that hold a policy document (a JSON string).
const POLICY_FIELDS: [&str; 2] = ["policy", "assume_role_policy"];

/// The configurations linted: every shipped environment, prod with every option a delivered
/// environment may have (CloudFront, refused with `[delivery]`, adds no policy), and a pull
/// request stage of dev (its service stack's roles; the stages role is in dev's delivery stack).
fn configs() -> Vec<infra::Config> {
    let mut configs: Vec<infra::Config> = infra::ENVIRONMENTS
        .iter()
        .map(|env| infra::load_config(env).unwrap())
        .collect();
    let mut all = infra::load_config("prod").unwrap();
    all.name = "prod".into();
    all.options.domain = Some(infra::config::Domain {
        name: "api.example.com".into(),
        hosted_zone: "example.com".into(),
    });
    configs.push(all);
    configs.push(
        infra::load_config("dev")
            .unwrap()
            .for_stage("pr-1234")
            .unwrap(),
    );
    configs
}

/// What a Terraform reference in a policy stands for, as a plausible ARN of the right type, so
/// parliament checks each action against the kind of resource it really names.
fn resolve(text: &str, config: &infra::Config, stack: &Value) -> String {
    let region = config.region.as_str();
    let account = "123456789012";
    let mut text = text
        .replace("${data.aws_partition.current.partition}", "aws")
        .replace("${data.aws_caller_identity.current.account_id}", account)
        .replace("${data.aws_region.current.name}", region);
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').unwrap() + 1;
        let reference = &text[start + 2..end - 1];
        let parts: Vec<&str> = reference.split('.').collect();
        let (ty, name) = match parts.as_slice() {
            ["data", ty, name, _] => (*ty, *name),
            [ty, name, _] => (*ty, *name),
            _ => panic!("{}: unexpected reference {reference}", config.name),
        };
        let body = &stack["resource"][ty][name];
        let field = |key: &str| {
            body[key]
                .as_str()
                .unwrap_or_else(|| panic!("{reference}: no {key}"))
                .replace("${data.aws_caller_identity.current.account_id}", account)
                .replace("${data.aws_region.current.name}", region)
        };
        let arn = match ty {
            "aws_cloudwatch_log_group" => {
                format!(
                    "arn:aws:logs:{region}:{account}:log-group:{}",
                    field("name")
                )
            }
            "aws_dynamodb_table" => {
                format!(
                    "arn:aws:dynamodb:{region}:{account}:table/{}",
                    field("name")
                )
            }
            "aws_sqs_queue" => format!("arn:aws:sqs:{region}:{account}:{}", field("name")),
            "aws_kms_key" | "aws_kms_alias" => {
                format!("arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab")
            }
            "aws_s3_bucket" => format!("arn:aws:s3:::{}", field("bucket")),
            "aws_secretsmanager_secret" => format!(
                "arn:aws:secretsmanager:{region}:{account}:secret:{}-AbCdEf",
                field("name")
            ),
            "aws_sns_topic" => format!("arn:aws:sns:{region}:{account}:{}", field("name")),
            "aws_lambda_function" => format!(
                "arn:aws:lambda:{region}:{account}:function:{}",
                field("function_name")
            ),
            "aws_iam_openid_connect_provider" => format!(
                "arn:aws:iam::{account}:oidc-provider/{}",
                infra::constructs::delivery::GITHUB_OIDC_HOST
            ),
            _ => panic!(
                "{}: teach this test what {reference} stands for",
                config.name
            ),
        };
        text.replace_range(start..end, &arn);
    }
    text
}

/// Writes every policy document of `config`'s stacks into `dir` as
/// `<env>-<stack>-<type>-<name>-<field>.json`; returns how many.
fn write_policies(config: &infra::Config, label: &str, dir: &Path) -> usize {
    let mut n = 0;
    for (stack_name, stack) in infra::synth::render(config, &common::fixed_options(&config.name)) {
        let Some(resources) = stack["resource"].as_object() else {
            continue;
        };
        for (ty, by_name) in resources {
            for (name, body) in by_name.as_object().unwrap() {
                for field in POLICY_FIELDS {
                    let Some(text) = body[field].as_str() else {
                        continue;
                    };
                    let text = resolve(text, config, &stack);
                    let doc: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("{label} {ty}.{name}.{field}: {e}"));
                    assert!(doc["Statement"].is_array(), "{label} {ty}.{name}.{field}");
                    let file = dir.join(format!("{label}-{stack_name}-{ty}-{name}-{field}.json"));
                    std::fs::write(file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn every_policy_passes_parliament_or_its_finding_is_a_listed_false_positive() {
    let bin = emulator::ensure_python_packages(&[emulator::PARLIAMENT_REQUIREMENT])
        .expect("install parliament into build/venv")
        .join("parliament");
    let dir = common::scratch("parliament");
    let mut written = 0;
    for (i, config) in configs().iter().enumerate() {
        let label = match (i < infra::ENVIRONMENTS.len(), &config.stage) {
            (true, _) => config.name.clone(),
            (false, Some(stage)) => format!("{}_{}", config.name, stage.name),
            (false, None) => "prod_every_option".to_owned(),
        };
        written += write_policies(config, &label, &dir);
    }
    assert!(written > 40, "only {written} policy documents");
    let out = Command::new(&bin)
        .args(["--directory"])
        .arg(&dir)
        .args(["--include_policy_extension", ".json", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run parliament");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || !stdout.trim().is_empty(),
        "parliament failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut unexpected = Vec::new();
    let mut used = BTreeSet::new();
    let mut by_issue: BTreeMap<String, usize> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let finding: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("parliament printed a non-JSON line ({e}): {line}"));
        let issue = finding["issue"].as_str().unwrap_or_default();
        let file = finding["location"]["filepath"]
            .as_str()
            .and_then(|p| Path::new(p).file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let detail = finding["detail"].to_string();
        *by_issue.entry(issue.to_owned()).or_default() += 1;
        let listed = infra::checks::PARLIAMENT_FALSE_POSITIVES
            .iter()
            .position(|fp| {
                fp.issue == issue && file.contains(fp.file) && detail.contains(fp.detail)
            });
        match listed {
            Some(i) => {
                used.insert(i);
            }
            None => unexpected.push(format!("{issue} in {file}: {detail}")),
        }
    }
    println!("{written} policy documents; listed false positives by issue: {by_issue:?}");
    assert!(
        unexpected.is_empty(),
        "parliament findings not in infra::checks::PARLIAMENT_FALSE_POSITIVES (fix the policy, or list the finding with the AWS documentation that shows it is wrong):\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<_> = infra::checks::PARLIAMENT_FALSE_POSITIVES
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, fp)| format!("{} / {} / {}", fp.issue, fp.file, fp.detail))
        .collect();
    assert!(
        stale.is_empty(),
        "PARLIAMENT_FALSE_POSITIVES lists findings parliament no longer reports (remove them):\n{}",
        stale.join("\n")
    );
}
