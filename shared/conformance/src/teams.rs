//! The team store contract: conditional team creates and version-checked updates (exactly one of several racing
//! admins wins), API keys found by hash and listed per team, revocation, last-used times, the audit trail newest
//! first with cursors per team, and fixed-window rate counters.
#![allow(clippy::unwrap_used)]

use domain::ports::{RateCounter, StoreError, TeamStore};
use domain::{ApiKey, ControlEvent, Role, Team, TeamId, TeamSettings};

pub fn team(id: &str) -> Team {
    Team::new(TeamId::parse(id).unwrap(), id, TeamSettings::default(), "2026-12-01T00:00:00Z")
}

pub fn event(team: &str, at: &str, action: &str) -> ControlEvent {
    ControlEvent::new(&TeamId::parse(team).unwrap(), at, "cli", action, "t", serde_json::json!({}), "cor_test")
}

pub fn key(team: Option<&str>, id: &str, hash: &str, created: &str) -> ApiKey {
    ApiKey {
        id: id.into(),
        team: team.map(|t| TeamId::parse(t).unwrap()),
        name: format!("{id} name"),
        role: if team.is_some() { Role::Responder } else { Role::Operator },
        hash: hash.into(),
        prefix: "dok_0000".into(),
        created_at: created.into(),
        created_by: "cli".into(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    }
}

pub async fn teams_are_created_once_and_updated_by_version(s: impl TeamStore) {
    let t = team("payments");
    assert!(s.create_team(&t, &event("payments", "2026-12-01T00:00:00Z", "team.create")).await.unwrap());
    assert!(!s.create_team(&t, &event("payments", "2026-12-01T00:00:01Z", "team.create")).await.unwrap());
    assert!(s.create_team(&team("ledger"), &event("ledger", "2026-12-01T00:00:00Z", "team.create")).await.unwrap());
    assert_eq!(s.team(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.team(&TeamId::parse("nobody").unwrap()).await.unwrap(), None);
    let mut ids: Vec<String> = s.teams().await.unwrap().into_iter().map(|t| t.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["ledger", "payments"]);

    let mut next = t.clone();
    next.version = 2;
    next.settings.min_confidence = 0.9;
    next.settings_version = 2;
    s.update_team(1, &next, &event("payments", "2026-12-01T00:01:00Z", "settings.update")).await.unwrap();
    assert_eq!(s.team(&t.id).await.unwrap().unwrap().settings.min_confidence, 0.9);
    // An admin holding version 1 loses, and changes nothing.
    let mut stale = t.clone();
    stale.version = 2;
    stale.settings.min_confidence = 0.1;
    let err = s.update_team(1, &stale, &event("payments", "2026-12-01T00:02:00Z", "settings.update")).await;
    assert!(matches!(err, Err(StoreError::Stale(_))), "{err:?}");
    assert_eq!(s.team(&t.id).await.unwrap().unwrap().settings.min_confidence, 0.9);
    assert!(matches!(
        s.update_team(2, &next, &event("payments", "2026-12-01T00:03:00Z", "x")).await,
        Err(StoreError::Corrupt(_))
    ));
    let mut ghost = team("ghost");
    ghost.version = 2;
    assert!(matches!(
        s.update_team(1, &ghost, &event("ghost", "2026-12-01T00:03:00Z", "x")).await,
        Err(StoreError::Stale(_))
    ));
    let audit = s.audit(&t.id, 10, None).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["settings.update", "team.create"], "losing writes leave no audit event");
}

pub async fn racing_admins_one_wins(s: impl TeamStore + 'static) {
    let s = std::sync::Arc::new(s);
    let t = team("race");
    s.create_team(&t, &event("race", "2026-12-01T00:00:00Z", "team.create")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8u32 {
        let (s, mut next) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            next.version = 2;
            next.name = format!("name {i}");
            s.update_team(1, &next, &event("race", "2026-12-01T00:00:01Z", "team.update")).await.is_ok()
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(s.team(&t.id).await.unwrap().unwrap().version, 2);
}

pub async fn keys_are_found_by_hash_listed_per_team_and_revoked(s: impl TeamStore) {
    let a = key(Some("payments"), "key_a", "aa11", "2026-12-01T00:00:01Z");
    let b = key(Some("payments"), "key_b", "bb22", "2026-12-01T00:00:02Z");
    let other = key(Some("ledger"), "key_c", "cc33", "2026-12-01T00:00:03Z");
    let op = key(None, "key_op", "dd44", "2026-12-01T00:00:04Z");
    for k in [&b, &a, &other, &op] {
        s.create_key(k, &event(k.team.as_ref().map_or("payments", |t| t.as_str()), &k.created_at, "api_key.create"))
            .await
            .unwrap();
    }
    let dup = key(Some("ledger"), "key_d", "aa11", "2026-12-01T00:00:05Z");
    assert!(matches!(
        s.create_key(&dup, &event("ledger", "2026-12-01T00:00:05Z", "x")).await,
        Err(StoreError::Stale(_))
    ));
    assert_eq!(s.key_by_hash("aa11").await.unwrap(), Some(a.clone()));
    assert_eq!(s.key_by_hash("ffff").await.unwrap(), None);
    let pay = TeamId::parse("payments").unwrap();
    let ids: Vec<String> = s.keys(Some(&pay)).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["key_a", "key_b"], "oldest first, own team only");
    let ops: Vec<String> = s.keys(None).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ops, ["key_op"]);

    // Another team's key id is not found through this team.
    let ledger = TeamId::parse("ledger").unwrap();
    assert_eq!(
        s.revoke_key(Some(&ledger), "key_a", "2026-12-01T01:00:00Z", &event("ledger", "2026-12-01T01:00:00Z", "x"))
            .await
            .unwrap(),
        None
    );
    let revoked = s
        .revoke_key(
            Some(&pay),
            "key_a",
            "2026-12-01T01:00:00Z",
            &event("payments", "2026-12-01T01:00:00Z", "api_key.revoke"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at.as_deref(), Some("2026-12-01T01:00:00Z"));
    let again = s
        .revoke_key(
            Some(&pay),
            "key_a",
            "2026-12-01T02:00:00Z",
            &event("payments", "2026-12-01T02:00:00Z", "api_key.revoke"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at.as_deref(), Some("2026-12-01T01:00:00Z"), "the first revocation time is kept");
    assert_eq!(s.key_by_hash("aa11").await.unwrap().unwrap().revoked_at.as_deref(), Some("2026-12-01T01:00:00Z"));

    s.touch_key("bb22", "2026-12-01T03:00:00Z").await.unwrap();
    assert_eq!(s.key_by_hash("bb22").await.unwrap().unwrap().last_used_at.as_deref(), Some("2026-12-01T03:00:00Z"));
    s.touch_key("aa11", "2026-12-01T03:00:00Z").await.unwrap();
    let touched = s.key_by_hash("aa11").await.unwrap().unwrap();
    assert!(touched.revoked_at.is_some(), "touching never undoes a revocation");
    s.touch_key("none", "2026-12-01T03:00:00Z").await.unwrap();
}

pub async fn audit_is_newest_first_with_cursors_per_team(s: impl TeamStore) {
    for i in 0..5 {
        s.record(&event("payments", &format!("2026-12-01T00:00:0{i}Z"), &format!("a{i}"))).await.unwrap();
    }
    s.record(&event("ledger", "2026-12-01T00:00:09Z", "other")).await.unwrap();
    let pay = TeamId::parse("payments").unwrap();
    let p1 = s.audit(&pay, 2, None).await.unwrap();
    assert_eq!(p1.items.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["a4", "a3"]);
    let p2 = s.audit(&pay, 2, p1.next.as_deref()).await.unwrap();
    assert_eq!(p2.items.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["a2", "a1"]);
    let p3 = s.audit(&pay, 2, p2.next.as_deref()).await.unwrap();
    assert_eq!(p3.items.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["a0"]);
    assert_eq!(p3.next, None);
    assert!(matches!(s.audit(&pay, 2, Some("garbage")).await, Err(StoreError::Corrupt(_))));
    assert!(s.audit(&TeamId::parse("nobody").unwrap(), 5, None).await.unwrap().items.is_empty());
}

pub async fn rate_counters_count_per_key_and_window(s: impl RateCounter) {
    let now = 1_800_000_000;
    assert_eq!(s.count("ip:198.51.100.7", 60, now).await.unwrap(), 0);
    assert_eq!(s.hit("ip:198.51.100.7", 60, now).await.unwrap(), 1);
    assert_eq!(s.hit("ip:198.51.100.7", 60, now + 1).await.unwrap(), 2);
    assert_eq!(s.hit("ip:203.0.113.9", 60, now).await.unwrap(), 1, "keys count apart");
    assert_eq!(s.count("ip:198.51.100.7", 60, now + 2).await.unwrap(), 2);
    assert_eq!(s.hit("ip:198.51.100.7", 60, now + 60).await.unwrap(), 1, "a new window starts at one");
    assert_eq!(s.count("ip:198.51.100.7", 60, now + 61).await.unwrap(), 1);
}

/// Runs the team store suite; `$make` builds a fresh, empty store (it may `.await`).
#[macro_export]
macro_rules! team_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn teams() { $crate::teams::teams_are_created_once_and_updated_by_version($make).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn racing_admins() { $crate::teams::racing_admins_one_wins($make).await }
                #[tokio::test]
                async fn keys() { $crate::teams::keys_are_found_by_hash_listed_per_team_and_revoked($make).await }
                #[tokio::test]
                async fn audit() { $crate::teams::audit_is_newest_first_with_cursors_per_team($make).await }
                #[tokio::test]
                async fn rate_counters() { $crate::teams::rate_counters_count_per_key_and_window($make).await }
            }
        )*
    };
}
