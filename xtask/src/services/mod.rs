//! The life-cycle services: what the commands are made of. Artifacts (build, check,
//! package, sign, upload), stacks (synth, Terraform, outputs, what was applied), aliases
//! (release, rollback, wait, hotswap), the local stack (emulator and local API server) and the
//! development loop on it (watch, invoke, local logs),
//! plus the deploy pipeline, the smoke run and the benchmark that compose them. Services import the base
//! layer and each other (never in a circle), never a command.

pub mod aliases;
pub mod artifacts;
pub mod bench;
pub mod compare;
pub mod deploy;
pub mod functions;
pub mod github;
pub mod invoke;
pub mod local;
pub mod logs;
pub mod scaffold;
pub mod secrets;
pub mod smoke;
pub mod stacks;
pub mod stages;
pub mod stats;
pub mod target;
pub mod trace;
pub mod watch;
