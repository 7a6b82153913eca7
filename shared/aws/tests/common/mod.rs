//! moto's server on loopback, one per test: installed on first use into `target/moto-venv` (pinned version)
//! unless `MOTO_SERVER` names a `moto_server` executable; started on a free port; killed when dropped.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto release the tests are written against.
pub const MOTO_VERSION: &str = "5.2.5";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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

    pub async fn config(&self) -> aws_config::SdkConfig {
        aws::local_config(&self.url).await
    }
}

/// An adapter together with the moto server it talks to, so the server lives exactly as long as the adapter.
pub struct Kept<T> {
    pub inner: T,
    pub moto: Moto,
}

#[async_trait::async_trait]
impl<T: domain::ports::IncidentStore> domain::ports::IncidentStore for Kept<T> {
    async fn record_delivery(&self, team: &domain::TeamId, key: &str) -> Result<bool, domain::ports::StoreError> {
        self.inner.record_delivery(team, key).await
    }
    async fn create(
        &self,
        incident: &domain::Incident,
        event: &domain::AuditEvent,
    ) -> Result<bool, domain::ports::StoreError> {
        self.inner.create(incident, event).await
    }
    async fn get(&self, id: &domain::IncidentId) -> Result<Option<domain::Incident>, domain::ports::StoreError> {
        self.inner.get(id).await
    }
    async fn commit(
        &self,
        prev: &domain::Incident,
        next: &domain::Incident,
        events: &[domain::AuditEvent],
    ) -> Result<(), domain::ports::StoreError> {
        self.inner.commit(prev, next, events).await
    }
    async fn list(
        &self,
        team: &domain::TeamId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<domain::ports::Page<domain::Incident>, domain::ports::StoreError> {
        self.inner.list(team, limit, cursor).await
    }
    async fn timeline(&self, id: &domain::IncidentId) -> Result<Vec<domain::AuditEvent>, domain::ports::StoreError> {
        self.inner.timeline(id).await
    }
    async fn list_active(&self) -> Result<Vec<domain::Incident>, domain::ports::StoreError> {
        self.inner.list_active().await
    }
    async fn find_by_external_id(
        &self,
        team: &domain::TeamId,
        external_id: &str,
    ) -> Result<Option<domain::IncidentId>, domain::ports::StoreError> {
        self.inner.find_by_external_id(team, external_id).await
    }
}

#[async_trait::async_trait]
impl<T: domain::ports::Secrets> domain::ports::Secrets for Kept<T> {
    async fn pagerduty_signing_secrets(
        &self,
        team: &domain::TeamId,
    ) -> Result<Vec<domain::ports::Secret>, domain::ports::SecretsError> {
        self.inner.pagerduty_signing_secrets(team).await
    }
}

/// A DynamoDB store on a fresh table of a fresh moto server.
pub async fn dynamo_store() -> Kept<aws::DynamoStore> {
    let moto = Moto::start().await;
    let client = aws::dynamodb::Client::new(&moto.config().await);
    aws::create_table(&client, "dreamops").await.unwrap();
    Kept { inner: aws::DynamoStore::new(client, "dreamops"), moto }
}
