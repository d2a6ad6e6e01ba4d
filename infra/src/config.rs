//! Environment files: `infra/environments/<name>.toml`, one readable file per environment.
//!
//! Environment differences are data here, never `if env == "prod"` in constructs. Unknown keys
//! are rejected (a misspelt option must not silently fall back to a default), and every error
//! names the file, the key and what is allowed.

use crate::Error;
use crate::iam::{Account, Scope};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The environments that ship with the repository, in the order tooling lists them.
pub const ENVIRONMENTS: [&str; 3] = ["local", "dev", "prod"];

/// Where the environment files live: in the workspace `deploy_files::workspace_root` finds,
/// which a binary built elsewhere is told with `XTASK_WORKSPACE_ROOT`.
pub fn environments_dir() -> PathBuf {
    deploy_files::workspace_root()
        .join("infra")
        .join("environments")
}

/// The whole per-environment configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Must equal the file name; it ends up in tags and the dashboard title.
    pub name: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Prepended to every AWS name (`<prefix>users`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Whether this environment is the emulator on loopback (provider endpoints, test
    /// credentials, local state) rather than a real AWS account.
    #[serde(default)]
    pub emulator: bool,
    pub lambda: Lambda,
    pub api: Api,
    pub data: Data,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub alarms: Alarms,
    #[serde(default)]
    pub options: Options,
    pub backend: Backend,
    /// GitHub Actions delivery: the OIDC trust and the deploy role (the `delivery` stack,
    /// applied by `cargo xtask bootstrap`). Absent: no delivery stack.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// Whether `cargo xtask deploy --stage NAME` may make stages of this environment: own
    /// copies of the service stack beside the base one (a developer's, a pull request's).
    /// Off unless the file says so, so an environment like prod never grows them by accident.
    #[serde(default)]
    pub stages: bool,
    /// The stage this configuration is for (never in the file: [`Config::for_stage`] sets it).
    #[serde(skip)]
    pub stage: Option<Stage>,
}

/// A stage of an environment: a copy of its service stack with a name of its own. Every name
/// of the copy is `<prefix><stage>-<name>` (so it stays inside the environment's prefix, which
/// its roles, boundary and alarms are scoped to), it is tagged `Stage = <stage>`, keeps its
/// Terraform state under `stages/<stage>/`, and shares only the bootstrap stack (buckets, keys,
/// boundary) with the base environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    /// The environment's own prefix, which names what the stages share with the base.
    pub base_prefix: String,
}

/// The longest prefix, with or without a stage: every derived AWS name is reasoned (and
/// tested, `infra/tests/assertions.rs::every_name_fits_its_limit`) at this length.
pub const PREFIX_MAX: usize = 20;

/// `<prefix><stage>-`: the prefix of every name of a stage's service stack.
pub fn stage_prefix(prefix: &str, stage: &str) -> String {
    format!("{prefix}{stage}-")
}

/// How every pull request's stage is named: `pr-<number>` (the stage workflow's). A stage so
/// named is a pull request's whoever deploys it ([`Config::is_pull_request_stage`]): what the
/// stages role and the stages boundary reach ([`Config::pull_request_stages`]).
pub const PR_STAGE_PREFIX: &str = "pr-";

/// The tag that marks a stage's resources (`Stage = <name>`): what `cargo xtask destroy
/// --stage` checks is gone, and what the stage role's conditions read.
pub const STAGE_TAG: &str = "Stage";

fn default_region() -> String {
    "us-east-1".into()
}
fn default_prefix() -> String {
    "prod-service-".into()
}

