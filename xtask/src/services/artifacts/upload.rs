//! Uploading packages to the artifacts bucket: only keys not already there.
//! Keys are content hashes, so "present" means "identical".

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;

use crate::base::aws::Target;
use crate::base::env::Env;
use crate::base::progress;
use crate::services::artifacts::package::{self, Manifest};

/// What the upload did, by function name.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Uploaded {
    pub uploaded: Vec<String>,
    pub already_present: Vec<String>,
}

pub fn missing_only(
    env: &Env,
    target: &Target,
    bucket: &str,
    manifest: &Manifest,
) -> Result<Uploaded> {
    progress::step(format!("Uploading changed packages to s3://{bucket}"));
    crate::base::process::block_on(async {
        let s3 = target.s3().await;
        let mut result = Uploaded::default();
        for (name, pkg) in &manifest.functions {
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(&pkg.s3_key)
                .send()
                .await;
            match head {
                Ok(_) => {
                    progress::note(format!("{name}: {} already uploaded", pkg.s3_key));
                    result.already_present.push(name.clone());
                    continue;
                }
                Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => {}
                Err(err) => {
                    return Err(anyhow::anyhow!(
                        "checking s3://{bucket}/{}: {}",
                        pkg.s3_key,
                        aws_sdk_s3::error::DisplayErrorContext(&err)
                    ));
                }
            }
            let path = package::zip_path(env, pkg);
            let body = ByteStream::from_path(&path)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            s3.put_object()
                .bucket(bucket)
                .key(&pkg.s3_key)
                .content_type("application/zip")
                .body(body)
                .send()
                .await
                .map_err(|err| {
                    anyhow::anyhow!(
                        "uploading {} to s3://{bucket}/{}: {}",
                        path.display(),
                        pkg.s3_key,
                        aws_sdk_s3::error::DisplayErrorContext(&err)
                    )
                })?;
            progress::note(format!(
                "{name}: uploaded {} ({})",
                pkg.s3_key,
                package::human_bytes(pkg.bytes)
            ));
            result.uploaded.push(name.clone());
        }
        Ok(result)
    })
}
