//! The deployed stacks' outputs. The service stack's are kept in `build/<env>/outputs.json`
//! as [`deploy_files::Outputs`] (written by deploy; read by `cargo xtask outputs`, deploy,
//! smoke and the local API server, so everyone sees the same values); the other stacks'
//! are read from Terraform when needed.
//!
//! The file holds the API keys, so it is written 0600. Which outputs Terraform marks
//! `sensitive` is kept beside it, in `build/<env>/sensitive-outputs.json`, so this command masks
//! exactly those.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use deploy_files::outputs::is_secret;
use serde_json::{Map, Value};

use crate::base::env::Env;
use crate::base::process;

/// What a sensitive value shows instead, and how to see it.
pub const MASKED: &str = "<sensitive: add --show-sensitive>";

/// A stack's outputs as Terraform gives them, by name: their values, and the names Terraform
/// marks `sensitive`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub values: Map<String, Value>,
    pub sensitive: BTreeSet<String>,
}

impl Outputs {
    /// From `terraform output -json`: `{name: {"value": .., "type": .., "sensitive": ..}}`.
    pub fn from_terraform(raw: Map<String, Value>) -> Outputs {
        let mut outputs = Outputs::default();
        for (name, entry) in raw {
            if entry.get("sensitive").and_then(Value::as_bool) == Some(true) {
                outputs.sensitive.insert(name.clone());
            }
            let value = entry.get("value").cloned().unwrap_or(Value::Null);
            outputs.values.insert(name, value);
        }
        outputs
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn is_sensitive(&self, name: &str) -> bool {
        // The keys are secrets even where the record of Terraform's flags is missing.
        self.sensitive.contains(name) || is_secret(name)
    }

    /// Every value, the sensitive ones replaced by [`MASKED`].
    pub fn masked(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(name, value)| {
                let shown = if self.is_sensitive(name) {
                    Value::String(MASKED.to_owned())
                } else {
                    value.clone()
                };
                (name.clone(), shown)
            })
            .collect()
    }
}

