//! Constructs: typed values with secure defaults, after the AWS CDK's L2 constructs. Each
//! returns a handle whose methods give typed references to what it created.

pub mod api;
pub mod boundary;
pub mod compute;
pub mod data;
pub mod delivery;
pub mod edge;
pub mod network;
pub mod observability;
pub mod queues;
pub mod schedules;
pub mod secrets;
pub mod security;
pub mod signing;
pub mod state;
pub mod storage;
