//! The synthesized JSON of every environment, checked in under `tests/snapshots/`. A change to
//! the stack shows up in review as a diff of these files.

mod common;

use std::path::PathBuf;

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
}

#[test]
fn synthesized_stacks_match_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for env in infra::ENVIRONMENTS {
        let config = infra::load_config(env).unwrap();
        for (stack, json) in infra::synth::render(&config, &common::fixed_options(env)) {
            let file = snapshot_dir().join(env).join(format!("{stack}.tf.json"));
            let mut text = serde_json::to_string_pretty(&json).unwrap();
            text.push('\n');
            if update {
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(&file, &text).unwrap();
            } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
                stale.push(file.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale snapshots (review the change, then refresh with `UPDATE_SNAPSHOTS=1 cargo test -p infra --test snapshots`):\n{}",
        stale.join("\n")
    );
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
    }
}
