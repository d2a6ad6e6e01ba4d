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

/// Synthesis replaces the stacks in place: a file whose text did not change is not written
/// again (the same inode), one whose text changed is replaced, a stack the configuration no
/// longer has is removed, and no temporary file is left.
#[test]
fn synthesis_rewrites_only_what_changed_and_drops_removed_stacks() {
    use std::os::unix::fs::MetadataExt;
    let dir = common::scratch("resynth");
    let out = dir.join("cdktf.out");
    let synth = |env: &str| {
        let config = infra::load_config(env).unwrap();
        infra::synth_with(&config, &common::fixed_options(env), &out).unwrap();
    };
    let inode = |file: &str| std::fs::metadata(out.join(file)).unwrap().ino();
    let (lock, service) = (
        "stacks/bootstrap/.terraform.lock.hcl",
        "stacks/service/cdk.tf.json",
    );

    synth("dev");
    assert!(out.join("stacks/delivery/cdk.tf.json").is_file());
    let before = (inode(lock), inode(service), inode("manifest.json"));
    synth("dev");
    assert_eq!(
        (inode(lock), inode(service), inode("manifest.json")),
        before,
        "the same text is not written again"
    );

    synth("local");
    assert!(
        !out.join("stacks/delivery").exists(),
        "local has no delivery stack"
    );
    assert_eq!(inode(lock), before.0, "the lock file is the same text");
    assert_ne!(
        inode(service),
        before.1,
        "local's service stack is not dev's"
    );
    let text = std::fs::read_to_string(out.join(service)).unwrap();
    assert!(text.contains("\"prod-service-"), "local's names, not dev's");
    let mut files = Vec::new();
    for folder in [
        out.clone(),
        out.join("stacks/bootstrap"),
        out.join("stacks/service"),
    ] {
        for entry in std::fs::read_dir(folder).unwrap() {
            files.push(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    assert!(
        !files.iter().any(|name| name.ends_with(".tmp")),
        "a temporary file is left: {files:?}"
    );
}

/// Deploys of an environment's stages read its bootstrap stack from its synthesized folder
/// while another deploy synthesizes the environment again. With three threads synthesizing
/// into one folder at once, in many rounds, two variants of the stacks that differ in every
/// stack file (the emulator's endpoint), two readers never find a stack file or the manifest
/// missing or partial: each read parses whole.
#[test]
fn concurrent_syntheses_never_show_a_reader_a_missing_or_partial_file() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = common::scratch("concurrent-synth");
    let out = dir.join("cdktf.out");
    let config = infra::load_config("local").unwrap();
    let variants = [
        common::fixed_options("local"),
        infra::stack::StackOptions {
            local_endpoint: "http://127.0.0.1:5001".into(),
            ..common::fixed_options("local")
        },
    ];
    infra::synth_with(&config, &variants[0], &out).unwrap();
    let writing = AtomicBool::new(true);
    let reads = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|writer| {
                let (config, variants, out) = (&config, &variants, &out);
                scope.spawn(move || {
                    for round in 0..20 {
                        let options = &variants[(writer + round) % 2];
                        infra::synth_with(config, options, out).unwrap();
                    }
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (out, writing) = (&out, &writing);
                scope.spawn(move || {
                    let mut reads = 0;
                    while writing.load(Ordering::Relaxed) || reads == 0 {
                        for file in [
                            "manifest.json",
                            "stacks/bootstrap/cdk.tf.json",
                            "stacks/service/cdk.tf.json",
                        ] {
                            let text = std::fs::read_to_string(out.join(file))
                                .unwrap_or_else(|e| panic!("{file}: {e}"));
                            serde_json::from_str::<serde_json::Value>(&text)
                                .unwrap_or_else(|e| panic!("{file} is partial: {e}"));
                        }
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Ordering::Relaxed);
        readers
            .into_iter()
            .map(|reader| reader.join().unwrap())
            .sum::<u32>()
    });
    eprintln!("{reads} reads of the three files during 60 syntheses");
}
