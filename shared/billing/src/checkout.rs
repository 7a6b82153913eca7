//! The billing service shared by the hosts: checkout, the team's billing summary, and (in `callback` and
//! `confirm`) the provider's side. Prices come from the plan table only.

use std::sync::Arc;
use std::time::Duration;

use domain::TeamId;
use domain::billing::{BillingMessage, ConfirmReason, Order, OrderState, Period, PlanId, period_at, rupees};
use domain::ports::{BillingQueue, BillingStore, Chat, Clock, IncidentStore, StoreError};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{Gateway, GatewayError, PayRequest, PaymentState};

/// How long a provider order stays payable (PhonePe Standard Checkout allows 300–3600 s).
pub const ORDER_TTL: Duration = Duration::from_secs(1200);
/// Orders kept in a summary.
const SUMMARY_ORDERS: usize = 20;

/// The path PhonePe calls back on, under a deployment's public URL.
pub const CALLBACK_PATH: &str = "/webhooks/phonepe";
/// Where customers land after paying, unless a return URL is configured.
pub const RETURN_PATH: &str = "/billing/return";

/// What the billing service needs to know about its deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingSettings {
    /// Where the customer returns after paying (the dashboard's billing page).
    pub redirect_url: String,
    /// This deployment's `POST /webhooks/phonepe` URL.
    pub callback_url: String,
    pub order_ttl: Duration,
}

impl BillingSettings {
    /// The settings of a deployment reached at `public_url`: the callback under it, customers returned to
    /// `return_url` or the return page under it.
    pub fn at(public_url: &str, return_url: Option<&str>) -> Self {
        let public = public_url.trim_end_matches('/');
        Self {
            redirect_url: return_url.map_or_else(|| format!("{public}{RETURN_PATH}"), str::to_owned),
            callback_url: format!("{public}{CALLBACK_PATH}"),
            order_ttl: ORDER_TTL,
        }
    }
}

/// Checkout, callbacks, confirmation and reconciliation for one deployment.
#[derive(Clone)]
pub struct Billing {
    pub store: Arc<dyn BillingStore>,
    /// Where callback delivery keys are recorded (the incident store's dedupe keys).
    pub deliveries: Arc<dyn IncidentStore>,
    pub gateway: Arc<dyn Gateway>,
    pub queue: Arc<dyn BillingQueue>,
    pub clock: Arc<dyn Clock>,
    /// Tells teams about completed payments and renewals (absent in the callback function).
    pub chat: Option<Arc<dyn Chat>>,
    pub tz: TimeZone,
    pub settings: BillingSettings,
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Billing")
            .field("provider", &self.gateway.provider())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A started checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutResult {
    pub order: Order,
    /// Where the customer pays.
    pub redirect_url: String,
    /// What the purchase will do to the current plan.
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// Try again later (the provider or the store did not answer); nothing was charged.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused the order.
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A team's billing at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub plan: PlanId,
    pub period: Period,
    pub used: u64,
    /// Alerts left this period; `None`: unlimited.
    pub remaining: Option<u64>,
    /// True when new alerts are recorded but not handled.
    pub blocked: bool,
    /// A renewal or a lower plan bought to follow the current term.
    pub next: Option<domain::billing::Term>,
    pub orders: Vec<Order>,
}

fn at(t: Timestamp) -> String {
    t.to_string()
}

/// A fresh `merchantOrderId`: 31 characters of `[a-z0-9_]` (v2 allows 63, v1 under 35).
pub fn new_order_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("do_{}", &hex[..28])
}

impl Billing {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Plan, period, usage and recent orders of a team.
    pub async fn summary(&self, team: &TeamId) -> Result<Summary, StoreError> {
        let now = self.now();
        let account = self.store.account(team).await?;
        let period = period_at(account.as_ref(), now, &self.tz);
        let used = self.store.usage(team, &period.key).await?;
        let next = account
            .as_ref()
            .and_then(|a| a.last_paid(now))
            .filter(|t| t.start.parse::<Timestamp>().is_ok_and(|s| s > now))
            .cloned();
        Ok(Summary {
            plan: period.plan,
            remaining: period.limit.map(|l| l.saturating_sub(used)),
            blocked: period.limit.is_some_and(|l| used >= l),
            period,
            used,
            next,
            orders: self.store.orders(team, SUMMARY_ORDERS).await?,
        })
    }

