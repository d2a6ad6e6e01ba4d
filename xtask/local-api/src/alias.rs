//! What the alias API Gateway invokes (`live`) says, and the code and configuration of each
//! published version it routes to, read from the emulator.
//!
//! xtask publishes versions with Terraform and then moves the alias itself: all at once, or in
//! canary/linear steps through the alias's `RoutingConfig.AdditionalVersionWeights`
//! (`{"5": 0.1}`: 10% to version 5, the rest to `FunctionVersion`); `rollback` moves it back.
//! The local server follows it as Lambda does: [`AliasState`] is what `GetAlias` returns, and
//! [`Emulator::read_version`] turns one version into a runnable [`FunctionSpec`]:
//!
//! - configuration: `GetFunction` with the version as qualifier (variables, timeout, memory,
//!   handler, `CodeSha256`);
//! - code: the object `Code.Location` names (`https://awslambda-<region>-tasks.s3.<region>
//!   .amazonaws.com/<key>`; the key is the content-addressed package key xtask uploaded, under
//!   `functions/<fn>/<sha256>.zip`), downloaded from the artifacts bucket (the `artifacts_bucket`
//!   output), checked against `CodeSha256` and extracted once per content hash
//!   ([`crate::package::cached_bootstrap`]). A version already in the cache costs no download;
//!   the `build/dist` zip is used when it is byte for byte that version's package.
//!
//! moto 5.2.5 copies a function shallowly when it publishes a version, so a later
//! `UpdateFunctionCode` also changes the `Code.Location` that older versions report (their
//! `CodeSha256` stays right). The package keys carry the hash, so a key naming another hash is
//! tried with the version's own hash first; the hash check makes any mix-up impossible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_s3::config::{Credentials, Region};

use crate::deployment::Deployment;
use crate::function_env::{self, ConfigSource, Deployed, EMULATOR_TIMEOUT, FunctionSpec};
use crate::package;

/// Where an alias sends requests: `version` gets what the additional weights leave.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasState {
    pub version: String,
    /// `AdditionalVersionWeights`: version -> share of requests (0..=1).
    pub weights: BTreeMap<String, f64>,
    /// The alias's ARN (`...:function:<name>:live`), the invoked ARN the processes see.
    pub arn: Option<String>,
}

impl AliasState {
    /// Every version that gets traffic, with its share; the primary first. Shares are clamped
    /// to 0..=1 and a version listed twice is merged, so the result always sums to 1.
    pub fn split(&self) -> Vec<(String, f64)> {
        let mut extra: BTreeMap<&str, f64> = BTreeMap::new();
        for (version, weight) in &self.weights {
            if version != &self.version && weight.is_finite() && *weight > 0.0 {
                *extra.entry(version.as_str()).or_default() += weight.min(1.0);
            }
        }
        let total: f64 = extra.values().sum();
        let scale = if total > 1.0 { 1.0 / total } else { 1.0 };
        let mut split = vec![(self.version.clone(), (1.0 - total * scale).max(0.0))];
        split.extend(extra.into_iter().map(|(v, w)| (v.to_string(), w * scale)));
        split
    }

    /// The same routing, ignoring the ARN (which never changes for one alias).
    pub fn same_routing(&self, other: &AliasState) -> bool {
        self.version == other.version && self.weights == other.weights
    }
}

impl std::fmt::Display for AliasState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .split()
            .iter()
            .map(|(v, w)| format!("version {v} ({}%)", (w * 1000.0).round() / 10.0))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// One version, ready to run.
#[derive(Debug, Clone)]
pub struct Version {
    pub spec: FunctionSpec,
    /// The configuration it was built from; two reads of one version that agree here (and in
    /// the binary) can share processes.
    pub deployed: Deployed,
    /// Where the code came from, for messages (`cache`, `s3://...`, `build/dist/users.zip`).
    pub code_origin: String,
}

/// The emulator as the refresher reads it.
pub struct Emulator {
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    deployment: Deployment,
    endpoint: String,
    work: PathBuf,
    dist: PathBuf,
}

