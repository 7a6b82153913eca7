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

/// The `moto_server` executable: `MOTO_SERVER` when set, else the pinned release installed on first use.
fn moto_server() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    crate::venv::tool("moto-venv", &format!("moto[server]=={MOTO_VERSION}"), MOTO_VERSION, "moto_server")
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

/// moto's own server, answering one request at a time (see [`Moto::start_serialized`]).
const SERIALIZED: &str = "import sys\n\
from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n\
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app), threaded=False, \
request_handler=MotoRequestHandler)\n";

impl Moto {
    pub async fn start() -> Moto {
        let bin = moto_server();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::launch(cmd, &bin, port).await
    }

    /// moto answering one request at a time. Real DynamoDB runs each `TransactWriteItems` atomically and in
    /// isolation; moto's threaded server does not (a cancelled transaction restores a snapshot of the whole table,
    /// undoing what concurrent transactions wrote meanwhile), so tests that race transactions use this one. Do not
    /// long-poll it: a waiting receive holds every other request.
    pub async fn start_serialized() -> Moto {
        let bin = moto_server();
        let python = bin.with_file_name("python");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(&python);
        cmd.args(["-c", SERIALIZED, "127.0.0.1", &port.to_string()]);
        Self::launch(cmd, &python, port).await
    }

    async fn launch(mut cmd: Command, bin: &std::path::Path, port: u16) -> Moto {
        let child = cmd
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
