//! The two stacks, composed like the architecture diagram: the bootstrap stack (artifacts and
//! state buckets), then the service stack: data -> compute -> api -> observability, with the
//! optional network and edge pieces plugged in by configuration.

use crate::config::{self, Config};
use crate::constructs::storage::{
    BucketOptions, Replication, bucket_name, bucket_name_in, replication_statements, secure_bucket,
};
use crate::constructs::{
    api, boundary, compute, data, delivery, edge, network, observability, queues, schedules,
    secrets, security, signing, state, storage,
};
use crate::iam;
use crate::routes::FunctionName;
use crate::tf::{Ref, Stack, Validation, Variable};
use deploy_files::outputs::{self, name};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Provider pin: exactly one version, so the deploy job, which holds the deploy role while it
/// runs `terraform init`, never installs a provider nobody reviewed. Its checksums are in
/// [`PROVIDER_LOCK`]. (Terraform itself must be >= 1.10 for the S3 backend's `use_lockfile`.)
pub const AWS_PROVIDER_VERSION: &str = "5.100.0";

/// `infra/terraform.lock.hcl`, written into every stack folder as `.terraform.lock.hcl`: the
/// checksums the provider package must match. Made from the offline mirror with
/// `terraform providers lock -fs-mirror=/opt/tf-plugins -platform=linux_amd64` (in a folder
/// holding a `required_providers` block with [`AWS_PROVIDER_VERSION`]); add a platform with
/// another `-platform=`. A test fails when the pin and the lock disagree.
pub const PROVIDER_LOCK: &str = include_str!("../terraform.lock.hcl");

/// Services the stacks call; each gets the emulator endpoint in the `local` environment.
const SERVICES: [&str; 20] = [
    "acm",
    "apigateway",
    "applicationautoscaling",
    "cloudfront",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "route53",
    "s3",
    "scheduler",
    "secretsmanager",
    "signer",
    "sns",
    "sqs",
    "sts",
    "wafv2",
];

/// Synthesis inputs that are not configuration: they depend on where the output goes.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Directory (as Terraform should see it from the stack directory) for local state files.
    pub local_state_dir: String,
    /// Default of the `aws_endpoint` variable in emulator environments.
    pub local_endpoint: String,
}

/// Both stacks, in apply order; for a stage only its service stack (it shares the bootstrap
/// stack, and the delivery stack's roles, with its environment).
pub fn stacks(config: &Config, options: &StackOptions) -> Vec<Stack> {
    if config.stage.is_some() {
        return vec![service(config, options)];
    }
    let mut stacks = vec![bootstrap(config, options), service(config, options)];
    stacks.extend(delivery(config, options));
    stacks
}

/// GitHub Actions delivery, for environments with `[delivery]`: GitHub's OIDC provider (or its
/// lookup) and the deploy role (`constructs::delivery`). Kept out of the bootstrap stack so that
/// `cargo xtask deploy`, which applies bootstrap and service under that very role, can never
/// apply it: only `cargo xtask bootstrap`, run with administrator credentials, does. Its state
/// sits next to the service stack's (same backend, key `<key_prefix>/delivery.tfstate`).
///
/// Emulator environments synthesize it too when they set `[delivery]` (none ships with it):
/// moto implements the OIDC provider and roles, which lets a test apply the stack.
pub fn delivery(config: &Config, options: &StackOptions) -> Option<Stack> {
    let settings = config.delivery.as_ref()?;
    let mut stack = Stack::new(crate::DELIVERY_STACK);
    state::backend(
        &mut stack,
        &config.backend,
        &config.region,
        &options.local_state_dir,
        None,
    );
    provider(&mut stack, config, options);
    if let Some(region) = &config.storage.replication_region {
        // The replica key's lookup (the deploy role's policy names every key by ARN).
        stack.provider(
            "aws",
            json!({ "alias": "replica", "region": region, "default_tags": [default_tags(config)] }),
        );
    }
    let account = iam::Account::lookup(&mut stack);
    let role = delivery::github_deploy(&mut stack, config, settings, &account);
    stack.output(
        "deploy_role_arn",
        role.role_arn.clone(),
        "Role the deploy workflow assumes: the GitHub environment's variable AWS_DEPLOY_ROLE_ARN",
        false,
    );
    let check =
        delivery::release_check_role(&mut stack, config, settings, &account, &role.provider_arn);
    stack.output(
        "release_check_role_arn",
        check,
        "Role the scheduled release check assumes: the variable AWS_RELEASE_CHECK_ROLE_ARN of the GitHub environment <ENV>-release-check",
        false,
    );
    if config.stages {
        let stages = delivery::stages_role(&mut stack, config, settings, &account, &role);
        stack.output(
            "stages_role_arn",
            stages,
            "Role the stage workflow assumes for pull request stages: the variable AWS_STAGES_ROLE_ARN of the GitHub environment <ENV>-stages",
            false,
        );
    }
    stack.output(
        "oidc_provider_arn",
        role.provider_arn,
        "GitHub Actions' OIDC provider in this account",
        false,
    );
    Some(stack)
}

