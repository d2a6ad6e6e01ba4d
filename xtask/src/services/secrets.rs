//! The declared secrets' values (`cargo xtask secret`), set and read by a person straight in
//! Secrets Manager, never through Terraform: infra creates each declared secret empty
//! (`infra::constructs::secrets`), so no value is ever in a plan, a state file, the outputs
//! file or a deploy log. Which secrets exist and who reads them comes from the catalog, through
//! infra's [`declared`](infra::constructs::secrets::declared), the list infra builds from.
//!
//! `rm` deletes the secret with every version at once (Secrets Manager keeps no value without
//! a secret: the `AWSCURRENT` stage can only move, never go), so a leaked value is gone at
//! once; the declaration stays, and the next deploy that applies the service stack creates the
//! secret again, empty.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};
use catalog::secrets::Generate;
use infra::config::Names;
use serde::Serialize;

use crate::base::aws::Target;
use crate::base::env::Env;

/// The stage whose version functions read.
const CURRENT: &str = "AWSCURRENT";

/// A secret some function declares, in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct Declared {
    pub name: &'static str,
    /// Its name in Secrets Manager (`<prefix>secret-<name>`).
    pub aws_name: String,
    /// The functions that declare it, in catalog order.
    pub read_by: Vec<&'static str>,
    /// How its value is generated (`catalog::generated`); none: a person sets it.
    #[serde(serialize_with = "generate_kind")]
    pub generate: Option<Generate>,
}

fn generate_kind<S: serde::Serializer>(
    generate: &Option<Generate>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_some(&generate.map(Generate::kind))
}

/// Every declared secret of `env`, by name.
pub fn declared(env: &Env) -> Vec<Declared> {
    infra::constructs::secrets::declared()
        .into_iter()
        .map(|(name, readers)| Declared {
            name,
            aws_name: infra::constructs::secrets::aws_name(Names(&env.prefix), name),
            read_by: readers.iter().map(|f| f.as_str()).collect(),
            generate: catalog::generated(name),
        })
        .collect()
}

/// The declared secret `name`, or an error that lists the declared ones.
pub fn find(env: &Env, name: &str) -> Result<Declared> {
    let all = declared(env);
    if let Some(found) = all.iter().find(|d| d.name == name) {
        return Ok(found.clone());
    }
    let names: Vec<&str> = all.iter().map(|d| d.name).collect();
    bail!(
        "no function declares a secret `{name}` (declared: {}); declare it with `secrets = \
         [\"{name}\"]` in a function's [package.metadata.function]",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// One version of a secret's value: its id, stages and when it was stored.
#[derive(Debug, Serialize)]
pub struct Version {
    pub id: String,
    pub stages: Vec<String>,
    pub created: Option<String>,
}

/// What `secret list` shows of a declared secret: never its value.
#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub secret: Declared,
    /// Whether the secret exists (the first deploy creates it).
    pub exists: bool,
    /// The version functions read (`AWSCURRENT`); none: no value.
    pub current_version: Option<String>,
    pub versions: Vec<Version>,
    /// When the current value was set (else when the secret last changed).
    pub last_changed: Option<String>,
    /// Whether and how it rotates; `None` for a secret without rotation configured.
    pub rotation: Option<Rotation>,
}

/// A secret's rotation as Secrets Manager reports it.
#[derive(Debug, Serialize)]
pub struct Rotation {
    pub enabled: bool,
    /// `rotation_days`, as configured by the last deploy.
    pub days: Option<i64>,
    pub last: Option<String>,
    pub next: Option<String>,
}

impl Rotation {
    fn of(described: &DescribeSecretOutput) -> Option<Rotation> {
        described.rotation_enabled().map(|enabled| Rotation {
            enabled,
            days: described
                .rotation_rules()
                .and_then(|r| r.automatically_after_days()),
            last: timestamp(described.last_rotated_date()),
            next: timestamp(described.next_rotation_date()),
        })
    }
}

fn timestamp(time: Option<&DateTime>) -> Option<String> {
    time.and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
}

/// An SDK error as one message: the step, then the error with its causes.
fn failed(error: &(impl std::error::Error + 'static), step: String) -> anyhow::Error {
    anyhow::anyhow!("{step}: {}", DisplayErrorContext(error))
}

fn not_found(error: &impl ProvideErrorMetadata) -> bool {
    error.code() == Some("ResourceNotFoundException")
}

/// The secret as Secrets Manager describes it; `None` when it does not exist. Only
/// `DescribeSecret`, which the deploy role has for the declared secrets.
async fn describe(client: &Client, secret: &Declared) -> Result<Option<DescribeSecretOutput>> {
    match client
        .describe_secret()
        .secret_id(&secret.aws_name)
        .send()
        .await
    {
        Ok(described) => Ok(Some(described)),
        Err(e) if e.as_service_error().is_some_and(not_found) => Ok(None),
        Err(e) => Err(failed(&e, format!("describing {}", secret.aws_name))),
    }
}

fn has_value(described: &DescribeSecretOutput) -> bool {
    described
        .version_ids_to_stages()
        .is_some_and(|versions| versions.values().flatten().any(|s| s == CURRENT))
}

/// Every declared secret's status, with its versions. The versions are listed only for a
/// secret that exists: moto 5.2.5 answers `ListSecretVersionIds` on a missing one with a 500
/// (AWS with `ResourceNotFoundException`).
pub async fn list(client: &Client, env: &Env) -> Result<Vec<Status>> {
    let mut out = Vec::new();
    for secret in declared(env) {
        let Some(described) = describe(client, &secret).await? else {
            out.push(Status {
                secret,
                exists: false,
                current_version: None,
                versions: Vec::new(),
                last_changed: None,
                rotation: None,
            });
            continue;
        };
        let versions = versions(client, &secret).await?;
        let current = versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == CURRENT));
        out.push(Status {
            current_version: current.map(|v| v.id.clone()),
            // The current value's date: moto 5.2.5 leaves `LastChangedDate` at the creation.
            last_changed: current
                .and_then(|v| v.created.clone())
                .or_else(|| timestamp(described.last_changed_date())),
            versions,
            exists: true,
            rotation: Rotation::of(&described),
            secret,
        });
    }
    Ok(out)
}