/// CPU architecture of the Lambda functions; must match how xtask cross-compiles.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    Arm64,
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lambda {
    pub architecture: Architecture,
    /// Overrides, for every function, the memory its crate declares (`catalog`).
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// Overrides, for every function, the timeout its crate declares (`catalog`).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Caps each function so one runaway client cannot take the account's whole concurrency.
    pub reserved_concurrency: i64,
    pub log_retention_days: u32,
    #[serde(default = "default_session_ttl")]
    pub session_ttl_seconds: u64,
    /// Failed asynchronous invocations land in an encrypted SQS queue instead of vanishing.
    #[serde(default = "yes")]
    pub dead_letter_queue: bool,
    /// Lambda code signing: an AWS Signer profile in the bootstrap stack, a code signing config
    /// with policy `Enforce` on the functions, and `cargo xtask deploy` signing every package
    /// with the profile (xtask/src/services/artifacts/sign.rs) before the service stack uses it.
    #[serde(default)]
    pub code_signing: bool,
}

impl Lambda {
    /// The memory `function` gets in this environment: the override, else its declaration.
    pub fn memory_mb_of(&self, function: &catalog::Function) -> u32 {
        self.memory_mb.unwrap_or(function.memory_mb)
    }

    /// The timeout of `function` in this environment: the override, else its declaration.
    pub fn timeout_seconds_of(&self, function: &catalog::Function) -> u32 {
        self.timeout_seconds.unwrap_or(function.timeout_seconds)
    }
}

fn default_session_ttl() -> u64 {
    86_400
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Api {
    #[serde(default = "default_stage")]
    pub stage_name: String,
    /// `/health` open (false) or behind the API key like every other route (true).
    pub health_requires_api_key: bool,
    pub throttling_rate_limit: f64,
    pub throttling_burst_limit: u32,
    /// Browser origins allowed to call the API (`https://app.example.com`, exact, as a browser
    /// sends them in `Origin`). Non-empty: every path gets an `OPTIONS` method without API key
    /// for preflights, and the functions get `CORS_ALLOW_ORIGINS`. Empty (the default): no CORS.
    #[serde(default)]
    pub cors_allow_origins: Vec<String>,
    /// The API's clients: each gets its own API key and usage plan (throttle, optional daily
    /// quota), so one client using up its limits never locks the others out. The first one's
    /// key is also the `api_key_value` output (smoke, the README's examples).
    #[serde(default)]
    pub clients: Vec<Client>,
    /// Removed: the one quota of the one key shared by every client. Read only to refuse it
    /// with a message saying where quotas went (`[[api.clients]]`).
    #[serde(default)]
    quota_per_day: Option<toml::Value>,
    /// Stage cache cluster (encrypted); costs money per hour, so off unless asked for.
    #[serde(default)]
    pub cache: Option<Cache>,
    /// A client certificate API Gateway presents to the backend.
    #[serde(default)]
    pub client_certificate: bool,
}

/// One `[[api.clients]]` entry: an API key and the usage plan that limits it.
///
/// A daily quota is a switch that turns the key off until midnight UTC for everyone holding
/// it, and API Gateway counts every request that carries the key against it (401s and 4xx
/// included). So a key that ships inside an app or a web page, where anyone can read it and
/// spend its quota, must have none: only `trusted = true` keys (held by servers the
/// environment's owner runs) may carry one (docs/security.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// 1-32 characters of a-z, 0-9 and inner '-', starting with a letter: it names the key
    /// and plan (`<prefix>client-<name>`), their Terraform addresses and outputs (`-` as `_`).
    pub name: String,
    /// Steady-state requests per second (the usage plan's token refill rate).
    pub rate_per_second: f64,
    /// Requests that may arrive at once (the token bucket's size).
    pub burst: u32,
    /// Requests per day (UTC) before API Gateway answers 429 `quota_exceeded` until midnight.
    /// Absent: no quota. Allowed only with `trusted = true`.
    #[serde(default)]
    pub quota_per_day: Option<u32>,
    /// The key is held only by servers the environment's owner runs, never shipped in an app
    /// or page. Default false: a key is assumed public, as any key in a client app is.
    #[serde(default)]
    pub trusted: bool,
}

