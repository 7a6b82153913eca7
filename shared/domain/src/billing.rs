//! Plans, billing periods, usage and orders (design §7). Plans are data; amounts are in paise.
//!
//! A team without a paid term is on Free, whose period is the calendar month in the deployment's billing time
//! zone. A paid plan runs one month from its activation (a *term*), then the team falls back to Free unless the
//! plan was renewed. Usage is counted per period; the count is reserved in the same transaction that creates the
//! incident (see `IncidentStore::create_metered`).

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::ids::TeamId;

/// The plans, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanId {
    Free,
    Starter,
    Pro,
    Enterprise,
}

/// One plan: its price per month and how many alerts a period includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanSpec {
    pub id: PlanId,
    pub name: &'static str,
    /// Price of one month, in paise (₹1 = 100 paise).
    pub price_paise: u64,
    /// Alerts per period; `None` is unlimited.
    pub alerts: Option<u64>,
}

/// The plan table. The only place prices and limits are written.
pub const PLANS: [PlanSpec; 4] = [
    PlanSpec { id: PlanId::Free, name: "Free", price_paise: 0, alerts: Some(3) },
    PlanSpec { id: PlanId::Starter, name: "Starter", price_paise: 99_900, alerts: Some(50) },
    PlanSpec { id: PlanId::Pro, name: "Pro", price_paise: 299_900, alerts: Some(200) },
    PlanSpec { id: PlanId::Enterprise, name: "Enterprise", price_paise: 999_900, alerts: None },
];

impl PlanId {
    pub fn spec(self) -> &'static PlanSpec {
        match self {
            Self::Free => &PLANS[0],
            Self::Starter => &PLANS[1],
            Self::Pro => &PLANS[2],
            Self::Enterprise => &PLANS[3],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Starter => "starter",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        PLANS.iter().map(|p| p.id).find(|p| p.as_str() == s)
    }

    pub fn is_paid(self) -> bool {
        self.spec().price_paise > 0
    }
}

impl std::fmt::Display for PlanId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats paise as rupees with Indian digit grouping, e.g. `₹2,999`, `₹1,00,000` or `₹12.50`.
pub fn rupees(paise: u64) -> String {
    let whole = (paise / 100).to_string();
    let (head, tail) = whole.split_at(whole.len().saturating_sub(3));
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = head;
    while rest.len() > 2 {
        let (a, b) = rest.split_at(rest.len() - 2);
        groups.insert(0, b);
        rest = a;
    }
    if !rest.is_empty() {
        groups.insert(0, rest);
    }
    groups.push(tail);
    let grouped = groups.join(",");
    match paise % 100 {
        0 => format!("₹{grouped}"),
        p => format!("₹{grouped}.{p:02}"),
    }
}

/// One paid month of a plan, bought by one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Term {
    pub plan: PlanId,
    /// RFC 3339, inclusive.
    pub start: String,
    /// RFC 3339, exclusive.
    pub end: String,
    /// The order that paid for it.
    pub order_id: String,
}

impl Term {
    fn span(&self) -> Option<(Timestamp, Timestamp)> {
        Some((self.start.parse().ok()?, self.end.parse().ok()?))
    }
}

/// Terms kept on an account (older ones stay on their orders).
const TERMS_KEPT: usize = 24;

/// A team's paid terms. Absent (or empty) means Free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BillingAccount {
    pub team_id: TeamId,
    /// Bumped by one on every change; writes are conditional on it.
    pub version: u64,
    pub terms: Vec<Term>,
}

impl BillingAccount {
    pub fn new(team_id: TeamId) -> Self {
        Self { team_id, version: 0, terms: Vec::new() }
    }

    /// The term in force at `now`, if any.
    pub fn active(&self, now: Timestamp) -> Option<&Term> {
        self.terms
            .iter()
            .filter(|t| t.span().is_some_and(|(s, e)| s <= now && now < e))
            .max_by(|a, b| a.start.cmp(&b.start))
    }

