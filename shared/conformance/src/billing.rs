//! The billing contract: a metered create counts exactly one alert with the incident, all or nothing, and never
//! past the limit, whoever races; notices are claimed once; orders are created once and replaced only by the
//! next version; settling an order and adding its term to the account happen together, once.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use domain::TeamId;
use domain::billing::{BillingAccount, Meter, Metered, Notice, Order, OrderState, PlanId};
use domain::ports::{BillingStore, IncidentStore, StoreError};

use crate::store::incident;

fn meter(period: &str, limit: Option<u64>) -> Meter {
    Meter { period: period.into(), limit }
}

pub fn order(team: &str, id: &str, created: &str) -> Order {
    Order {
        id: id.into(),
        team_id: TeamId::parse(team).unwrap(),
        plan: PlanId::Pro,
        amount_paise: PlanId::Pro.spec().price_paise,
        provider: "mock".into(),
        state: OrderState::Created,
        version: 1,
        created_by: "key:k1".into(),
        created_at: created.into(),
        updated_at: created.into(),
        expires_at: "2026-12-01T01:00:00Z".into(),
        provider_order_id: None,
        redirect_url: None,
        paid_paise: None,
        transaction_id: None,
        error: None,
        term: None,
        checks: 0,
        history: vec![],
    }
}

pub async fn metered_creates_count_once_and_stop_at_the_limit<S: IncidentStore + BillingStore>(s: S) {
    let team = TeamId::parse("acme").unwrap();
    let month = meter("2026-12", Some(3));
    for n in 1..=3 {
        let (i, e) = incident("acme", n, &format!("2026-12-01T00:00:0{n}Z"));
        assert_eq!(s.create_metered(&i, &e, &month).await.unwrap(), Metered::Created, "alert {n}");
    }
    assert_eq!(s.usage(&team, "2026-12").await.unwrap(), 3);
    // A redelivery of a counted alert neither counts nor replaces it.
    let (again, e) = incident("acme", 1, "2026-12-01T00:09:00Z");
    assert_eq!(s.create_metered(&again, &e, &month).await.unwrap(), Metered::Exists);
    assert_eq!(s.get(&again.id).await.unwrap().unwrap().created_at, "2026-12-01T00:00:01Z");
    // Over the limit nothing is stored or counted.
    let (fourth, e) = incident("acme", 4, "2026-12-01T00:00:04Z");
    assert_eq!(s.create_metered(&fourth, &e, &month).await.unwrap(), Metered::OverQuota);
    assert_eq!(s.get(&fourth.id).await.unwrap(), None);
    assert_eq!(s.timeline(&fourth.id).await.unwrap(), vec![]);
    assert_eq!(s.usage(&team, "2026-12").await.unwrap(), 3);
    // An existing id is reported as such even when the period is full.
    assert_eq!(s.create_metered(&again, &e, &month).await.unwrap(), Metered::Exists);
    // Periods and teams count apart; an unlimited meter only counts.
    assert_eq!(s.create_metered(&fourth, &e, &meter("term:ord_1", Some(200))).await.unwrap(), Metered::Created);
    assert_eq!(s.usage(&team, "term:ord_1").await.unwrap(), 1);
    let (other, e) = incident("globex", 1, "2026-12-01T00:00:01Z");
    assert_eq!(s.create_metered(&other, &e, &month).await.unwrap(), Metered::Created);
    for n in 5..=8 {
        let (i, e) = incident("acme", n, "2026-12-02T00:00:00Z");
        assert_eq!(s.create_metered(&i, &e, &meter("term:ord_9", None)).await.unwrap(), Metered::Created);
    }
    assert_eq!(s.usage(&team, "term:ord_9").await.unwrap(), 4);
    assert_eq!(s.usage(&TeamId::parse("globex").unwrap(), "2026-12").await.unwrap(), 1);
    assert_eq!(s.usage(&TeamId::parse("initech").unwrap(), "2026-12").await.unwrap(), 0);
    // What was created is complete: listed, found by source id, with its first event.
    let listed = s.list(&team, 100, None).await.unwrap().items.len();
    assert_eq!(listed, 8);
    assert!(s.find_by_external_id(&team, "P2").await.unwrap().is_some());
    assert_eq!(s.timeline(&fourth.id).await.unwrap().len(), 1);
}

pub async fn racing_metered_creates_never_exceed_the_limit<S: IncidentStore + BillingStore + 'static>(s: S) {
    let s = Arc::new(s);
    let team = TeamId::parse("acme").unwrap();
    // Twenty distinct alerts with three left: exactly three are stored.
    let mut tasks = Vec::new();
    for n in 1..=20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (i, e) = incident("acme", n, "2026-12-01T00:00:00Z");
            s.create_metered(&i, &e, &meter("2026-12", Some(3))).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| **o == Metered::Created).count(), 3, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Metered::OverQuota).count(), 17);
    assert_eq!(s.usage(&team, "2026-12").await.unwrap(), 3);
    assert_eq!(s.list(&team, 100, None).await.unwrap().items.len(), 3);
    // Ten deliveries of one alert: one is stored, one is counted.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (i, e) = incident("acme", 99, "2026-12-01T00:00:00Z");
            s.create_metered(&i, &e, &meter("2027-01", Some(5))).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += usize::from(t.await.unwrap() == Metered::Created);
    }
    assert_eq!(created, 1);
    assert_eq!(s.usage(&team, "2027-01").await.unwrap(), 1);
}

