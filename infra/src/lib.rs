//! Synthesizes the service's AWS infrastructure as Terraform JSON, in the layout CDK for
//! Terraform writes (`cdktf.out/manifest.json`, `cdktf.out/stacks/<stack>/cdk.tf.json`), so
//! plain `terraform` runs it and no Node or CDKTF runtime is needed (CDKTF was archived).
//!
//! `config` reads the environment files, `routes` is the route table and `gateway_responses`
//! the table of API Gateway's own answers, both shared with the local API server, `iam` the
//! policy primitives, `constructs` the typed building blocks, `stack` composes them, `synth`
//! writes the files.

pub mod checks;
pub mod config;
pub mod constructs;
mod error;
pub mod gateway_responses;
pub mod iam;
pub mod routes;
pub mod stack;
pub mod synth;
pub mod tf;

pub use config::{Config, ENVIRONMENTS};
pub use error::Error;
pub use synth::{SynthOutput, synth, synth_with};

/// The CDK for Terraform version whose output layout this crate reproduces (recorded in the
/// manifest and the stack metadata so tools that read them know the format).
pub const CDKTF_VERSION: &str = "0.21.0";

/// Stack names in apply order: every environment has these two.
pub const STACKS: [&str; 2] = ["bootstrap", "service"];

/// The third stack, synthesized only for environments with `[delivery]`: GitHub's OIDC
/// provider and the deploy role. `cargo xtask bootstrap` applies it, `cargo xtask deploy` never.
pub const DELIVERY_STACK: &str = "delivery";

/// The Go garbage collector's target for `terraform` and the AWS provider it starts, whoever
/// runs them (`cargo xtask`, the tests) unless `GOGC` is set already. Every Terraform command
/// starts the provider, which builds the schema of every AWS resource type before it answers:
/// 2-3 CPU-seconds each time at Go's default of 100. Collecting a quarter as often takes
/// over a quarter of that away for 100 MB more peak memory per process (`/usr/bin/time terraform
/// validate` of a one-function stack, three runs each on a 2-core machine: 6.0 CPU-seconds at
/// 100, 4.8 and 350 MB at 200, 4.3 and 450 MB at 400, 4.4 and 670 MB at 800; `off`, 5.3 and
/// 2.2 GB). The test suite runs a dozen applies at once, so CPU is what it waits for.
pub const TERRAFORM_GOGC: &str = "400";

/// Loads and validates `infra/environments/<env>.toml`.
pub fn load_config(env: &str) -> Result<Config, Error> {
    config::load(env)
}