    /// The paid term that ends last, if it has not ended by `now` (the active one or a renewal queued after it).
    pub fn last_paid(&self, now: Timestamp) -> Option<&Term> {
        self.terms.iter().filter(|t| t.span().is_some_and(|(_, e)| e > now)).max_by_key(|t| t.span().map(|(_, e)| e))
    }

    /// Adds the term a completed order buys and returns it. A plan equal to or below the last paid one is a
    /// renewal and starts when that one ends, as does anything bought while a renewal is already queued (a paid
    /// term is never cut short by another purchase than an upgrade of the one in force); a higher plan than the
    /// one in force, with nothing queued, is an upgrade that starts now and ends that term (without proration: the
    /// checkout says so before the customer pays).
    pub fn add_term(&mut self, plan: PlanId, order_id: &str, now: Timestamp, tz: &TimeZone) -> Term {
        let start = match self.last_paid(now).and_then(|t| Some((t.plan, t.span()?))) {
            Some((last, (s, e))) if last >= plan || s > now => e,
            Some(_) => {
                for t in &mut self.terms {
                    if let Some((s, e)) = t.span()
                        && s <= now
                        && e > now
                    {
                        t.end = now.to_string();
                    }
                }
                now
            }
            None => now,
        };
        let end = start.to_zoned(tz.clone()).checked_add(1.month()).map(|z| z.timestamp()).unwrap_or(start);
        let term = Term { plan, start: start.to_string(), end: end.to_string(), order_id: order_id.to_owned() };
        self.terms.retain(|t| t.span().is_some_and(|(s, e)| s < e));
        self.terms.push(term.clone());
        if self.terms.len() > TERMS_KEPT {
            let extra = self.terms.len() - TERMS_KEPT;
            self.terms.drain(..extra);
        }
        self.version += 1;
        term
    }
}

/// The billing period a moment falls in: what the team's alerts are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Period {
    /// The usage counter's key: `YYYY-MM` for a Free month, `term:<order id>` for a paid term.
    pub key: String,
    pub plan: PlanId,
    pub start: String,
    pub end: String,
    /// Alerts included; `None` is unlimited.
    pub limit: Option<u64>,
}

/// The period of `now` for a team with `account` (`None`: never paid), months reckoned in `tz`.
pub fn period_at(account: Option<&BillingAccount>, now: Timestamp, tz: &TimeZone) -> Period {
    if let Some(t) = account.and_then(|a| a.active(now)) {
        return Period {
            key: format!("term:{}", t.order_id),
            plan: t.plan,
            start: t.start.clone(),
            end: t.end.clone(),
            limit: t.plan.spec().alerts,
        };
    }
    let zoned = now.to_zoned(tz.clone());
    let start = zoned.first_of_month().and_then(|z| z.start_of_day()).unwrap_or(zoned.clone());
    let end = start.checked_add(1.month()).unwrap_or(start.clone());
    Period {
        key: format!("{:04}-{:02}", zoned.year(), zoned.month()),
        plan: PlanId::Free,
        start: start.timestamp().to_string(),
        end: end.timestamp().to_string(),
        limit: PlanId::Free.spec().alerts,
    }
}

/// What a metered create reserves: one alert of `period`, refused at `limit` (`None`: unlimited, only counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub period: String,
    pub limit: Option<u64>,
}

/// The outcome of a metered create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    /// The incident was stored and one alert counted.
    Created,
    /// An incident with this id exists already: nothing was stored or counted.
    Exists,
    /// The period's alerts are used up: nothing was stored or counted.
    OverQuota,
}

/// Announcements made at most once per period (or per paid term, for a renewal reminder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Notice {
    /// 80% of the period's alerts used.
    NearLimit,
    /// Every alert of the period used: the next ones are ignored.
    LimitReached,
    /// An alert was ignored because the period's alerts were used up.
    Blocked,
    /// The paid term ends in 3 days and no renewal follows it.
    RenewalDue,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NearLimit => "near_limit",
            Self::LimitReached => "limit_reached",
            Self::Blocked => "blocked",
            Self::RenewalDue => "renewal_due",
        }
    }
}

