//! Failures the user will meet give one clear message and a non-zero exit.

use std::net::TcpListener;

use crate::common::*;

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

/// No way to the AWS provider: the deploy stops at once with what to do, before it compiles
/// anything, starts an emulator or writes a state file.
#[test]
fn a_deploy_that_cannot_get_the_aws_provider_stops_before_compiling() {
    let dir = scratch("no-provider");
    let empty = dir.join("empty-mirror");
    std::fs::create_dir_all(&empty).unwrap();

    // A mirror that lacks the provider.
    let started = std::time::Instant::now();
    let out = xtask_with(&dir, &["deploy"], |c| {
        c.env("TF_PROVIDER_MIRROR", &empty);
    });
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("holds no registry.terraform.io/hashicorp/aws"),
        "{err}"
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );

    // No mirror anywhere Terraform looks, and the registry unreachable (through a proxy on a
    // closed port, so the outcome does not depend on this machine's network).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = xtask_with(&dir, &["deploy"], |c| {
        c.env_remove("TF_PROVIDER_MIRROR")
            .env("HOME", &empty)
            .env("XDG_DATA_DIRS", &empty)
            .env("HTTPS_PROXY", &proxy);
    });
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Terraform cannot get the hashicorp/aws provider")
            && err.contains("TF_PROVIDER_MIRROR"),
        "{err}"
    );
    for sign_of_work in ["Compiling", "Starting the AWS emulator", "Applying"] {
        assert!(!err.contains(sign_of_work), "it went on to work: {err}");
    }
    assert!(
        !dir.join("local").join("moto.json").exists(),
        "no emulator started"
    );
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

/// Runs a first deploy of `dir` with `-v` (Terraform's own lines stream, saying when the
/// first service resource exists) and calls `act` once, when Terraform has created part of
/// the service stack (its state half written). Returns how the deploy ended, its stderr and
/// stdout, and the time `act` ran.
fn deploy_acting_mid_apply(
    dir: &std::path::Path,
    bins: &str,
    act: impl FnOnce(u32),
) -> (
    std::process::ExitStatus,
    String,
    String,
    Option<std::time::Instant>,
) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "-v", "--json", "--no-serve", "--prebuilt", bins])
        .env("XTASK_BUILD_DIR", dir)
        .env_remove("XTASK_ENV")
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let (mut lines, mut applying) = (Vec::new(), false);
    let mut act = Some(act);
    let mut acted = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "the deploy did not end within 10 minutes:\n{}",
                    lines.join("\n")
                );
            }
        };
        applying |= line.contains("Applying the service stack");
        if applying
            && line.contains("Creation complete")
            && let Some(act) = act.take()
        {
            eprintln!(
                "--- acting {:.0} s into the deploy",
                started.elapsed().as_secs_f64()
            );
            acted = Some(Instant::now());
            act(child.id());
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let err = lines.join("\n");
    eprintln!(
        "--- deploy -> {status} after {:.0} s\n{err}",
        started.elapsed().as_secs_f64()
    );
    (status, err, stdout, acted)
}

