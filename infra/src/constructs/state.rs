//! Terraform state: where each stack keeps it, and the bucket that holds it for real accounts.
//!
//! The emulator keeps state in local files under `build/<env>/`, outside `cdktf.out/` (synth
//! owns that folder, and removes the stacks it no longer writes). Real accounts keep every
//! stack's state in S3, encrypted and locked with S3-native lock files (`use_lockfile`, Terraform >= 1.10, no DynamoDB lock table), so a fresh
//! CI runner finds the bootstrap stack as applied instead of re-creating its buckets. The
//! bootstrap stack creates that bucket, so its very first apply runs with a local-state override
//! and `cargo xtask bootstrap` then migrates the state into the bucket.

use super::security::Key;
use super::storage::{Bucket, BucketOptions, secure_bucket};
use crate::config::Backend;
use crate::iam::{Scope, Statement};
use crate::tf::{Ref, Stack};
use serde_json::{Value, json};

/// Where a stage's state sits under its environment's: `<key prefix or local dir>/stages/<stage>/`.
pub const STAGES_DIR: &str = "stages";
/// A stage's record (created, last deploy, commit, URL) beside its state, which `cargo xtask
/// stages` lists.
pub const STAGE_RECORD: &str = "stage.json";

/// Points `stack` at its state: local file `<local_dir>/<stack>.tfstate`, or the S3 bucket from
/// the environment file (in the environment's `region`); a stage's under [`STAGES_DIR`].
pub fn backend(
    stack: &mut Stack,
    backend: &Backend,
    region: &str,
    local_dir: &str,
    stage: Option<&str>,
) {
    let file = match stage {
        Some(stage) => format!("{STAGES_DIR}/{stage}/{}.tfstate", stack.name),
        None => format!("{}.tfstate", stack.name),
    };
    match backend {
        Backend::S3 { bucket, key_prefix } => stack.backend(
            "s3",
            json!({
                "bucket": bucket,
                "key": format!("{}/{file}", key_prefix.trim_end_matches('/')),
                "region": region,
                "encrypt": true,
                "use_lockfile": true,
            }),
        ),
        _ => {
            let path = format!("{}/{file}", local_dir.trim_end_matches('/'));
            stack.backend("local", json!({ "path": path }));
        }
    }
}

/// The outputs of the stack `other` (`data.terraform_remote_state.<other>`, read with
/// `.attr("outputs.<name>")`), found where [`backend`] put its state: the same backend as
/// `stack`'s, which `backend` must have set, with `other` in place of the stack's name.
///
/// How the service stack uses what the bootstrap stack creates when it has no data source that
/// finds it by name (the code signing config, the certificate): an administrator creates those,
/// because creating them with tags would let the deploy role tag any such resource of the
/// account into its environment (`constructs::delivery`).
pub fn outputs_of(stack: &mut Stack, other: &str) -> Ref {
    let (kind, settings) = stack
        .backend_settings()
        .expect("backend() runs before a stack reads another's outputs");
    let own = format!("/{}.tfstate", stack.name);
    let theirs = |location: &Value| {
        let base = location
            .as_str()
            .and_then(|l| l.strip_suffix(&own))
            .expect("backend() names the state after the stack");
        // A stage reads its environment's stack: what `other` is shared.
        let base = match base.rsplit_once('/') {
            Some((parent, _stage)) if parent.ends_with(&format!("/{STAGES_DIR}")) => {
                &parent[..parent.len() - STAGES_DIR.len() - 1]
            }
            _ => base,
        };
        format!("{base}/{other}.tfstate")
    };
    let config = match kind {
        "s3" => json!({
            "bucket": settings["bucket"],
            "key": theirs(&settings["key"]),
            "region": settings["region"],
        }),
        _ => json!({ "path": theirs(&settings["path"]) }),
    };
    let kind = kind.to_owned();
    stack.data(
        "terraform_remote_state",
        other,
        json!({ "backend": kind, "config": config }),
    )
}

/// The remote-state bucket, for environments whose backend is S3. State holds secrets (the API
/// key value), so it gets every protection the artifacts bucket has and is never force-destroyed.
pub fn state_bucket(
    stack: &mut Stack,
    backend: &Backend,
    key: &Key,
    options: &BucketOptions,
) -> Option<Bucket> {
    match backend {
        Backend::S3 { bucket, .. } => {
            let options = BucketOptions {
                force_destroy: false,
                ..options.clone()
            };
            Some(secure_bucket(stack, "state", bucket, key, &options))
        }
        Backend::Local => None,
    }
}

/// What the deploy role needs of the state: the objects and lock files of the bootstrap and
/// service stacks only (not the delivery stack's). Listing and bucket settings are the bucket's
/// (`storage::management_statements`).
pub fn management_statements(scope: &Scope, backend: &Backend) -> Vec<Statement> {
    let Backend::S3 { bucket, key_prefix } = backend else {
        return Vec::new();
    };
    let p = &scope.account.partition;
    let key = |stack: &str| {
        format!(
            "arn:{p}:s3:::{bucket}/{}/{stack}.tfstate",
            key_prefix.trim_end_matches('/')
        )
    };
    state_and_lock_files(crate::STACKS.iter().map(|st| key(st)).collect())
}

/// What the stages role needs of the state: the service stack's state and lock file and the
/// stage's record ([`STAGE_RECORD`]) of the stages `stage` (an IAM pattern, `pr-*`) only, under
/// `<key prefix>/stages/`; never the environment's own. Listing the bucket (`cargo xtask
/// stages`, Terraform's backend) gives names, never contents. `bootstrap_outputs`: the
/// service stack reads the bootstrap stack's outputs (code signing, the custom domain), as
/// the deploy role does.
pub fn stage_statements(
    scope: &Scope,
    backend: &Backend,
    stage: &str,
    bootstrap_outputs: bool,
) -> Vec<Statement> {
    let Backend::S3 { bucket, key_prefix } = backend else {
        return Vec::new();
    };
    let p = &scope.account.partition;
    let under = format!("arn:{p}:s3:::{bucket}/{}", key_prefix.trim_end_matches('/'));
    let stages = format!("{under}/{STAGES_DIR}/{stage}");
    let mut s = state_and_lock_files(vec![format!("{stages}/service.tfstate")]);
    s.push(Statement::allow(
        "StageRecords",
        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        vec![format!("{stages}/{STAGE_RECORD}")],
    ));
    s.push(Statement::allow(
        "ListTheStateBucket",
        &["s3:ListBucket"],
        vec![format!("arn:{p}:s3:::{bucket}")],
    ));
    if bootstrap_outputs {
        s.push(Statement::allow(
            "ReadTheBootstrapStackOutputs",
            &["s3:GetObject"],
            vec![format!("{under}/bootstrap.tfstate")],
        ));
    }
    s
}

/// Reading and writing the state objects `keys`, and their lock files (`use_lockfile`).
fn state_and_lock_files(keys: Vec<String>) -> Vec<Statement> {
    let locks = keys.iter().map(|k| format!("{k}.tflock")).collect();
    vec![
        Statement::allow("TerraformState", &["s3:GetObject", "s3:PutObject"], keys),
        Statement::allow(
            "TerraformStateLockFiles",
            &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            locks,
        ),
    ]
}