/// Where a payment order stands. `Created` and `Pending` are open; the rest never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Written before the payment provider was called; the provider may or may not know it yet.
    Created,
    /// The provider has the order; the customer has not finished paying.
    Pending,
    /// Paid, confirmed with the provider's status API, and the plan applied.
    Completed,
    /// The payment failed or was abandoned.
    Failed,
    /// The provider's order expired without a payment.
    Expired,
    /// The provider reported a payment that does not match the order (amount): not applied, the operator is told.
    Flagged,
}

impl OrderState {
    pub fn is_open(self) -> bool {
        matches!(self, Self::Created | Self::Pending)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Flagged => "flagged",
        }
    }
}

/// One step in an order's life, for its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrderEvent {
    pub at: String,
    pub what: String,
}

/// A payment order for one month of a plan. Its id is the provider's `merchantOrderId`, unique and written
/// before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Order {
    pub id: String,
    pub team_id: TeamId,
    pub plan: PlanId,
    /// From the plan table when the order was written; never from the client.
    pub amount_paise: u64,
    /// `phonepe`, `phonepe-v1` or `mock`.
    pub provider: String,
    pub state: OrderState,
    /// Bumped by one on every change; writes are conditional on it.
    pub version: u64,
    /// Who started the checkout (a principal).
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// When the provider's order expires (RFC 3339); open orders are checked until then.
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_order_id: Option<String>,
    /// Where the customer pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    /// The amount the provider reported paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_paise: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The term the payment bought, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<Term>,
    /// Status checks made so far.
    #[serde(default)]
    pub checks: u32,
    #[serde(default)]
    pub history: Vec<OrderEvent>,
}

/// Events kept on an order.
const HISTORY_KEPT: usize = 50;

impl Order {
    /// The next version of this order, with `what` recorded at `at`.
    pub fn next(&self, at: &str, what: impl Into<String>) -> Order {
        let mut o = self.clone();
        o.version += 1;
        o.updated_at = at.to_owned();
        o.history.push(OrderEvent { at: at.to_owned(), what: what.into() });
        if o.history.len() > HISTORY_KEPT {
            o.history.remove(1);
        }
        o
    }
}