/// The emulator is killed (SIGKILL) while Terraform applies the service stack: the deploy
/// fails with the hint that a re-run converges, not a panic, and the re-run does converge: a
/// fresh emulator, the stale state discarded, both stacks applied again.
#[test]
fn an_emulator_killed_mid_deploy_fails_clearly_and_a_rerun_converges() {
    let dir = scratch("emulator-dies");
    let _down = Down(dir.clone());
    let bins = small_binaries(&dir);
    let bins = bins.to_str().unwrap();
    let up = stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let moto_pid = up["pid"].as_u64().unwrap().to_string();

    let (status, err, stdout, killed) = deploy_acting_mid_apply(&dir, bins, |_| {
        let status = std::process::Command::new("kill")
            .args(["-KILL", &moto_pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {moto_pid}");
    });
    assert!(
        killed.is_some(),
        "the service stack apply never started:\n{err}"
    );
    assert!(
        !status.success(),
        "the deploy succeeded without its emulator"
    );
    assert!(
        err.contains("the emulator stopped during the deploy")
            && err.contains("run `cargo xtask deploy` again"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout.trim().is_empty(), "no result on stdout: {stdout}");
    shared_providers_stopped(&dir);

    let again = xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", bins],
    );
    let again_err = stderr(&again);
    let report = stdout_json(&again);
    assert_eq!(report["stacks"]["bootstrap"], "applied", "{again_err}");
    assert_eq!(report["stacks"]["service"], "applied", "{again_err}");
    assert!(
        again_err.contains("starting a new one"),
        "the dead emulator was replaced: {again_err}"
    );
    let moto: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("local/moto.json")).unwrap())
            .unwrap();
    assert_ne!(moto["pid"].to_string(), moto_pid, "a new emulator runs");

    // Converged: a third deploy has nothing to do.
    let third = stdout_json(&xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", bins],
    ));
    assert_eq!(third["stacks"]["service"], "unchanged");

    let down = stdout_json(&xtask(&dir, &["local", "down", "--json"]));
    assert_eq!(down["stopped_emulator"], moto["pid"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A job cancelled while Terraform applies (the runner's SIGINT, then SIGTERM 7.5 s later):
/// xtask asks Terraform to stop (one SIGINT), waits for it, and fails naming the signal,
/// within the runner's 7.5 s; Terraform writes its state and releases its lock, so the next
/// deploy is not stopped by a held lock. (What Terraform was creating at that moment may
/// exist without being in the state: the provider cancels its in-flight calls. The re-run
/// then fails on "already exists" for those, which is Terraform's own limit.)
#[test]
fn a_deploy_interrupted_mid_apply_stops_terraform_gracefully_and_leaves_no_lock() {
    let dir = scratch("interrupted-apply");
    let _down = Down(dir.clone());
    let bins = small_binaries(&dir);
    let bins = bins.to_str().unwrap();
    stdout_json(&xtask(&dir, &["local", "up", "--json"]));
    let (status, err, stdout, interrupted) = deploy_acting_mid_apply(&dir, bins, |pid| {
        let pid = pid.to_string();
        // As the runner does: SIGINT, and SIGTERM 7.5 s later if the process still runs.
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(7500));
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
        });
    });
    let took = interrupted
        .expect("the service stack apply never started")
        .elapsed();
    eprintln!("--- the deploy exited {took:?} after SIGINT");
    // Within the runner's window, unless the provider was in a wait it does not cancel: an SQS
    // queue's creation polls its attributes for about 25 s whatever the context says, and
    // Terraform waits for it before it writes the state (Terraform's and the provider's limit,
    // like the "already exists" above). The log says whether that happened.
    let apply_log = std::fs::read_to_string(dir.join("local/logs/terraform-service-apply.log"))
        .unwrap_or_default();
    let uncancellable = apply_log
        .split_once("Interrupt received")
        .is_some_and(|(_, after)| after.contains("Still creating..."));
    if uncancellable {
        eprintln!("--- a creation the provider does not cancel was in flight: no window to hold");
    } else {
        assert!(
            took < std::time::Duration::from_millis(7500),
            "exited {took:?} after SIGINT, past the runner's window"
        );
    }
    assert!(!status.success(), "an interrupted deploy fails");
    assert!(
        err.contains("stopped by SIGINT") && err.contains("terraform apply (service)"),
        "{err}"
    );
    assert!(
        err.contains("Interrupt received"),
        "Terraform itself was asked to stop: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout.trim().is_empty(), "no result on stdout: {stdout}");
    shared_providers_stopped(&dir);
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            assert!(
                !path.to_string_lossy().ends_with(".lock.info"),
                "a state lock was left behind: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    // The next deploy gets the lock and reads the state Terraform wrote on its way out.
    let again = xtask(
        &dir,
        &["deploy", "--json", "--no-serve", "--prebuilt", bins],
    );
    let again_err = stderr(&again);
    assert!(
        !again_err.contains("state lock") && !again_err.contains("Failed to load state"),
        "{again_err}"
    );
    assert!(
        again.status.success() || again_err.contains("already exists"),
        "the re-run fails, if at all, only on what the interrupted apply was creating: \
         {again_err}"
    );
    drop(_down);
    let _ = std::fs::remove_dir_all(dir);
}
