//! The service stack's outputs: what Terraform created, as every later step needs it.
//!
//! One struct field per output, so a reader cannot ask for an output the stack does not
//! declare, and infra names each output it declares from [`name`] (its test checks that the
//! synthesized outputs are exactly these fields, for every environment). Outputs whose names
//! are built from a function's or a client's name (`<fn>_function`, `<fn>_version`,
//! `api_key_value_<client>`) are maps inside the struct, so it is not tied to today's functions.
//!
//! The file is the flat `{name: value}` object; Terraform's own `terraform output -json`
//! form, `{name: {"value": .., "type": .., "sensitive": ..}}`, reads the same.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{read, write};

/// The name of every output with a fixed name. Infra declares its outputs under these, the
/// reader below takes them apart by them: one spelling of each.
pub mod name {
    /// Invoke URL including the stage, no trailing slash.
    pub const API_URL: &str = "api_url";
    pub const API_ID: &str = "api_id";
    pub const STAGE_NAME: &str = "stage_name";
    pub const REGION: &str = "region";
    pub const ALIAS_NAME: &str = "alias_name";
    pub const USERS_TABLE: &str = "users_table";
    pub const SESSIONS_TABLE: &str = "sessions_table";
    pub const RELEASE_ALARMS: &str = "release_alarms";
    pub const ALARM_TOPIC_ARN: &str = "alarm_topic_arn";
    pub const KMS_KEY_ARN: &str = "kms_key_arn";
    pub const ARTIFACTS_BUCKET: &str = "artifacts_bucket";
    pub const API_KEY_ID: &str = "api_key_id";
    /// The first client's key; also the prefix of every client's own key output
    /// ([`super::api_key_output`]), which is why every name starting with it is a secret.
    pub const API_KEY_VALUE: &str = "api_key_value";
    pub const API_CLIENTS: &str = "api_clients";
    pub const CLOUDFRONT_URL: &str = "cloudfront_url";
    pub const CUSTOM_DOMAIN_URL: &str = "custom_domain_url";
}

const FUNCTION_SUFFIX: &str = "_function";
const QUEUE_PREFIX: &str = "queue_";
const QUEUE_URL_SUFFIX: &str = "_url";
const VERSION_SUFFIX: &str = "_version";

/// `<function>_function`: the deployed name of a function.
pub fn function_output(function: &str) -> String {
    format!("{function}{FUNCTION_SUFFIX}")
}

/// `<function>_version`: the newest version Terraform published of a function.
pub fn version_output(function: &str) -> String {
    format!("{function}{VERSION_SUFFIX}")
}

/// `queue_<queue>_url`, `_arn`, `_dead_letter_url`, `_dead_letter_arn` ('-' written '_'):
/// where a declared queue and its dead-letter queue are.
pub fn queue_output(queue: &str, part: &str) -> String {
    format!("{QUEUE_PREFIX}{}_{part}", queue.replace('-', "_"))
}

/// The (sensitive) output holding client `name`'s API key: `api_key_value_<name>`, '-'
/// written '_' as in the Terraform address.
pub fn api_key_output(client: &str) -> String {
    format!("{}_{}", name::API_KEY_VALUE, client.replace('-', "_"))
}

/// Whether the output `name` holds a secret: the API keys. Terraform marks them `sensitive`
/// too; this holds where that record is missing.
pub fn is_secret(name: &str) -> bool {
    name.starts_with(name::API_KEY_VALUE)
}

