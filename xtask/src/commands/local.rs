//! `cargo xtask local up|down|status`: the moto emulator and the local API
//! server that xtask leaves running for the `local` environment.

use anyhow::Result;
use xshell::Shell;

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::LocalCommand;
use crate::services::local;

pub fn run(sh: &Shell, env: &Env, command: LocalCommand) -> Result<()> {
    local::require_emulated(env)?;
    match command {
        LocalCommand::Up => {
            let moto = local::ensure_up(env)?;
            let json = serde_json::to_value(&moto)?;
            progress::finish(
                env.json,
                &json,
                format!("emulator running at {} (pid {})", moto.endpoint, moto.pid),
            );
        }
        LocalCommand::Down => {
            let (api, moto) = local::down(sh, env)?;
            let json = serde_json::json!({ "stopped_api": api, "stopped_emulator": moto });
            let mut human = Vec::new();
            human.push(match api {
                Some(pid) => format!("stopped the local API server (pid {pid})"),
                None => "the local API server was not running".to_owned(),
            });
            human.push(match moto {
                Some(pid) => format!("stopped the emulator (pid {pid})"),
                None => "the emulator was not running".to_owned(),
            });
            progress::finish(env.json, &json, human.join("\n"));
        }
        LocalCommand::Status => {
            let moto = local::running_moto(env);
            let api = local::running_api(env);
            let json = serde_json::json!({
                "emulator": { "running": moto.is_some(), "state": moto },
                "api": { "running": api.is_some(), "state": api },
            });
            let human = format!(
                "emulator:  {}\nlocal API: {}",
                moto.as_ref().map_or("not running".to_owned(), |m| format!(
                    "running at {} (pid {})",
                    m.endpoint, m.pid
                )),
                api.as_ref().map_or("not running".to_owned(), |a| format!(
                    "serving {} (pid {})",
                    a.url, a.pid
                )),
            );
            progress::finish(env.json, &json, human);
            if moto.is_none() {
                // A script asking "is it up?" gets the answer in the exit code too.
                std::process::exit(3);
            }
        }
    }
    Ok(())
}
