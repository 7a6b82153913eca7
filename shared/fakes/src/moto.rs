//! moto's AWS-API server on loopback, one per test: installed on first use into `target/moto-venv` (the pinned
//! version `.ci/setup` installs) unless `MOTO_SERVER` names a `moto_server` executable; started on a free port;
//! killed when dropped.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto release the tests are written against.
pub const MOTO_VERSION: &str = "5.2.5";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// The install and the polling below run inside tests; their failures are test failures.

/// The `moto_server` executable, installing it first if needed (one installer at a time, by a lock file).
fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join("target/moto-venv");
    let bin = venv.join("bin/moto_server");
    let ready = venv.join(format!(".installed-{MOTO_VERSION}"));
    let lock = workspace_root().join("target/moto-venv.lock");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ready.exists() {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {
                let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
                    && Command::new(venv.join("bin/pip"))
                        .args([
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                            &format!("moto[server]=={MOTO_VERSION}"),
                        ])
                        .status()
                        .is_ok_and(|s| s.success());
                if ok {
                    std::fs::write(&ready, "").unwrap();
                }
                std::fs::remove_file(&lock).unwrap();
                assert!(
                    ok,
                    "installing moto[server]=={MOTO_VERSION} into {} failed (python3 and PyPI needed)",
                    venv.display()
                );
            }
            Err(_) => {
                assert!(Instant::now() < deadline, "waited too long for another test to install moto");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    bin
}

#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Moto {
        let bin = moto_server();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }
}