/// Every version of an existing secret with its stages.
pub async fn versions(client: &Client, secret: &Declared) -> Result<Vec<Version>> {
    let listed = client
        .list_secret_version_ids()
        .secret_id(&secret.aws_name)
        .send()
        .await
        .map_err(|e| failed(&e, format!("listing the versions of {}", secret.aws_name)))?;
    Ok(listed
        .versions()
        .iter()
        .map(|v| Version {
            id: v.version_id().unwrap_or_default().to_owned(),
            stages: v.version_stages().to_vec(),
            created: timestamp(v.created_date()),
        })
        .collect())
}

/// The function that rotates `secret` (`rotates` in its declaration); refused for a secret
/// without `rotation_days`.
pub fn rotator(secret: &Declared) -> Result<&'static str> {
    let rotates = catalog::GENERATED
        .iter()
        .any(|g| g.name == secret.name && g.rotation_days.is_some());
    match catalog::rotator(secret.name) {
        Some(function) if rotates => Ok(function.name),
        _ => bail!(
            "`{}` does not rotate: only a generated secret with `rotation_days` in the root \
             manifest's [workspace.metadata.secrets.{}] has a rotation function (a secret a \
             person sets changes with `cargo xtask secret set`)",
            secret.name,
            secret.name
        ),
    }
}

/// Secrets Manager's four rotation steps, in order, as its events name them.
pub const ROTATION_STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// The event Secrets Manager sends the rotation function for `step` of the rotation that
/// makes version `token` of the secret `arn`.
pub fn rotation_event(step: &str, arn: &str, token: &str) -> serde_json::Value {
    serde_json::json!({ "Step": step, "SecretId": arn, "ClientRequestToken": token })
}

/// Starts a rotation of `secret` now with the function and schedule the deploy configured
/// (`RotateSecret`); returns the secret's ARN and the new version's id. On AWS, Secrets
/// Manager then runs the four steps; the emulator stops before them (it cannot run a Lambda:
/// `xtask/emulator/src/moto_server.py`) and leaves them to the caller.
pub async fn start_rotation(client: &Client, secret: &Declared) -> Result<(String, String)> {
    let started = client
        .rotate_secret()
        .secret_id(&secret.aws_name)
        .send()
        .await
        .map_err(|e| failed(&e, format!("starting a rotation of {}", secret.aws_name)))?;
    Ok((
        started.arn().unwrap_or_default().to_owned(),
        started.version_id().unwrap_or_default().to_owned(),
    ))
}