impl Client {
    /// The name as Terraform identifiers take it (`web-app` -> `web_app`); unique because names
    /// have no '_'.
    pub fn ident(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// A client name: 1-32 characters of a-z, 0-9 and '-', starting with a letter, not ending in
/// '-'. With the longest prefix (20) `<prefix>client-<name>` stays short, and the name works
/// unchanged in Terraform addresses and output names once '-' becomes '_'.
fn client_name_ok(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Cache cluster size in GB, as API Gateway names them ("0.5", "1.6", ...).
    pub size_gb: String,
    pub ttl_seconds: u32,
}

impl Api {
    /// Whether browsers on other origins may call the API (see `cors_allow_origins`).
    pub fn cors(&self) -> bool {
        !self.cors_allow_origins.is_empty()
    }
}

/// An origin as a browser serializes it: `http` or `https`, `://`, a lower-case host name or
/// IPv4 address, an optional port; no path, no trailing slash, no wildcard. Anything else could
/// never equal a request's `Origin` header, so it would silently allow nobody.
fn origin_ok(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && !p.starts_with('0') && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host_ok && port_ok
}

fn default_stage() -> String {
    "v1".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub billing: Billing,
    pub deletion_protection: bool,
    /// Provisioned mode only: the autoscaling range and target utilisation.
    #[serde(default)]
    pub autoscaling: Option<Autoscaling>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    OnDemand,
    Provisioned,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min_capacity: u32,
    pub max_capacity: u32,
    pub target_utilization: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Lets `terraform destroy` empty the buckets; only for throwaway environments.
    #[serde(default)]
    pub force_destroy: bool,
    /// S3 server access logs for the buckets, into a dedicated log bucket.
    #[serde(default)]
    pub access_logging: bool,
    /// The bucket policy that denies plain-HTTP requests. Only the emulator turns it off: it
    /// serves plain HTTP on loopback, so the policy would deny every upload.
    #[serde(default = "yes")]
    pub tls_only: bool,
    /// Cross-region replication of every bucket into one replica bucket in this region.
    #[serde(default)]
    pub replication_region: Option<String>,
    /// Object-level events to EventBridge: an audit trail of every artifact upload.
    #[serde(default)]
    pub event_notifications: bool,
    /// Days a noncurrent artifact version is kept.
    #[serde(default = "default_noncurrent_days")]
    pub noncurrent_version_days: u32,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            force_destroy: false,
            access_logging: false,
            tls_only: true,
            replication_region: None,
            event_notifications: false,
            noncurrent_version_days: default_noncurrent_days(),
        }
    }
}

fn default_noncurrent_days() -> u32 {
    30
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// E-mail subscribed to the alarm topic (AWS asks the address to confirm).
    #[serde(default)]
    pub email: Option<String>,
    /// p99 latency threshold for the API latency alarm.
    #[serde(default = "default_latency")]
    pub latency_p99_ms: u32,
}

