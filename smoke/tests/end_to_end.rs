//! smoke against a real local stack: the service's own binaries, run by the local API server,
//! against moto. No Terraform needed, no mocks.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn smoke_passes_against_a_real_local_stack_and_cleans_up() {
    let stack = support::Stack::start(false).await;
    let target = stack.target();
    assert_eq!(
        target.api_url,
        stack.server.url(),
        "the local server's state file is preferred"
    );

    let loads = smoke::Loads {
        burst: 4,
        ..smoke::Loads::default()
    };
    let report = smoke::run(&target, stack.dynamo(), &loads).await;
    println!("{}", report.text());
    assert!(report.ok(), "smoke failed:\n{}", report.text());
    let load = report.load.as_ref().expect("the load step ran");
    assert_eq!((load.users, load.errors), (4, 0));

    // Nothing left in either table.
    let dynamo = stack.dynamo();
    for table in ["users", "sessions"] {
        let scan = dynamo
            .scan()
            .table_name(format!("{}{table}", stack.prefix))
            .send()
            .await
            .unwrap();
        assert_eq!(
            scan.count(),
            0,
            "{table} table not empty after smoke: {:?}",
            scan.items()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_exits_non_zero_naming_the_step_when_users_is_broken() {
    let stack = support::Stack::start(true).await;
    let outputs = stack.outputs.clone();
    let endpoint = stack.emulator.endpoint().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_smoke"))
            .arg("--outputs")
            .arg(&outputs)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("running smoke")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        !output.status.success(),
        "smoke must fail against a broken users function"
    );
    assert!(
        stdout.contains("smoke FAILED at step `register user`"),
        "{stdout}"
    );
    assert!(stdout.contains("expected HTTP 201, got 502"), "{stdout}");
    assert!(
        stdout.contains("internal_error"),
        "the response is shown: {stdout}"
    );
    assert!(stdout.contains("\"url\""), "the request is shown: {stdout}");
    assert!(
        !stdout.contains("pw-"),
        "the password is not printed: {stdout}"
    );
}