/// The declared secrets of `env` that have no value (missing or without an `AWSCURRENT`
/// version), with the functions that read them.
pub async fn without_value(client: &Client, env: &Env) -> Result<Vec<Declared>> {
    let mut out = Vec::new();
    for secret in declared(env) {
        if !describe(client, &secret)
            .await?
            .as_ref()
            .is_some_and(has_value)
        {
            out.push(secret);
        }
    }
    Ok(out)
}

/// Stores `value` as the secret's new current version; returns its version id.
pub async fn set(client: &Client, env: &Env, secret: &Declared, value: &str) -> Result<String> {
    let put = client
        .put_secret_value()
        .secret_id(&secret.aws_name)
        .secret_string(value)
        .send()
        .await;
    match put {
        Ok(put) => Ok(put.version_id().unwrap_or_default().to_owned()),
        Err(e) if e.as_service_error().is_some_and(not_found) => bail!(
            "{} does not exist in `{env}` yet: the deploy that applies the service stack \
             creates it (empty); run `cargo xtask deploy --env {env}` (with --force if nothing \
             changed), then set it",
            secret.aws_name,
            env = env.name
        ),
        Err(e) => Err(failed(
            &e,
            format!("storing a value in {}", secret.aws_name),
        )),
    }
}

/// A new value of kind `generate`. It goes to Secrets Manager only: never printed or logged.
fn generated_value(generate: Generate) -> Result<String> {
    match generate {
        Generate::KeyRing => {
            let ring = service_common::peppers::PepperRing::generate()
                .map_err(|e| anyhow::anyhow!("generating a key ring: {e}"))?;
            Ok(ring.to_value().expose().to_owned())
        }
    }
}

/// `secret set NAME --generate`: stores a generated value; returns its version id. Refused for
/// a secret without a `generate` kind, and, unless `force`, for one that has a value already:
/// a new key ring in place of the old one would leave every password hash unverifiable.
pub async fn set_generated(
    client: &Client,
    env: &Env,
    secret: &Declared,
    force: bool,
) -> Result<String> {
    let Some(generate) = secret.generate else {
        bail!(
            "`{name}` has no generated value (no `generate` in [workspace.metadata.secrets.{name}] \
             of the root Cargo.toml): set it with `cargo xtask secret set {name} --env {env}`, \
             which reads it from a prompt or standard input",
            name = secret.name,
            env = env.name
        );
    };
    if !force
        && describe(client, secret)
            .await?
            .as_ref()
            .is_some_and(has_value)
    {
        bail!(
            "`{}` in `{}` has a value already; a generated one would replace it, and the \
             hashes or signatures made with the old one would stop verifying. Add --force to \
             replace it anyway",
            secret.name,
            env.name
        );
    }
    set(client, env, secret, &generated_value(generate)?).await
}

/// On an emulator environment, right after the service stack applied: a generated value for
/// every generated secret that exists without one, so a fresh clone's `deploy && smoke` works
/// with no extra step. Returns the secrets it set. One that does not exist (removed, and the
/// stack not applied since) is left to the deploy that creates it.
pub async fn generate_missing(client: &Client, env: &Env) -> Result<Vec<Declared>> {
    let mut generated = Vec::new();
    for secret in declared(env) {
        let Some(generate) = secret.generate else {
            continue;
        };
        let Some(described) = describe(client, &secret).await? else {
            continue;
        };
        if !has_value(&described) {
            set(client, env, &secret, &generated_value(generate)?).await?;
            generated.push(secret);
        }
    }
    Ok(generated)
}

/// How many stored password hashes use one pepper key: what decides when a key may leave the
/// ring (only when none does; a hash whose key left fails its log-in with a 500).
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct KeyUse {
    /// The key id; `None`: hashes made before the pepper (upgraded at their next log-in).
    pub id: Option<String>,
    pub hashes: u64,
    /// In the ring now (a used id missing from it is a lost key: those users cannot log in).
    pub in_ring: bool,
    pub current: bool,
}

