//! The environment and limits each function process gets.
//!
//! The variables come from the deployed configuration in the emulator: that of each published
//! version the alias routes to (`GetFunction` with the version as qualifier, see
//! [`crate::alias`]), so a function runs locally with exactly what Terraform set for that
//! version. When the server cannot follow the alias, the alias's (or `$LATEST`'s) configuration
//! is used, and when the emulator has no such function at all (a test that writes an outputs
//! file without running Terraform), the same variables are derived from the outputs, as the
//! contract defines them. On top come the variables the Lambda service itself sets for a custom
//! runtime, and the emulator endpoint and test credentials.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_lambda::config::{Credentials, Region};
use aws_sdk_lambda::types::FunctionConfiguration;

use crate::deployment::Deployment;

/// Lambda's own default when a configuration does not say; generous on purpose so a debug
/// build hashing a password is not cut off.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MEMORY_MB: i32 = 128;
const ACCOUNT_ID: &str = "123456789012";
/// How long one call to the (loopback) emulator may take.
pub const EMULATOR_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to start one process of one version of a function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// Short name: `users`.
    pub short: String,
    /// Deployed name: `prod-service-users`.
    pub name: String,
    /// The version the process runs (`AWS_LAMBDA_FUNCTION_VERSION`): the published version the
    /// alias sent the request to, or, when the server cannot follow the alias, what the
    /// configuration it found says (`$LATEST` when it found none).
    pub version: String,
    /// ARN sent as `Lambda-Runtime-Invoked-Function-Arn` (the alias when there is one, as when
    /// API Gateway invokes it).
    pub arn: String,
    /// The extracted packaged binary.
    pub bootstrap: PathBuf,
    /// The complete environment of the process (the parent's is not inherited, as on Lambda).
    pub env: BTreeMap<String, String>,
    /// The function's own timeout; exceeding it kills the process, as Lambda does.
    pub timeout: Duration,
    /// The function's memory size (MB); a process whose peak resident memory passes it is
    /// killed, as Lambda kills one that outgrows its sandbox.
    pub memory_mb: u64,
    /// Where the process's stdout and stderr go (its "CloudWatch log group").
    pub log_file: PathBuf,
    /// Where the configuration came from, for the start-up message.
    pub source: ConfigSource,
}

/// Whether the configuration was read from the emulator or derived from the outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    Emulator,
    Outputs(String),
}

/// What the deployed configuration says, as far as the local run needs it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Deployed {
    pub variables: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub memory_mb: Option<i32>,
    pub handler: Option<String>,
    pub arn: Option<String>,
    pub version: Option<String>,
    /// Lambda's `CodeSha256`: base64 of the SHA-256 of the deployment zip.
    pub code_sha256: Option<String>,
}

impl Deployed {
    /// The parts of a function (version) configuration the local run uses.
    pub fn from_configuration(config: &FunctionConfiguration) -> Deployed {
        let variables = config
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Deployed {
            variables,
            timeout: config
                .timeout()
                .map(|s| Duration::from_secs(s.max(1) as u64)),
            memory_mb: config.memory_size(),
            handler: config.handler().map(str::to_string),
            arn: config.function_arn().map(str::to_string),
            version: config.version().map(str::to_string),
            code_sha256: config.code_sha256().map(str::to_string),
        }
    }
}

/// Builds the spec of one process kind from a configuration and an extracted binary.
pub fn spec(
    deployment: &Deployment,
    endpoint: &str,
    work: &Path,
    short: &str,
    bootstrap: PathBuf,
    deployed: &Deployed,
    source: ConfigSource,
) -> FunctionSpec {
    let name = &deployment.functions[short];
    let arn = deployed
        .arn
        .clone()
        .unwrap_or_else(|| alias_arn(deployment, name));
    FunctionSpec {
        short: short.to_string(),
        name: name.clone(),
        version: deployed
            .version
            .clone()
            .unwrap_or_else(|| "$LATEST".to_string()),
        arn,
        bootstrap,
        env: runtime_env(deployment, endpoint, name, deployed),
        timeout: deployed.timeout.unwrap_or(DEFAULT_TIMEOUT),
        memory_mb: deployed
            .memory_mb
            .and_then(|mb| u64::try_from(mb).ok())
            .unwrap_or(DEFAULT_MEMORY_MB as u64),
        log_file: work.join(short).join("output.log"),
        source,
    }
}

/// The ARN API Gateway invokes: the function qualified with the alias.
pub fn alias_arn(deployment: &Deployment, name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{name}:{}",
        deployment.region, deployment.alias
    )
}

/// The configuration for a function the server does not follow the alias of: the alias's own
/// configuration, else `$LATEST`'s, else (no such function in the emulator) the outputs.
pub async fn read_fallback(
    client: &aws_sdk_lambda::Client,
    deployment: &Deployment,
    name: &str,
) -> (Deployed, ConfigSource) {
    match read_deployed(client, name, &deployment.alias).await {
        Ok(mut deployed) => {
            // API Gateway invokes the alias, whatever qualifier the configuration came from.
            deployed.arn = None;
            (deployed, ConfigSource::Emulator)
        }
        Err(reason) => (
            from_outputs(deployment, name),
            ConfigSource::Outputs(reason),
        ),
    }
}

