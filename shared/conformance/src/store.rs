//! The incident store contract: conditional creates and commits, exactly one winner among racing workers,
//! newest-first listing with cursors per team, delivery keys recorded once per team, and the incidents with
//! recently applied actions found whatever came after them.
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
/// `prev` with one more action, applied at `at` and in `status`.
fn acted(prev: &Incident, at: &str, status: domain::action::ActionStatus) -> Incident {
    use domain::action::{Action, ActionRecord, WorkloadRef};
    let mut next = prev.clone();
    next.version += 1;
    let workload = WorkloadRef::deployment("shop", "api");
    let mut a = ActionRecord::planned(domain::ActionId::generate(), Action::Restart { workload });
    a.status = status;
    a.applied_at = Some(at.into());
    next.actions.push(a);
    next
}

fn ms(rfc3339: &str) -> u64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64
}

pub async fn acted_since_finds_recent_actions_past_any_number_of_new_incidents(s: impl IncidentStore) {
    use domain::action::ActionStatus;
    let (a, ev) = incident("t", 1, "2026-01-01T00:00:00Z");
    let (b, _) = incident("t", 2, "2026-01-01T00:01:00Z");
    let (c, _) = incident("t", 3, "2026-01-01T00:02:00Z");
    let (other, _) = incident("u", 4, "2026-01-01T00:00:00Z");
    for i in [&a, &b, &c, &other] {
        assert!(s.create(i, &ev).await.unwrap());
    }
    let a2 = acted(&a, "2026-01-01T00:10:00Z", ActionStatus::Applied);
    s.commit(&a, &a2, &[]).await.unwrap();
    // Undone still counts (it was applied); planned does not.
    let b2 = acted(&b, "2026-01-01T00:20:00Z", ActionStatus::Undone);
    s.commit(&b, &b2, &[]).await.unwrap();
    let c2 = acted(&c, "2026-01-01T00:30:00Z", ActionStatus::Planned);
    s.commit(&c, &c2, &[]).await.unwrap();
    let o2 = acted(&other, "2026-01-01T00:15:00Z", ActionStatus::Applied);
    s.commit(&other, &o2, &[]).await.unwrap();
    // A storm of newer incidents without actions.
    for n in 10..260 {
        let (i, ev) = incident("t", n, "2026-01-01T01:00:00Z");
        s.create(&i, &ev).await.unwrap();
    }
    let t = TeamId::parse("t").unwrap();
    let ids = |v: Vec<Incident>| v.into_iter().map(|i| i.id.to_string()).collect::<Vec<_>>();
    let since = ms("2026-01-01T00:00:00Z");
    assert_eq!(ids(s.acted_since(&t, since, 100).await.unwrap()), vec![b.id.to_string(), a.id.to_string()]);
    assert_eq!(s.acted_since(&t, since, 100).await.unwrap()[1], a2, "the whole incident, as stored");
    assert_eq!(ids(s.acted_since(&t, since, 1).await.unwrap()), vec![b.id.to_string()], "newest action first");
    assert_eq!(ids(s.acted_since(&t, ms("2026-01-01T00:15:00Z"), 100).await.unwrap()), vec![b.id.to_string()]);
    assert!(s.acted_since(&t, ms("2026-01-01T00:20:00.001Z"), 100).await.unwrap().is_empty());
    let u = TeamId::parse("u").unwrap();
    assert_eq!(ids(s.acted_since(&u, since, 100).await.unwrap()), vec![other.id.to_string()], "per team");
    // A second action on the same incident: it is listed once, by its newest action.
    let a3 = acted(&a2, "2026-01-01T00:40:00Z", ActionStatus::Applied);
    s.commit(&a2, &a3, &[]).await.unwrap();
    assert_eq!(ids(s.acted_since(&t, since, 100).await.unwrap()), vec![a.id.to_string(), b.id.to_string()]);
    // A proposal in flight (awaiting approval) counts from when the incident moved, before anything is applied.
    let (d, ev) = incident("t", 5, "2026-01-01T00:45:00Z");
    s.create(&d, &ev).await.unwrap();
    let mut waiting = moved(&d, State::AwaitingApproval);
    waiting.updated_at = "2026-01-01T00:50:00Z".into();
    s.commit(&d, &waiting, &[]).await.unwrap();
    let found = s.acted_since(&t, ms("2026-01-01T00:45:00Z"), 100).await.unwrap();
    assert_eq!(ids(found), vec![d.id.to_string()]);
}

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
                #[tokio::test]
                async fn acted_since() {
                    $crate::store::acted_since_finds_recent_actions_past_any_number_of_new_incidents($make).await
                }
            }
        )*
    };
}
