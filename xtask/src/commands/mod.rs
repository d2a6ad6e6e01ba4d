//! The commands of `cargo xtask`, one module each: read the parsed arguments, call the
//! services, print the result. A command never imports another command; what two commands
//! share is a service.

pub mod bench;
pub mod bootstrap;
pub mod build;
pub mod compare;
pub mod deploy;
pub mod destroy;
pub mod doctor;
pub mod invoke;
pub mod local;
pub mod logs;
pub mod new;
pub mod outputs;
pub mod package;
pub mod plan;
pub mod remove;
pub mod rollback;
pub mod secret;
pub mod smoke;
pub mod stages;
pub mod stats;
pub mod synth;
pub mod test;
pub mod trace;
pub mod watch;
