//! The real `kube` client against the sandbox API server: resolution, snapshots, every action, verification.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cluster::KubeCluster;
use domain::action::{Action, ActionTarget, BeforeState, WorkloadRef};
use domain::observation::AlertView;
use domain::ports::{Clock, Cluster, ClusterError, Health};
use sandbox::{Sandbox, Scenario, SimClock};

#[derive(Debug)]
struct Sim(SimClock);
impl Clock for Sim {
    fn now(&self) -> jiff::Timestamp {
        self.0.now()
    }
}

async fn start(name: &str) -> (Sandbox, KubeCluster) {
    let clock = SimClock::manual(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap());
    let sb = Sandbox::start(Scenario::builtin(name).unwrap(), clock.clone(), 0).await.unwrap();
    let c = KubeCluster::for_url(&sb.url(), "sandbox", Arc::new(Sim(clock))).unwrap();
    (sb, c)
}

fn alert(sb: &Sandbox) -> AlertView {
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

fn wl(ns: &str, name: &str) -> WorkloadRef {
    WorkloadRef { namespace: ns.into(), name: name.into() }
}

#[tokio::test]
async fn resolves_a_pod_label_through_its_owners() {
    let (sb, c) = start("oom-limit").await;
    let w = c.resolve_workload(&alert(&sb)).await.unwrap();
    assert_eq!(w, Some(wl("ledger-export", "ledger-export-worker")));
}