/// The service stack's outputs (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub api_url: String,
    /// The REST API id (`requestContext.apiId`).
    pub api_id: String,
    /// The stage: the first path segment of every URL.
    pub stage_name: String,
    pub region: String,
    /// The alias API Gateway invokes on every function (`live`).
    pub alias_name: String,
    pub users_table: String,
    pub sessions_table: String,
    /// Short name (`users`) to the deployed function.
    pub functions: BTreeMap<String, DeployedFunction>,
    /// The alarms that stop a release and roll it back when they fire during the traffic shift.
    pub release_alarms: Vec<String>,
    pub alarm_topic_arn: String,
    pub kms_key_arn: String,
    /// Where the deployment packages (every version's code) are.
    pub artifacts_bucket: String,
    /// The first client's key id and key: what smoke uses.
    pub api_key_id: String,
    pub api_key_value: String,
    /// Every client of the API, its key and usage-plan limits, in the environment file's order.
    pub api_clients: Vec<ApiClient>,
    /// Declared queue name (`session-sweeps`) to where it is.
    pub queues: BTreeMap<String, DeployedQueue>,
    /// Only with CloudFront in front of the API.
    pub cloudfront_url: Option<String>,
    /// Only with a custom domain.
    pub custom_domain_url: Option<String>,
}

/// One function of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedFunction {
    /// Its deployed name (`prod-service-users`).
    pub name: String,
    /// Its newest published version, which a release moves the alias onto.
    pub version: String,
}

/// One declared queue of the stack and its dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedQueue {
    pub url: String,
    pub arn: String,
    pub dead_letter_url: String,
    pub dead_letter_arn: String,
}

impl DeployedQueue {
    /// The outputs' parts, in the order [`queue_output`] names them.
    pub const PARTS: [&str; 4] = ["url", "arn", "dead_letter_url", "dead_letter_arn"];

    fn values(&self) -> [&String; 4] {
        [
            &self.url,
            &self.arn,
            &self.dead_letter_url,
            &self.dead_letter_arn,
        ]
    }
}

/// One client of the API (`[[api.clients]]` in the environment file): its key's id and the
/// limits of its usage plan, which the local API server enforces as API Gateway does. In the
/// file the clients are one list without secrets (`api_clients`); each key's value is an
/// output of its own, sensitive ([`api_key_output`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiClient {
    pub name: String,
    pub key_id: String,
    pub usage_plan_id: String,
    /// The usage plan's steady rate (token refill per second).
    pub rate_per_second: f64,
    /// The usage plan's burst (token bucket size).
    pub burst: u32,
    /// Requests per UTC day; `None`: no quota.
    pub quota_per_day: Option<u64>,
    /// The key itself, from its own output.
    #[serde(skip)]
    pub key_value: String,
}

