//! Python tools the tests run (moto's server, cargo-lambda), each installed from PyPI at a pinned version into its
//! own venv under `target/` on first use — the same venvs `.ci/setup` installs. One installer at a time (a lock
//! file); a failed install fails the test that needed it with the reason.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The workspace root (this crate lives at `shared/fakes`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The path of `exe` in `target/<venv>`, installing `requirement` there first if the venv is not ready for
/// `version`.
pub fn tool(venv: &str, requirement: &str, version: &str, exe: &str) -> PathBuf {
    let dir = workspace_root().join("target").join(venv);
    let bin = dir.join("bin").join(exe);
    let ready = dir.join(format!(".installed-{version}"));
    let lock = workspace_root().join("target").join(format!("{venv}.lock"));
    let deadline = Instant::now() + Duration::from_secs(900);
    while !ready.exists() {
        std::fs::create_dir_all(workspace_root().join("target")).unwrap();
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {
                let ok = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().is_ok_and(|s| s.success())
                    && Command::new(dir.join("bin/pip"))
                        .args(["install", "--quiet", "--disable-pip-version-check", requirement])
                        .status()
                        .is_ok_and(|s| s.success());
                if ok {
                    std::fs::write(&ready, "").unwrap();
                }
                std::fs::remove_file(&lock).unwrap();
                assert!(ok, "installing {requirement} into {} failed (python3 and PyPI needed)", dir.display());
            }
            Err(_) => {
                assert!(Instant::now() < deadline, "waited too long for another test to install {requirement}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    bin
}

/// The cargo-lambda release the builds and the `cargo lambda watch` test use (its wheel carries zig).
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";

/// The directory holding the `cargo-lambda` executable (put it first on `PATH` so `cargo lambda` finds it).
pub fn cargo_lambda_bin_dir() -> PathBuf {
    let exe =
        tool("lambda-venv", &format!("cargo-lambda=={CARGO_LAMBDA_VERSION}"), CARGO_LAMBDA_VERSION, "cargo-lambda");
    exe.parent().unwrap().to_owned()
}
