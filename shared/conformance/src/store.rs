//! The incident store contract: conditional creates and commits, exactly one winner among racing workers,
//! newest-first listing with cursors per team, delivery keys recorded once per team.
#![allow(clippy::unwrap_used)]

use domain::incident::{Actor, AlertSource, AuditEvent, Incident};
use domain::ports::{IncidentStore, StoreError};
use domain::state::State;
use domain::{CorrelationId, IncidentId, TeamId};

pub fn incident(team: &str, n: u32, created: &str) -> (Incident, AuditEvent) {
    let id = IncidentId::from_string(format!("inc_{team}_{n}"));
    let inc = Incident {
        id: id.clone(),
        team_id: TeamId::parse(team).unwrap(),
        correlation_id: CorrelationId::from_string("c"),
        state: State::Received,
        version: 1,
        created_at: created.into(),
        updated_at: created.into(),
        source: AlertSource::PagerDuty {
            incident_id: format!("P{n}"),
            incident_number: Some(u64::from(n)),
            html_url: None,
            service_id: None,
            webhook_id: format!("w{n}"),
            event_id: format!("e{n}"),
        },
        alert: serde_json::from_value(serde_json::json!({
            "title": "t", "service": "s", "severity": "error", "urgency": "high", "source_system": "pagerduty",
            "alertname": null, "details": "", "labels": {}, "fired_at": created
        }))
        .unwrap(),
        workload: None,
        diagnosis: None,
        decision: None,
        actions: vec![],
        verification: None,
        fingerprint: None,
        outcome: None,
    };
    let ev = AuditEvent {
        incident_id: id,
        at: created.into(),
        actor: Actor::Agent,
        stage: "intake".into(),
        from: None,
        to: Some(State::Received),
        what: "received".into(),
        why: String::new(),
        correlation_id: CorrelationId::from_string("c"),
    };
    (inc, ev)
}

pub fn moved(prev: &Incident, to: State) -> Incident {
    let mut n = prev.clone();
    n.version += 1;
    n.state = to;
    n
}

pub async fn create_is_conditional_and_commits_check_version_and_state(s: impl IncidentStore) {
    let (a, ev) = incident("t", 1, "2026-01-01T00:00:00Z");
    assert!(s.create(&a, &ev).await.unwrap());
    assert!(!s.create(&a, &ev).await.unwrap(), "second create is a duplicate");
    let analyzing = moved(&a, State::Analyzing);
    s.commit(&a, &analyzing, std::slice::from_ref(&ev)).await.unwrap();
    // A second worker holding the old version loses.
    assert!(matches!(s.commit(&a, &moved(&a, State::Analyzing), &[]).await, Err(StoreError::Conflict(_))));
    assert!(matches!(s.commit(&a, &a, &[]).await, Err(StoreError::Corrupt(_))), "version must be bumped");
    assert_eq!(s.get(&a.id).await.unwrap().unwrap().state, State::Analyzing);
    assert_eq!(s.timeline(&a.id).await.unwrap().len(), 2);
    assert_eq!(s.find_by_external_id(&a.team_id, "P1").await.unwrap(), Some(a.id.clone()));
    assert_eq!(s.list_active().await.unwrap().len(), 1);
    s.commit(&analyzing, &moved(&analyzing, State::Escalated), &[]).await.unwrap();
    assert!(s.list_active().await.unwrap().is_empty());
    let missing = incident("t", 2, "2026-01-01T00:00:00Z").0;
    assert!(matches!(s.commit(&missing, &moved(&missing, State::Analyzing), &[]).await, Err(StoreError::NotFound(_))));
}

pub async fn racing_workers_one_wins(s: impl IncidentStore + 'static) {
    let s = std::sync::Arc::new(s);
    let (a, ev) = incident("t", 1, "2026-01-01T00:00:00Z");
    s.create(&a, &ev).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (s, a) = (s.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            let to = if n % 2 == 0 { State::Analyzing } else { State::Ignored(domain::IgnoreReason::Duplicate) };
            s.commit(&a, &moved(&a, to), &[]).await.is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(s.get(&a.id).await.unwrap().unwrap().version, 2);
}

pub async fn lists_newest_first_with_cursors_per_team(s: impl IncidentStore) {
    for n in 0..7 {
        let (i, e) = incident("t", n, &format!("2026-01-01T00:00:0{n}Z"));
        s.create(&i, &e).await.unwrap();
    }
    let (other, e) = incident("other", 99, "2026-01-01T00:00:09Z");
    s.create(&other, &e).await.unwrap();
    let (late, e) = incident("u", 98, "2026-01-01T00:00:09Z");
    s.create(&late, &e).await.unwrap();
    let team = TeamId::parse("t").unwrap();
    let p1 = s.list(&team, 3, None).await.unwrap();
    let ids: Vec<_> = p1.items.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(ids, ["inc_t_6", "inc_t_5", "inc_t_4"]);
    let p2 = s.list(&team, 3, p1.next.as_deref()).await.unwrap();
    assert_eq!(p2.items.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(), ["inc_t_3", "inc_t_2", "inc_t_1"]);
    let p3 = s.list(&team, 3, p2.next.as_deref()).await.unwrap();
    assert_eq!(p3.items.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(), ["inc_t_0"]);
    assert_eq!(p3.next, None);
    assert!(matches!(s.list(&team, 3, Some("garbage")).await, Err(StoreError::Corrupt(_))));
    assert!(s.list(&TeamId::parse("nobody").unwrap(), 3, None).await.unwrap().items.is_empty());
}

pub async fn deliveries_are_recorded_once_per_team(s: impl IncidentStore) {
    let t = TeamId::parse("t").unwrap();
    assert!(s.record_delivery(&t, "w-1").await.unwrap());
    assert!(!s.record_delivery(&t, "w-1").await.unwrap());
    assert!(s.record_delivery(&TeamId::parse("u").unwrap(), "w-1").await.unwrap());
}

/// Runs the store suite as one `#[tokio::test]` per property; `$make` builds a fresh, empty store (it may
/// `.await`).
#[macro_export]
macro_rules! store_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn create_and_commit() {
                    $crate::store::create_is_conditional_and_commits_check_version_and_state($make).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn racing_workers() { $crate::store::racing_workers_one_wins($make).await }
                #[tokio::test]
                async fn listing() { $crate::store::lists_newest_first_with_cursors_per_team($make).await }
                #[tokio::test]
                async fn deliveries() { $crate::store::deliveries_are_recorded_once_per_team($make).await }
            }
        )*
    };
}