/// The value of output `name`. A sensitive one without `show_sensitive` is an error (stdout
/// stays empty, exit status 1) rather than a placeholder: `KEY=$(cargo xtask outputs
/// api_key_value)` then stops a `set -e` script instead of sending `<sensitive: ...>` as the key.
pub fn one<'a>(outputs: &'a Outputs, name: &str, show_sensitive: bool) -> Result<&'a Value> {
    let value = outputs.get(name).with_context(|| {
        format!(
            "no output `{name}`; outputs: {}",
            outputs
                .values
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    if outputs.is_sensitive(name) && !show_sensitive {
        bail!("output `{name}` is sensitive: add --show-sensitive to print it");
    }
    Ok(value)
}

/// Writes the service stack's outputs ([`deploy_files::Outputs`], 0600: the API keys are among
/// them) and the names of the sensitive ones, and returns them typed. Outputs that are not the
/// type's fields are an error here, at deploy, rather than in every reader.
pub fn save(env: &Env, outputs: &Outputs) -> Result<deploy_files::Outputs> {
    let typed = deploy_files::Outputs::from_map(outputs.values.clone())
        .context("the service stack's outputs are not what deploy_files::Outputs holds")?;
    process::write_json(&env.sensitive_outputs_file(), &outputs.sensitive)?;
    process::write_json_private(&env.outputs_file(), &typed)?;
    Ok(typed)
}

/// The service stack's outputs, as the last deploy from this machine wrote them.
pub fn load(env: &Env) -> Result<deploy_files::Outputs> {
    let path = env.outputs_file();
    if !path.exists() {
        bail!(
            "`{}` has not been deployed from this machine ({} is missing): run `cargo xtask deploy --env {}`",
            env.name,
            process::display_path(&env.root, &path),
            env.name
        );
    }
    // A no-op deploy does not rewrite the file: one an older xtask left readable by others is
    // tightened here instead.
    process::make_private(&path)?;
    process::read_json(&path).with_context(|| {
        format!(
            "reading the outputs of `{}`: `cargo xtask deploy --env {0} --force` writes them anew",
            env.name
        )
    })
}

/// The service stack's outputs by name, with Terraform's `sensitive` flags: what `cargo xtask
/// outputs` lists.
pub fn listing(env: &Env) -> Result<Outputs> {
    let values = load(env)?.to_map();
    let sensitive_path = env.sensitive_outputs_file();
    let sensitive = if sensitive_path.exists() {
        process::read_json(&sensitive_path)?
    } else {
        BTreeSet::new()
    };
    Ok(Outputs { values, sensitive })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployed() -> Outputs {
        let raw = json!({
            "api_url": {"value": "https://x/v1", "type": "string", "sensitive": false},
            "api_key_value": {"value": "the-key", "type": "string", "sensitive": true},
            "db_password": {"value": "hunter2", "type": "string", "sensitive": true},
            "users_version": {"value": 3, "type": "number", "sensitive": false},
        });
        Outputs::from_terraform(raw.as_object().unwrap().clone())
    }

    #[test]
    fn terraforms_sensitive_flag_is_kept_beside_the_flat_values() {
        let outputs = deployed();
        assert_eq!(outputs.get("api_url"), Some(&json!("https://x/v1")));
        assert_eq!(outputs.get("users_version"), Some(&json!(3)));
        assert_eq!(
            outputs.sensitive.iter().collect::<Vec<_>>(),
            ["api_key_value", "db_password"]
        );
    }

    #[test]
    fn the_listing_masks_every_sensitive_output() {
        let masked = deployed().masked();
        assert_eq!(masked["api_key_value"], MASKED);
        assert_eq!(masked["db_password"], MASKED);
        assert_eq!(masked["api_url"], "https://x/v1");
        assert_eq!(masked["users_version"], 3);
        assert!(!json!(masked).to_string().contains("the-key"));
    }

    #[test]
    fn a_sensitive_output_by_name_needs_the_flag() {
        let outputs = deployed();
        let err = one(&outputs, "api_key_value", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--show-sensitive"), "{err}");
        assert!(!err.contains("the-key"), "{err}");
        assert_eq!(
            one(&outputs, "api_key_value", true).unwrap(),
            &json!("the-key")
        );
        assert_eq!(
            one(&outputs, "api_url", false).unwrap(),
            &json!("https://x/v1")
        );
        let missing = one(&outputs, "nope", true).unwrap_err().to_string();
        assert!(missing.contains("api_url"), "{missing}");
    }

    #[test]
    fn the_api_key_is_masked_even_without_the_record_of_flags() {
        let mut values = Map::new();
        values.insert("api_key_value".into(), json!("the-key"));
        let old = Outputs {
            values,
            sensitive: BTreeSet::new(),
        };
        assert_eq!(old.masked()["api_key_value"], MASKED);
        assert!(one(&old, "api_key_value", false).is_err());
    }

    /// Every client's key is masked in the listing and needs the flag by name; the list of
    /// clients (ids and limits, no key) is shown.
    #[test]
    fn every_clients_key_is_masked_and_the_client_list_is_not() {
        let raw = json!({
            "api_clients": {"value": [{"name": "app", "key_id": "id1", "rate_per_second": 5, "burst": 10, "quota_per_day": null}], "type": "tuple", "sensitive": false},
            "api_key_value_app": {"value": "app-key", "type": "string", "sensitive": true},
            "api_key_value_billing_sync": {"value": "sync-key", "type": "string"},
        });
        let outputs = Outputs::from_terraform(raw.as_object().unwrap().clone());
        let masked = outputs.masked();
        assert_eq!(masked["api_key_value_app"], MASKED);
        assert_eq!(
            masked["api_key_value_billing_sync"], MASKED,
            "masked by name too"
        );
        assert_eq!(masked["api_clients"][0]["key_id"], "id1");
        let listing = json!(masked).to_string();
        assert!(!listing.contains("app-key") && !listing.contains("sync-key"));
        assert!(one(&outputs, "api_key_value_billing_sync", false).is_err());
        assert_eq!(
            one(&outputs, "api_key_value_app", true).unwrap(),
            &json!("app-key")
        );
    }
}
