//! Applies the `local` environment against moto on loopback, bootstrap then service (with small
//! dummy function zips uploaded in between), proves the next plan is empty (idempotent) even
//! after a person set every declared secret's value, and that the value is in no state file or
//! output after a refresh, then destroys and proves nothing is left in state: with the VPC
//! option (the shipped `local` goes through the same steps in the life-cycle scenario, driven by
//! `cargo xtask`).

mod common;

use base64::Engine;
use infra::config::Vpc;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Instant;

/// A real zip holding an executable `bootstrap`, as xtask packages functions.
fn dummy_zip() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(b"#!/bin/sh\necho test\n").unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

/// PUT an object over plain HTTP, path-style. moto does not verify signatures but wants a
/// SigV4-shaped Authorization header to treat the request as the test account's.
fn put_object(endpoint: &str, bucket: &str, key: &str, body: &[u8]) {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    let head = format!(
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nContent-Type: application/zip\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "PUT {bucket}/{key} failed:\n{response}"
    );
}

/// A Secrets Manager call (JSON 1.1) to moto over plain HTTP, as `cargo xtask secret set` makes
/// it with the SDK; returns the response body.
fn secrets_manager(endpoint: &str, action: &str, body: &serde_json::Value) -> String {
    let host = endpoint.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = TcpStream::connect(host).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: secretsmanager.{action}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=00\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{action} failed:\n{response}"
    );
    response
}

