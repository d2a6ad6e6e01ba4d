//! The files the local life cycle's processes hand each other, one serde type each, so the
//! writer and every reader (and the tests that stand in for a writer) agree by construction:
//!
//! - [`Outputs`], `build/<env>/outputs.json`: written by xtask after a deploy, read by the
//!   local API server and by smoke;
//! - [`ApiState`], the local API server's `--state` file (`build/<env>/local-api.json`):
//!   written by the server, read by xtask and by smoke;
//! - [`Routing`], the server's `routing.json`: written by the server, read by xtask when it
//!   waits for the server to follow an alias it moved (the contract is in
//!   `xtask/local-api/src/traffic.rs`).
//!
//! They live in this crate because xtask, the local API server and smoke all depend on it and
//! it depends on nothing of theirs.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A deployed stack's outputs as a flat `{name: value}` object. Read from either that form or
/// Terraform's own `{name: {"value": .., "type": .., "sensitive": ..}}`, so a raw
/// `terraform output -json` works too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Outputs {
    pub values: Map<String, Value>,
}

impl From<Map<String, Value>> for Outputs {
    fn from(raw: Map<String, Value>) -> Outputs {
        let values = raw
            .into_iter()
            .map(|(name, value)| match value {
                Value::Object(mut entry) if entry.contains_key("value") => {
                    (name, entry.remove("value").expect("checked"))
                }
                flat => (name, flat),
            })
            .collect();
        Outputs { values }
    }
}

impl From<Outputs> for Map<String, Value> {
    fn from(outputs: Outputs) -> Map<String, Value> {
        outputs.values
    }
}

impl<N: Into<String>, V: Into<Value>> FromIterator<(N, V)> for Outputs {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(items: I) -> Outputs {
        Outputs {
            values: items
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        }
    }
}

impl Outputs {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// A scalar output as text (numbers and booleans too); `None` when missing or not scalar.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.values.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The `api_clients` output: every client's key id and usage-plan limits, in the
    /// environment file's order. `Ok(None)` for outputs files written before per-client keys
    /// (one `api_key_value`, no limits); an error when the output is there but malformed.
    pub fn api_clients(&self) -> io::Result<Option<Vec<ApiClient>>> {
        let Some(value) = self.values.get(API_CLIENTS) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("output `{API_CLIENTS}`: {e}"),
                )
            })
    }

    /// The value of client `name`'s API key ([`api_key_output`]).
    pub fn api_key_value(&self, client: &str) -> Option<String> {
        self.text(&api_key_output(client))
    }

    pub fn read(path: &Path) -> io::Result<Outputs> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }
}

/// The output listing the API's clients ([`ApiClient`] each).
pub const API_CLIENTS: &str = "api_clients";

/// The name of the (sensitive) output holding client `name`'s API key:
/// `api_key_value_<name>`, '-' written '_' as in the Terraform address.
pub fn api_key_output(client: &str) -> String {
    format!("api_key_value_{}", client.replace('-', "_"))
}

/// One entry of the `api_clients` output: a client of the API (`[[api.clients]]` in the
/// environment file), its key's id and the limits of its usage plan, which the local API
/// server enforces as API Gateway does. The key's value is a separate, sensitive output
/// ([`api_key_output`]), so listing the clients shows no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiClient {
    pub name: String,
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_plan_id: Option<String>,
    /// The usage plan's steady rate (token refill per second).
    pub rate_per_second: f64,
    /// The usage plan's burst (token bucket size).
    pub burst: u32,
    /// Requests per UTC day; `None`: no quota.
    #[serde(default)]
    pub quota_per_day: Option<u64>,
}

/// The local API server's state file: where it listens and where its routing record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiState {
    pub pid: u32,
    pub port: u16,
    /// Its invoke URL, stage included.
    pub url: String,
    /// Its `routing.json` (what it serves per alias); absent in files of older servers.
    #[serde(default)]
    pub routing: Option<PathBuf>,
}

impl ApiState {
    pub fn read(path: &Path) -> io::Result<ApiState> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }
}

/// `routing.json`: what each function's alias looked like at the server's last refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The server process that wrote it.
    pub pid: u32,
    /// Grows by one with every write of one process.
    pub generation: u64,
    /// The alias followed (`live`).
    pub alias: Option<String>,
    pub functions: BTreeMap<String, RoutedAlias>,
}

/// One function in [`Routing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedAlias {
    pub function_name: String,
    /// The alias's primary version; `None` while the `build/dist` fallback runs.
    pub version: Option<String>,
    /// `AdditionalVersionWeights` as the alias gave them; the primary version gets the rest.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Why the fallback runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// An alias state the server could not apply yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingAlias>,
    /// The watch build served instead of the alias's code (`cargo xtask watch`).
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub watch_build: Option<WatchBuild>,
}

