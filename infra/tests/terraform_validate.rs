//! `terraform validate` on every environment's stacks, plus prod in us-west-2 and a
//! configuration with every option on (CloudFront, custom domain, traffic shifting), so option
//! code is proven even where no shipped environment enables it. The provider comes from
//! `TF_PROVIDER_MIRROR` when set.
//!
//! The 16 stacks are validated as child modules of one Terraform root, with one `init` and one
//! `validate`: each Terraform command starts the AWS provider and loads its schema of every
//! resource type, whatever the configuration's size, so 16 roots cost about 63 CPU-seconds
//! and this one about 18. Validating a stack as a module checks what validating it as a root
//! does (its resources' arguments and types against the schema, its provider configuration,
//! its references), given two things this file does: each required variable is fed from a
//! root variable of the same type, which `validate` leaves unknown as it does a root's own,
//! and the one warning a module call adds ("Backend configuration ignored": a backend applies
//! to a root only) is the only warning allowed.

mod common;

use infra::config::{CloudFront, Domain, ShiftKind, TrafficShifting};
use serde_json::{Map, Value, json};

/// The configurations validated, by name: the shipped environments and the variants above.
fn configurations() -> Vec<(&'static str, infra::Config)> {
    let shipped = |env: &str| infra::load_config(env).unwrap();

    let mut us_west_2 = shipped("prod");
    us_west_2.region = "us-west-2".into();
    us_west_2.storage.replication_region = Some("us-east-2".into());

    let mut all_options = shipped("prod");
    // CloudFront is refused with [delivery] (the deploy role could not create a distribution
    // without the right to claim any untagged one); deployed with administrator credentials,
    // the stacks have every option. The delivery stack differs only in its policies' text.
    all_options.delivery = None;
    all_options.options.cloudfront = Some(CloudFront {
        price_class: "PriceClass_100".into(),
    });
    all_options.options.domain = Some(Domain {
        name: "api.example.com".into(),
        hosted_zone: "example.com".into(),
    });
    all_options.options.traffic_shifting = Some(TrafficShifting {
        kind: ShiftKind::Canary,
        percentage: 10,
        interval_minutes: 5,
    });
    all_options.api.cors_allow_origins = vec!["https://app.example.com".into()];

    let mut delivery_lookup = shipped("dev");
    let delivery = delivery_lookup
        .delivery
        .as_mut()
        .expect("dev configures [delivery]");
    delivery.create_oidc_provider = false;
    delivery.github_environment = Some("development".into());

    vec![
        ("local", shipped("local")),
        ("dev", shipped("dev")),
        ("prod", shipped("prod")),
        ("prod_us_west_2", us_west_2),
        ("all_options", all_options),
        ("delivery_lookup", delivery_lookup),
    ]
}

/// A module call of the stack synthesized into `stack_dir` (relative to the root `root`), and
/// the root variables that feed its required variables.
fn module_call(
    root: &std::path::Path,
    stack_dir: &std::path::Path,
    module: &str,
) -> (Value, Map<String, Value>) {
    let stack: Value =
        serde_json::from_str(&std::fs::read_to_string(stack_dir.join("cdk.tf.json")).unwrap())
            .unwrap();
    let source = stack_dir.strip_prefix(root).unwrap();
    let mut call = json!({ "source": format!("./{}", source.display()) });
    let mut feeds = Map::new();
    let variables = stack["variable"].as_object().cloned().unwrap_or_default();
    for (name, declaration) in variables {
        if declaration.get("default").is_some() {
            continue;
        }
        let feed = format!("{module}__{name}");
        call[&name] = json!(format!("${{var.{feed}}}"));
        feeds.insert(feed, json!({ "type": declaration["type"] }));
    }
    (call, feeds)
}

#[test]
fn every_configuration_validates() {
    let dir = common::scratch("validate");
    let rc = common::cli_config(&dir);
    let (mut modules, mut variables) = (Map::new(), Map::new());
    for (name, config) in configurations() {
        let out = infra::synth_with(
            &config,
            &common::fixed_options(&config.name),
            &dir.join(name).join("cdktf.out"),
        )
        .unwrap();
        for (stack, stack_dir) in &out.stacks {
            let module = format!("{name}_{stack}");
            let (call, feeds) = module_call(&dir, stack_dir, &module);
            modules.insert(module, call);
            variables.extend(feeds);
        }
    }
    let stacks = modules.len();
    let root = json!({ "module": modules, "variable": variables });
    std::fs::write(
        dir.join("main.tf.json"),
        serde_json::to_string_pretty(&root).unwrap(),
    )
    .unwrap();

    common::terraform_ok(
        &dir,
        &rc,
        &["init", "-backend=false", "-input=false", "-no-color"],
    );
    // Not `terraform_ok`: an invalid configuration exits 1 with its diagnostics on stdout.
    let out = common::terraform(&dir, &rc, &["validate", "-json", "-no-color"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "terraform validate -json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings: Vec<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            !(d["severity"] == "warning" && d["summary"] == "Backend configuration ignored")
        })
        .map(|d| {
            format!(
                "{} in {}: {}: {}",
                d["severity"], d["range"]["filename"], d["summary"], d["detail"]
            )
        })
        .collect();
    assert!(
        report["valid"] == true && findings.is_empty(),
        "terraform validate of the {stacks} stacks:\n{}",
        findings.join("\n")
    );
}
