//! Which deployment to prove, from its outputs file.

use std::path::Path;

use anyhow::{Context, Result};
use deploy_files::{API_STATE_FILE, ApiState, Outputs};

/// The deployment as smoke sees it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Invoke URL including the stage, no trailing slash.
    pub api_url: String,
    pub api_key: String,
    pub users_table: String,
    pub sessions_table: String,
    pub region: String,
    /// Where `api_url` came from, for the report.
    pub api_url_source: String,
}

impl Target {
    /// Reads `build/<env>/outputs.json`. For `local`, the API is served by the loopback server,
    /// not at the emulator's execute-api URL, so when the server's state file
    /// (`local-api.json`) sits next to the outputs its URL is used instead.
    pub fn from_outputs(path: &Path, api_url_override: Option<&str>) -> Result<Target> {
        let outputs = Outputs::read(path).with_context(|| {
            format!(
                "reading {}: deploy first (`cargo xtask deploy`)",
                path.display()
            )
        })?;
        let state = path.with_file_name(API_STATE_FILE);
        let (api_url, api_url_source) = if let Some(url) = api_url_override {
            (url.to_string(), "--api-url".to_string())
        } else if let Some(url) = local_api_url(&state) {
            (url, state.display().to_string())
        } else {
            (outputs.api_url, "output api_url".to_string())
        };
        Ok(Target {
            api_url: api_url.trim_end_matches('/').to_string(),
            api_key: outputs.api_key_value,
            users_table: outputs.users_table,
            sessions_table: outputs.sessions_table,
            region: outputs.region,
            api_url_source,
        })
    }
}

fn local_api_url(state: &Path) -> Option<String> {
    ApiState::read(state).ok().map(|state| state.url)
}
