//! `terraform init -backend=false` + `terraform validate` on every environment's stacks, plus
//! prod in us-west-2 and a configuration with every option on (CloudFront, custom domain,
//! traffic shifting), so option code is proven even where no shipped
//! environment enables it. The provider comes from `TF_PROVIDER_MIRROR` when set.

mod common;

use infra::config::{CloudFront, Domain, ShiftKind, TrafficShifting};

fn validate(name: &str, config: &infra::Config) {
    let dir = common::scratch(&format!("validate-{name}"));
    let rc = common::cli_config(&dir);
    let out = infra::synth_with(
        config,
        &common::fixed_options(&config.name),
        &dir.join("cdktf.out"),
    )
    .unwrap();
    for (_, stack_dir) in &out.stacks {
        common::terraform_ok(
            stack_dir,
            &rc,
            &["init", "-backend=false", "-input=false", "-no-color"],
        );
        common::terraform_ok(stack_dir, &rc, &["validate", "-no-color"]);
    }
}

#[test]
fn local_validates() {
    validate("local", &infra::load_config("local").unwrap());
}

#[test]
fn dev_validates() {
    validate("dev", &infra::load_config("dev").unwrap());
}

#[test]
fn prod_validates() {
    validate("prod", &infra::load_config("prod").unwrap());
}

#[test]
fn prod_in_us_west_2_validates() {
    let mut config = infra::load_config("prod").unwrap();
    config.region = "us-west-2".into();
    config.storage.replication_region = Some("us-east-2".into());
    validate("prod-us-west-2", &config);
}

#[test]
fn every_option_validates() {
    let mut config = infra::load_config("prod").unwrap();
    // CloudFront is refused with [delivery] (the deploy role could not create a distribution
    // without the right to claim any untagged one); deployed with administrator credentials,
    // the stacks have every option. The delivery stack differs only in its policies' text.
    config.delivery = None;
    config.options.cloudfront = Some(CloudFront {
        price_class: "PriceClass_100".into(),
    });
    config.options.domain = Some(Domain {
        name: "api.example.com".into(),
        hosted_zone: "example.com".into(),
    });
    config.options.traffic_shifting = Some(TrafficShifting {
        kind: ShiftKind::Canary,
        percentage: 10,
        interval_minutes: 5,
    });
    config.api.cors_allow_origins = vec!["https://app.example.com".into()];
    validate("all-options", &config);
}

#[test]
fn delivery_with_an_existing_oidc_provider_validates() {
    let mut config = infra::load_config("dev").unwrap();
    let delivery = config.delivery.as_mut().expect("dev configures [delivery]");
    delivery.create_oidc_provider = false;
    delivery.github_environment = Some("development".into());
    validate("delivery-lookup", &config);
}