impl Outputs {
    pub fn read(path: &Path) -> io::Result<Outputs> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }

    /// The flat `{name: value}` object the file holds.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |name: &str, value: Value| {
            map.insert(name.to_owned(), value);
        };
        put(name::API_URL, self.api_url.clone().into());
        put(name::API_ID, self.api_id.clone().into());
        put(name::STAGE_NAME, self.stage_name.clone().into());
        put(name::REGION, self.region.clone().into());
        put(name::ALIAS_NAME, self.alias_name.clone().into());
        put(name::USERS_TABLE, self.users_table.clone().into());
        put(name::SESSIONS_TABLE, self.sessions_table.clone().into());
        for (function, deployed) in &self.functions {
            put(&function_output(function), deployed.name.clone().into());
            put(&version_output(function), deployed.version.clone().into());
        }
        put(name::RELEASE_ALARMS, self.release_alarms.clone().into());
        put(name::ALARM_TOPIC_ARN, self.alarm_topic_arn.clone().into());
        put(name::KMS_KEY_ARN, self.kms_key_arn.clone().into());
        put(name::ARTIFACTS_BUCKET, self.artifacts_bucket.clone().into());
        put(name::API_KEY_ID, self.api_key_id.clone().into());
        put(name::API_KEY_VALUE, self.api_key_value.clone().into());
        put(
            name::API_CLIENTS,
            serde_json::to_value(&self.api_clients).expect("clients serialise"),
        );
        for client in &self.api_clients {
            put(
                &api_key_output(&client.name),
                client.key_value.clone().into(),
            );
        }
        for (queue, deployed) in &self.queues {
            for (part, value) in DeployedQueue::PARTS.iter().zip(deployed.values()) {
                put(&queue_output(queue, part), value.clone().into());
            }
        }
        if let Some(url) = &self.cloudfront_url {
            put(name::CLOUDFRONT_URL, url.clone().into());
        }
        if let Some(url) = &self.custom_domain_url {
            put(name::CUSTOM_DOMAIN_URL, url.clone().into());
        }
        map
    }

    /// From either form of the file. Every output must be a field: a missing one is named, and
    /// so is one this type does not know (the stack and this type disagree).
    pub fn from_map(raw: Map<String, Value>) -> Result<Outputs, OutputsError> {
        let mut rest: Map<String, Value> = raw
            .into_iter()
            .map(|(name, value)| match value {
                Value::Object(mut entry) if entry.contains_key("value") => {
                    (name, entry.remove("value").expect("checked"))
                }
                flat => (name, flat),
            })
            .collect();
        let mut text = |name: &str| match rest.remove(name) {
            Some(value) => as_text(name, value),
            None => Err(OutputsError(format!("output `{name}` is missing"))),
        };
        let mut outputs = Outputs {
            api_url: text(name::API_URL)?,
            api_id: text(name::API_ID)?,
            stage_name: text(name::STAGE_NAME)?,
            region: text(name::REGION)?,
            alias_name: text(name::ALIAS_NAME)?,
            users_table: text(name::USERS_TABLE)?,
            sessions_table: text(name::SESSIONS_TABLE)?,
            alarm_topic_arn: text(name::ALARM_TOPIC_ARN)?,
            kms_key_arn: text(name::KMS_KEY_ARN)?,
            artifacts_bucket: text(name::ARTIFACTS_BUCKET)?,
            api_key_id: text(name::API_KEY_ID)?,
            api_key_value: text(name::API_KEY_VALUE)?,
            functions: BTreeMap::new(),
            queues: BTreeMap::new(),
            release_alarms: parsed(&mut rest, name::RELEASE_ALARMS)?,
            api_clients: parsed(&mut rest, name::API_CLIENTS)?,
            cloudfront_url: rest
                .remove(name::CLOUDFRONT_URL)
                .map(|v| as_text(name::CLOUDFRONT_URL, v))
                .transpose()?,
            custom_domain_url: rest
                .remove(name::CUSTOM_DOMAIN_URL)
                .map(|v| as_text(name::CUSTOM_DOMAIN_URL, v))
                .transpose()?,
        };
        for client in &mut outputs.api_clients {
            let key = api_key_output(&client.name);
            let value = rest.remove(&key).ok_or_else(|| {
                OutputsError(format!(
                    "output `{key}` (the key of client {}) is missing",
                    client.name
                ))
            })?;
            client.key_value = as_text(&key, value)?;
        }
        let names: Vec<String> = rest.keys().cloned().collect();
        for output in names {
            let Some(function) = output.strip_suffix(FUNCTION_SUFFIX) else {
                continue;
            };
            let name = as_text(&output, rest.remove(&output).expect("listed"))?;
            let version_name = version_output(function);
            let version = rest
                .remove(&version_name)
                .ok_or_else(|| OutputsError(format!("output `{version_name}` is missing")))?;
            let version = as_text(&version_name, version)?;
            outputs
                .functions
                .insert(function.to_owned(), DeployedFunction { name, version });
        }
        for queue in catalog_free_queue_names(&rest) {
            let mut part = |part: &str| {
                let output = queue_output(&queue, part);
                let value = rest
                    .remove(&output)
                    .ok_or_else(|| OutputsError(format!("output `{output}` is missing")))?;
                as_text(&output, value)
            };
            let deployed = DeployedQueue {
                url: part("url")?,
                arn: part("arn")?,
                dead_letter_url: part("dead_letter_url")?,
                dead_letter_arn: part("dead_letter_arn")?,
            };
            outputs.queues.insert(queue.replace('_', "-"), deployed);
        }
        if let Some(unknown) = rest.keys().next() {
            return Err(OutputsError(format!(
                "output `{unknown}` is not one deploy_files::Outputs knows: the stack and the reader disagree"
            )));
        }
        Ok(outputs)
    }
}

