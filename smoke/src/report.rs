//! The step-by-step report: human text by default, JSON for CI.

use std::fmt::Write as _;

use serde::Serialize;

use crate::api::Exchange;
use crate::load::LoadReport;
use crate::mix::MixReport;
use crate::target::Target;

/// The outcome of one step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub millis: u128,
    /// What was checked, in a few words.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// Why a step failed, with the HTTP exchange that showed it (when there was one).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<Box<Exchange>>,
}

/// Everything a run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub api_url: String,
    pub api_url_source: String,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mix: Option<MixReport>,
    pub cleanup: Vec<Step>,
}

impl Report {
    pub fn new(target: &Target) -> Report {
        Report {
            run_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            api_url: target.api_url.clone(),
            api_url_source: target.api_url_source.clone(),
            steps: Vec::new(),
            load: None,
            mix: None,
            cleanup: Vec::new(),
        }
    }

    /// True when every step, the load steps and the cleanup passed.
    pub fn ok(&self) -> bool {
        self.steps.iter().chain(&self.cleanup).all(|s| s.ok)
            && self.load.as_ref().is_none_or(|l| l.ok)
            && self.mix.as_ref().is_none_or(|m| m.ok)
    }

    /// The first failed step, the one a CI log should lead with.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().chain(&self.cleanup).find(|s| !s.ok)
    }

    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "smoke run {} against {} (from {})",
            self.run_id, self.api_url, self.api_url_source
        );
        for step in &self.steps {
            line(&mut out, step);
        }
        if let Some(load) = &self.load {
            let _ = writeln!(
                out,
                "  {} load: {} users, {} requests, {} errors, p50 {} ms, p99 {} ms, table check: {}",
                if load.ok { "ok  " } else { "FAIL" },
                load.users,
                load.requests,
                load.errors,
                load.p50_ms,
                load.p99_ms,
                load.table_check
            );
            let _ = writeln!(
                out,
                "       refused log-in, median: {} ms for registered addresses, {} ms for unknown ones",
                load.refused_login_registered_p50_ms, load.refused_login_unknown_p50_ms
            );
        }
        if let Some(mix) = &self.mix {
            for phase in &mix.phases {
                let _ = writeln!(
                    out,
                    "  {} mix, {:<12} {} requests, {} errors, {:.0}/s, p50 {} ms, p99 {} ms{}",
                    if phase.errors == 0 { "ok  " } else { "FAIL" },
                    phase.name,
                    phase.requests,
                    phase.errors,
                    phase.per_second,
                    phase.p50_ms,
                    phase.p99_ms,
                    phase
                        .error_samples
                        .first()
                        .map(|e| format!(" (first error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
        for step in &self.cleanup {
            line(&mut out, step);
        }
        match self.first_failure() {
            None if self.ok() => {
                let _ = writeln!(out, "smoke passed");
            }
            None => {
                let _ = writeln!(out, "smoke FAILED in a load step");
            }
            Some(step) => {
                let _ = writeln!(out, "smoke FAILED at step `{}`", step.name);
                if let Some(failure) = &step.failure {
                    let _ = writeln!(out, "  why: {}", failure.message);
                    if let Some(exchange) = &failure.exchange {
                        let request =
                            serde_json::to_string_pretty(&exchange.request).unwrap_or_default();
                        let _ = writeln!(out, "  request: {}", indent(&request));
                        match (&exchange.response, &exchange.error) {
                            (Some(response), _) => {
                                let response =
                                    serde_json::to_string_pretty(response).unwrap_or_default();
                                let _ = writeln!(out, "  response: {}", indent(&response));
                            }
                            (None, Some(error)) => {
                                let _ = writeln!(out, "  no response: {error}");
                            }
                            (None, None) => {}
                        }
                    }
                }
            }
        }
        out
    }
}

fn line(out: &mut String, step: &Step) {
    let mark = if step.ok { "ok  " } else { "FAIL" };
    let _ = writeln!(
        out,
        "  {mark} {:<24} {:>6} ms  {}",
        step.name, step.millis, step.detail
    );
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}
