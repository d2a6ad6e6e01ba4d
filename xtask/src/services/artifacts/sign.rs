//! Code signing for environments that enforce it (`lambda.code_signing`, prod): every package
//! is signed with AWS Signer between the upload and the service stack, and the service stack
//! and `--hotswap` deploy the signed objects, since the functions' code signing config rejects
//! anything else (`Enforce`).
//!
//! Signer reads the uploaded zip by its S3 version (the artifacts bucket is versioned) and
//! writes a signed copy under `signed/<fn>/<job id>.zip` in the same bucket. A signed copy is
//! reused for as long as its package (by SHA-256) and the profile version are the same, so an
//! unchanged function keeps its S3 key and hash and Terraform sees no change. The mapping is
//! kept twice: `build/<env>/signed.json` (no request at all on a re-run) and a small record
//! next to the signed object, `signed/<fn>/<sha256>.json`, so a fresh checkout (CI) finds the
//! signatures an earlier deploy made instead of re-signing, which would give every function a
//! new version on every deploy.
//!
//! The profile is the bootstrap stack's, found by its deterministic name
//! (`infra::constructs::signing::profile_name`): it exists even when this deploy skipped the
//! bootstrap stack, and no output has to be carried between runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_signer::types::{
    Destination, S3Destination, S3Source, SigningProfileStatus, SigningStatus, Source,
};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::artifacts::package::{self, Manifest};

/// How long the signing jobs of one deploy may take together (they usually take seconds).
const TIMEOUT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_secs(2);

/// One signed package: the record in `signed.json` and in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub function: String,
    pub bucket: String,
    /// The unsigned package that was signed, and its S3 version.
    pub source_key: String,
    pub source_version: String,
    pub signed_key: String,
    /// Base64 SHA-256 of the signed zip: Lambda's `CodeSha256` for it.
    pub source_code_hash: String,
    pub profile_version_arn: String,
    pub job_id: String,
}

/// `build/<env>/signed.json`: package SHA-256 -> its signed copy.
type Ledger = BTreeMap<String, Signed>;

/// A signing job this deploy started.
struct Job {
    function: String,
    /// The package's SHA-256 (the ledger's key).
    sha256: String,
    source_key: String,
    source_version: String,
    id: String,
}

/// Returns the manifest to deploy: `manifest` itself when the environment does not sign,
/// otherwise the same packages pointing at their signed copies (signing what has none yet).
pub fn if_required(
    env: &Env,
    target: &Target,
    bucket: &str,
    manifest: &Manifest,
) -> Result<Manifest> {
    if !env.code_signing {
        return Ok(manifest.clone());
    }
    let profile = infra::constructs::signing::profile_name(&env.prefix);
    progress::step(format!(
        "Signing the packages with the AWS Signer profile {profile}"
    ));
    let signed =
        process::block_on(sign_all(env, target, bucket, manifest, &profile)).map_err(|err| {
            match &target.endpoint {
            Some(_) => err.context(
                "code signing needs AWS Signer signing jobs, which the emulator (moto) does not \
                 implement; deploy environments with `lambda.code_signing = true` to a real \
                 AWS account",
            ),
            None => err,
        }
        })?;
    signed_manifest(manifest, &signed)
}

/// The manifest with every package's S3 key and hash replaced by its signed copy's; the
/// package identity (`sha256`, the local zip) stays, so "which functions changed" still
/// compares builds, not signatures.
pub fn signed_manifest(manifest: &Manifest, signed: &BTreeMap<String, Signed>) -> Result<Manifest> {
    let mut out = manifest.clone();
    for (name, package) in &mut out.functions {
        let copy = signed
            .get(name)
            .with_context(|| format!("no signed copy of the {name} package"))?;
        package.s3_key = copy.signed_key.clone();
        package.source_code_hash = copy.source_code_hash.clone();
    }
    Ok(out)
}