fn default_latency() -> u32 {
    2_000
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub vpc: Option<Vpc>,
    #[serde(default)]
    pub waf: Option<Waf>,
    #[serde(default)]
    pub cloudfront: Option<CloudFront>,
    #[serde(default)]
    pub domain: Option<Domain>,
    #[serde(default)]
    pub traffic_shifting: Option<TrafficShifting>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub cidr: String,
    /// At least two, so one AZ outage leaves the functions running.
    pub az_count: u8,
    /// One NAT gateway per AZ (true) or one shared (false, cheaper, single point of failure).
    #[serde(default = "yes")]
    pub nat_per_az: bool,
    /// VPC flow logs into a KMS-encrypted log group.
    #[serde(default = "yes")]
    pub flow_logs: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// Requests per five minutes per client IP before the rate rule blocks.
    pub rate_limit: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudFront {
    /// `PriceClass_100`, `PriceClass_200` or `PriceClass_All`.
    #[serde(default = "default_price_class")]
    pub price_class: String,
}

fn default_price_class() -> String {
    "PriceClass_100".into()
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The API's host name, e.g. `api.example.com`.
    pub name: String,
    /// The Route 53 public hosted zone that holds it (looked up, not created).
    pub hosted_zone: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrafficShifting {
    pub kind: ShiftKind,
    /// Percentage moved per step (canary: the first step; linear: every step).
    pub percentage: u32,
    pub interval_minutes: u32,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShiftKind {
    Canary,
    Linear,
}

/// `[delivery]`: which GitHub repository and environment may assume the deploy role.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// `OWNER/REPO`; the trust policy names it exactly (never a wildcard).
    pub github_repository: String,
    /// The owner's and the repository's immutable numeric ids (`gh api repos/OWNER/REPO --jq
    /// '.owner.id, .id'`), both or neither. Set, the role trusts GitHub's immutable subject
    /// `repo:OWNER@OWNER_ID/REPO@REPO_ID:...` (issued by default for repositories created or
    /// renamed on or after 2026-07-15, opt-in before); unset, the name-only `repo:OWNER/REPO:...`.
    #[serde(default)]
    pub github_owner_id: Option<u64>,
    #[serde(default)]
    pub github_repository_id: Option<u64>,
    /// The GitHub environment the deploy job runs in; defaults to the environment's name.
    #[serde(default)]
    pub github_environment: Option<String>,
    /// The GitHub environment must wait for a reviewer other than the one releasing
    /// (`cargo xtask doctor --env NAME` checks it; GitHub enforces it). `prod`: true.
    #[serde(default)]
    pub required_reviewers: bool,
    /// Create GitHub's OIDC provider (true), or look up the one that exists (false): an
    /// account has at most one, so the second environment in an account sets false.
    #[serde(default = "yes")]
    pub create_oidc_provider: bool,
}

impl Delivery {
    /// The GitHub environment whose jobs may assume the role (`env_name` unless set).
    pub fn environment<'a>(&'a self, env_name: &'a str) -> &'a str {
        self.github_environment.as_deref().unwrap_or(env_name)
    }
}

/// GitHub's rules for `OWNER/REPO`: an owner of 1-39 letters, digits and inner hyphens, a
/// repository name of 1-100 letters, digits, '.', '_' and '-' (not `.` or `..`).
fn github_repository_ok(repository: &str) -> bool {
    let Some((owner, repo)) = repository.split_once('/') else {
        return false;
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !owner.starts_with('-')
        && !owner.ends_with('-');
    let repo_ok = (1..=100).contains(&repo.len())
        && repo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && repo != "."
        && repo != "..";
    owner_ok && repo_ok
}

/// Where Terraform keeps state.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backend {
    /// State files under `build/<env>/` (the emulator, or a first bootstrap).
    Local,
    /// Remote state in S3 with S3-native locking (`use_lockfile`, Terraform >= 1.10). The
    /// bootstrap stack creates this bucket.
    S3 { bucket: String, key_prefix: String },
}

impl Config {
    /// Parses and validates one environment file's text; `file` is only used in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Config, Error> {
        let config: Config = toml::from_str(text).map_err(|e| Error::Config {
            file: file.to_owned(),
            message: describe_toml_error(&e),
        })?;
        config.validate().map_err(|message| Error::Config {
            file: file.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        fn check(
            ok: bool,
            key: &str,
            allowed: &str,
            got: impl std::fmt::Display,
        ) -> Result<(), String> {
            if ok {
                Ok(())
            } else {
                Err(format!("key `{key}`: got {got}; allowed: {allowed}"))
            }
        }
        const RETENTION: [u32; 23] = [
            1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
            2922, 3288, 3653, 0,
        ];
        let region_ok = {
            let parts: Vec<&str> = self.region.split('-').collect();
            parts.len() >= 3
                && parts.iter().all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
                && parts
                    .last()
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        };
        check(
            region_ok,
            "region",
            "an AWS region name such as us-east-1 or us-west-2",
            &self.region,
        )?;
        let prefix_ok = !self.prefix.is_empty()
            && self.prefix.len() <= PREFIX_MAX
            && self
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && self.prefix.ends_with('-');
        check(
            prefix_ok,
            "prefix",
            "1-20 characters of a-z, 0-9 and '-', ending in '-'",
            &self.prefix,
        )?;
        let l = &self.lambda;
        if let Some(memory_mb) = l.memory_mb {
            check(
                (128..=10_240).contains(&memory_mb),
                "lambda.memory_mb",
                "128..=10240",
                memory_mb,
            )?;
        }
        if let Some(timeout_seconds) = l.timeout_seconds {
            check(
                (1..=900).contains(&timeout_seconds),
                "lambda.timeout_seconds",
                "1..=900",
                timeout_seconds,
            )?;
        }
        check(
            (1..=1000).contains(&l.reserved_concurrency),
            "lambda.reserved_concurrency",
            "1..=1000",
            l.reserved_concurrency,
        )?;
        check(
            RETENTION[..22].contains(&l.log_retention_days),
            "lambda.log_retention_days",
            "one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
            l.log_retention_days,
        )?;
        check(
            l.session_ttl_seconds >= 60,
            "lambda.session_ttl_seconds",
            ">= 60",
            l.session_ttl_seconds,
        )?;
        let a = &self.api;
        let stage_ok = !a.stage_name.is_empty()
            && a.stage_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        check(
            stage_ok,
            "api.stage_name",
            "letters, digits and '_'",
            &a.stage_name,
        )?;
        check(
            a.throttling_rate_limit > 0.0,
            "api.throttling_rate_limit",
            "> 0",
            a.throttling_rate_limit,
        )?;
        check(
            a.throttling_burst_limit > 0,
            "api.throttling_burst_limit",
            "> 0",
            a.throttling_burst_limit,
        )?;
        if a.quota_per_day.is_some() {
            return Err("key `api.quota_per_day`: removed; a quota is now per client: list each client as [[api.clients]] (name, rate_per_second, burst, and quota_per_day only for a trusted = true key; docs/delivery.md). One quota shared by every client let anyone holding the key use it up for everyone until midnight".into());
        }
        if a.clients.is_empty() {
            return Err("key `api.clients`: missing; list at least one client, e.g. [[api.clients]] with name = \"app\", rate_per_second = 100, burst = 200 (docs/delivery.md)".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in a.clients.iter().enumerate() {
            let key = |field: &str| format!("api.clients[{i}].{field}");
            check(
                client_name_ok(&c.name),
                &key("name"),
                "1-32 characters of a-z, 0-9 and '-', starting with a letter, not ending in '-'",
                format_args!("{:?}", c.name),
            )?;
            check(
                seen.insert(c.name.as_str()),
                &key("name"),
                "a name no other client has",
                format_args!("{:?} twice", c.name),
            )?;
            check(
                c.rate_per_second > 0.0 && c.rate_per_second.is_finite(),
                &key("rate_per_second"),
                "> 0",
                c.rate_per_second,
            )?;
            check(c.burst > 0, &key("burst"), "> 0", c.burst)?;
            if let Some(quota) = c.quota_per_day {
                check(
                    quota > 0,
                    &key("quota_per_day"),
                    "> 0, or no key for no quota",
                    quota,
                )?;
                check(
                    c.trusted,
                    &key("quota_per_day"),
                    "only with trusted = true: a quota on a key shipped in an app or page lets anyone who reads the key use it up and lock every user of that app out until midnight (docs/security.md); leave it out, or set trusted = true if only your own servers hold this key",
                    quota,
                )?;
            }
        }
        for origin in &a.cors_allow_origins {
            check(
                origin_ok(origin),
                "api.cors_allow_origins",
                "exact origins such as \"https://app.example.com\" or \"http://localhost:3000\" (http or https, a lower-case host, an optional port; no path, no trailing slash, no *)",
                format_args!("{origin:?}"),
            )?;
        }
        if let Some(cache) = &a.cache {
            const SIZES: [&str; 8] = ["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"];
            check(
                SIZES.contains(&cache.size_gb.as_str()),
                "api.cache.size_gb",
                &SIZES.join(", "),
                &cache.size_gb,
            )?;
            check(
                cache.ttl_seconds <= 3600,
                "api.cache.ttl_seconds",
                "0..=3600",
                cache.ttl_seconds,
            )?;
        }
        match (self.data.billing, &self.data.autoscaling) {
            (Billing::Provisioned, None) => {
                return Err("key `data.autoscaling`: missing; required when data.billing = \"provisioned\" (min_capacity, max_capacity, target_utilization)".into());
            }
            (Billing::OnDemand, Some(_)) => {
                return Err(
                    "key `data.autoscaling`: only allowed when data.billing = \"provisioned\""
                        .into(),
                );
            }
            (_, Some(s)) => {
                check(
                    s.min_capacity >= 1 && s.min_capacity <= s.max_capacity,
                    "data.autoscaling.min_capacity",
                    "1..=max_capacity",
                    s.min_capacity,
                )?;
                check(
                    (10.0..=90.0).contains(&s.target_utilization),
                    "data.autoscaling.target_utilization",
                    "10..=90 (percent)",
                    s.target_utilization,
                )?;
            }
            _ => {}
        }
        if let Some(email) = &self.alarms.email {
            check(
                email.contains('@') && !email.contains(' '),
                "alarms.email",
                "an e-mail address",
                email,
            )?;
        }
        if let Some(v) = &self.options.vpc {
            check(
                (2..=6).contains(&v.az_count),
                "options.vpc.az_count",
                "2..=6",
                v.az_count,
            )?;
            let cidr_ok = v.cidr.split_once('/').is_some_and(|(ip, bits)| {
                ip.split('.').filter(|o| o.parse::<u8>().is_ok()).count() == 4
                    && bits.parse::<u8>().is_ok_and(|b| (16..=20).contains(&b))
            });
            check(
                cidr_ok,
                "options.vpc.cidr",
                "an IPv4 CIDR block from /16 to /20",
                &v.cidr,
            )?;
        }
        if let Some(c) = &self.options.cloudfront {
            const CLASSES: [&str; 3] = ["PriceClass_100", "PriceClass_200", "PriceClass_All"];
            check(
                CLASSES.contains(&c.price_class.as_str()),
                "options.cloudfront.price_class",
                &CLASSES.join(", "),
                &c.price_class,
            )?;
        }
        if let Some(t) = &self.options.traffic_shifting {
            check(
                (1..=99).contains(&t.percentage),
                "options.traffic_shifting.percentage",
                "1..=99",
                t.percentage,
            )?;
            check(
                t.interval_minutes >= 1,
                "options.traffic_shifting.interval_minutes",
                ">= 1",
                t.interval_minutes,
            )?;
        }
        if let Some(replica) = &self.storage.replication_region {
            check(
                replica != &self.region,
                "storage.replication_region",
                "a region other than `region`",
                replica,
            )?;
            check(
                !self.emulator,
                "storage.replication_region",
                "unset when emulator = true (one emulator, one region)",
                replica,
            )?;
        }
        if self.emulator {
            check(
                self.backend == Backend::Local,
                "backend.type",
                "\"local\" when emulator = true",
                "s3",
            )?;
        }
        if let Some(d) = &self.delivery {
            check(
                github_repository_ok(&d.github_repository),
                "delivery.github_repository",
                "OWNER/REPO as GitHub spells it, e.g. \"example-org/serverless-rust-service\" (owner: letters, digits, '-'; repository: letters, digits, '.', '_', '-'; no wildcards)",
                format_args!("{:?}", d.github_repository),
            )?;
            check(
                d.github_owner_id.is_some() == d.github_repository_id.is_some(),
                "delivery.github_owner_id",
                "set together with delivery.github_repository_id (both from `gh api repos/OWNER/REPO --jq '.owner.id, .id'`), or neither",
                format_args!(
                    "github_owner_id = {:?}, github_repository_id = {:?}",
                    d.github_owner_id, d.github_repository_id
                ),
            )?;
            let environment = d.environment(&self.name);
            check(
                (1..=255).contains(&environment.len())
                    && environment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "delivery.github_environment",
                "a GitHub environment name of 1-255 letters, digits, '.', '_' and '-' (default: the environment's name)",
                format_args!("{environment:?}"),
            )?;
            // CloudFront authorizes a new distribution's tags as cloudfront:TagResource, with
            // no key that tells a create request from a later one, so a deploy role able to
            // create one could tag any untagged distribution of the account into its
            // environment; and the distribution's origin is the API the deploy creates, so it
            // can't move to the administrator's bootstrap stack (docs/security.md).
            if self.options.cloudfront.is_some() {
                return Err("key `options.cloudfront`: not allowed with [delivery] (the deploy role can't create a distribution without the right to tag every untagged distribution of the account); deploy CloudFront environments with administrator credentials (`cargo xtask deploy` without [delivery]) or put the distribution in front of the API outside this repository".into());
            }
            // The stages role (`constructs::delivery::stages_role`) keeps a pull request's stage
            // apart from the base environment by name and by the `Stage` tag. These options
            // would make a stage share what it can't be kept out of: account-wide WAF log
            // deliveries and resource policies, the domain's DNS record, scalable targets and
            // EC2 resources without the names or conditions that tell a stage's apart.
            let shared = [
                ("options.vpc", self.options.vpc.is_some()),
                ("options.waf", self.options.waf.is_some()),
                ("options.domain", self.options.domain.is_some()),
                ("data.autoscaling", self.data.autoscaling.is_some()),
            ];
            if self.stages
                && let Some((key, _)) = shared.iter().find(|(_, on)| *on)
            {
                return Err(format!(
                    "key `stages`: not allowed with [delivery] and `{key}` (the stages role can't keep a pull request's copy of it apart from the environment's); turn one of them off"
                ));
            }
        }
        Ok(())
    }

    /// `<prefix><name>`: the one way AWS names are made.
    pub fn name(&self, suffix: &str) -> String {
        self.names().name(suffix)
    }

    /// The environment's prefix, the same for its stages: what names the bootstrap stack's
    /// resources, which every stage shares.
    pub fn base_prefix(&self) -> &str {
        self.stage
            .as_ref()
            .map_or(self.prefix.as_str(), |s| s.base_prefix.as_str())
    }

    /// `<environment prefix><name>`: the name of something the bootstrap stack made.
    pub fn shared_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base_prefix())
    }

    /// This environment's stage `name`: the configuration with the stage's prefix
    /// (`<prefix><name>-`). Refused when the file does not allow stages, and for a name that
    /// is not 1+ characters of a-z, 0-9 and inner single '-' starting with a letter, or that
    /// makes the prefix longer than [`PREFIX_MAX`] (every derived AWS name must fit its limit).
    pub fn for_stage(&self, name: &str) -> Result<Config, String> {
        if !self.stages {
            return Err(format!(
                "the environment `{}` allows no stages: its file has no `stages = true`",
                self.name
            ));
        }
        let room = PREFIX_MAX.saturating_sub(self.prefix.len() + 1);
        let well_formed = name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && !name.contains("--")
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed || name.len() > room {
            return Err(format!(
                "stage name {name:?}: allowed: 1-{room} characters of a-z, 0-9 and single '-', \
                 starting with a letter and not ending in '-' (`{}` plus the stage and '-' \
                 must fit the {PREFIX_MAX} characters every AWS name is reasoned with)",
                self.prefix
            ));
        }
        if self.stage.is_some() {
            return Err("a stage has no stages of its own".into());
        }
        let mut staged = self.clone();
        staged.prefix = stage_prefix(&self.prefix, name);
        // Stages come and go: nothing in one may refuse to be destroyed.
        staged.data.deletion_protection = false;
        staged.stage = Some(Stage {
            name: name.to_owned(),
            base_prefix: self.prefix.clone(),
        });
        Ok(staged)
    }

    /// Whether this is a pull request's stage (`pr-<number>`): its roles carry the stages
    /// boundary, whose ceiling is the pull request stages' own resources, since the pull
    /// request's code makes them (`constructs::boundary`).
    pub fn is_pull_request_stage(&self) -> bool {
        self.stage
            .as_ref()
            .is_some_and(|s| s.name.starts_with(PR_STAGE_PREFIX))
    }

    /// Every pull request stage of this environment at once: names `<prefix>pr-*-`, `Stage`
    /// tags `pr-*` (IAM patterns). The one scope the stages role's policy and the stages
    /// boundary are built for.
    pub fn pull_request_stages(&self) -> PullRequestStages<'_> {
        PullRequestStages {
            config: self,
            prefix: stage_prefix(self.base_prefix(), &format!("{PR_STAGE_PREFIX}*")),
            stage: format!("{PR_STAGE_PREFIX}*"),
        }
    }

    /// The naming handle constructs take instead of the whole configuration.
    pub fn names(&self) -> Names<'_> {
        Names(&self.prefix)
    }

    /// Where this environment's resources live in `account`: what constructs that write ARNs or
    /// name things take instead of the whole configuration.
    pub fn scope<'a>(&'a self, account: &'a Account) -> Scope<'a> {
        Scope {
            account,
            region: &self.region,
            prefix: &self.prefix,
            environment: &self.name,
            base_prefix: self.base_prefix(),
            stage: self.stage.as_ref().map(|s| s.name.as_str()),
        }
    }
}

/// The IAM patterns of every pull request stage of an environment ([`Config::pull_request_stages`]),
/// owned so that a [`Scope`] can borrow them.
#[derive(Clone, Debug)]
pub struct PullRequestStages<'a> {
    config: &'a Config,
    prefix: String,
    stage: String,
}