impl Emulator {
    pub fn new(deployment: Deployment, endpoint: &str, work: &Path, dist: &Path) -> Emulator {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .region(Region::new(deployment.region.clone()))
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::new("test", "test", None, None, "local-api"))
                .force_path_style(true)
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
                .build(),
        );
        Emulator {
            lambda: function_env::lambda_client(endpoint, &deployment.region),
            s3,
            deployment,
            endpoint: endpoint.to_string(),
            work: work.to_path_buf(),
            dist: dist.to_path_buf(),
        }
    }

    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    pub fn lambda(&self) -> &aws_sdk_lambda::Client {
        &self.lambda
    }

    /// `GetAlias`; the error is one line (no function, no alias, no emulator).
    pub async fn read_alias(&self, short: &str) -> Result<AliasState, String> {
        let alias = &self.deployment.alias;
        let name = &self.deployment.functions[short];
        let request = self.lambda.get_alias().function_name(name).name(alias);
        let output = match tokio::time::timeout(EMULATOR_TIMEOUT, request.send()).await {
            Ok(Ok(output)) => output,
            Ok(Err(err)) => return Err(function_env::describe(&err)),
            Err(_) => {
                return Err(format!(
                    "the emulator did not answer GetAlias within {} s",
                    EMULATOR_TIMEOUT.as_secs()
                ));
            }
        };
        let Some(version) = output.function_version() else {
            return Err(format!("alias `{alias}` of {name} names no version"));
        };
        let weights = output
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        Ok(AliasState {
            version: version.to_string(),
            weights,
            arn: output.alias_arn().map(str::to_string),
        })
    }

    /// The configuration and code of one published version, as a process spec.
    pub async fn read_version(
        &self,
        short: &str,
        version: &str,
        alias_arn: Option<&str>,
    ) -> Result<Version, String> {
        let name = &self.deployment.functions[short];
        let output = function_env::get_function(&self.lambda, name, Some(version)).await?;
        let config = output
            .configuration()
            .ok_or("GetFunction returned no configuration")?;
        let mut deployed = Deployed::from_configuration(config);
        let code_sha256 = deployed
            .code_sha256
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("the version has no CodeSha256")?;
        let sha_hex = package::code_sha256_hex(&code_sha256).map_err(|e| format!("{e:#}"))?;
        let location = output.code().and_then(|c| c.location());
        let (bootstrap, code_origin) = self.code(short, &sha_hex, location).await?;

        deployed.version = Some(version.to_string());
        deployed.arn = Some(
            alias_arn
                .map(str::to_string)
                .unwrap_or_else(|| function_env::alias_arn(&self.deployment, name)),
        );
        let spec = function_env::spec(
            &self.deployment,
            &self.endpoint,
            &self.work,
            short,
            bootstrap,
            &deployed,
            ConfigSource::Emulator,
        );
        Ok(Version {
            spec,
            deployed,
            code_origin,
        })
    }

    /// The extracted binary of the package with this hash: from the cache, the artifacts
    /// bucket, or a `build/dist` zip that is the same package.
    async fn code(
        &self,
        short: &str,
        sha_hex: &str,
        location: Option<&str>,
    ) -> Result<(PathBuf, String), String> {
        let cached = package::cached_bootstrap(&self.work, short, sha_hex);
        if cached.is_file() {
            return Ok((cached, "cache".to_string()));
        }
        let mut tried = Vec::new();
        let bucket = &self.deployment.artifacts_bucket;
        match location.and_then(key_of_location) {
            Some(key) => {
                for key in candidate_keys(&key, sha_hex) {
                    let label = format!("s3://{bucket}/{key}");
                    match self.download(bucket, &key).await {
                        Ok(zip) => match package::install_verified(
                            &self.work, short, sha_hex, &zip, &label,
                        ) {
                            Ok(path) => return Ok((path, label)),
                            Err(e) => tried.push(format!("{e:#}")),
                        },
                        Err(e) => tried.push(format!("{label}: {e}")),
                    }
                }
            }
            None => tried.push(format!(
                "GetFunction gave no S3 code location ({})",
                location.unwrap_or("none")
            )),
        }
        let dist_zip = package::dist_zip(&self.dist, short);
        if let Ok(zip) = std::fs::read(&dist_zip) {
            let label = dist_zip.display().to_string();
            match package::install_verified(&self.work, short, sha_hex, &zip, &label) {
                Ok(path) => return Ok((path, label)),
                Err(e) => tried.push(format!("{e:#}")),
            }
        }
        Err(format!(
            "no package with SHA-256 {sha_hex}: {}",
            tried.join("; ")
        ))
    }

    async fn download(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let request = self.s3.get_object().bucket(bucket).key(key);
        // A debug binary is tens of MB; allow for a busy emulator.
        let timeout = EMULATOR_TIMEOUT * 6;
        let fetch = async {
            let output = request
                .send()
                .await
                .map_err(|err| function_env::describe(&err))?;
            let body = output
                .body
                .collect()
                .await
                .map_err(|e| format!("reading the object: {e}"))?;
            Ok::<_, String>(body.into_bytes().to_vec())
        };
        match tokio::time::timeout(timeout, fetch).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
        }
    }
}