/// The provider block. For the emulator the endpoints come from the Terraform variable
/// `aws_endpoint` rather than being baked in at synth time: moto runs on a free port chosen at
/// start-up, xtask passes `-var aws_endpoint=...`, and the synthesized JSON (and its snapshot)
/// stays the same whatever the port. The variable's default is `INFRA_LOCAL_ENDPOINT` (or
/// `http://127.0.0.1:5000`) as seen at synth time, for hand-run terraform.
fn provider(stack: &mut Stack, config: &Config, options: &StackOptions) -> Option<Ref> {
    stack.require("aws", "hashicorp/aws", AWS_PROVIDER_VERSION);
    let tags = default_tags(config);
    if !config.emulator {
        stack.provider(
            "aws",
            json!({ "region": config.region, "default_tags": [tags] }),
        );
        return None;
    }
    let endpoint = stack.variable(
        "aws_endpoint",
        Variable {
            ty: "string",
            description: "URL of the AWS emulator (moto) every service endpoint points at".into(),
            default: Some(json!(options.local_endpoint)),
            sensitive: false,
            validation: vec![Validation {
                condition: "${can(regex(\"^https?://\", var.aws_endpoint))}".into(),
                error_message: "aws_endpoint must be an http:// or https:// URL.".into(),
            }],
        },
    );
    let endpoints: serde_json::Map<String, Value> = SERVICES
        .iter()
        .map(|s| ((*s).to_owned(), endpoint.expr().into()))
        .collect();
    stack.provider(
        "aws",
        json!({
            "region": config.region,
            "access_key": "test",
            "secret_key": "test",
            "skip_credentials_validation": true,
            "skip_metadata_api_check": true,
            // Ask the emulator's STS for the account so ARNs carry 123456789012.
            "skip_requesting_account_id": false,
            "s3_use_path_style": true,
            "endpoints": [endpoints],
            "default_tags": [tags],
        }),
    );
    Some(endpoint)
}

/// The tags every resource carries; a stage's also carry [`config::STAGE_TAG`].
fn default_tags(config: &Config) -> Value {
    let mut tags = json!({ "Project": config.base_prefix().trim_end_matches('-'), "Environment": config.name, "ManagedBy": "infra" });
    if let Some(stage) = &config.stage {
        tags[config::STAGE_TAG] = json!(stage.name);
    }
    json!({ "tags": tags })
}

fn bucket_options(config: &Config) -> BucketOptions {
    BucketOptions {
        force_destroy: config.storage.force_destroy,
        noncurrent_version_days: config.storage.noncurrent_version_days,
        access_logs: None,
        replicate_to: None,
        eventbridge: config.storage.event_notifications,
        tls_only: config.storage.tls_only,
        provider: None,
    }
}