async fn sign_all(
    env: &Env,
    target: &Target,
    bucket: &str,
    manifest: &Manifest,
    profile: &str,
) -> Result<BTreeMap<String, Signed>> {
    let config = target.sdk_config().await;
    let signer = aws_sdk_signer::Client::new(&config);
    let s3 = target.s3().await;
    let profile_version_arn = profile_version(&signer, profile, &env.region).await?;

    let ledger_path = env.dir().join("signed.json");
    let mut ledger: Ledger = process::read_json(&ledger_path).unwrap_or_default();
    let mut signed = BTreeMap::new();
    let mut jobs = Vec::new();
    for (name, pkg) in &manifest.functions {
        let record_key = record_key(name, &pkg.sha256);
        let usable =
            |s: &Signed| s.bucket == bucket && s.profile_version_arn == profile_version_arn;
        let mut known = ledger.get(&pkg.sha256).filter(|s| usable(s)).cloned();
        if known.is_none() {
            known = read_record(&s3, bucket, &record_key)
                .await?
                .filter(|s| usable(s));
        }
        if let Some(copy) = known
            && object_exists(&s3, bucket, &copy.signed_key).await?
        {
            progress::note(format!("{name}: signed copy {} reused", copy.signed_key));
            ledger.insert(pkg.sha256.clone(), copy.clone());
            signed.insert(name.clone(), copy);
            continue;
        }
        let version = source_version(&s3, bucket, &pkg.s3_key).await?;
        let job_id = start_job(
            &signer,
            profile,
            &profile_version_arn,
            bucket,
            name,
            &pkg.s3_key,
            &version,
        )
        .await?;
        progress::note(format!("{name}: signing job {job_id} started"));
        jobs.push(Job {
            function: name.clone(),
            sha256: pkg.sha256.clone(),
            source_key: pkg.s3_key.clone(),
            source_version: version,
            id: job_id,
        });
    }

    let finished = wait_for_jobs(&signer, &jobs).await?;
    for (job, signed_key) in jobs.into_iter().zip(finished) {
        let source_code_hash = object_hash(&s3, bucket, &signed_key).await?;
        let copy = Signed {
            function: job.function.clone(),
            bucket: bucket.to_owned(),
            source_key: job.source_key,
            source_version: job.source_version,
            signed_key,
            source_code_hash,
            profile_version_arn: profile_version_arn.clone(),
            job_id: job.id,
        };
        let record = record_key(&job.function, &job.sha256);
        write_record(&s3, bucket, &record, &copy).await?;
        progress::note(format!("{}: signed as {}", job.function, copy.signed_key));
        ledger.insert(job.sha256, copy.clone());
        signed.insert(job.function, copy);
    }
    process::write_json(&ledger_path, &ledger)?;
    Ok(signed)
}

/// `signed/<fn>/<sha256>.json`: the record of a package's signed copy, beside it.
fn record_key(function: &str, sha256: &str) -> String {
    format!("signed/{function}/{sha256}.json")
}

/// The profile's current version ARN, which the code signing config trusts; a missing or
/// canceled profile is the bootstrap stack's job, and the message says so.
async fn profile_version(
    signer: &aws_sdk_signer::Client,
    profile: &str,
    region: &str,
) -> Result<String> {
    let out = signer
        .get_signing_profile()
        .profile_name(profile)
        .send()
        .await
        .map_err(|err| {
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                anyhow!(
                    "the AWS Signer profile `{profile}` does not exist in {region}: the bootstrap \
                     stack creates it when `lambda.code_signing` is on (run `cargo xtask deploy \
                     --force` to apply it)"
                )
            } else {
                anyhow!(
                    "reading the AWS Signer profile `{profile}` (GetSigningProfile): {}",
                    sdk_message(&err)
                )
            }
        })?;
    match out.status() {
        Some(SigningProfileStatus::Active) | None => {}
        Some(status) => bail!(
            "the AWS Signer profile `{profile}` is {status}, not Active: it can sign nothing \
             (a canceled profile's name stays taken; use a new prefix)"
        ),
    }
    out.profile_version_arn()
        .map(str::to_owned)
        .with_context(|| format!("AWS Signer returned no version ARN for profile `{profile}`"))
}

/// The S3 version of the uploaded package; Signer signs one version, never "the latest".
async fn source_version(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| anyhow!("reading s3://{bucket}/{key}: {}", sdk_message(&err)))?;
    match head.version_id() {
        Some(version) if version != "null" => Ok(version.to_owned()),
        _ => bail!(
            "s3://{bucket}/{key} has no S3 version: AWS Signer signs only objects of a \
             versioned bucket (the bootstrap stack turns versioning on for the artifacts bucket)"
        ),
    }
}

async fn start_job(
    signer: &aws_sdk_signer::Client,
    profile: &str,
    profile_version_arn: &str,
    bucket: &str,
    function: &str,
    key: &str,
    version: &str,
) -> Result<String> {
    let source = S3Source::builder()
        .bucket_name(bucket)
        .key(key)
        .version(version)
        .build()
        .context("building the signing job's source")?;
    let destination = S3Destination::builder()
        .bucket_name(bucket)
        .prefix(format!("signed/{function}/"))
        .build();
    // The same object and profile version give the same token, so a re-run after an
    // interrupted deploy gets the job already started instead of a second signature.
    let token = package::hex(&Sha256::digest(
        format!("{profile_version_arn}\n{bucket}\n{key}\n{version}").as_bytes(),
    ));
    let out = signer
        .start_signing_job()
        .profile_name(profile)
        .source(Source::builder().s3(source).build())
        .destination(Destination::builder().s3(destination).build())
        .client_request_token(&token[..32])
        .send()
        .await
        .map_err(|err| {
            anyhow!(
                "starting the AWS Signer job for {function} (StartSigningJob on s3://{bucket}/{key}): {}",
                sdk_message(&err)
            )
        })?;
    out.job_id()
        .map(str::to_owned)
        .with_context(|| format!("AWS Signer started no job for {function}"))
}