pub async fn notices_are_claimed_once(s: impl BillingStore) {
    let team = TeamId::parse("acme").unwrap();
    assert!(s.claim_notice(&team, "2026-12", Notice::NearLimit).await.unwrap());
    assert!(!s.claim_notice(&team, "2026-12", Notice::NearLimit).await.unwrap());
    assert!(s.claim_notice(&team, "2026-12", Notice::LimitReached).await.unwrap());
    assert!(s.claim_notice(&team, "2027-01", Notice::NearLimit).await.unwrap());
    assert!(s.claim_notice(&TeamId::parse("globex").unwrap(), "2026-12", Notice::NearLimit).await.unwrap());
}

pub async fn orders_are_created_once_and_replaced_by_version(s: impl BillingStore) {
    let team = TeamId::parse("acme").unwrap();
    let a = order("acme", "ord_a", "2026-12-01T00:00:00Z");
    assert!(s.create_order(&a).await.unwrap());
    assert!(!s.create_order(&a).await.unwrap(), "an order id is used once");
    assert!(s.create_order(&order("acme", "ord_b", "2026-12-02T00:00:00Z")).await.unwrap());
    assert!(s.create_order(&order("globex", "ord_c", "2026-12-03T00:00:00Z")).await.unwrap());
    assert_eq!(s.order("ord_a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.order("ord_zz").await.unwrap(), None);
    let ids = |v: Vec<Order>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(ids(s.orders(&team, 10).await.unwrap()), ["ord_b", "ord_a"], "newest first, own team only");
    assert_eq!(ids(s.orders(&team, 1).await.unwrap()), ["ord_b"]);

    let mut pending = a.next("2026-12-01T00:00:01Z", "provider order created");
    pending.state = OrderState::Pending;
    s.update_order(&pending).await.unwrap();
    assert!(matches!(s.update_order(&pending).await, Err(StoreError::Stale(_))), "the same version twice");
    let mut failed = pending.next("2026-12-01T00:00:02Z", "failed");
    failed.state = OrderState::Failed;
    s.update_order(&failed).await.unwrap();
    let mut open = ids(s.open_orders().await.unwrap());
    open.sort();
    assert_eq!(open, ["ord_b", "ord_c"], "closed orders are not open");
    assert_eq!(s.order("ord_a").await.unwrap().unwrap().state, OrderState::Failed);
    let mut ghost = order("acme", "ord_ghost", "2026-12-01T00:00:00Z");
    ghost.version = 2;
    assert!(matches!(s.update_order(&ghost).await, Err(StoreError::Stale(_))), "no such order");
}

pub async fn settling_applies_once<S: BillingStore + 'static>(s: S) {
    let s = Arc::new(s);
    let team = TeamId::parse("acme").unwrap();
    assert_eq!(s.account(&team).await.unwrap(), None);
    let o = order("acme", "ord_a", "2026-12-01T00:00:00Z");
    s.create_order(&o).await.unwrap();
    let now: jiff::Timestamp = "2026-12-01T00:05:00Z".parse().unwrap();
    let settle = |mut account: BillingAccount| {
        let s = s.clone();
        let o = o.clone();
        async move {
            let term = account.add_term(o.plan, &o.id, now, &jiff::tz::TimeZone::UTC);
            let mut done = o.next("2026-12-01T00:05:00Z", "completed");
            done.state = OrderState::Completed;
            done.term = Some(term);
            s.settle(&done, &account).await
        }
    };
    // Two confirmations race from the same reads: exactly one applies.
    let (a, b) = tokio::join!(
        tokio::spawn(settle(BillingAccount::new(team.clone()))),
        tokio::spawn(settle(BillingAccount::new(team.clone())))
    );
    let results = [a.unwrap(), b.unwrap()];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(StoreError::Stale(_)))));
    let account = s.account(&team).await.unwrap().unwrap();
    assert_eq!((account.version, account.terms.len()), (1, 1));
    assert_eq!(s.order("ord_a").await.unwrap().unwrap().state, OrderState::Completed);
    // A later confirmation holding the first version of the order changes nothing, even with a fresh account.
    assert!(matches!(settle(account.clone()).await, Err(StoreError::Stale(_))));
    assert_eq!(s.account(&team).await.unwrap().unwrap(), account);
    assert_eq!(s.accounts().await.unwrap(), vec![account]);
}

/// Runs the billing contract against one adapter constructor.
#[macro_export]
macro_rules! billing_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn metering() { $crate::billing::metered_creates_count_once_and_stop_at_the_limit($make).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn racing_metering() { $crate::billing::racing_metered_creates_never_exceed_the_limit($make).await }
                #[tokio::test]
                async fn notices() { $crate::billing::notices_are_claimed_once($make).await }
                #[tokio::test]
                async fn orders() { $crate::billing::orders_are_created_once_and_replaced_by_version($make).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn settling() { $crate::billing::settling_applies_once($make).await }
            }
        )*
    };
}