/// The queues (as written in output names, '_' for '-') that have a `queue_<name>_url` output
/// and are not dead-letter URLs: read from the names, so the reader needs no catalog.
fn catalog_free_queue_names(rest: &Map<String, Value>) -> Vec<String> {
    rest.keys()
        .filter_map(|name| {
            name.strip_prefix(QUEUE_PREFIX)?
                .strip_suffix(QUEUE_URL_SUFFIX)
                .filter(|queue| !queue.ends_with("_dead_letter"))
                .map(str::to_owned)
        })
        .collect()
}

/// What is wrong with an outputs file, naming the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputsError(String);

impl fmt::Display for OutputsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutputsError {}

/// A scalar output as text: Terraform gives a version as a string, a hand-written file may
/// give a number.
fn as_text(name: &str, value: Value) -> Result<String, OutputsError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(OutputsError(format!(
            "output `{name}` is {other}, not a string"
        ))),
    }
}

fn parsed<T: serde::de::DeserializeOwned>(
    rest: &mut Map<String, Value>,
    name: &str,
) -> Result<T, OutputsError> {
    let value = rest
        .remove(name)
        .ok_or_else(|| OutputsError(format!("output `{name}` is missing")))?;
    serde_json::from_value(value).map_err(|e| OutputsError(format!("output `{name}`: {e}")))
}

impl Serialize for Outputs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Outputs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Outputs, D::Error> {
        let raw = Map::deserialize(deserializer)?;
        Outputs::from_map(raw).map_err(serde::de::Error::custom)
    }
}

impl Outputs {
    /// A complete outputs file for a stack without Terraform, for tests: every catalog
    /// function and the tables under `prefix`, the stage, and one client, `default`, whose
    /// key is `api_key` and whose limits no test reaches. The one way tests make the file.
    pub fn fixture(prefix: &str, stage: &str, api_key: &str) -> Outputs {
        let arn = |service: &str, resource: &str| {
            format!("arn:aws:{service}:us-east-1:123456789012:{prefix}{resource}")
        };
        Outputs {
            api_url: format!("https://{prefix}api.execute-api.us-east-1.amazonaws.com/{stage}"),
            api_id: format!("{prefix}api"),
            stage_name: stage.to_owned(),
            region: "us-east-1".to_owned(),
            alias_name: "live".to_owned(),
            users_table: format!("{prefix}users"),
            sessions_table: format!("{prefix}sessions"),
            functions: catalog::NAMES
                .iter()
                .map(|f| {
                    let deployed = DeployedFunction {
                        name: format!("{prefix}{f}"),
                        version: "1".to_owned(),
                    };
                    ((*f).to_owned(), deployed)
                })
                .collect(),
            release_alarms: Vec::new(),
            alarm_topic_arn: arn("sns", "alarms"),
            kms_key_arn: arn("kms", "key"),
            artifacts_bucket: format!("{prefix}artifacts"),
            api_key_id: "id-default".to_owned(),
            api_key_value: api_key.to_owned(),
            api_clients: vec![ApiClient::fixture(
                "default", api_key, 10_000.0, 10_000, None,
            )],
            queues: catalog::queues()
                .map(|(_, queue)| {
                    let url = |name: &str| {
                        format!("http://localhost:5000/123456789012/{prefix}queue-{name}")
                    };
                    let dead_letter =
                        format!("{}{}", queue.name, catalog::queues::DEAD_LETTER_SUFFIX);
                    let deployed = DeployedQueue {
                        url: url(queue.name),
                        arn: arn("sqs", &format!("queue-{}", queue.name)),
                        dead_letter_url: url(&dead_letter),
                        dead_letter_arn: arn("sqs", &format!("queue-{dead_letter}")),
                    };
                    (queue.name.to_owned(), deployed)
                })
                .collect(),
            cloudfront_url: None,
            custom_domain_url: None,
        }
    }

    /// These clients instead (from [`ApiClient::fixture`]), the first one's key as
    /// `api_key_id`/`api_key_value` as the stack has it.
    pub fn with_clients(mut self, clients: Vec<ApiClient>) -> Outputs {
        let first = clients.first().expect("an API has at least one client");
        self.api_key_id = first.key_id.clone();
        self.api_key_value = first.key_value.clone();
        self.api_clients = clients;
        self
    }
}

