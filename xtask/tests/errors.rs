//! Failures the user will meet give one clear message and a non-zero exit.

mod common;

use std::net::TcpListener;

use common::*;

#[test]
fn an_unknown_environment_lists_the_known_ones() {
    let dir = scratch("bad-env");
    let out = xtask(&dir, &["deploy", "--env", "staging"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown environment `staging`"), "{err}");
    assert!(err.contains("local") && err.contains("prod"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn terraform_missing_says_what_to_install() {
    let dir = scratch("no-terraform");
    // A PATH with cargo but without terraform.
    let cargo_dir = std::path::Path::new(env!("CARGO"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = xtask_with(&dir, &["deploy"], |c| {
        c.env("PATH", cargo_dir);
    });
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("terraform was not found on PATH"), "{err}");
    assert!(err.contains("install"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_gone_emulator_whose_port_was_taken_is_replaced_not_reused() {
    let dir = scratch("port-taken");
    // Another program now listens on the port the recorded emulator had,
    // and the recorded pid is gone.
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = stranger.local_addr().unwrap().port();
    let state = serde_json::json!({ "pid": 999_999_999u32, "port": port, "endpoint": format!("http://127.0.0.1:{port}") });
    std::fs::create_dir_all(dir.join("local")).unwrap();
    std::fs::write(dir.join("local/moto.json"), state.to_string()).unwrap();

    let status = xtask(&dir, &["local", "status", "--json"]);
    assert!(
        !status.status.success(),
        "status must fail while the emulator is down"
    );
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["emulator"]["running"], false);

    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let new_port = up["port"].as_u64().unwrap() as u16;
    assert_ne!(new_port, port, "the stranger's port was reused");
    let down = stdout_json(&xtask(&dir, &["local", "down", "--json"]));
    assert_eq!(down["stopped_emulator"], up["pid"]);
    // The stranger was left alone.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
