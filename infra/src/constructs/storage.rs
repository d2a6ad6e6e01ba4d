//! S3 buckets with secure defaults: one call gives a versioned, KMS-encrypted, private,
//! ACL-free, TLS-only bucket with a lifecycle for old versions and aborted uploads.

use super::security::{Key, RoleKind};
use crate::iam::{Account, PolicyDocument, Scope, Statement};
use crate::tf::{Expr, Ref, Stack, depends_on};
use serde_json::json;

/// A bucket handle.
#[derive(Clone, Debug)]
pub struct Bucket {
    r: Ref,
    /// The last sub-resource written: things that use the bucket wait for it so they never see
    /// a half-configured bucket (e.g. before its TLS-only policy exists).
    ready: Vec<Ref>,
}

impl Bucket {
    pub fn id(&self) -> Expr {
        self.r.attr("id")
    }
    pub fn arn(&self) -> Expr {
        self.r.attr("arn")
    }
    pub fn ready(&self) -> Vec<&Ref> {
        self.ready.iter().collect()
    }
}

/// Switches a bucket's optional features; everything security-related is always on.
#[derive(Clone, Debug, Default)]
pub struct BucketOptions {
    /// Allow `terraform destroy` to delete a non-empty bucket (throwaway environments).
    pub force_destroy: bool,
    pub noncurrent_version_days: u32,
    /// Server access logs into this bucket (none for the log bucket itself).
    pub access_logs: Option<Expr>,
    /// Replicate every object to another bucket (cross-region).
    pub replicate_to: Option<Replication>,
    /// Publish object events to EventBridge (an audit trail of artifact uploads).
    pub eventbridge: bool,
    /// Deny plain-HTTP requests (always, except against the plain-HTTP emulator).
    pub tls_only: bool,
    /// The Terraform provider (alias) for buckets in another region.
    pub provider: Option<&'static str>,
}

/// Where and how a bucket replicates.
#[derive(Clone, Debug)]
pub struct Replication {
    pub destination_arn: Expr,
    pub role_arn: Expr,
    pub replica_key_arn: Expr,
    /// Resources that must exist first (the destination's versioning, the role's policy).
    pub after: Vec<Ref>,
}

/// Creates the bucket and its sub-resources under `logical`.
pub fn secure_bucket(
    stack: &mut Stack,
    logical: &str,
    name: &str,
    key: &Key,
    options: &BucketOptions,
) -> Bucket {
    let bucket = stack.resource(
        "aws_s3_bucket",
        logical,
        json!({ "bucket": name, "force_destroy": options.force_destroy }),
    );
    let pab = stack.resource(
        "aws_s3_bucket_public_access_block",
        logical,
        json!({
            "bucket": bucket.attr("id"),
            "block_public_acls": true,
            "block_public_policy": true,
            "ignore_public_acls": true,
            "restrict_public_buckets": true,
        }),
    );
    // BucketOwnerEnforced disables ACLs: access is decided by policies alone.
    stack.resource(
        "aws_s3_bucket_ownership_controls",
        logical,
        json!({ "bucket": bucket.attr("id"), "rule": [{ "object_ownership": "BucketOwnerEnforced" }] }),
    );
    let versioning = stack.resource(
        "aws_s3_bucket_versioning",
        logical,
        json!({ "bucket": bucket.attr("id"), "versioning_configuration": [{ "status": "Enabled" }] }),
    );
    stack.resource(
        "aws_s3_bucket_server_side_encryption_configuration",
        logical,
        json!({
            "bucket": bucket.attr("id"),
            "rule": [{
                "apply_server_side_encryption_by_default": [{ "sse_algorithm": "aws:kms", "kms_master_key_id": key.arn() }],
                "bucket_key_enabled": true,
            }],
        }),
    );
    let tls_only = PolicyDocument::new(vec![
        Statement::allow(
            "DenyInsecureTransport",
            &["s3:*"],
            vec![
                bucket.attr("arn").to_string(),
                format!("{}/*", bucket.attr("arn")),
            ],
        )
        .principal(json!("*"))
        .condition(json!({ "Bool": { "aws:SecureTransport": "false" } })),
    ]);
    let mut tls_only = serde_json::to_value(&tls_only).expect("plain data");
    tls_only["Statement"][0]["Effect"] = json!("Deny");
    let policy = options.tls_only.then(|| {
        stack.resource(
            "aws_s3_bucket_policy",
            logical,
            json!({
                "bucket": bucket.attr("id"),
                "policy": tls_only.to_string(),
                "depends_on": depends_on(&[&pab]),
            }),
        )
    });
    stack.resource(
        "aws_s3_bucket_lifecycle_configuration",
        logical,
        json!({
            "bucket": bucket.attr("id"),
            "rule": [
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": [{ "prefix": "" }],
                    "noncurrent_version_expiration": [{ "noncurrent_days": options.noncurrent_version_days }],
                },
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "filter": [{ "prefix": "" }],
                    "abort_incomplete_multipart_upload": [{ "days_after_initiation": 7 }],
                },
            ],
            "depends_on": depends_on(&[&versioning]),
        }),
    );
    if let Some(target) = &options.access_logs {
        stack.resource(
            "aws_s3_bucket_logging",
            logical,
            json!({ "bucket": bucket.attr("id"), "target_bucket": target, "target_prefix": format!("{name}/") }),
        );
    }
    if options.eventbridge {
        stack.resource(
            "aws_s3_bucket_notification",
            logical,
            json!({ "bucket": bucket.attr("id"), "eventbridge": true }),
        );
    }
    if let Some(Replication {
        destination_arn,
        role_arn,
        replica_key_arn,
        after,
    }) = &options.replicate_to
    {
        let mut deps: Vec<&Ref> = after.iter().collect();
        deps.push(&versioning);
        stack.resource(
            "aws_s3_bucket_replication_configuration",
            logical,
            json!({
                "bucket": bucket.attr("id"),
                "role": role_arn,
                "rule": [{
                    "id": "replicate-all",
                    "status": "Enabled",
                    "filter": [{ "prefix": "" }],
                    "delete_marker_replication": [{ "status": "Enabled" }],
                    "source_selection_criteria": [{ "sse_kms_encrypted_objects": [{ "status": "Enabled" }] }],
                    "destination": [{
                        "bucket": destination_arn,
                        "encryption_configuration": [{ "replica_kms_key_id": replica_key_arn }],
                    }],
                }],
                "depends_on": depends_on(&deps),
            }),
        );
    }
    let mut ready = vec![versioning];
    ready.extend(policy);
    if let Some(provider) = options.provider {
        stack.assign_provider(logical, provider);
    }
    Bucket { r: bucket, ready }
}

