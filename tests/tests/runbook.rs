//! The runbook is read, not only written: two incidents with the same fingerprint in one sandbox. A fix that held
//! raises confidence in the same fix next time; a fix that did not hold is not proposed again, and the escalation
//! says what was tried and when.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::action::ActionKind;
use domain::ports::Clock;
use domain::{Incident, IncidentId, State, TeamId, TeamSettings};
use dreamops::adapters::ConfigSecrets;
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use pipeline::runbook::FixResult;
use sandbox::{Sandbox, Scenario, SimClock};

struct Loop {
    sandbox: Sandbox,
    sim: SimClock,
    rt: Runtime,
    secret: String,
}

async fn start(scenario: &str, settings: TeamSettings) -> Loop {
    let sim = SimClock::manual(jiff::Timestamp::now().round(jiff::Unit::Second).unwrap());
    let sandbox = Sandbox::start(Scenario::builtin(scenario).unwrap(), sim.clone(), 0).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(sim.clone());
    let cluster = cluster::KubeCluster::for_url(&sandbox.url(), "sandbox", clock.clone()).unwrap();
    let secret = "runbook-test".to_owned();
    let rt = Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster),
        ConfigSecrets::single(TeamId::default_team(), &secret),
        pipeline::StaticTeams { default: settings, ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    );
    Loop { sandbox, sim, rt, secret }
}

impl Loop {
    /// Fires the scenario's alert as it renders now (a new PagerDuty incident) and runs the loop until the
    /// incident ends.
    async fn fire(&self, pd_incident: &str) -> Incident {
        let alert = self.sandbox.alert();
        let mut labels = alert.labels.clone();
        labels.insert("alertname".into(), alert.alertname.clone());
        self.rt.sinks.pager.register_alert(pd_incident, labels);
        let service = self.sandbox.with_world(|w| w.deployments.keys().next().cloned().unwrap());
        let (status, id) = integration_tests::trigger(&self.rt.deps, &self.secret, pd_incident, &service).await;
        assert_eq!(status, 202);
        self.drive(&id.unwrap()).await
    }

    async fn drive(&self, id: &IncidentId) -> Incident {
        for _ in 0..500 {
            self.rt.run_due().await;
            let inc = self.rt.deps.store.get(id).await.unwrap().unwrap();
            if inc.state.is_terminal() {
                return inc;
            }
            match self.rt.queue.next_due() {
                Some(due) if due > self.sim.now() => {
                    self.sandbox.advance(due.duration_since(self.sim.now()).unsigned_abs())
                }
                Some(_) => {}
                None => return inc,
            }
        }
        panic!("incident {id} did not end");
    }
}

#[tokio::test]
async fn a_fix_that_held_raises_confidence_in_the_same_fix_next_time() {
    // Recurrence within an hour would stop a second fix; the leak takes about five hours to come back.
    let settings = TeamSettings { recurrence_window_secs: 3600, ..TeamSettings::autonomous() };
    let l = start("memory-leak", settings).await;
    let first = l.fire("QRUNBOOK1").await;
    assert_eq!(first.state, State::Resolved, "{:?}", first.outcome);
    assert_eq!(first.diagnosis.as_ref().unwrap().proposal.action, ActionKind::Restart);
    let book = l.rt.deps.runbook.list(&TeamId::default_team()).await.unwrap();
    assert_eq!(book.len(), 1);
    assert_eq!((book[0].result, book[0].action_kind), (FixResult::Verified, Some(ActionKind::Restart)));

    // The restarted pods leak again.
    l.sandbox.advance(Duration::from_secs(5 * 3600 + 40 * 60));
    let second = l.fire("QRUNBOOK2").await;
    assert_eq!(second.fingerprint, first.fingerprint, "the same fault");
    let d2 = second.diagnosis.clone().unwrap();
    assert_eq!(d2.proposal.action, ActionKind::Restart);
    let learned = d2.evidence.iter().find(|e| e.starts_with("runbook:")).expect("the evidence cites the runbook");
    assert!(learned.contains(&first.id.to_string()), "{learned}");
    // "... confidence 0.80 -> 0.88": the rules' own confidence, raised by the fix that held.
    let (before, after) = learned.rsplit_once("confidence ").unwrap().1.split_once(" -> ").unwrap();
    let (before, after): (f64, f64) = (before.parse().unwrap(), after.parse().unwrap());
    assert!(after > before + 0.05, "{learned}");
    assert!((d2.confidence - after).abs() < 0.005, "{} vs {learned}", d2.confidence);
    assert_eq!(second.state, State::Resolved, "{:?}", second.outcome);
    assert_eq!(l.rt.deps.runbook.list(&TeamId::default_team()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_fix_that_did_not_hold_is_not_proposed_again() {
    let l = start("fix-does-not-hold", TeamSettings::autonomous()).await;
    let first = l.fire("QRUNBOOK3").await;
    assert_eq!(first.state, State::RolledBack, "{:?}", first.outcome);
    assert_eq!(first.diagnosis.as_ref().unwrap().proposal.action, ActionKind::RaiseMemoryLimit);
    // The failure is learned too.
    let book = l.rt.deps.runbook.list(&TeamId::default_team()).await.unwrap();
    assert_eq!(book.len(), 1);
    assert_eq!((book[0].result, book[0].action_kind), (FixResult::DidNotHold, Some(ActionKind::RaiseMemoryLimit)));
    assert_eq!(book[0].incident_id, first.id.to_string());

    // The container still OOMs at its restored limit; the same alert fires again a while later.
    l.sandbox.advance(Duration::from_secs(1800));
    let second = l.fire("QRUNBOOK4").await;
    assert_eq!(second.fingerprint, first.fingerprint, "the same fault");
    let d2 = second.diagnosis.clone().unwrap();
    assert_eq!(d2.proposal.action, ActionKind::Escalate, "{}", d2.summary);
    assert!(d2.summary.contains("did not hold"), "{}", d2.summary);
    assert!(d2.summary.contains(&first.id.to_string()), "the escalation says which incident tried it: {}", d2.summary);
    assert!(d2.summary.contains(&book[0].learned_at), "and when: {}", d2.summary);
    assert_eq!(second.state, State::Escalated);
    assert!(second.actions.is_empty(), "nothing was changed the second time");
    let limit = l.sandbox.with_world(|w| integration_tests::memory_limit(&w.deployments["report-builder"]));
    assert_eq!(limit.as_deref(), Some("128Mi"));
}