/// Artifacts bucket (and, for real accounts, the state bucket) with their own key, and for
/// environments with `[delivery]` the permissions boundary of every role (`constructs::boundary`).
pub fn bootstrap(config: &Config, options: &StackOptions) -> Stack {
    let mut stack = Stack::new("bootstrap");
    state::backend(
        &mut stack,
        &config.backend,
        &config.region,
        &options.local_state_dir,
        None,
    );
    provider(&mut stack, config, options);
    if let Some(region) = &config.storage.replication_region {
        stack.provider(
            "aws",
            json!({ "alias": "replica", "region": region, "default_tags": [default_tags(config)] }),
        );
    }
    let account = iam::Account::lookup(&mut stack);
    // Every key of the environment is here, applied only with administrator credentials
    // (`cargo xtask bootstrap`): creating a key with tags takes `kms:TagResource` on every key
    // of the account, which the deploy role must never have (`constructs::delivery`). The
    // service stack finds its key by alias.
    let key = security::kms_key(
        &mut stack,
        &account,
        "buckets",
        &config.name(security::BUCKETS_KEY_ALIAS),
        "Encrypts the artifacts and state buckets",
    );
    let service_key = security::kms_key(
        &mut stack,
        &account,
        security::SERVICE_KEY_LOGICAL,
        &config.name(security::SERVICE_KEY_ALIAS),
        "Encrypts the service's tables, logs, topic, queue and function settings",
    );
    let replica_key = config.storage.replication_region.as_ref().map(|_| {
        let key = security::kms_key(
            &mut stack,
            &account,
            "replica",
            &config.name(security::REPLICA_KEY_ALIAS),
            "Encrypts the bucket replicas",
        );
        stack.assign_provider("replica", "aws.replica");
        key
    });
    // Before any role: the roles of both stacks carry it (environments with `[delivery]`).
    let mut role_keys = vec![key.arn(), service_key.arn()];
    role_keys.extend(replica_key.as_ref().map(security::Key::arn));
    boundary::policy(&mut stack, config, &account, &role_keys);
    let mut bucket_opts = bucket_options(config);
    let logs_name = bucket_name(&config.prefix, "access-logs", &account);
    let artifacts_name = bucket_name(&config.prefix, storage::ARTIFACTS_BUCKET, &account);
    if let Some(region) = &config.storage.replication_region {
        bucket_opts.replicate_to = Some(replica(
            &mut stack,
            config,
            &account,
            &key,
            replica_key
                .as_ref()
                .expect("made above for the replication region"),
            region,
            &[&logs_name, &artifacts_name],
        ));
    }
    if config.storage.access_logging {
        let logs = secure_bucket(&mut stack, "access_logs", &logs_name, &key, &bucket_opts);
        bucket_opts.access_logs = Some(logs.id());
    }
    let artifacts = secure_bucket(&mut stack, "artifacts", &artifacts_name, &key, &bucket_opts);
    stack.output(
        "artifacts_bucket",
        artifacts.id(),
        "Bucket xtask uploads function zips to",
        false,
    );
    if let Some(state_bucket) = state::state_bucket(&mut stack, &config.backend, &key, &bucket_opts)
    {
        stack.output(
            "state_bucket",
            state_bucket.id(),
            "Bucket holding the service stack's Terraform state",
            false,
        );
    }
    if let Some(domain) = &config.options.domain {
        let certificate = edge::certificate(&mut stack, domain);
        stack.output(
            edge::CERTIFICATE_OUTPUT,
            certificate,
            "Validated certificate of the API's custom domain",
            false,
        );
    }
    if config.lambda.code_signing {
        // Here, not in the service stack: xtask signs the packages before the service stack's
        // first apply, so the profile must already exist; and the config is an administrator's
        // to create (`constructs::signing`).
        let profile = signing::profile(&mut stack, &config.prefix);
        stack.output(
            "signing_profile_name",
            profile.attr("name"),
            "Signer profile xtask signs the function packages with",
            false,
        );
        stack.output(
            "signing_profile_version_arn",
            profile.attr("version_arn"),
            "Signer profile version the functions' code signing config trusts",
            false,
        );
        let csc = signing::config(&mut stack, &config.prefix, &profile);
        stack.output(
            signing::CONFIG_OUTPUT,
            csc.attr("arn"),
            "Code signing config the service stack attaches to every function",
            false,
        );
    }
    stack
}

/// The replica bucket in `region` (its own key, access logs kept in itself under
/// `access-logs/` since no other bucket lives in that region) and the role S3 replicates with.
fn replica(
    stack: &mut Stack,
    config: &Config,
    account: &iam::Account,
    source_key: &security::Key,
    key: &security::Key,
    region: &str,
    sources: &[&str],
) -> Replication {
    let name = bucket_name_in(&config.prefix, "replica", account, region);
    let options = BucketOptions {
        provider: Some("aws.replica"),
        force_destroy: false,
        ..bucket_options(config)
    };
    let bucket = secure_bucket(stack, "replica", &name, key, &options);
    let logging = stack.resource(
        "aws_s3_bucket_logging",
        "replica",
        json!({ "provider": "aws.replica", "bucket": bucket.id(), "target_bucket": bucket.id(), "target_prefix": "access-logs/" }),
    );
    let mut sources: Vec<String> = sources.iter().map(|s| (*s).to_owned()).collect();
    if let crate::config::Backend::S3 { bucket, .. } = &config.backend {
        sources.push(bucket.clone());
    }
    let role = security::service_role(
        stack,
        boundary::permissions_boundary(config, account).as_deref(),
        account,
        "replication",
        &config.name("replication"),
        &storage::REPLICATION_ROLE,
        replication_statements(&account.partition, &sources, &bucket, source_key, key),
    );
    let mut after: Vec<Ref> = bucket.ready().into_iter().cloned().collect();
    after.extend(role.dependencies().into_iter().cloned());
    after.push(logging);
    Replication {
        destination_arn: bucket.arn(),
        role_arn: role.arn(),
        replica_key_arn: key.arn(),
        after,
    }
}