/// Polls every job until it succeeds (its signed object's key) or fails (an error naming the
/// function and Signer's reason), with a line per change and a reminder while it takes long.
async fn wait_for_jobs(signer: &aws_sdk_signer::Client, jobs: &[Job]) -> Result<Vec<String>> {
    let started = Instant::now();
    let mut done: Vec<Option<String>> = vec![None; jobs.len()];
    let mut last_note = Instant::now();
    while done.iter().any(Option::is_none) {
        for (
            i,
            Job {
                function: name,
                id: job_id,
                ..
            },
        ) in jobs.iter().enumerate()
        {
            if done[i].is_some() {
                continue;
            }
            let job = signer
                .describe_signing_job()
                .job_id(job_id)
                .send()
                .await
                .map_err(|err| {
                    anyhow!(
                        "reading the AWS Signer job {job_id} of {name} (DescribeSigningJob): {}",
                        sdk_message(&err)
                    )
                })?;
            match job.status() {
                Some(SigningStatus::Succeeded) => {
                    let key = job
                        .signed_object()
                        .and_then(|o| o.s3())
                        .and_then(|s3| s3.key())
                        .with_context(|| {
                            format!("the AWS Signer job {job_id} of {name} names no signed object")
                        })?;
                    progress::note(format!(
                        "{name}: signed in {:.0} s",
                        started.elapsed().as_secs_f64()
                    ));
                    done[i] = Some(key.to_owned());
                }
                Some(SigningStatus::Failed) => bail!(
                    "the AWS Signer job {job_id} signing {name} failed: {}",
                    job.status_reason().unwrap_or("no reason given")
                ),
                _ => {}
            }
        }
        if done.iter().all(Option::is_some) {
            break;
        }
        let waiting: Vec<&str> = jobs
            .iter()
            .zip(&done)
            .filter(|(_, d)| d.is_none())
            .map(|(job, _)| job.function.as_str())
            .collect();
        if started.elapsed() > TIMEOUT {
            bail!(
                "AWS Signer has not finished signing {} after {} s; the jobs keep running, and \
                 `cargo xtask deploy` again picks them up",
                waiting.join(", "),
                TIMEOUT.as_secs()
            );
        }
        if last_note.elapsed() >= Duration::from_secs(15) {
            progress::note(format!(
                "still signing {} ({:.0} s)",
                waiting.join(", "),
                started.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(done.into_iter().flatten().collect())
}

async fn object_exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<bool> {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(err) => Err(anyhow!(
            "checking s3://{bucket}/{key}: {}",
            sdk_message(&err)
        )),
    }
}

/// Base64 SHA-256 of an object (the signed zip: Signer adds the signature, so its hash is
/// not the package's).
async fn object_hash(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| anyhow!("downloading s3://{bucket}/{key}: {}", sdk_message(&err)))?;
    let bytes = object
        .body
        .collect()
        .await
        .with_context(|| format!("downloading s3://{bucket}/{key}"))?
        .into_bytes();
    Ok(base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes)))
}

async fn read_record(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Option<Signed>> {
    let object = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(object) => object,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(err) => bail!("reading s3://{bucket}/{key}: {}", sdk_message(&err)),
    };
    let bytes = object
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{bucket}/{key}"))?
        .into_bytes();
    // An unreadable record only costs a new signature.
    Ok(serde_json::from_slice(&bytes).ok())
}

async fn write_record(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    record: &Signed,
) -> Result<()> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(serde_json::to_vec_pretty(record)?.into())
        .send()
        .await
        .map_err(|err| anyhow!("writing s3://{bucket}/{key}: {}", sdk_message(&err)))?;
    Ok(())
}

