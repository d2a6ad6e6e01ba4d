//! The synthesized JSON of every environment, checked in under `tests/snapshots/`. A change to
//! the stack shows up in review as a diff of these files; after reviewing it, refresh them with
//! `UPDATE_EXPECT=1 cargo test -p infra --test snapshots`.

mod common;

use std::path::PathBuf;

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
}

#[test]
fn synthesized_stacks_match_snapshots() {
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        // A new environment's folder, for `UPDATE_EXPECT=1` to write its first snapshots into.
        std::fs::create_dir_all(snapshot_dir().join(env)).unwrap();
        for (stack, json) in infra::synth::render(&config, &common::fixed_options(env)) {
            let mut text = serde_json::to_string_pretty(&json).unwrap();
            text.push('\n');
            expect_test::expect_file![snapshot_dir().join(env).join(format!("{stack}.tf.json"))]
                .assert_eq(&text);
        }
    }
}

#[test]
fn written_layout_is_cdktf() {
    let dir = common::scratch("layout");
    let config = infra::load_config("local").unwrap();
    let out = infra::synth_with(
        &config,
        &common::fixed_options("local"),
        &dir.join("cdktf.out"),
    )
    .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out.manifest).unwrap()).unwrap();
    for stack in infra::STACKS {
        assert_eq!(
            manifest["stacks"][stack]["synthesizedStackPath"],
            format!("stacks/{stack}/cdk.tf.json")
        );
        assert!(out.stack_dir(stack).unwrap().join("cdk.tf.json").is_file());
        assert_eq!(
            std::fs::read_to_string(out.stack_dir(stack).unwrap().join(".terraform.lock.hcl"))
                .unwrap(),
            infra::stack::PROVIDER_LOCK,
            "{stack}: terraform init checks the provider against the committed lock file"
        );
    }
}

#[test]
fn the_provider_is_pinned_exactly_and_the_lock_file_holds_its_checksums() {
    use infra::stack::{AWS_PROVIDER_VERSION, PROVIDER_LOCK};
    assert!(
        AWS_PROVIDER_VERSION
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.'),
        "an exact version, not a range: {AWS_PROVIDER_VERSION}"
    );
    let block = PROVIDER_LOCK
        .split("provider \"registry.terraform.io/hashicorp/aws\"")
        .nth(1)
        .expect("infra/terraform.lock.hcl locks hashicorp/aws");
    let field = |name: &str| {
        block
            .lines()
            .find_map(|l| {
                let (key, value) = l.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
            })
            .unwrap_or_default()
    };
    let refresh = "refresh infra/terraform.lock.hcl with `terraform providers lock \
                   -fs-mirror=/opt/tf-plugins -platform=linux_amd64` (see infra/src/stack.rs)";
    assert_eq!(field("version"), AWS_PROVIDER_VERSION, "{refresh}");
    assert_eq!(field("constraints"), AWS_PROVIDER_VERSION, "{refresh}");
    assert!(block.contains("\"h1:"), "no checksum: {refresh}");
}