/// `secret keys password-peppers`: every key of `ring` and every key id the hashes of the
/// users table name, with how many hashes name each (one `Scan` of the `password_hash`
/// attribute, all pages; the ids read by the hasher's own parser). Never a hash or a key.
pub async fn pepper_key_use(
    ring: &service_common::peppers::PepperRing,
    dynamo: &aws_sdk_dynamodb::Client,
    users_table: &str,
) -> Result<Vec<KeyUse>> {
    let mut counts: std::collections::BTreeMap<Option<String>, u64> =
        ring.ids().map(|id| (Some(id.to_owned()), 0)).collect();
    let mut start = None;
    loop {
        let page = dynamo
            .scan()
            .table_name(users_table)
            .projection_expression("password_hash")
            .filter_expression("attribute_exists(password_hash)")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| failed(&e, format!("scanning {users_table}")))?;
        for item in page.items() {
            let Some(hash) = item.get("password_hash").and_then(|v| v.as_s().ok()) else {
                continue;
            };
            let id = service_common::password::key_id(hash)
                .map_err(|e| anyhow::anyhow!("a stored password hash does not parse: {e}"))?;
            *counts.entry(id).or_default() += 1;
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    Ok(counts
        .into_iter()
        .map(|(id, hashes)| KeyUse {
            in_ring: id.as_deref().is_some_and(|id| ring.key(id).is_some()),
            current: id.as_deref() == Some(ring.current_id()),
            id,
            hashes,
        })
        .collect())
}

/// The secret's current value and its version id.
pub async fn get(client: &Client, secret: &Declared) -> Result<(String, String)> {
    let got = client
        .get_secret_value()
        .secret_id(&secret.aws_name)
        .send()
        .await;
    match got {
        Ok(got) => Ok((
            got.secret_string()
                .context("the secret holds a binary value, not text")?
                .to_owned(),
            got.version_id().unwrap_or_default().to_owned(),
        )),
        Err(e) if e.as_service_error().is_some_and(not_found) => bail!(
            "{} has no value (or does not exist yet): `cargo xtask secret set {}`",
            secret.aws_name,
            secret.name
        ),
        Err(e) => Err(failed(&e, format!("reading {}", secret.aws_name))),
    }
}

/// Deletes the secret and every version of its value at once, without a recovery window.
pub async fn remove(client: &Client, secret: &Declared) -> Result<()> {
    let deleted = client
        .delete_secret()
        .secret_id(&secret.aws_name)
        .force_delete_without_recovery(true)
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(not_found) => {
            bail!("{} does not exist: nothing to remove", secret.aws_name)
        }
        Err(e) => Err(failed(&e, format!("deleting {}", secret.aws_name))),
    }
}

/// The value to set, never from an argument (it would land in the shell's history and in
/// `ps`): a prompt that does not echo when standard input is a terminal, else all of standard
/// input, without the one line break that ends it (`echo`, a here-string).
pub fn read_value(secret: &Declared, env: &Env) -> Result<String> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!(
            "Value of `{}` in `{}` (not shown): ",
            secret.name, env.name
        ))
        .context("reading the value from the terminal")?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the value from standard input")?;
        text
    };
    value_of(text)
}

/// `text` without the one line break that ends it (`\n` or `\r\n`); an empty value is refused.
fn value_of(mut text: String) -> Result<String> {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        bail!("the value is empty: nothing was set");
    }
    Ok(text)
}

