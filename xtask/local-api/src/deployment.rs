//! What the deployment's outputs file tells the local server.
//!
//! The outputs file ([`Outputs`]: `terraform output -json`, flattened by xtask) is the only thing read from
//! the deployment: it names the stage, the tables, the functions and the API key, so the local
//! server serves exactly what Terraform created and nothing it guesses.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use emulator::files::Outputs;
use serde_json::Value;

/// The parts of a deployment the local server needs.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stage name: the first path segment of every URL, as on execute-api.
    pub stage: String,
    /// The usage plan's key; requests to keyed routes must send it as `x-api-key`.
    pub api_key: String,
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
            api_key: need("api_key_value")?,
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
        assert_eq!(d.api_key, "k");
        assert_eq!(d.artifacts_bucket.as_deref(), Some("p-artifacts"));
    }

    #[test]
    fn names_the_missing_output() {
        let err = Deployment::from_value(&json!({"stage_name": "v1"})).unwrap_err();
        assert!(format!("{err:#}").contains("health_function"), "{err:#}");
    }
}