pub fn lambda_client(endpoint: &str, region: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version_latest()
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "local-api"))
        // Loopback: a refused connection means no emulator, not a blip worth retrying.
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// Reads the alias's configuration, falling back to `$LATEST` when the emulator does not know
/// the alias. The error is a one-line reason for the start-up message.
async fn read_deployed(
    client: &aws_sdk_lambda::Client,
    name: &str,
    alias: &str,
) -> Result<Deployed, String> {
    let mut last_error = String::new();
    for qualifier in [Some(alias), None] {
        match get_function(client, name, qualifier).await {
            Ok(output) => match output.configuration() {
                Some(config) => return Ok(Deployed::from_configuration(config)),
                None => last_error = "GetFunction returned no configuration".to_string(),
            },
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// `GetFunction` (configuration and code location) with a bounded wait; errors are one line.
pub async fn get_function(
    client: &aws_sdk_lambda::Client,
    name: &str,
    qualifier: Option<&str>,
) -> Result<aws_sdk_lambda::operation::get_function::GetFunctionOutput, String> {
    let request = client
        .get_function()
        .function_name(name)
        .set_qualifier(qualifier.map(str::to_string));
    match tokio::time::timeout(EMULATOR_TIMEOUT, request.send()).await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(err)) => Err(describe(&err)),
        Err(_) => Err(format!(
            "the emulator did not answer within {} s",
            EMULATOR_TIMEOUT.as_secs()
        )),
    }
}

/// One line about a failed emulator call: the service's own error, or "not reachable" for a
/// connection that failed (no emulator: the usual case in tests, not worth a stack of causes).
pub fn describe<E, R>(err: &aws_sdk_lambda::error::SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_lambda::error::SdkError;
    match err {
        SdkError::ServiceError(service) => service.err().to_string(),
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
            "the emulator is not reachable (connection failed)".to_string()
        }
        other => aws_sdk_lambda::error::DisplayErrorContext(other).to_string(),
    }
}

/// The variables the contract says infra sets, for when the emulator holds no function (the
/// function deployed as `name`): the tables, for each secret it declares `SECRET_ARN_<NAME>`,
/// here the secret's name as infra makes it (`<prefix>secret-<name>`; every Secrets Manager
/// call takes a name where it takes an ARN), and for each queue it sends to `QUEUE_URL_<NAME>`.
fn from_outputs(deployment: &Deployment, name: &str) -> Deployed {
    let mut variables = BTreeMap::from([
        ("USERS_TABLE".to_string(), deployment.users_table.clone()),
        (
            "SESSIONS_TABLE".to_string(),
            deployment.sessions_table.clone(),
        ),
        ("SESSION_TTL_SECONDS".to_string(), "86400".to_string()),
    ]);
    if !deployment.cors_allow_origins.is_empty() {
        variables.insert(
            "CORS_ALLOW_ORIGINS".to_string(),
            deployment.cors_allow_origins.join(","),
        );
    }
    let declared = deployment
        .functions
        .iter()
        .find(|(_, deployed)| deployed.as_str() == name)
        .and_then(|(short, _)| catalog::find(short));
    if let Some(function) = declared {
        for secret in function.secrets {
            variables.insert(
                catalog::secrets::variable(secret),
                format!(
                    "{}{}",
                    deployment.prefix(),
                    catalog::secrets::aws_suffix(secret)
                ),
            );
        }
        for queue in function.sends {
            if let Some(deployed) = deployment.queues.get(*queue) {
                variables.insert(catalog::queues::variable(queue), deployed.url.clone());
            }
        }
    }
    Deployed {
        variables,
        ..Deployed::default()
    }
}

/// The deployed variables plus what the Lambda service sets for a `provided.al2023` function.
/// `AWS_ENDPOINT_URL` and the credentials always point at the emulator: that is the point of a
/// local run, whatever the configuration says.
fn runtime_env(
    deployment: &Deployment,
    endpoint: &str,
    name: &str,
    deployed: &Deployed,
) -> BTreeMap<String, String> {
    let mut env = deployed.variables.clone();
    let memory = deployed.memory_mb.unwrap_or(DEFAULT_MEMORY_MB).to_string();
    let version = deployed
        .version
        .clone()
        .unwrap_or_else(|| "$LATEST".to_string());
    let handler = deployed
        .handler
        .clone()
        .unwrap_or_else(|| "lambda-handler.handler".to_string());
    let service_set = [
        ("AWS_REGION", deployment.region.clone()),
        ("AWS_DEFAULT_REGION", deployment.region.clone()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", version),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("local/{}", uuid::Uuid::new_v4().simple()),
        ),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
        (
            "AWS_EXECUTION_ENV",
            "AWS_Lambda_provided.al2023".to_string(),
        ),
        ("_HANDLER", handler),
        ("LAMBDA_TASK_ROOT", "/var/task".to_string()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_string()),
        ("TZ", ":UTC".to_string()),
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
    ];
    for (key, value) in service_set {
        env.insert(key.to_string(), value);
    }
    env.remove("AWS_SESSION_TOKEN");
    env
}