/// The role S3 replicates the buckets with (environments with `replication_region`).
pub const REPLICATION_ROLE: RoleKind = RoleKind {
    service: "s3.amazonaws.com",
    managed: &[],
    source_account: false,
};

/// Statements a role needs to replicate the buckets named `sources` into `destination`.
pub fn replication_statements(
    partition: &Expr,
    sources: &[String],
    destination: &Bucket,
    source_key: &Key,
    destination_key: &Key,
) -> Vec<Statement> {
    let arns: Vec<String> = sources
        .iter()
        .map(|name| format!("arn:{partition}:s3:::{name}"))
        .collect();
    vec![
        Statement::allow(
            "ReadSourceConfiguration",
            &["s3:GetReplicationConfiguration", "s3:ListBucket"],
            arns.clone(),
        ),
        Statement::allow(
            "ReadSourceObjects",
            &[
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            arns.iter().map(|a| format!("{a}/*")).collect(),
        ),
        Statement::allow(
            "WriteReplicas",
            &[
                "s3:ReplicateObject",
                "s3:ReplicateDelete",
                "s3:ReplicateTags",
            ],
            vec![format!("{}/*", destination.arn())],
        ),
        Statement::allow(
            "DecryptSource",
            &["kms:Decrypt"],
            vec![source_key.arn().to_string()],
        ),
        Statement::allow(
            "EncryptReplica",
            &["kms:Encrypt", "kms:GenerateDataKey"],
            vec![destination_key.arn().to_string()],
        ),
    ]
}

/// An account- and region-unique bucket name: `<prefix><purpose>-<account>-<region>`.
pub fn bucket_name(prefix: &str, purpose: &str, account: &Account) -> String {
    bucket_name_of(
        prefix,
        purpose,
        &account.account_id.to_string(),
        &account.region.to_string(),
    )
}

/// `<prefix><purpose>-<account id>-<region>` from literal values: how xtask finds a bucket of
/// the bootstrap stack without reading its state (a stage's credentials may not).
pub fn bucket_name_of(prefix: &str, purpose: &str, account_id: &str, region: &str) -> String {
    format!("{prefix}{purpose}-{account_id}-{region}")
}

/// The artifacts bucket's purpose in its name: every function package goes there.
pub const ARTIFACTS_BUCKET: &str = "artifacts";

/// The same for a bucket in another region.
pub fn bucket_name_in(prefix: &str, purpose: &str, account: &Account, region: &str) -> String {
    format!("{prefix}{purpose}-{}-{region}", account.account_id)
}

/// What the deploy role needs of the buckets, all in the bootstrap stack, which only an
/// administrator changes (`cargo xtask bootstrap`). The deploy role applies that stack too, so
/// it reads every setting Terraform refreshes, and changes none: a bucket policy or lifecycle
/// rule it could write would let it grant itself any object of the bucket (a resource-policy
/// privilege escalation). A change to the bootstrap stack fails the deploy with AccessDenied
/// until an administrator applies it. `state_bucket` is the S3 backend's bucket, if any;
/// `stages`: the environment allows stages, whose packages (`stages/<stage>/`) the deploy role
/// deletes when it destroys one.
pub fn management_statements(
    scope: &Scope,
    state_bucket: Option<&str>,
    stages: bool,
) -> Vec<Statement> {
    let p = &scope.account.partition;
    let a = &scope.account.account_id;
    let (pre, r) = (scope.prefix, scope.region);
    let mut bucket_arns = vec![format!("arn:{p}:s3:::{pre}*")];
    bucket_arns.extend(
        state_bucket
            .filter(|bucket| !bucket.starts_with(pre))
            .map(|bucket| format!("arn:{p}:s3:::{bucket}")),
    );
    let bucket_actions = [
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetBucketCORS",
        "s3:GetBucketWebsite",
        "s3:GetAccelerateConfiguration",
        "s3:GetBucketRequestPayment",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketOwnershipControls",
        "s3:GetLifecycleConfiguration",
        "s3:GetBucketLogging",
        "s3:GetReplicationConfiguration",
        "s3:GetBucketNotification",
    ];
    let artifacts = format!(
        "arn:{p}:s3:::{}",
        bucket_name_of(pre, ARTIFACTS_BUCKET, &a.to_string(), r)
    );
    let mut s = vec![
        Statement::allow("BucketsOfThisEnvironment", &bucket_actions, bucket_arns),
        // Packages: xtask uploads and checks them (and their signing records), Lambda reads
        // them with the caller's rights, Signer reads a version and writes the signed copy.
        Statement::allow(
            "ArtifactObjects",
            &["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            vec![format!("{artifacts}/*")],
        ),
    ];
    if stages {
        // `cargo xtask destroy --stage` deletes the stage's packages, so they don't pile up;
        // the environment's own (`functions/...`) are never deleted, the release history
        // rolls back to them.
        s.push(stage_packages_deletion(&artifacts, "*"));
    }
    s
}

/// Deleting the packages of the stages `stage` (an IAM pattern) under `stages/<stage>/` of
/// the artifacts bucket `artifacts` (its ARN).
fn stage_packages_deletion(artifacts: &str, stage: &str) -> Statement {
    Statement::allow(
        "DeleteStagePackages",
        &["s3:DeleteObject"],
        vec![format!(
            "{artifacts}/{}/{stage}/*",
            super::state::STAGES_DIR
        )],
    )
}

/// What the stages role needs of the artifacts bucket: its stages' packages only, under
/// `stages/<stage>/` (`stage`: an IAM pattern, `pr-*`; the same directory as their state's), which xtask uploads and Lambda reads
/// with the caller's rights; never the environment's own packages. Listing (names only) makes a
/// missing package a 404 rather than a 403 for xtask's check; deleting them lets `cargo xtask
/// destroy --stage` clear them away. Nothing of the buckets' settings: a stage never applies
/// the bootstrap stack.
pub fn stage_statements(scope: &Scope, stage: &str) -> Vec<Statement> {
    let (p, a, r) = (
        &scope.account.partition,
        &scope.account.account_id,
        scope.region,
    );
    let bucket = format!(
        "arn:{p}:s3:::{}",
        bucket_name_of(scope.base_prefix, ARTIFACTS_BUCKET, &a.to_string(), r)
    );
    vec![
        Statement::allow("ListTheArtifacts", &["s3:ListBucket"], vec![bucket.clone()]),
        Statement::allow(
            "StageArtifactObjects",
            &["s3:GetObject", "s3:PutObject"],
            vec![format!("{bucket}/{}/{stage}/*", super::state::STAGES_DIR)],
        ),
        stage_packages_deletion(&bucket, stage),
    ]
}