/// The Secrets Manager client for `target`.
pub async fn client(target: &Target) -> Client {
    Client::new(&target.sdk_config().await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::process;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn only_a_secret_with_rotation_days_rotates_and_with_its_declared_function() {
        let declared = |name: &'static str, generate| Declared {
            name,
            aws_name: format!("test-secret-{name}"),
            read_by: vec!["users"],
            generate,
        };
        let peppers = declared("password-peppers", Some(Generate::KeyRing));
        assert_eq!(rotator(&peppers).unwrap(), "rotation");
        let by_hand = rotator(&declared("payments-key", None))
            .unwrap_err()
            .to_string();
        assert!(
            by_hand.contains("`payments-key` does not rotate"),
            "{by_hand}"
        );
        let event = rotation_event(ROTATION_STEPS[0], "arn:s", "v1");
        assert_eq!(
            event,
            serde_json::json!({"Step": "createSecret", "SecretId": "arn:s", "ClientRequestToken": "v1"})
        );
    }

    #[test]
    fn a_value_loses_only_its_final_line_break() {
        for (text, value) in [
            ("k3y\n", "k3y"),
            ("k3y\r\n", "k3y"),
            ("k3y", "k3y"),
            ("a\nb\n\n", "a\nb\n"),
            (" k3y \n", " k3y "),
        ] {
            assert_eq!(value_of(text.to_owned()).unwrap(), value, "{text:?}");
        }
        for empty in ["", "\n", "\r\n"] {
            assert!(value_of(empty.to_owned()).is_err(), "{empty:?}");
        }
    }

    /// On moto over HTTP, over the functions' own tables and ring: hashes are counted per key
    /// id, a key no hash uses shows 0 (it may leave the ring), legacy hashes count as `None`,
    /// and an id the ring lacks is shown as such.
    #[test]
    fn hashes_are_counted_per_pepper_key() {
        process::block_on(async {
            let app = service_common::testing::TestApp::start().await;
            app.seed_user("one@example.com", "first password").await;
            app.seed_user("two@example.com", "second password").await;
            let ring = app.peppers().await.with_new_key().unwrap();
            app.set_peppers(&ring).await;
            let third = app.seed_user("three@example.com", "third password").await;
            let mut ring = ring.with_new_key().unwrap();
            app.set_peppers(&ring).await;
            let legacy = "$argon2id$v=19$m=19456,t=2,p=1$bGVnYWN5LXNhbHQtMDEyMw$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
            app.client
                .update_item()
                .table_name(&app.users_table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", third.id)),
                )
                .update_expression("SET password_hash = :h")
                .expression_attribute_values(
                    ":h",
                    aws_sdk_dynamodb::types::AttributeValue::S(legacy.into()),
                )
                .send()
                .await
                .unwrap();
            let counted = pepper_key_use(&ring, &app.client, &app.users_table)
                .await
                .unwrap();
            let row = |id: Option<&str>, hashes, in_ring, current| KeyUse {
                id: id.map(str::to_owned),
                hashes,
                in_ring,
                current,
            };
            assert_eq!(
                counted,
                [
                    row(None, 1, false, false),
                    row(Some("k1"), 2, true, false),
                    row(Some("k2"), 0, true, false),
                    row(Some("k3"), 0, true, true),
                ]
            );
            // A ring that lost `k1` still shows the hashes that name it, as not in the ring.
            ring = service_common::peppers::PepperRing::parse(
                &service_common::secrets::SecretValue::new(
                    r#"{"current":"k5","keys":{"k5":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
                ),
            )
            .unwrap();
            let counted = pepper_key_use(&ring, &app.client, &app.users_table)
                .await
                .unwrap();
            assert!(
                counted.contains(&row(Some("k1"), 2, false, false)),
                "{counted:?}"
            );
            assert!(
                counted.contains(&row(Some("k5"), 0, true, true)),
                "{counted:?}"
            );
        });
    }

    /// `local` on a moto of its own, with names of its own (a unique prefix), so tests sharing
    /// one moto never meet.
    fn on_moto() -> (emulator::Emulator, Env, Target) {
        let moto = emulator::Emulator::for_tests().unwrap();
        let mut env = Env::load("local", false).unwrap();
        let unique = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        env.prefix = format!("t{unique}-");
        let target = Target::emulator(&env, moto.endpoint());
        (moto, env, target)
    }

    /// On moto over HTTP: the pepper ring, created empty as Terraform creates it, is generated
    /// once (a valid ring, which the functions' parser accepts), not again when it has a value;
    /// `--generate` refuses to replace a value without `--force` and a secret without a
    /// `generate` kind always; no error names the value.
    #[test]
    fn generated_secrets_get_a_value_once() {
        let (_moto, env, target) = on_moto();
        process::block_on(async {
            let client = client(&target).await;
            let secret = find(&env, "password-peppers").unwrap();
            assert_eq!(secret.generate, Some(Generate::KeyRing));
            assert!(
                generate_missing(&client, &env).await.unwrap().is_empty(),
                "none exists yet"
            );
            client
                .create_secret()
                .name(&secret.aws_name)
                .send()
                .await
                .unwrap();
            let generated = generate_missing(&client, &env).await.unwrap();
            assert_eq!(
                generated.iter().map(|s| s.name).collect::<Vec<_>>(),
                [secret.name]
            );
            let (value, _) = get(&client, &secret).await.unwrap();
            let ring = service_common::peppers::PepperRing::parse(
                &service_common::secrets::SecretValue::new(value.clone()),
            )
            .unwrap();
            assert_eq!(ring.current_id(), "k1");
            assert!(generate_missing(&client, &env).await.unwrap().is_empty());
            assert_eq!(get(&client, &secret).await.unwrap().0, value, "kept");

            let refused = set_generated(&client, &env, &secret, false)
                .await
                .unwrap_err()
                .to_string();
            assert!(refused.contains("has a value already"), "{refused}");
            assert!(!refused.contains(&value));
            set_generated(&client, &env, &secret, true).await.unwrap();
            assert_ne!(get(&client, &secret).await.unwrap().0, value, "replaced");
            let by_hand = Declared {
                generate: None,
                ..secret.clone()
            };
            let refused = set_generated(&client, &env, &by_hand, true)
                .await
                .unwrap_err()
                .to_string();
            assert!(refused.contains("has no generated value"), "{refused}");
            let listed = serde_json::to_value(list(&client, &env).await.unwrap()).unwrap();
            let status = listed
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == secret.name)
                .unwrap();
            assert_eq!(status["generate"], "key-ring");
        });
    }

    /// On moto over HTTP: a declared secret, created empty as Terraform creates it, is named
    /// by the deploy check; a value set here reaches a function's reader
    /// (`service_common::secrets`, as a function builds it: the ARN in its variable, a TTL of
    /// one second); a changed value serves once the TTL has passed, with no deploy; `list`
    /// shows versions and never a value; after `rm` the function's request fails.
    #[test]
    fn a_value_set_here_reaches_a_function_after_its_ttl() {
        let (_moto, env, target) = on_moto();
        process::block_on(async {
            let client = client(&target).await;
            let secret = find(&env, "password-peppers").unwrap();
            assert_eq!(secret.read_by, ["users", "sessions"]);
            let arn = client
                .create_secret()
                .name(&secret.aws_name)
                .send()
                .await
                .unwrap()
                .arn()
                .unwrap()
                .to_owned();
            let unset = without_value(&client, &env).await.unwrap();
            assert_eq!(
                unset.iter().map(|s| s.name).collect::<Vec<_>>(),
                [secret.name]
            );

            let first = set(&client, &env, &secret, "first-pepper-value")
                .await
                .unwrap();
            assert!(without_value(&client, &env).await.unwrap().is_empty());
            let variable = service_common::secrets::variable(secret.name);
            let reader = service_common::secrets::Secrets::from_lookup(
                client.clone(),
                &[secret.name],
                |name| match name {
                    n if n == variable => Some(arn.clone()),
                    service_common::secrets::TTL_VARIABLE => Some("1".into()),
                    _ => None,
                },
            )
            .unwrap();
            let read = || async { reader.get(secret.name).await.unwrap().expose().to_owned() };
            assert_eq!(read().await, "first-pepper-value");

            let second = set(&client, &env, &secret, "second-pepper-value")
                .await
                .unwrap();
            assert_ne!(first, second);
            assert_eq!(read().await, "first-pepper-value", "cached within the TTL");
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            assert_eq!(
                read().await,
                "second-pepper-value",
                "read again after the TTL"
            );

            let listed = list(&client, &env).await.unwrap();
            let shown = serde_json::to_string(&listed).unwrap();
            assert!(!shown.contains("pepper-value"), "{shown}");
            let status = listed
                .iter()
                .find(|s| s.secret.name == secret.name)
                .unwrap();
            assert_eq!(status.current_version.as_deref(), Some(second.as_str()));
            assert_eq!(status.versions.len(), 2, "{shown}");
            assert_eq!(
                get(&client, &secret).await.unwrap(),
                ("second-pepper-value".to_owned(), second)
            );

            remove(&client, &secret).await.unwrap();
            let error = get(&client, &secret).await.unwrap_err().to_string();
            assert!(error.contains("has no value"), "{error}");
            let error = set(&client, &env, &secret, "x")
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("does not exist in `local` yet"), "{error}");
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            let failed = reader.get(secret.name).await.unwrap_err();
            assert_eq!(failed.status(), 500);
        });
    }
}
