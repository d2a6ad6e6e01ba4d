//! Stages: copies of an environment's service stack with names, tags and state of their own
//! (`--stage NAME`, `infra::config::Config::for_stage`), for a developer or a pull request.
//! Here is what makes them cheap to keep track of and impossible to leak: the record each
//! deploy leaves (`stage.json`: created, last deployed, commit, URL), the list of them, their
//! destruction with the check that nothing tagged with the stage is left, and the sweep of
//! the idle ones.
//!
//! The record lives where the stage's state does, so every machine that can deploy a stage
//! sees it: beside the local state (`build/<env>/stages/<stage>/stage.json`) for an emulator or a
//! local backend, in the state bucket (`<key_prefix>/stages/<stage>/stage.json`) otherwise.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use xshell::Shell;

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::{git, process, progress};
use crate::services::local;
use crate::services::stacks::{state, teardown};
use infra::constructs::state::{STAGE_RECORD, STAGES_DIR};

/// What `stages` lists about a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub stage: String,
    pub env: String,
    /// The first deploy of the stage.
    pub created: DateTime<Utc>,
    /// The last successful deploy: what `stages sweep --older-than` measures idleness by.
    pub deployed: DateTime<Utc>,
    /// The commit the last deploy shipped, when it came from a git checkout.
    pub commit: Option<String>,
    pub url: String,
}

/// Where a stage's record is kept.
enum Store {
    Local,
    Bucket { bucket: String, key_prefix: String },
}

fn store(env: &Env) -> Result<Store> {
    Ok(match env.base().config()?.backend {
        infra::config::Backend::S3 { bucket, key_prefix } => Store::Bucket {
            bucket,
            key_prefix: key_prefix.trim_end_matches('/').to_owned(),
        },
        infra::config::Backend::Local => Store::Local,
    })
}

/// `<key_prefix>/stages/`: the stages' folder in the state bucket.
fn bucket_folder(key_prefix: &str) -> String {
    format!("{key_prefix}/{STAGES_DIR}/")
}

/// `<key_prefix>/stages/<stage>/stage.json`: a stage's record in the state bucket.
fn record_key(key_prefix: &str, stage: &str) -> String {
    format!("{}{stage}/{STAGE_RECORD}", bucket_folder(key_prefix))
}

/// An AWS call's failure, saying what was asked and AWS's whole answer.
fn aws_error<E: std::error::Error>(
    what: impl std::fmt::Display,
) -> impl FnOnce(E) -> anyhow::Error {
    // Every SDK crate re-exports the same type (`aws_smithy_types::error::display`).
    move |e| anyhow::anyhow!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))
}

fn stage_of(env: &Env) -> Result<&str> {
    env.stage
        .as_deref()
        .context("this needs a stage: pass --stage NAME")
}

/// Records a successful deploy of `env`'s stage, serving at `url`.
pub fn record_deploy(env: &Env, target: &Target, url: &str) -> Result<Record> {
    let stage = stage_of(env)?;
    let now = Utc::now();
    let store = store(env)?;
    let created = read(&store, env, target, stage)?.map_or(now, |r| r.created);
    let record = Record {
        stage: stage.to_owned(),
        env: env.name.clone(),
        created,
        deployed: now,
        commit: git::head(&env.root),
        url: url.to_owned(),
    };
    let text = serde_json::to_vec_pretty(&record)?;
    match store {
        Store::Local => process::write_json(&env.dir().join(STAGE_RECORD), &record)?,
        Store::Bucket { bucket, key_prefix } => process::block_on(async {
            target
                .s3()
                .await
                .put_object()
                .bucket(&bucket)
                .key(record_key(&key_prefix, stage))
                .content_type("application/json")
                .body(text.into())
                .send()
                .await
                .map(drop)
                .map_err(aws_error(format!(
                    "writing the record of stage `{stage}` to s3://{bucket}"
                )))
        })?,
    }
    Ok(record)
}

