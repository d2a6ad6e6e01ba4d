//! What the deployment's outputs file tells the local server.
//!
//! The outputs file ([`Outputs`], the service stack's typed outputs) is the only thing read
//! from the deployment: it names the stage, the tables, the functions and every client's API
//! key with its usage plan's limits, so the local server serves exactly what Terraform created
//! and nothing it guesses.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::limits::ClientKey;
use deploy_files::Outputs;

/// The parts of a deployment the local server needs.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Stage name: the first path segment of every URL, as on execute-api.
    pub stage: String,
    /// Every client's key and limits; requests to keyed routes must send one of the keys as
    /// `x-api-key`.
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
    pub alias: String,
    /// The bucket the packages were uploaded to; the code of each version the alias names is
    /// downloaded from there.
    pub artifacts_bucket: String,
    /// The browser origins the environment allows. Not an output: the server sets it from the
    /// environment file (or its options), so functions whose configuration is derived from
    /// the outputs get the `CORS_ALLOW_ORIGINS` Terraform would have set.
    pub cors_allow_origins: Vec<String>,
    /// Declared queue name to its URL and ARN, as deployed: the local event source mappings
    /// poll them ([`crate::queues`]) and the senders get the URLs.
    pub queues: BTreeMap<String, QueueUrls>,
    /// The account the stack lives in (from the alarm topic's ARN): part of the ARNs the
    /// local schedules name in their events.
    pub account: String,
}

/// Where a declared queue is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    pub url: String,
    pub arn: String,
    pub dead_letter_url: String,
}

impl Deployment {
    /// The environment's name prefix, as infra puts it before every AWS name it derives
    /// (`<prefix>secret-<name>`, `<prefix>schedule-<name>`): a deployed function's name
    /// without the function's own.
    pub fn prefix(&self) -> &str {
        self.functions
            .iter()
            .find_map(|(short, deployed)| deployed.strip_suffix(short.as_str()))
            .unwrap_or_default()
    }

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

    /// The server's view: every catalog function must be in the outputs (the server routes
    /// to each of them).
    pub fn from_outputs(outputs: &Outputs) -> Result<Deployment> {
        let functions = catalog::NAMES
            .iter()
            .map(|short| {
                let deployed = outputs.functions.get(*short).with_context(|| {
                    format!(
                        "output `{}` is missing",
                        deploy_files::outputs::function_output(short)
                    )
                })?;
                Ok((short.to_string(), deployed.name.clone()))
            })
            .collect::<Result<_>>()?;
        anyhow::ensure!(
            !outputs.api_clients.is_empty(),
            "output `{}` lists no client",
            deploy_files::outputs::name::API_CLIENTS
        );
        let clients = outputs
            .api_clients
            .iter()
            .map(|c| ClientKey {
                name: c.name.clone(),
                value: c.key_value.clone(),
                key_id: c.key_id.clone(),
                throttle: (c.rate_per_second, c.burst),
                quota_per_day: c.quota_per_day,
            })
            .collect();
        Ok(Deployment {
            stage: outputs.stage_name.clone(),
            clients,
            api_id: outputs.api_id.clone(),
            region: outputs.region.clone(),
            users_table: outputs.users_table.clone(),
            sessions_table: outputs.sessions_table.clone(),
            functions,
            alias: outputs.alias_name.clone(),
            artifacts_bucket: outputs.artifacts_bucket.clone(),
            cors_allow_origins: Vec::new(),
            queues: outputs
                .queues
                .iter()
                .map(|(name, deployed)| {
                    let urls = QueueUrls {
                        url: deployed.url.clone(),
                        arn: deployed.arn.clone(),
                        dead_letter_url: deployed.dead_letter_url.clone(),
                    };
                    (name.clone(), urls)
                })
                .collect(),
            account: outputs
                .alarm_topic_arn
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deploy_files::ApiClient;

    #[test]
    fn every_clients_key_and_limits_and_every_function() {
        let outputs = Outputs::fixture("p-", "v1", "unused").with_clients(vec![
            ApiClient::fixture("app", "key-app", 100.0, 200, None),
            ApiClient::fixture("billing-sync", "key-billing-sync", 5.0, 10, Some(20000)),
        ]);
        let d = Deployment::from_outputs(&outputs).unwrap();
        assert_eq!(d.stage, "v1");
        for short in catalog::NAMES.iter() {
            assert_eq!(d.functions[*short], format!("p-{short}"));
        }
        let sync = &d.clients[1];
        assert_eq!(
            (
                sync.name.as_str(),
                sync.value.as_str(),
                sync.key_id.as_str()
            ),
            ("billing-sync", "key-billing-sync", "id-billing-sync")
        );
        assert_eq!(sync.throttle, (5.0, 10));
        assert_eq!(sync.quota_per_day, Some(20000));
        assert_eq!(d.clients[0].quota_per_day, None);
    }

    #[test]
    fn names_the_missing_function() {
        let mut outputs = Outputs::fixture("p-", "v1", "k");
        let (short, _) = outputs.functions.pop_first().unwrap();
        let err = Deployment::from_outputs(&outputs).unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!("{short}_function")),
            "{err:#}"
        );
    }
}