/// A message on the `billing` queue (consumed by the `quota` function).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BillingMessage {
    /// Check an order's status with the provider and apply the result. `check` counts the scheduled checks so
    /// far (0 for a callback's prompt check), which sets the next delay while the order stays pending.
    Confirm { order_id: String, check: u32, reason: ConfirmReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmReason {
    /// The provider called back.
    Callback,
    /// A scheduled re-check of a pending order (a lost callback still confirms).
    Scheduled,
    /// The daily reconciliation of orders left open.
    Reconcile,
}

impl BillingMessage {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn order_id(&self) -> &str {
        match self {
            Self::Confirm { order_id, .. } => order_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ist() -> TimeZone {
        TimeZone::get("Asia/Kolkata").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn plans_are_the_published_table() {
        let table: Vec<(PlanId, u64, Option<u64>)> = PLANS.iter().map(|p| (p.id, p.price_paise, p.alerts)).collect();
        assert_eq!(
            table,
            [
                (PlanId::Free, 0, Some(3)),
                (PlanId::Starter, 99_900, Some(50)),
                (PlanId::Pro, 299_900, Some(200)),
                (PlanId::Enterprise, 999_900, None)
            ]
        );
        assert_eq!(rupees(299_900), "₹2,999");
        assert_eq!(rupees(1_250), "₹12.50");
        assert_eq!(rupees(10_000_000), "₹1,00,000");
        assert_eq!(rupees(99), "₹0.99");
        assert_eq!(PlanId::parse("pro"), Some(PlanId::Pro));
        assert_eq!(PlanId::parse("Pro"), None);
    }

    #[test]
    fn free_months_roll_over_in_the_billing_time_zone() {
        // 31 Dec 2026 19:00 UTC is already 1 Jan 2027 00:30 in India.
        let p = period_at(None, ts("2026-12-31T19:00:00Z"), &ist());
        assert_eq!((p.key.as_str(), p.plan, p.limit), ("2027-01", PlanId::Free, Some(3)));
        assert_eq!((p.start.as_str(), p.end.as_str()), ("2026-12-31T18:30:00Z", "2027-01-31T18:30:00Z"));
        let p = period_at(None, ts("2026-12-31T18:29:59Z"), &ist());
        assert_eq!(p.key, "2026-12");
        let utc = period_at(None, ts("2026-12-31T19:00:00Z"), &TimeZone::UTC);
        assert_eq!(utc.key, "2026-12");
    }

    #[test]
    fn a_paid_term_runs_one_month_then_falls_back_to_free() {
        let tz = ist();
        let mut a = BillingAccount::new(TeamId::default_team());
        let bought = ts("2026-12-10T06:00:00Z");
        let term = a.add_term(PlanId::Pro, "ord_1", bought, &tz);
        assert_eq!((term.start.as_str(), term.end.as_str()), ("2026-12-10T06:00:00Z", "2027-01-10T06:00:00Z"));
        let p = period_at(Some(&a), ts("2027-01-10T05:59:59Z"), &tz);
        assert_eq!((p.key.as_str(), p.plan, p.limit), ("term:ord_1", PlanId::Pro, Some(200)));
        let p = period_at(Some(&a), ts("2027-01-10T06:00:00Z"), &tz);
        assert_eq!((p.key.as_str(), p.plan), ("2027-01", PlanId::Free));
    }

    #[test]
    fn renewals_queue_after_the_term_and_upgrades_start_now() {
        let tz = TimeZone::UTC;
        let mut a = BillingAccount::new(TeamId::default_team());
        a.add_term(PlanId::Starter, "o1", ts("2026-12-01T00:00:00Z"), &tz);
        let renewal = a.add_term(PlanId::Starter, "o2", ts("2026-12-28T00:00:00Z"), &tz);
        assert_eq!((renewal.start.as_str(), renewal.end.as_str()), ("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"));
        // A lower plan bought during a higher one also waits for it.
        let mut b = BillingAccount::new(TeamId::default_team());
        b.add_term(PlanId::Pro, "p1", ts("2026-12-01T00:00:00Z"), &tz);
        assert_eq!(b.add_term(PlanId::Starter, "s1", ts("2026-12-05T00:00:00Z"), &tz).start, "2027-01-01T00:00:00Z");
        // An upgrade starts at once and ends what it replaces.
        let mut d = BillingAccount::new(TeamId::default_team());
        d.add_term(PlanId::Starter, "d1", ts("2026-12-01T00:00:00Z"), &tz);
        let up = d.add_term(PlanId::Enterprise, "d2", ts("2026-12-15T00:00:00Z"), &tz);
        assert_eq!((up.start.as_str(), up.end.as_str()), ("2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"));
        let now = ts("2026-12-20T00:00:00Z");
        assert_eq!(d.active(now).map(|t| t.plan), Some(PlanId::Enterprise));
        assert_eq!(period_at(Some(&d), now, &tz).limit, None);
        assert_eq!(d.terms[0].end, "2026-12-15T00:00:00Z", "the Starter month ends when Enterprise starts");
        assert_eq!(d.version, 2);
        // With a renewal already queued, even a higher plan waits for it: no paid term is lost.
        let mut c = BillingAccount::new(TeamId::default_team());
        c.add_term(PlanId::Starter, "c1", ts("2026-12-01T00:00:00Z"), &tz);
        c.add_term(PlanId::Starter, "c2", ts("2026-12-20T00:00:00Z"), &tz);
        let late = c.add_term(PlanId::Pro, "c3", ts("2026-12-21T00:00:00Z"), &tz);
        assert_eq!(late.start, "2027-02-01T00:00:00Z");
        assert_eq!(c.terms.len(), 3);
        assert_eq!(a.terms.len(), 2);
    }

    #[test]
    fn billing_messages_round_trip() {
        let m = BillingMessage::Confirm { order_id: "ord_1".into(), check: 2, reason: ConfirmReason::Scheduled };
        assert_eq!(m.encode(), r#"{"kind":"confirm","order_id":"ord_1","check":2,"reason":"scheduled"}"#);
        assert_eq!(BillingMessage::decode(&m.encode()).unwrap(), m);
    }
}