fn read(store: &Store, env: &Env, target: &Target, stage: &str) -> Result<Option<Record>> {
    match store {
        Store::Local => {
            let path = env.base().staged(stage).dir().join(STAGE_RECORD);
            Ok(path
                .exists()
                .then(|| process::read_json(&path))
                .transpose()?)
        }
        Store::Bucket { bucket, key_prefix } => process::block_on(async {
            let key = record_key(key_prefix, stage);
            let got = target
                .s3()
                .await
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await;
            match got {
                Ok(object) => {
                    let bytes = object.body.collect().await?.into_bytes();
                    let record = serde_json::from_slice(&bytes)
                        .with_context(|| format!("reading s3://{bucket}/{key}"))?;
                    Ok(Some(record))
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
                Err(e) => Err(aws_error(format!("reading s3://{bucket}/{key}"))(e)),
            }
        }),
    }
}

/// Every stage of `env` with a record, oldest deploy first.
pub fn list(env: &Env, target: &Target) -> Result<Vec<Record>> {
    let store = store(env)?;
    let names = match &store {
        Store::Local => env.base().local_stages(),
        Store::Bucket { bucket, key_prefix } => {
            let folder = bucket_folder(key_prefix);
            keys_under(target, bucket, &folder)?
                .iter()
                .filter_map(|key| {
                    let (stage, file) = key.strip_prefix(&folder)?.split_once('/')?;
                    (file == STAGE_RECORD).then(|| stage.to_owned())
                })
                .collect()
        }
    };
    let mut records = Vec::new();
    for name in names {
        if let Some(record) = read(&store, env, target, &name)? {
            records.push(record);
        }
    }
    records.sort_by_key(|r| r.deployed);
    Ok(records)
}

/// What destroying a stage proved.
pub struct Destroyed {
    /// How many kinds of resource were checked for leftovers (tagging API, then by name).
    pub checked: usize,
}

/// Destroys `env`'s stage: its local API server, its service stack, then checks that nothing
/// tagged with it (or named with its prefix, where the emulator's tagging API does not reach)
/// is left, and only then forgets its record and files. A leftover fails the destroy and keeps
/// the record, so the stage still lists and a sweep tries again.
pub fn destroy(sh: &Shell, env: &Env, target: &Target) -> Result<Destroyed> {
    let stage = stage_of(env)?.to_owned();
    if env.emulated {
        local::stop_api(sh, env)?;
    }
    teardown::service_stack(env, target)?;
    progress::step(format!("Checking that nothing of stage `{stage}` is left"));
    let (left, checked) = leftovers(env, target)?;
    if !left.is_empty() {
        bail!(
            "the stage `{}` was destroyed but {} resource(s) tagged or named with it remain:\n  {}\n\
             its record stays, so `cargo xtask stages` lists it; delete them, then destroy again",
            env.label(),
            left.len(),
            left.join("\n  ")
        );
    }
    delete_packages(env, target)?;
    match store(env)? {
        Store::Local => {}
        Store::Bucket { bucket, key_prefix } => process::block_on(async {
            target
                .s3()
                .await
                .delete_object()
                .bucket(&bucket)
                .key(record_key(&key_prefix, &stage))
                .send()
                .await
                .map(drop)
                .map_err(aws_error(format!("deleting the record of stage `{stage}`")))
        })?,
    }
    let dir = env.dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(Destroyed { checked })
}

/// Every key under `prefix` in `bucket`.
fn keys_under(target: &Target, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    process::block_on(async {
        let mut keys = Vec::new();
        let mut pages = target
            .s3()
            .await
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_error(format!("listing s3://{bucket}/{prefix}")))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    })
}

/// Deletes the stage's packages (`stages/<stage>/` of the shared artifacts bucket, where only
/// its deploys write), so destroyed stages leave no storage behind.
fn delete_packages(env: &Env, target: &Target) -> Result<()> {
    let stage = stage_of(env)?;
    let bucket = state::artifacts_bucket(env, target)?;
    let folder = format!("{STAGES_DIR}/{stage}/");
    let keys = keys_under(target, &bucket, &folder)?;
    process::block_on(async {
        let s3 = target.s3().await;
        for key in &keys {
            s3.delete_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .map_err(aws_error(format!("deleting s3://{bucket}/{key}")))?;
        }
        anyhow::Ok(())
    })?;
    let deleted = keys.len();
    progress::note(format!(
        "deleted {deleted} package(s) under s3://{bucket}/{folder}"
    ));
    Ok(())
}

/// What of `env`'s stage still exists: resources tagged `Stage = <stage>` in the environment
/// (the Resource Groups Tagging API, which AWS answers for every taggable resource and moto
/// for many), then by name the kinds the emulator's tagging API does not cover (functions,
/// tables, queues, log groups). Returns the leftovers and how many checks ran.
pub fn leftovers(env: &Env, target: &Target) -> Result<(Vec<String>, usize)> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let stage = stage_of(env)?;
    let prefix = env.prefix.clone();
    let log_prefix = format!("/aws/lambda/{prefix}");
    process::block_on(async {
        let config = target.sdk_config().await;
        let mut left = Vec::new();
        let tagging = aws_sdk_resourcegroupstagging::Client::new(&config);
        let mut pages = tagging
            .get_resources()
            .tag_filters(
                TagFilter::builder()
                    .key(infra::config::STAGE_TAG)
                    .values(stage)
                    .build(),
            )
            .tag_filters(
                TagFilter::builder()
                    .key("Environment")
                    .values(&env.name)
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws_error(format!(
                "asking the tagging API for resources of stage `{stage}`"
            )))?;
            left.extend(
                page.resource_tag_mapping_list()
                    .iter()
                    .filter_map(|m| m.resource_arn().map(str::to_owned)),
            );
        }
        let lambda = aws_sdk_lambda::Client::new(&config);
        let mut functions = lambda.list_functions().into_paginator().send();
        while let Some(page) = functions.next().await {
            let page = page.map_err(aws_error("listing functions"))?;
            left.extend(
                page.functions()
                    .iter()
                    .filter_map(|f| f.function_name())
                    .filter(|name| name.starts_with(&prefix))
                    .map(|name| format!("function {name}")),
            );
        }
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let mut tables = dynamodb.list_tables().into_paginator().items().send();
        while let Some(name) = tables.next().await {
            let name = name.map_err(aws_error("listing tables"))?;
            if name.starts_with(&prefix) {
                left.push(format!("table {name}"));
            }
        }
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queues = sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .send()
            .await
            .map_err(aws_error("listing queues"))?;
        left.extend(queues.queue_urls().iter().map(|url| format!("queue {url}")));
        let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
        let groups = logs
            .describe_log_groups()
            .log_group_name_prefix(&log_prefix)
            .send()
            .await
            .map_err(aws_error("listing log groups"))?;
        left.extend(
            groups
                .log_groups()
                .iter()
                .filter_map(|g| g.log_group_name())
                .map(|name| format!("log group {name}")),
        );
        left.sort();
        left.dedup();
        Ok((left, 5))
    })
}

/// The stages of `env` whose last deploy is older than `idle`, at `now`.
pub fn idle(records: &[Record], idle: Duration, now: DateTime<Utc>) -> Vec<&Record> {
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    records.iter().filter(|r| now - r.deployed > idle).collect()
}
