//! xtask's integration tests: the real `xtask` binary against moto, the real
//! terraform and real function binaries. One test binary, so the long
//! life-cycle tests (each with its own emulator and build folder) run side by
//! side instead of one binary after another.

mod common;
mod devloop;
mod errors;
mod full_cycle;
mod package;
mod release;
mod scaffold;
mod stages;
