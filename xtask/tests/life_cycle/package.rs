//! Packaging is reproducible and the ELF check accepts what runs on Lambda
//! and rejects what does not, through the real `cargo xtask package`.

use crate::common::*;

fn manifest(dir: &std::path::Path, bins: &std::path::Path) -> serde_json::Value {
    stdout_json(&xtask(
        dir,
        &["package", "--json", "--prebuilt", bins.to_str().unwrap()],
    ))
}

#[test]
fn two_packagings_of_the_same_binary_are_byte_identical() {
    let a = scratch("pkg-a");
    let b = scratch("pkg-b");
    let bins = small_binaries(&a);
    let first = manifest(&a, &bins);
    // Different build folder, different mtimes: same bytes all the same.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = manifest(&b, &bins);
    for f in FUNCTIONS.iter() {
        let (x, y) = (&first["functions"][f], &second["functions"][f]);
        assert_eq!(x["sha256"], y["sha256"], "{f}");
        assert_eq!(
            x["s3_key"],
            format!("functions/{f}/{}.zip", x["sha256"].as_str().unwrap())
        );
        let za = std::fs::read(a.join("dist").join(format!("{f}.zip"))).unwrap();
        let zb = std::fs::read(b.join("dist").join(format!("{f}.zip"))).unwrap();
        assert_eq!(za, zb, "{f}.zip differs");
    }
    // The manifest on disk is the contract's format.
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("dist/manifest.json")).unwrap())
            .unwrap();
    let h = &on_disk["functions"]["health"];
    for key in ["zip", "sha256", "s3_key", "source_code_hash"] {
        assert!(h[key].is_string(), "manifest lacks {key}: {on_disk}");
    }
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn our_own_binary_passes_the_lambda_check() {
    let dir = scratch("elf-ok");
    let bins = dir.join("bins");
    std::fs::create_dir_all(&bins).unwrap();
    // The functions' release binaries when built (CI builds them first),
    // else a small system executable.
    let release = workspace_root().join("target").join("release");
    for name in FUNCTIONS.iter() {
        let built = release.join(name);
        let source = if built.exists() {
            built
        } else {
            "/bin/true".into()
        };
        std::fs::copy(source, bins.join(name)).unwrap();
    }
    let out = xtask(&dir, &["package", "--prebuilt", bins.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

/// Replaces `from` by `to` (same length) everywhere in the file.
fn patch(path: &std::path::Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let mut hits = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            hits += 1;
        }
        i += 1;
    }
    assert!(
        hits > 0,
        "{} not found in {}",
        String::from_utf8_lossy(from),
        path.display()
    );
    std::fs::write(path, bytes).unwrap();
}

fn rejected(name: &str, damage: impl FnOnce(&std::path::Path)) -> String {
    let dir = scratch(name);
    let bins = small_binaries(&dir);
    damage(&bins.join("users"));
    let out = xtask(&dir, &["package", "--prebuilt", bins.to_str().unwrap()]);
    assert!(!out.status.success(), "a damaged binary was accepted");
    assert!(
        !dir.join("dist/manifest.json").exists(),
        "nothing is packaged after a failed check"
    );
    let _ = std::fs::remove_dir_all(dir);
    stderr(&out)
}

#[test]
fn a_binary_needing_a_newer_glibc_is_rejected() {
    let err = rejected("elf-glibc", |p| patch(p, b"GLIBC_2.2.5", b"GLIBC_2.99."));
    assert!(err.contains("users") && err.contains("GLIBC_2.99"), "{err}");
    assert!(err.contains("2.34"), "{err}");
}

#[test]
fn a_binary_needing_a_library_al2023_lacks_is_rejected() {
    let err = rejected("elf-lib", |p| patch(p, b"libc.so.6\0", b"libz.so.1\0"));
    assert!(err.contains("libz.so.1") && err.contains("lacks"), "{err}");
}

#[test]
fn a_binary_for_the_wrong_machine_is_rejected() {
    let err = rejected("elf-machine", |p| {
        let mut bytes = std::fs::read(p).unwrap();
        // e_machine, little endian, at offset 18: EM_AARCH64 on an x86_64 env (or back).
        let aarch64 = 183u16.to_le_bytes();
        let x86_64 = 62u16.to_le_bytes();
        let new = if bytes[18..20] == x86_64 {
            aarch64
        } else {
            x86_64
        };
        bytes[18..20].copy_from_slice(&new);
        std::fs::write(p, bytes).unwrap();
    });
    assert!(err.contains("but the function runs on"), "{err}");
}
