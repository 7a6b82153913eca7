//! Verification's HTTP health checks behind the `HealthProbe` port. A cluster Service is asked through the API
//! server's service proxy (the name is never resolved here); an allow-listed host is resolved, every address it
//! resolves to is checked against the forbidden ranges (loopback, link-local and the metadata services, …), and
//! the request goes to the checked address only — a second lookup cannot swap in another one. Redirects are
//! answers, never followed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::health::{HealthTarget, is_forbidden_ip};
use domain::ports::{Cluster, HealthProbe};

/// How long one check may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct GuardedProbe {
    cluster: Arc<dyn Cluster>,
}

impl std::fmt::Debug for GuardedProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedProbe").finish_non_exhaustive()
    }
}

impl GuardedProbe {
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self { cluster }
    }
}

/// The first address of `host` a check may reach; `Err` when any is forbidden (a name that can resolve to the
/// metadata service is refused outright, not retried until it resolves elsewhere).
pub async fn checked_address(host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("{host} did not resolve within {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if let Some(bad) = addrs.iter().find(|a| is_forbidden_ip(a.ip())) {
        return Err(format!("{host} resolves to {}, which a health check may not reach", bad.ip()));
    }
    addrs.first().copied().ok_or_else(|| format!("{host} has no address"))
}

#[async_trait]
impl HealthProbe for GuardedProbe {
    async fn probe(&self, target: &HealthTarget) -> Result<u16, String> {
        match target {
            HealthTarget::Service { https, namespace, name, port, path } => {
                let service = if *https { format!("https:{name}:{port}") } else { format!("{name}:{port}") };
                self.cluster.proxy_get(namespace, &service, path).await.map_err(|e| e.to_string())
            }
            HealthTarget::External { url, host, port } => {
                let addr = checked_address(host, *port).await?;
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .resolve(host, addr)
                    .timeout(PROBE_TIMEOUT)
                    .connect_timeout(PROBE_TIMEOUT)
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?;
                let resp = client.get(url).send().await.map_err(|e| format!("GET {url}: {}", e.without_url()))?;
                Ok(resp.status().as_u16())
            }
        }
    }
}