impl PullRequestStages<'_> {
    /// Where the pull request stages' resources live in `account`: the environment's scope
    /// with the stages' name and `Stage` tag patterns.
    pub fn scope<'a>(&'a self, account: &'a Account) -> Scope<'a> {
        Scope {
            prefix: &self.prefix,
            stage: Some(&self.stage),
            ..self.config.scope(account)
        }
    }
}

/// The environment's name prefix (`prod-service-`), as a handle: what a construct needs of the
/// configuration to name its resources, without the sections it has no business reading.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a>(pub &'a str);

impl<'a> Names<'a> {
    /// `<prefix><name>`: the one way AWS names are made.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.0)
    }

    pub fn prefix(&self) -> &'a str {
        self.0
    }
}

/// toml's own message names the line, shows the offending key and says what is expected
/// ("unknown field `x`, expected one of ...", "unknown variant `arm`, expected `arm64` or
/// `x86_64`"); it is kept whole rather than paraphrased.
fn describe_toml_error(e: &toml::de::Error) -> String {
    e.to_string().trim_end().to_owned()
}

/// Reads `environments/<env>.toml`.
pub fn load(env: &str) -> Result<Config, Error> {
    load_from(&environments_dir(), env)
}

/// Reads `<dir>/<env>.toml`; tests point this at temporary directories.
pub fn load_from(dir: &Path, env: &str) -> Result<Config, Error> {
    let valid = !env.is_empty()
        && env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let file = dir.join(format!("{env}.toml"));
    if !valid || !file.is_file() {
        return Err(Error::UnknownEnvironment {
            name: env.to_owned(),
            dir: dir.to_owned(),
        });
    }
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let config = Config::parse(&file, &text)?;
    if config.name != env {
        return Err(Error::Config {
            file,
            message: format!(
                "key `name`: got {:?}; allowed: {env:?} (the file name)",
                config.name
            ),
        });
    }
    Ok(config)
}