/// The object key of a code location: the path of `https://<bucket host>/<key>[?query]`.
pub fn key_of_location(location: &str) -> Option<String> {
    let rest = location.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let key = path.split(['?', '#']).next().unwrap_or(path);
    (!key.is_empty()).then(|| key.to_string())
}

/// The keys to try for a package: when the key's file name is a SHA-256 other than the
/// version's (moto's shared code location, see the module doc), the same key with the
/// version's hash first; then the key as given.
pub fn candidate_keys(key: &str, sha_hex: &str) -> Vec<String> {
    let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
    let (stem, ext) = file.split_once('.').unwrap_or((file, ""));
    let mut keys = Vec::new();
    if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) && stem != sha_hex {
        let ext = if ext.is_empty() {
            String::new()
        } else {
            format!(".{ext}")
        };
        let file = format!("{sha_hex}{ext}");
        keys.push(if dir.is_empty() {
            file
        } else {
            format!("{dir}/{file}")
        });
    }
    keys.push(key.to_string());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: &str, weights: &[(&str, f64)]) -> AliasState {
        AliasState {
            version: version.to_string(),
            weights: weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
            arn: None,
        }
    }

    #[test]
    fn the_primary_version_gets_what_the_weights_leave() {
        assert_eq!(state("4", &[]).split(), vec![("4".to_string(), 1.0)]);
        let split = state("4", &[("5", 0.1)]).split();
        assert_eq!(split[0].0, "4");
        assert!((split[0].1 - 0.9).abs() < 1e-9);
        assert_eq!(split[1], ("5".to_string(), 0.1));
        // Nonsense weights still give a split that sums to 1.
        let split = state("4", &[("5", 0.8), ("6", 0.8), ("4", 0.3), ("7", -1.0)]).split();
        let total: f64 = split.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9, "{split:?}");
        assert_eq!(split[0], ("4".to_string(), 0.0));
        assert_eq!(
            state("4", &[("5", 0.1)]).to_string(),
            "version 4 (90%), version 5 (10%)"
        );
    }

    #[test]
    fn reads_the_key_of_a_code_location() {
        assert_eq!(
            key_of_location(
                "https://awslambda-eu-west-1-tasks.s3.eu-west-1.amazonaws.com/functions/users/ab.zip"
            )
            .as_deref(),
            Some("functions/users/ab.zip")
        );
        assert_eq!(
            key_of_location("https://host/a/b.zip?versionId=1&X-Amz-Signature=x").as_deref(),
            Some("a/b.zip")
        );
        assert_eq!(key_of_location("s3://"), None);
        assert_eq!(key_of_location("https://host/"), None);
    }

    #[test]
    fn a_key_naming_another_hash_is_tried_with_the_versions_hash_first() {
        let mine = "a".repeat(64);
        let other = "b".repeat(64);
        assert_eq!(
            candidate_keys(&format!("functions/users/{other}.zip"), &mine),
            vec![
                format!("functions/users/{mine}.zip"),
                format!("functions/users/{other}.zip")
            ]
        );
        assert_eq!(
            candidate_keys(&format!("functions/users/{mine}.zip"), &mine),
            vec![format!("functions/users/{mine}.zip")]
        );
        assert_eq!(
            candidate_keys("prod-users-1234", &mine),
            vec!["prod-users-1234".to_string()]
        );
    }
}