/// Every file under `dir` (state files, plans, the synthesized JSON) that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            // Providers and modules Terraform installs under `.terraform/`.
            if path.is_dir() && !path.ends_with(".terraform") {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn state_is_empty(dir: &Path, rc: &Path) {
    let list = common::terraform_ok(dir, rc, &["state", "list", "-no-color"]);
    assert!(
        list.trim().is_empty(),
        "destroy left resources in {}:\n{list}",
        dir.display()
    );
}

fn apply_plan_destroy(name: &str, mut config: infra::Config, vpc: Option<Vpc>) {
    config.options.vpc = vpc;
    let started = Instant::now();
    let moto = emulator::Emulator::start().expect("start moto");
    let endpoint = moto.endpoint().to_owned();
    let dir = common::scratch(&format!("apply-{name}"));
    let rc = common::cli_config(&dir);
    let options = infra::stack::StackOptions {
        local_state_dir: dir.join("state").display().to_string(),
        local_endpoint: endpoint.clone(),
    };
    let out = infra::synth_with(&config, &options, &dir.join("cdktf.out")).unwrap();
    let bootstrap = out.stack_dir("bootstrap").unwrap();
    let service = out.stack_dir("service").unwrap();
    let endpoint_var = format!("aws_endpoint={endpoint}");

    let step = |what: &str| println!("[{name}] {what} at {:.0?}", started.elapsed());
    common::terraform_ok(bootstrap, &rc, &["init", "-input=false", "-no-color"]);
    common::terraform_ok(
        bootstrap,
        &rc,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var",
            &endpoint_var,
        ],
    );
    step("bootstrap applied");
    let bucket = common::terraform_ok(bootstrap, &rc, &["output", "-raw", "artifacts_bucket"]);

    let zip = dummy_zip();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip));
    let mut vars = serde_json::Map::new();
    vars.insert("aws_endpoint".into(), endpoint.clone().into());
    vars.insert("artifacts_bucket".into(), bucket.clone().into());
    for f in infra::routes::FunctionName::all() {
        let key = format!("functions/{f}/test.zip");
        put_object(&endpoint, &bucket, &key, &zip);
        vars.insert(format!("artifact_key_{f}"), key.into());
        vars.insert(format!("artifact_hash_{f}"), hash.clone().into());
    }
    let var_file = dir.join("artifacts.tfvars.json");
    std::fs::write(&var_file, serde_json::Value::Object(vars).to_string()).unwrap();
    let var_file_arg = format!("-var-file={}", var_file.display());

    common::terraform_ok(service, &rc, &["init", "-input=false", "-no-color"]);
    common::terraform_ok(
        service,
        &rc,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_file_arg,
        ],
    );
    step("service applied");
    // Read as every reader of the outputs file reads them: a real `terraform output -json`
    // is the type's Terraform-shaped form.
    let read: deploy_files::Outputs =
        serde_json::from_str(&common::terraform_ok(service, &rc, &["output", "-json"])).unwrap();
    assert_eq!(read.users_table, "prod-service-users");
    assert_eq!(read.alias_name, "live");
    assert_eq!(read.region, "us-east-1");
    assert!(!read.api_url.ends_with('/'));
    // Every client's key, as the local API server and smoke read them from the outputs file.
    let clients = &read.api_clients;
    assert_eq!(clients.len(), config.api.clients.len(), "{name}");
    for (listed, client) in clients.iter().zip(&config.api.clients) {
        assert_eq!(listed.name, client.name, "{name}");
        assert!(!listed.key_id.is_empty(), "{name}");
        assert_eq!(
            (listed.rate_per_second, listed.burst, listed.quota_per_day),
            (
                client.rate_per_second,
                client.burst,
                client.quota_per_day.map(u64::from)
            ),
            "{name}"
        );
        assert!(
            !listed.key_value.is_empty(),
            "{name}: no key for {}",
            client.name
        );
    }
    assert_eq!(
        read.api_key_value, clients[0].key_value,
        "{name}: api_key_value is the first client's"
    );

    // A person sets every declared secret (`cargo xtask secret set`): Terraform neither wants
    // to change it (the plan below stays empty) nor copies the value into its state or outputs
    // when it refreshes.
    let value = format!("secret-value-{}", std::process::id());
    let declared = infra::constructs::secrets::declared();
    assert!(!declared.is_empty(), "users and sessions declare a secret");
    for name in declared.keys() {
        let id = infra::constructs::secrets::aws_name(config.names(), name);
        secrets_manager(
            &endpoint,
            "PutSecretValue",
            &serde_json::json!({ "SecretId": id, "SecretString": value }),
        );
    }
    common::terraform_ok(
        service,
        &rc,
        &[
            "apply",
            "-refresh-only",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_file_arg,
        ],
    );
    let outputs = common::terraform_ok(service, &rc, &["output", "-json"]);
    assert!(
        !outputs.contains(&value),
        "{name}: a secret value in the outputs"
    );
    assert_eq!(
        files_holding(&dir, &value),
        Vec::<String>::new(),
        "{name}: files holding a secret value"
    );
    // The search reads the state: the secrets' names are there.
    let first =
        infra::constructs::secrets::aws_name(config.names(), declared.keys().next().unwrap());
    assert!(
        files_holding(&dir, &first)
            .iter()
            .any(|f| f.ends_with(".tfstate")),
        "{name}: no state file names {first}"
    );
    step("secrets set, in no state");

    let plan = common::terraform(
        service,
        &rc,
        &[
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            &var_file_arg,
        ],
    );
    assert_eq!(
        plan.status.code(),
        Some(0),
        "the plan after apply is not empty:\n{}\n{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    step("plan empty");

    common::terraform_ok(
        service,
        &rc,
        &[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            &var_file_arg,
        ],
    );
    state_is_empty(service, &rc);
    common::terraform_ok(
        bootstrap,
        &rc,
        &[
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var",
            &endpoint_var,
        ],
    );
    state_is_empty(bootstrap, &rc);
    step("destroyed");
}

/// `local` with the VPC option, plus a trusted client with a daily quota beside its public `app`
/// (no quota): each client gets its own key and usage plan on moto. `local` as shipped is
/// applied, planned and destroyed by the life-cycle scenario
/// (`xtask/tests/life_cycle/full_cycle.rs`), through `cargo xtask` as a user runs it.
#[test]
fn local_with_vpc_applies_is_idempotent_and_destroys_cleanly() {
    let vpc = Vpc {
        cidr: "10.0.0.0/16".into(),
        az_count: 2,
        nat_per_az: true,
        flow_logs: true,
    };
    let mut config = infra::load_config("local").unwrap();
    config.api.clients.push(infra::config::Client {
        name: "billing-sync".into(),
        rate_per_second: 5.0,
        burst: 10,
        quota_per_day: Some(20_000),
        trusted: true,
    });
    apply_plan_destroy("vpc", config, Some(vpc));
}
