//! moto's AWS-API server on loopback, one per test: installed on first use into `target/moto-venv` (the pinned
//! version `.ci/setup` installs) unless `MOTO_SERVER` names a `moto_server` executable; started on a port the kernel picks (and reports);
//! killed when dropped.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

/// moto's own WSGI app on a port the kernel picks, printed once listening. Choosing a free port first and handing
/// it to `moto_server` races: a parallel test can take the port in between, and this test then talks to (or waits
/// for) someone else's moto. `argv[1]` is `threaded` or `serial` (see [`Moto::start_serialized`]).
const SERVER: &str = "import os, sys\n\
from werkzeug.serving import make_server\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n\
srv = make_server('127.0.0.1', 0, DomainDispatcherApplication(create_backend_app), threaded=sys.argv[1] == 'threaded', \
request_handler=MotoRequestHandler)\n\
os.environ['MOTO_PORT'] = str(srv.port)\n\
print(srv.port, flush=True)\n\
srv.serve_forever()\n";

impl Moto {
    pub async fn start() -> Moto {
        Self::launch("threaded").await
    }

    /// moto answering one request at a time. Real DynamoDB runs each `TransactWriteItems` atomically and in
    /// isolation; moto's threaded server does not (a cancelled transaction restores a snapshot of the whole table,
    /// undoing what concurrent transactions wrote meanwhile), so tests that race transactions use this one. Do not
    /// long-poll it: a waiting receive holds every other request.
    pub async fn start_serialized() -> Moto {
        Self::launch("serial").await
    }

    async fn launch(mode: &'static str) -> Moto {
        let python = moto_server().with_file_name("python");
        let mut child = Command::new(&python)
            .args(["-c", SERVER, mode])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdout = child.stdout.take().unwrap();
        let mut moto = Moto { child, url: String::new() };
        // The child prints its port once the socket listens; a blocking read on its own thread, bounded.
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("moto did not start within 60 s"))
        .unwrap()
        .unwrap();
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            let status = moto.child.try_wait().ok().flatten();
            panic!("moto did not report its port (printed {line:?}, exit {status:?})")
        });
        moto.url = format!("http://127.0.0.1:{port}");
        moto
    }
}