impl ApiClient {
    /// Client `name` with key `key` and these limits, for tests: its key id is `id-<name>`, its
    /// plan `plan-<name>`.
    pub fn fixture(name: &str, key: &str, rate: f64, burst: u32, quota: Option<u64>) -> ApiClient {
        ApiClient {
            name: name.to_owned(),
            key_id: format!("id-{name}"),
            usage_plan_id: format!("plan-{name}"),
            rate_per_second: rate,
            burst,
            quota_per_day: quota,
            key_value: key.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat() -> Value {
        json!({
            "api_url": "https://a.example/v1", "api_id": "a", "stage_name": "v1",
            "region": "eu-west-1", "alias_name": "live",
            "users_table": "p-users", "sessions_table": "p-sessions",
            "users_function": "p-users", "users_version": "3",
            "release_alarms": ["p-users-errors"],
            "alarm_topic_arn": "arn:t", "kms_key_arn": "arn:k", "artifacts_bucket": "p-artifacts",
            "api_key_id": "k1", "api_key_value": "secret-a",
            "api_clients": [
                {"name": "app", "key_id": "k1", "usage_plan_id": "p1", "rate_per_second": 500.0, "burst": 1000, "quota_per_day": null},
                {"name": "billing-sync", "key_id": "k2", "usage_plan_id": "p2", "rate_per_second": 5.0, "burst": 10, "quota_per_day": 20000},
            ],
            "api_key_value_app": "secret-a",
            "api_key_value_billing_sync": "secret-b",
        })
    }

    #[test]
    fn flat_and_terraform_shaped_read_alike_and_write_back_flat() {
        let flat = flat();
        let shaped: Map<String, Value> = flat
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let entry = json!({"value": v, "type": "string", "sensitive": is_secret(k)});
                (k.clone(), entry)
            })
            .collect();
        let read: Outputs = serde_json::from_value(flat.clone()).unwrap();
        assert_eq!(read, Outputs::from_map(shaped).unwrap());
        assert_eq!(serde_json::to_value(&read).unwrap(), flat);
        assert_eq!(read.functions["users"].name, "p-users");
        assert_eq!(read.functions["users"].version, "3");
        assert_eq!(read.api_clients[1].key_value, "secret-b");
        assert_eq!(read.api_clients[1].quota_per_day, Some(20000));
        assert_eq!(read.cloudfront_url, None);
    }

    #[test]
    fn a_version_given_as_a_number_reads_as_text() {
        let mut flat = flat();
        flat["users_version"] = json!(3);
        let read: Outputs = serde_json::from_value(flat).unwrap();
        assert_eq!(read.functions["users"].version, "3");
    }

    #[test]
    fn a_missing_or_unknown_output_is_named() {
        let error = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut flat = flat().as_object().unwrap().clone();
            edit(&mut flat);
            Outputs::from_map(flat).unwrap_err().to_string()
        };
        assert!(error(&|m| drop(m.remove("stage_name"))).contains("`stage_name`"));
        assert!(error(&|m| drop(m.remove("users_version"))).contains("`users_version`"));
        let key = error(&|m| drop(m.remove("api_key_value_billing_sync")));
        assert!(
            key.contains("api_key_value_billing_sync") && key.contains("billing-sync"),
            "{key}"
        );
        let unknown = error(&|m| drop(m.insert("db_password".into(), json!("x"))));
        assert!(unknown.contains("`db_password`"), "{unknown}");
        let bad = error(&|m| drop(m.insert("api_clients".into(), json!([{"name": "x"}]))));
        assert!(bad.contains("api_clients"), "{bad}");
    }

    #[test]
    fn only_api_keys_are_secret() {
        assert!(is_secret(name::API_KEY_VALUE));
        assert!(is_secret(&api_key_output("billing-sync")));
        assert!(!is_secret(name::API_KEY_ID));
        assert_eq!(api_key_output("billing-sync"), "api_key_value_billing_sync");
    }
}
