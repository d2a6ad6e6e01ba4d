//! API contract fuzzing: schemathesis (PyPI) generates requests from the checked-in OpenAPI
//! document (`functions/openapi.json`) and sends them through the local server to the real
//! functions against moto. It must find no 5xx and no response the document does not allow.
//!
//! Skips, saying why, only when schemathesis cannot be installed (no PyPI); bounded by
//! `--max-examples` and `--max-time` so it stays under about two minutes.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_errors_or_contract_violations() {
    let bin = match tokio::task::spawn_blocking(|| {
        emulator::ensure_python_packages(&emulator::SCHEMATHESIS_REQUIREMENTS)
    })
    .await
    .unwrap()
    {
        Ok(bin) => bin,
        Err(e) => {
            println!("SKIPPED: schemathesis could not be installed into build/venv: {e}");
            return;
        }
    };
    let schema = support::workspace_root().join("functions/openapi.json");
    assert!(schema.exists(), "{} is missing", schema.display());

    let stack = support::Stack::start(false).await;
    let url = stack.server.url().to_string();
    let report_dir = stack.dir.join("schemathesis");
    let hooks = support::workspace_root().join("smoke/tests");
    std::fs::create_dir_all(&report_dir).expect("creating the schemathesis folder");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(bin.join("schemathesis"))
            .arg("run")
            .arg(&schema)
            .args(["--url", &url])
            .args(["--header", &format!("x-api-key: {}", support::API_KEY)])
            .args(["--checks", "all"])
            .args([
                "--max-examples",
                "12",
                "--max-time",
                "120",
                "--workers",
                "2",
                "--seed",
                "42",
            ])
            // The key is sent as a header on every request; generated key values would only
            // test API Gateway's 403, which the functions' document does not describe.
            .args(["--generation-with-security-parameters", "false"])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--request-timeout", "35", "--no-color"])
            .arg("--report-dir")
            .arg(&report_dir)
            // The session every operation but register and log-in needs (see the hooks).
            .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
            .env("PYTHONPATH", &hooks)
            .env("CONTRACT_FUZZ_URL", &url)
            .env("CONTRACT_FUZZ_API_KEY", support::API_KEY)
            // Its example cache lands in the working directory: keep it out of the source tree.
            .current_dir(&report_dir)
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "schemathesis found problems (output above)"
    );
}