/// An SDK error as one line: the service's code and message when it sent them, the HTTP
/// status when the answer was no AWS error at all (an endpoint without the API), the cause
/// chain (connection refused, timeout, ...) when there was no answer.
fn sdk_message<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err.as_service_error(), err.raw_response()) {
        (Some(e), _) if e.code().is_some() => format!(
            "{}: {}",
            e.code().unwrap_or_default(),
            e.message().unwrap_or("no message")
        ),
        (_, Some(response)) => format!(
            "HTTP {} without an AWS error in the body (does the endpoint implement this API?)",
            response.status().as_u16()
        ),
        _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::artifacts::package::Package;

    fn package(name: &str, sha: &str) -> Package {
        Package {
            zip: format!("build/dist/{name}.zip"),
            sha256: sha.to_owned(),
            s3_key: format!("functions/{name}/{sha}.zip"),
            source_code_hash: format!("unsigned-{name}"),
            bytes: 10,
            binary_sha256: String::new(),
        }
    }

    fn signed(name: &str, sha: &str) -> Signed {
        Signed {
            function: name.to_owned(),
            bucket: "artifacts".to_owned(),
            source_key: format!("functions/{name}/{sha}.zip"),
            source_version: "v1".to_owned(),
            signed_key: format!("signed/{name}/job-{name}.zip"),
            source_code_hash: format!("signed-{name}"),
            profile_version_arn: "arn:aws:signer:us-east-1:1:/signing-profiles/p/v".to_owned(),
            job_id: format!("job-{name}"),
        }
    }

    /// The service stack's variables (and so Terraform and `--hotswap`) get the signed keys and
    /// hashes; the package identity that decides "changed" stays the build's.
    #[test]
    fn signed_keys_and_hashes_flow_into_the_tfvars() {
        let manifest = Manifest {
            architecture: "arm64".to_owned(),
            functions: [("health", "aa"), ("users", "bb"), ("sessions", "cc")]
                .into_iter()
                .map(|(n, s)| (n.to_owned(), package(n, s)))
                .collect(),
        };
        let copies: BTreeMap<String, Signed> =
            [("health", "aa"), ("users", "bb"), ("sessions", "cc")]
                .into_iter()
                .map(|(n, s)| (n.to_owned(), signed(n, s)))
                .collect();
        let rewritten = signed_manifest(&manifest, &copies).unwrap();
        for (name, pkg) in &rewritten.functions {
            let before = &manifest.functions[name];
            assert_eq!(pkg.s3_key, format!("signed/{name}/job-{name}.zip"));
            assert_eq!(pkg.source_code_hash, format!("signed-{name}"));
            assert_eq!((&pkg.sha256, &pkg.zip), (&before.sha256, &before.zip));
        }

        let mut env = Env::load("prod", false).unwrap();
        assert!(env.code_signing, "prod signs");
        let dir = std::env::temp_dir().join(format!("xtask-sign-test-{}", std::process::id()));
        env.build_root = dir.clone();
        let path =
            crate::services::stacks::state::write_tfvars(&env, "artifacts", &rewritten).unwrap();
        let vars: serde_json::Value = process::read_json(&path).unwrap();
        assert_eq!(vars["artifact_key_users"], "signed/users/job-users.zip");
        assert_eq!(vars["artifact_hash_users"], "signed-users");
        assert_eq!(vars["artifact_key_health"], "signed/health/job-health.zip");
        let _ = std::fs::remove_dir_all(dir);

        let mut missing = copies.clone();
        missing.remove("users");
        let err = signed_manifest(&manifest, &missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("users"), "{err}");
    }

    /// moto keeps signing profiles but has no signing jobs: a signing environment pointed at
    /// it gets past the profile check and then fails with a message that names Signer and the
    /// emulator, not a bare SDK error.
    #[test]
    fn signing_against_the_emulator_fails_naming_signer() {
        let moto = emulator::Emulator::for_tests().unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut env = Env::load("prod", false).unwrap();
        env.prefix = format!("t{nanos}-");
        let dir = std::env::temp_dir().join(format!("xtask-sign-moto-{nanos}"));
        env.build_root = dir.clone();
        let target = Target::emulator(&env, moto.endpoint());
        let bucket = format!("t{nanos}-artifacts");
        let manifest = Manifest {
            architecture: "arm64".to_owned(),
            functions: [("health".to_owned(), package("health", "aa"))].into(),
        };
        let profile = infra::constructs::signing::profile_name(&env.prefix);
        process::block_on(async {
            let s3 = target.s3().await;
            s3.create_bucket().bucket(&bucket).send().await.unwrap();
            s3.put_bucket_versioning()
                .bucket(&bucket)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            s3.put_object()
                .bucket(&bucket)
                .key("functions/health/aa.zip")
                .body(b"zip".to_vec().into())
                .send()
                .await
                .unwrap();
            aws_sdk_signer::Client::new(&target.sdk_config().await)
                .put_signing_profile()
                .profile_name(&profile)
                .platform_id(infra::constructs::signing::PLATFORM)
                .send()
                .await
                .unwrap();
        });

        let err = format!(
            "{:#}",
            if_required(&env, &target, &bucket, &manifest).unwrap_err()
        );
        eprintln!("{err}");
        assert!(err.contains("AWS Signer job for health"), "{err}");
        assert!(err.contains("StartSigningJob"), "{err}");
        assert!(err.contains("emulator (moto) does not implement"), "{err}");
        assert!(err.contains("HTTP 404"), "{err}");
        assert!(!err.contains("ServiceError"), "a raw SDK dump: {err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn local_and_dev_do_not_sign() {
        for name in ["local", "dev"] {
            assert!(!Env::load(name, false).unwrap().code_signing, "{name}");
        }
    }
}