/// A `bootstrap` built by `cargo xtask watch` that the server runs for a function, with the
/// size and modification time it had when loaded, so `watch` can tell its newest build is the
/// one served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchBuild {
    pub bootstrap: PathBuf,
    pub bytes: u64,
    pub modified_ns: u128,
}

/// An alias state not applied yet, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAlias {
    pub version: Option<String>,
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    pub error: Option<String>,
}

impl Routing {
    pub fn read(path: &Path) -> io::Result<Routing> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }
}

fn read<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Pretty JSON and a newline, readable by the owner only (the outputs hold the API key),
/// through a temporary file and a rename so a reader never sees a partial file.
fn write<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)? + "\n";
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?
        .write_all(text.as_bytes())?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_read_flat_and_terraform_shaped_alike() {
        let flat: Outputs = serde_json::from_value(json!({"stage_name": "v1", "n": 3})).unwrap();
        let shaped: Outputs = serde_json::from_value(json!({
            "stage_name": {"value": "v1", "type": "string", "sensitive": false},
            "n": {"value": 3, "type": "number", "sensitive": false},
        }))
        .unwrap();
        assert_eq!(flat, shaped);
        assert_eq!(flat.text("n").as_deref(), Some("3"));
        assert_eq!(
            serde_json::to_value(&flat).unwrap(),
            json!({"stage_name": "v1", "n": 3})
        );
    }

    #[test]
    fn api_clients_read_from_either_form_and_older_files_have_none() {
        let clients = json!([
            {"name": "app", "key_id": "k1", "usage_plan_id": "p1", "rate_per_second": 500.0, "burst": 1000, "quota_per_day": null},
            {"name": "billing-sync", "key_id": "k2", "rate_per_second": 5, "burst": 10, "quota_per_day": 20000},
        ]);
        let flat: Outputs = serde_json::from_value(json!({
            "api_clients": clients,
            "api_key_value_billing_sync": "secret",
        }))
        .unwrap();
        let shaped: Outputs = serde_json::from_value(json!({
            "api_clients": {"value": clients, "type": "tuple", "sensitive": false},
            "api_key_value_billing_sync": {"value": "secret", "sensitive": true},
        }))
        .unwrap();
        assert_eq!(flat, shaped);
        let listed = flat.api_clients().unwrap().unwrap();
        assert_eq!(listed[0].quota_per_day, None);
        assert_eq!(listed[1].name, "billing-sync");
        assert_eq!(listed[1].rate_per_second, 5.0);
        assert_eq!(listed[1].quota_per_day, Some(20000));
        assert_eq!(
            flat.api_key_value("billing-sync").as_deref(),
            Some("secret")
        );
        let old: Outputs = serde_json::from_value(json!({"api_key_value": "k"})).unwrap();
        assert_eq!(old.api_clients().unwrap(), None);
        let bad: Outputs = serde_json::from_value(json!({"api_clients": [{"name": "x"}]})).unwrap();
        assert!(
            bad.api_clients()
                .unwrap_err()
                .to_string()
                .contains("api_clients")
        );
    }

    /// The writer's and the readers' view of each file is one type: what is written reads
    /// back the same, from a file only its owner can read (the outputs hold the API key).
    #[test]
    fn every_file_reads_back_what_it_wrote() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("emulator-files-{}", std::process::id()));
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

        let outputs: Outputs = [("api_url", json!("http://x/v1")), ("n", json!(3))]
            .into_iter()
            .collect();
        let path = dir.join("outputs.json");
        outputs.write(&path).unwrap();
        assert_eq!(Outputs::read(&path).unwrap(), outputs);
        assert_eq!(mode(&path), 0o600);

        let state = ApiState {
            pid: 1,
            port: 2,
            url: "http://127.0.0.1:2/v1".into(),
            routing: Some(dir.join("routing.json")),
        };
        let path = dir.join("local-api.json");
        state.write(&path).unwrap();
        assert_eq!(ApiState::read(&path).unwrap(), state);

        let routing = Routing {
            pid: 1,
            generation: 7,
            alias: Some("live".into()),
            functions: BTreeMap::from([(
                "f".to_owned(),
                RoutedAlias {
                    function_name: "p-f".into(),
                    version: Some("3".into()),
                    weights: BTreeMap::from([("4".to_owned(), 0.25)]),
                    fallback: None,
                    pending: Some(PendingAlias {
                        version: Some("5".into()),
                        weights: BTreeMap::new(),
                        error: Some("not yet".into()),
                    }),
                    watch_build: Some(WatchBuild {
                        bootstrap: dir.join("bootstrap"),
                        bytes: 9,
                        modified_ns: 10,
                    }),
                },
            )]),
        };
        let path = dir.join("routing.json");
        routing.write(&path).unwrap();
        assert_eq!(Routing::read(&path).unwrap(), routing);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
