//! What the deployment's outputs file tells the local server.
//!
//! The outputs file ([`Outputs`]: `terraform output -json`, flattened by xtask) is the only thing read from
//! the deployment: it names the stage, the tables, the functions and every client's API key
//! with its usage plan's limits, so the local server serves exactly what Terraform created and
//! nothing it guesses.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::limits::ClientKey;
use emulator::files::Outputs;
use serde_json::Value;

/// The parts of a deployment the local server needs.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stage name: the first path segment of every URL, as on execute-api.
    pub stage: String,
    /// Every client's key and limits (`api_clients`, `api_key_value_<client>`); requests to
    /// keyed routes must send one of the keys as `x-api-key`. An outputs file older than
    /// per-client keys gives one client, `api_key_value`, without limits.
    pub clients: Vec<ClientKey>,
    /// The REST API id, passed through to `requestContext.apiId`.
    pub api_id: String,
    /// Region the stack was deployed to; functions get it as `AWS_REGION`.
    pub region: String,
    pub users_table: String,
    pub sessions_table: String,
    /// Short name (`users`) to deployed function name (`prod-service-users`).
    pub functions: BTreeMap<String, String>,
    /// The alias API Gateway invokes (`live`); used to read that alias's configuration.
    pub alias: Option<String>,
    /// The bucket the packages were uploaded to (`artifacts_bucket`); the code of each version
    /// the alias names is downloaded from there. Optional: outputs written by tests have none.
    pub artifacts_bucket: Option<String>,
    /// The browser origins the environment allows. Not an output: the server sets it from the
    /// environment file (or its options), so functions whose configuration is derived from
    /// the outputs get the `CORS_ALLOW_ORIGINS` Terraform would have set.
    pub cors_allow_origins: Vec<String>,
}

impl Deployment {
    /// Reads and checks the outputs file; every error names the missing output.
    pub fn load(path: &Path) -> Result<Deployment> {
        let outputs = Outputs::read(path).with_context(|| {
            format!(
                "reading the outputs file {}: deploy first (`cargo xtask deploy`)",
                path.display()
            )
        })?;
        Self::from_outputs(&outputs)
            .with_context(|| format!("in the outputs file {}", path.display()))
    }

    /// From JSON in either form [`Outputs`] reads (flat or terraform's own).
    pub fn from_value(value: &Value) -> Result<Deployment> {
        let outputs: Outputs =
            serde_json::from_value(value.clone()).context("expected a JSON object of outputs")?;
        Self::from_outputs(&outputs)
    }

    pub fn from_outputs(outputs: &Outputs) -> Result<Deployment> {
        let get = |name: &str| outputs.text(name);
        let need = |name: &str| get(name).with_context(|| format!("output `{name}` is missing"));
        let mut functions = BTreeMap::new();
        for short in catalog::NAMES {
            functions.insert(short.to_string(), need(&format!("{short}_function"))?);
        }
        Ok(Deployment {
            stage: need("stage_name")?,
            clients: clients(outputs)?,
            api_id: get("api_id").unwrap_or_else(|| "local".to_string()),
            region: get("region").unwrap_or_else(|| "us-east-1".to_string()),
            users_table: need("users_table")?,
            sessions_table: need("sessions_table")?,
            functions,
            alias: get("alias_name"),
            artifacts_bucket: get("artifacts_bucket").filter(|b| !b.is_empty()),
            cors_allow_origins: Vec::new(),
        })
    }
}

/// The clients and their limits from `api_clients`, each key from its own output.
fn clients(outputs: &Outputs) -> Result<Vec<ClientKey>> {
    let Some(listed) = outputs.api_clients()? else {
        let value = outputs
            .text("api_key_value")
            .context("output `api_key_value` is missing")?;
        return Ok(vec![ClientKey {
            name: "default".into(),
            value,
            key_id: "local".into(),
            throttle: None,
            quota_per_day: None,
        }]);
    };
    anyhow::ensure!(
        !listed.is_empty(),
        "output `{}` lists no client",
        emulator::files::API_CLIENTS
    );
    listed
        .into_iter()
        .map(|c| {
            let value = outputs.api_key_value(&c.name).with_context(|| {
                format!(
                    "output `{}` (the key of client {}) is missing",
                    emulator::files::api_key_output(&c.name),
                    c.name
                )
            })?;
            Ok(ClientKey {
                value,
                key_id: c.key_id,
                throttle: Some((c.rate_per_second, c.burst)),
                quota_per_day: c.quota_per_day,
                name: c.name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_flat_and_terraform_shaped_outputs() {
        let flat = json!({
            "stage_name": "v1", "api_key_value": "k", "users_table": "u", "sessions_table": "s",
            "health_function": "p-health", "users_function": "p-users", "sessions_function": "p-sessions",
        });
        let d = Deployment::from_value(&flat).unwrap();
        assert_eq!(d.stage, "v1");
        assert_eq!(d.functions["users"], "p-users");
        assert_eq!(d.artifacts_bucket, None);
        let wrapped = json!({
            "stage_name": {"value": "v1", "type": "string", "sensitive": false},
            "api_key_value": {"value": "k", "sensitive": true},
            "users_table": "u", "sessions_table": "s",
            "health_function": "h", "users_function": "u", "sessions_function": "s",
            "artifacts_bucket": {"value": "p-artifacts", "type": "string", "sensitive": false},
        });
        let d = Deployment::from_value(&wrapped).unwrap();
        assert_eq!(d.clients.len(), 1);
        assert_eq!(d.clients[0].value, "k");
        assert_eq!(d.clients[0].throttle, None, "an older file: no limits");
        assert_eq!(d.artifacts_bucket.as_deref(), Some("p-artifacts"));
    }

    #[test]
    fn reads_every_clients_key_and_limits() {
        let outputs = json!({
            "stage_name": "v1", "api_key_value": "a", "users_table": "u", "sessions_table": "s",
            "health_function": "h", "users_function": "u", "sessions_function": "s",
            "api_clients": [
                {"name": "app", "key_id": "id-a", "rate_per_second": 100.0, "burst": 200, "quota_per_day": null},
                {"name": "billing-sync", "key_id": "id-b", "rate_per_second": 5, "burst": 10, "quota_per_day": 20000},
            ],
            "api_key_value_app": "a",
            "api_key_value_billing_sync": "b",
        });
        let d = Deployment::from_value(&outputs).unwrap();
        let sync = &d.clients[1];
        assert_eq!(
            (
                sync.name.as_str(),
                sync.value.as_str(),
                sync.key_id.as_str()
            ),
            ("billing-sync", "b", "id-b")
        );
        assert_eq!(sync.throttle, Some((5.0, 10)));
        assert_eq!(sync.quota_per_day, Some(20000));
        assert_eq!(d.clients[0].quota_per_day, None);
        let mut missing = outputs.clone();
        missing
            .as_object_mut()
            .unwrap()
            .remove("api_key_value_billing_sync");
        let err = Deployment::from_value(&missing).unwrap_err();
        assert!(
            format!("{err:#}").contains("api_key_value_billing_sync"),
            "{err:#}"
        );
    }

    #[test]
    fn names_the_missing_output() {
        let err = Deployment::from_value(&json!({"stage_name": "v1"})).unwrap_err();
        assert!(format!("{err:#}").contains("health_function"), "{err:#}");
    }
}