fn string_variable(stack: &mut Stack, name: &str, description: &str) -> Ref {
    stack.variable(
        name,
        Variable {
            ty: "string",
            description: description.into(),
            default: None,
            sensitive: false,
            validation: Vec::new(),
        },
    )
}

/// Everything else: tables, functions, API, alarms, and the options the environment turns on.
pub fn service(config: &Config, options: &StackOptions) -> Stack {
    let mut stack = Stack::new("service");
    state::backend(
        &mut stack,
        &config.backend,
        &config.region,
        &options.local_state_dir,
        config.stage.as_ref().map(|s| s.name.as_str()),
    );
    let endpoint = provider(&mut stack, config, options);
    let s = &mut stack;

    let bucket = string_variable(
        s,
        "artifacts_bucket",
        "Artifacts bucket (bootstrap output artifacts_bucket)",
    );
    let mut artifacts = BTreeMap::new();
    for f in FunctionName::all() {
        let key = string_variable(
            s,
            &format!("artifact_key_{f}"),
            &format!("S3 key of the {f} zip (functions/{f}/<sha256>.zip)"),
        );
        let hash = string_variable(
            s,
            &format!("artifact_hash_{f}"),
            &format!("Base64 SHA-256 of the {f} zip, so a new build is a new version"),
        );
        artifacts.insert(
            f,
            compute::Artifact {
                bucket: bucket.expr(),
                key: key.expr(),
                hash: hash.expr(),
            },
        );
    }
    let version = s.variable(
        "service_version",
        Variable {
            ty: "string",
            description: "Version string the functions report (SERVICE_VERSION)".into(),
            default: Some(json!(env!("CARGO_PKG_VERSION"))),
            sensitive: false,
            validation: Vec::new(),
        },
    );

    let account = iam::Account::lookup(s);
    // Created by the bootstrap stack (see there), found by its alias.
    let key = security::Key::lookup(
        s,
        security::SERVICE_KEY_LOGICAL,
        &config.shared_name(security::SERVICE_KEY_ALIAS),
        None,
    );
    // A stage has no deletion protection: destroyed, nothing of it may linger.
    let recovery_window_days = if config.stage.is_some() { 0 } else { 7 };
    let secrets = secrets::secrets(s, config.names(), &key, recovery_window_days);
    let queues = queues::queues(s, config.names(), &account, &config.lambda, &key);

    let tables = data::tables(s, &config.prefix, &config.data, &key);
    let scope = config.scope(&account);
    let boundary_arn = boundary::permissions_boundary(config, &account);
    // The network is built before compute only because functions need its subnet handles;
    // nothing in it depends on the service.
    let network = config.options.vpc.as_ref().map(|vpc| {
        network::vpc(
            s,
            &scope,
            vpc,
            config.lambda.log_retention_days,
            boundary_arn.as_deref(),
            &key,
        )
    });
    let functions = compute::functions(
        s,
        &compute::ComputeInputs {
            names: config.names(),
            lambda: &config.lambda,
            api: &config.api,
            emulator: config.emulator,
            boundary: boundary_arn.as_deref(),
            account: &account,
            key: &key,
            tables: &tables,
            network: network.as_ref(),
            secrets: &secrets,
            queues: &queues,
            artifacts,
            service_version: version.expr(),
            endpoint: endpoint.map(|e| e.expr()),
        },
    );
    secrets.rotations(s, &functions);
    queues.event_source_mappings(s, &functions);
    schedules::schedules(s, &scope, boundary_arn.as_deref(), &key, &functions);
    let rest_api = api::rest_api(
        s,
        &api::ApiInputs {
            names: config.names(),
            settings: &config.api,
            log_retention_days: config.lambda.log_retention_days,
            boundary: boundary_arn.as_deref(),
            account: &account,
            key: &key,
            functions: &functions,
            sets_account_logging_role: config.stage.is_none(),
        },
    );
    let mut obs = observability::observability(
        s,
        &scope,
        &config.alarms,
        &key,
        &functions,
        &rest_api,
        &tables,
    );
    obs.watch_queues(s, &scope, &queues);
    if let Some(waf) = &config.options.waf {
        edge::waf(
            s,
            config.names(),
            waf,
            config.lambda.log_retention_days,
            &key,
            &rest_api,
        );
    }
    if let Some(cf) = &config.options.cloudfront {
        let domain = edge::cloudfront(s, &scope, cf, &rest_api);
        s.output(
            name::CLOUDFRONT_URL,
            format!("https://{domain}"),
            "CloudFront URL in front of the API",
            false,
        );
    }
    if let Some(domain) = &config.options.domain {
        let url = edge::custom_domain(s, domain, &rest_api);
        s.output(
            name::CUSTOM_DOMAIN_URL,
            url,
            "The API on its custom domain",
            false,
        );
    }

    s.output(
        name::API_URL,
        rest_api.invoke_url(),
        "Invoke URL including the stage, no trailing slash",
        false,
    );
    s.output(name::API_ID, rest_api.id(), "REST API id", false);
    s.output(name::STAGE_NAME, rest_api.stage_name(), "Stage name", false);
    s.output(
        name::USERS_TABLE,
        tables.users.name(),
        "Users table name",
        false,
    );
    s.output(
        name::SESSIONS_TABLE,
        tables.sessions.name(),
        "Sessions table name",
        false,
    );
    for f in &functions {
        s.output(
            &outputs::function_output(f.which.as_str()),
            f.name(),
            &format!("{} function name", f.which),
            false,
        );
    }
    for f in &functions {
        s.output(
            &outputs::version_output(f.which.as_str()),
            f.published_version(),
            &format!(
                "Newest published {} version (xtask releases it onto the alias)",
                f.which
            ),
            false,
        );
    }
    for queue in queues.iter() {
        // In the order `DeployedQueue::PARTS` names them.
        let values = [
            (queue.url(), "URL"),
            (queue.arn(), "ARN"),
            (queue.dead_letter_url(), "dead-letter queue's URL"),
            (queue.dead_letter_arn(), "dead-letter queue's ARN"),
        ];
        for (part, (value, what)) in outputs::DeployedQueue::PARTS.iter().zip(values) {
            s.output(
                &outputs::queue_output(queue.name(), part),
                value,
                &format!(
                    "Queue {} ({} consumes it): its {what}",
                    queue.name(),
                    queue.consumer
                ),
                false,
            );
        }
    }
    let release_alarms: Vec<Value> = obs
        .function_alarms
        .values()
        .flatten()
        .map(Value::from)
        .collect();
    s.output(
        name::RELEASE_ALARMS,
        Value::Array(release_alarms),
        "Alarms that stop a release and roll it back when they fire during the traffic shift",
        false,
    );
    s.output(
        name::ARTIFACTS_BUCKET,
        bucket.expr(),
        "Bucket the deployment packages (every version's code) are in",
        false,
    );
    s.output(
        name::ALIAS_NAME,
        functions[0].alias_name(),
        "Alias API Gateway invokes on every function",
        false,
    );
    s.output(
        name::API_KEY_ID,
        rest_api.api_key_id(),
        "The first client's API key id (api.clients[0])",
        false,
    );
    s.output(
        name::API_KEY_VALUE,
        rest_api.api_key_value(),
        "The first client's API key (x-api-key header; api.clients[0]): what smoke uses",
        true,
    );
    // Each client's name, key id and limits (not secret: the local API server enforces them),
    // and each key's value as an output of its own, sensitive, so `cargo xtask outputs
    // api_key_value_<client>` prints one key and the listing masks every one.
    let clients: Vec<Value> = rest_api
        .clients()
        .iter()
        .map(|c| {
            let listed = outputs::ApiClient {
                name: c.client.name.clone(),
                key_id: c.key_id().to_string(),
                usage_plan_id: c.plan_id().to_string(),
                rate_per_second: c.client.rate_per_second,
                burst: c.client.burst,
                quota_per_day: c.client.quota_per_day.map(u64::from),
                // Not in the list: the key is an output of its own, sensitive (below).
                key_value: String::new(),
            };
            serde_json::to_value(listed).expect("a client serialises")
        })
        .collect();
    s.output(
        name::API_CLIENTS,
        Value::Array(clients),
        "The API's clients ([[api.clients]]): name, key id, usage plan id, throttle and daily quota (null: none); each key's value is api_key_value_<name> ('-' as '_')",
        false,
    );
    for c in rest_api.clients() {
        s.output(
            &outputs::api_key_output(&c.client.name),
            c.key_value(),
            &format!("API key of client {} (x-api-key header)", c.client.name),
            true,
        );
    }
    s.output(
        name::REGION,
        account.region.clone(),
        "Region of the stack",
        false,
    );
    s.output(name::KMS_KEY_ARN, key.arn(), "Stack KMS key", false);
    s.output(
        name::ALARM_TOPIC_ARN,
        obs.topic_arn,
        "SNS topic alarms publish to",
        false,
    );
    stack
}
