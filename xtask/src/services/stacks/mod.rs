//! Stacks: the Terraform side of the life cycle (synthesis, running terraform, the state
//! bucket, the outputs and the record of what was applied), each usable by a command alone.

pub mod bootstrap;
pub mod outputs;
pub mod prerequisites;
pub mod provider;
pub mod state;
pub mod synth;
pub mod teardown;
pub mod terraform;