    /// Starts paying for one month of `plan`: the order is written first, then the provider's order is created.
    pub async fn checkout(&self, team: &TeamId, plan: PlanId, by: &str) -> Result<CheckoutResult, CheckoutError> {
        if !plan.is_paid() {
            return Err(CheckoutError::BadRequest(format!(
                "{plan} is not for sale: every team has it when it has no paid plan"
            )));
        }
        let now = self.now();
        let account = self.store.account(team).await?;
        let last = account.as_ref().and_then(|a| a.last_paid(now)).cloned();
        let note = match &last {
            Some(t) if t.start.parse::<Timestamp>().is_ok_and(|s| s > now) => {
                return Err(CheckoutError::Conflict(format!(
                    "the {} plan is already bought to follow the current one (from {} to {}); buy again after it starts",
                    t.plan, t.start, t.end
                )));
            }
            Some(t) if t.plan >= plan => format!("renews after the current {} plan, from {}", t.plan, t.end),
            Some(t) => format!(
                "starts when paid and replaces the current {} plan (its remaining days are not refunded)",
                t.plan
            ),
            None => "starts when paid, for one month".to_owned(),
        };
        // A second click while an order for the same plan is still payable gets the same order back.
        for o in self.store.orders(team, SUMMARY_ORDERS).await? {
            let payable = o.expires_at.parse::<Timestamp>().is_ok_and(|e| e > now + SignedDuration::from_secs(60));
            if o.state == OrderState::Pending
                && o.plan == plan
                && payable
                && o.provider == self.gateway.provider().as_str()
                && let Some(url) = o.redirect_url.clone()
            {
                return Ok(CheckoutResult { order: o, redirect_url: url, note });
            }
        }
        let ttl = SignedDuration::try_from(self.settings.order_ttl).unwrap_or(SignedDuration::from_secs(1200));
        let order = Order {
            id: new_order_id(),
            team_id: team.clone(),
            plan,
            amount_paise: plan.spec().price_paise,
            provider: self.gateway.provider().as_str().to_owned(),
            state: OrderState::Created,
            version: 1,
            created_by: by.to_owned(),
            created_at: at(now),
            updated_at: at(now),
            expires_at: at(now + ttl),
            provider_order_id: None,
            redirect_url: None,
            paid_paise: None,
            transaction_id: None,
            error: None,
            term: None,
            checks: 0,
            history: vec![domain::billing::OrderEvent { at: at(now), what: format!("checkout for {plan} by {by}") }],
        };
        if !self.store.create_order(&order).await? {
            return Err(CheckoutError::Unavailable("order id collision; try again".into()));
        }
        // The status checks start now, so even a crash after this line leaves nothing unconfirmed.
        let first = BillingMessage::Confirm { order_id: order.id.clone(), check: 0, reason: ConfirmReason::Scheduled };
        if let Err(e) = self.queue.send_billing(&first, crate::confirm::delay(0)).await {
            tracing::warn!(error = %e, order_id = %order.id, "Could not schedule the order's status checks; the daily reconciliation will.");
        }
        let spec = plan.spec();
        let req = PayRequest {
            order_id: order.id.clone(),
            amount_paise: order.amount_paise,
            expire_after: self.settings.order_ttl,
            redirect_url: self.settings.redirect_url.clone(),
            callback_url: self.settings.callback_url.clone(),
            customer: team.to_string(),
            message: format!("DreamOps {} for team {team}: one month, {}", spec.name, rupees(spec.price_paise)),
        };
        match self.gateway.pay(&req).await {
            Ok(resp) => {
                let mut next = order.next(&at(self.now()), "payment page created");
                next.state = OrderState::Pending;
                next.provider_order_id = resp.provider_order_id;
                next.redirect_url = Some(resp.redirect_url.clone());
                self.store.update_order(&next).await?;
                tracing::info!(order_id = %next.id, team_id = %team, plan = %plan, "Checkout started.");
                Ok(CheckoutResult { order: next, redirect_url: resp.redirect_url, note })
            }
            // The create may have reached the provider: ask, never re-post the same id.
            Err(e @ (GatewayError::Unavailable(_) | GatewayError::DuplicateOrder)) => {
                let seen = self.gateway.status(&order.id).await;
                let (state, what) = match &seen {
                    Ok(s) if s.state == PaymentState::NotFound => {
                        (OrderState::Failed, format!("the provider never received the order ({e})"))
                    }
                    Ok(_) => {
                        (OrderState::Pending, format!("the provider has the order but its payment page was lost ({e})"))
                    }
                    Err(status) => (
                        OrderState::Created,
                        format!("outcome unknown ({e}; status check: {status}); checked again later"),
                    ),
                };
                let mut next = order.next(&at(self.now()), what.clone());
                next.state = state;
                next.error = Some(e.to_string());
                if let Err(w) = self.store.update_order(&next).await {
                    tracing::warn!(error = %w, order_id = %order.id, "Could not record the checkout failure.");
                }
                Err(CheckoutError::Unavailable(format!(
                    "the payment provider did not answer in time ({what}); nothing was charged — try again"
                )))
            }
            Err(e) => {
                let mut next = order.next(&at(self.now()), format!("refused by the provider: {e}"));
                next.state = OrderState::Failed;
                next.error = Some(e.to_string());
                if let Err(w) = self.store.update_order(&next).await {
                    tracing::warn!(error = %w, order_id = %order.id, "Could not record the checkout failure.");
                }
                Err(CheckoutError::Provider(e.to_string()))
            }
        }
    }
}
