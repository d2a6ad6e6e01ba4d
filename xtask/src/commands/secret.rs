//! `cargo xtask secret set|list|keys|rotate|get|rm`: the values of the secrets the functions
//! declare, in Secrets Manager (the emulator's on `local`), never in Terraform, the outputs or
//! a log.

use anyhow::{Result, bail};

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::cli::SecretCommand;
use crate::services::stacks::outputs;
use crate::services::{invoke, secrets, target};
use service_common::peppers::PepperRing;
use service_common::secrets::SecretValue;

pub fn run(env: &Env, command: SecretCommand) -> Result<()> {
    let (target, _moto) = target::target(env)?;
    let client = process::block_on(secrets::client(&target));
    match command {
        SecretCommand::Set {
            name,
            generate,
            force,
        } => {
            let secret = secrets::find(env, &name)?;
            let version = if generate {
                process::block_on(secrets::set_generated(&client, env, &secret, force))?
            } else {
                let value = secrets::read_value(&secret, env)?;
                process::block_on(secrets::set(&client, env, &secret, &value))?
            };
            let json = serde_json::json!({ "name": name, "version_id": version });
            progress::finish(
                env.json,
                &json,
                format!(
                    "set `{name}` in `{}` (version {version}); {} read it within their \
                     cache's TTL (SECRETS_TTL_SECONDS, 5 minutes by default), no deploy needed",
                    env.name,
                    secret.read_by.join(", ")
                ),
            );
        }
        SecretCommand::List => {
            let all = process::block_on(secrets::list(&client, env))?;
            let human = all
                .iter()
                .map(|s| {
                    let state = match (&s.current_version, s.exists) {
                        (Some(version), _) => format!(
                            "version {version}, last changed {}, {} version(s) kept",
                            s.last_changed.as_deref().unwrap_or("?"),
                            s.versions.len()
                        ),
                        (None, true) => {
                            format!(
                                "NO VALUE: cargo xtask secret set {} --env {}",
                                s.secret.name, env.name
                            )
                        }
                        (None, false) => "not created yet: the next deploy creates it".to_owned(),
                    };
                    let rotation = match &s.rotation {
                        Some(r) if r.enabled => format!(
                            "\n    rotates every {} day(s); last {}, next {}",
                            r.days.map_or("?".to_owned(), |d| d.to_string()),
                            r.last.as_deref().unwrap_or("never"),
                            r.next.as_deref().unwrap_or("?")
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "{}  (read by {}; {})\n    {state}{rotation}",
                        s.secret.name,
                        s.secret.read_by.join(", "),
                        s.secret.aws_name
                    )
                })
                .collect::<Vec<_>>();
            let human = if human.is_empty() {
                "no function declares a secret".to_owned()
            } else {
                human.join("\n")
            };
            progress::finish(env.json, &serde_json::to_value(&all)?, human);
        }
        SecretCommand::Keys { name } => {
            let secret = secrets::find(env, &name)?;
            if secret.name != service_common::peppers::SECRET {
                bail!(
                    "`{name}` is no key ring whose keys stored data names: `secret keys` counts \
                     the password hashes per key of `{}`",
                    service_common::peppers::SECRET
                );
            }
            let users_table = outputs::load(env)?.users_table;
            let (value, _) = process::block_on(secrets::get(&client, &secret))?;
            let ring =
                PepperRing::parse(&SecretValue::new(value)).map_err(|e| anyhow::anyhow!("{e}"))?;
            let dynamo = process::block_on(async {
                aws_sdk_dynamodb::Client::new(&target.sdk_config().await)
            });
            let used = process::block_on(secrets::pepper_key_use(&ring, &dynamo, &users_table))?;
            let human = used
                .iter()
                .map(|key| {
                    let note = match (&key.id, key.in_ring, key.current, key.hashes) {
                        (None, ..) => "made before the pepper; upgraded at their next log-in",
                        (Some(_), false, ..) => {
                            "NOT IN THE RING: these users' log-ins fail until the key is back"
                        }
                        (Some(_), true, true, _) => "current",
                        (Some(_), true, false, 0) => "unused: may leave the ring",
                        (Some(_), true, false, _) => {
                            "upgraded to the current key at each user's next log-in"
                        }
                    };
                    format!(
                        "  {:<8} {:>8} hash(es)  {note}",
                        key.id.as_deref().unwrap_or("none"),
                        key.hashes
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            progress::finish(
                env.json,
                &serde_json::to_value(&used)?,
                format!("`{name}` in `{}` ({users_table}):\n{human}", env.name),
            );
        }
        SecretCommand::Rotate { name } => {
            let secret = secrets::find(env, &name)?;
            let rotator = secrets::rotator(&secret)?;
            let (arn, version) = process::block_on(secrets::start_rotation(&client, &secret))?;
            if env.emulated {
                // Secrets Manager's part: each step is one invocation of the real rotation
                // binary, through the local runtime (as `cargo xtask invoke` runs it).
                for step in secrets::ROTATION_STEPS {
                    let event = secrets::rotation_event(step, &arn, &version);
                    let invoked = invoke::invoke(env, rotator, event.to_string().into())?;
                    if let Err(error) = invoked.result {
                        bail!(
                            "{rotator}'s {step} failed; version {version} stays pending and the \
                             readers keep the current value (`cargo xtask logs {rotator} --env \
                             {}`): {error}",
                            env.name
                        );
                    }
                }
            }
            let versions = process::block_on(secrets::versions(&client, &secret))?;
            let stages = versions
                .iter()
                .filter(|v| !v.stages.is_empty())
                .map(|v| format!("  {}  {}", v.id, v.stages.join(", ")))
                .collect::<Vec<_>>()
                .join("\n");
            let done = if env.emulated {
                "rotated"
            } else {
                "started rotating (Secrets Manager runs the steps; `secret list` shows when it \
                 finished)"
            };
            progress::finish(
                env.json,
                &serde_json::json!({ "name": name, "version_id": version, "versions": versions }),
                format!(
                    "{done} `{name}` in `{}` with {rotator}: new version {version}\n{stages}",
                    env.name
                ),
            );
        }
        SecretCommand::Get {
            name,
            show_sensitive,
        } => {
            let secret = secrets::find(env, &name)?;
            if !show_sensitive {
                bail!(
                    "refusing to print the value of `{name}`: add --show-sensitive (it goes to \
                     stdout, and from there wherever stdout goes)"
                );
            }
            let (value, version) = process::block_on(secrets::get(&client, &secret))?;
            let json = serde_json::json!({ "name": name, "version_id": version, "value": value });
            progress::finish(env.json, &json, value);
        }
        SecretCommand::Rm { name } => {
            let secret = secrets::find(env, &name)?;
            process::block_on(secrets::remove(&client, &secret))?;
            let json = serde_json::json!({ "name": name, "removed": secret.aws_name });
            progress::finish(
                env.json,
                &json,
                format!(
                    "deleted {} and every version of its value; {} now fail the requests that \
                     need it. It is still declared: the next deploy that applies the service \
                     stack creates it again, empty (`cargo xtask deploy --env {} --force`)",
                    secret.aws_name,
                    secret.read_by.join(", "),
                    env.name
                ),
            );
        }
    }
    Ok(())
}
