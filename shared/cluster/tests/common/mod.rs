//! What the cluster adapter's sandbox tests share: a sandbox on a manual clock with the real `kube` client
//! pointed at it, the scenario's alert as the pipeline sees it, and typed APIs.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;

use cluster::KubeCluster;
use domain::observation::AlertView;
use sandbox::{Sandbox, Scenario, SimClock};

/// Serves `scenario` on a manual clock and connects the adapter to it.
pub async fn start(scenario: Scenario) -> (Sandbox, KubeCluster) {
    let clock = SimClock::manual(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap());
    let sb = Sandbox::start(scenario, clock.clone(), 0).await.unwrap();
    let c = KubeCluster::for_url(&sb.url(), "sandbox", Arc::new(clock)).unwrap();
    (sb, c)
}

/// The scenario's alert as intake hands it to analysis.
pub fn alert(sb: &Sandbox) -> AlertView {
    let a = sb.alert();
    AlertView {
        title: a.title,
        service: "svc".into(),
        severity: a.severity,
        urgency: "high".into(),
        source_system: "test".into(),
        alertname: Some(a.alertname),
        details: a.details,
        labels: a.labels,
        fired_at: sb.now().to_string(),
    }
}

/// A namespaced API of the adapter's client.
pub fn api<K>(c: &KubeCluster, ns: &str) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    kube::Api::namespaced(c.client().clone(), ns)
}
