//! Confirmation (the `quota` function's `billing` queue): ask the provider's status API and apply what it says.
//! Only a `COMPLETED` whose amount equals the plan price of an open order we created upgrades the team, in one
//! conditional write keyed by the order (a second confirmation is a no-op; a `FAILED` after `COMPLETED` changes
//! nothing). Pending orders are re-checked on PhonePe's schedule until they expire; the daily run reconciles
//! orders left open and reminds teams whose paid term ends in three days.

use std::time::Duration;

use domain::billing::{BillingAccount, BillingMessage, ConfirmReason, Notice, OrderState, rupees};
use domain::ports::{ChatMessage, StoreError};
use domain::{IncidentId, TeamId};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{Billing, GatewayError, OrderStatus, PaymentState};

/// An order still pending this long after its expiry is given up (the provider fails it by then).
pub const EXPIRY_GRACE: SignedDuration = SignedDuration::from_mins(15);
/// Renewal reminders go out this long before a paid term ends.
pub const REMIND_BEFORE: SignedDuration = SignedDuration::from_hours(72);

/// PhonePe's status-check schedule: the first at 20–25 s, then every 3 s for 30 s, 6 s for 60 s, 10 s for 60 s,
/// 30 s for 60 s, then every minute until the order expires. `check` counts the checks made so far.
pub fn delay(check: u32) -> Duration {
    Duration::from_secs(match check {
        0 => 25,
        1..=10 => 3,
        11..=20 => 6,
        21..=26 => 10,
        27..=28 => 30,
        _ => 60,
    })
}

/// A confirmation that could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Try again (SQS redelivers).
    #[error("transient: {0}")]
    Retryable(String),
    #[error("permanent: {0}")]
    Permanent(String),
    /// The order or the account changed since it was read: read again.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl ConfirmError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_) | Self::Conflict(_))
    }
}

impl From<StoreError> for ConfirmError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Stale(_) | StoreError::Conflict(_) => Self::Conflict(e.to_string()),
            StoreError::Unavailable(_) => Self::Retryable(e.to_string()),
            _ => Self::Permanent(e.to_string()),
        }
    }
}

impl From<GatewayError> for ConfirmError {
    fn from(e: GatewayError) -> Self {
        if e.is_retryable() { Self::Retryable(e.to_string()) } else { Self::Permanent(e.to_string()) }
    }
}

/// What one confirmation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The plan was applied.
    Upgraded,
    Failed,
    Expired,
    /// Amount mismatch: not applied, the operator is told.
    Flagged,
    /// Still pending; checked again later (or not, for an unscheduled check).
    StillPending,
    /// The order is closed already, or unknown: nothing changed.
    Unchanged,
}

/// What the daily run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DailyReport {
    pub open_orders_checked: usize,
    pub reminders_sent: usize,
}

fn team_message(team: &TeamId, order: &str, headline: String, body: String) -> (TeamId, ChatMessage) {
    (team.clone(), ChatMessage { incident_id: IncidentId::from_string(format!("order:{order}")), headline, body })
}

impl Billing {
    /// Confirms one order (see the module docs). Conflicting writers are resolved by re-reading.
    pub async fn confirm(&self, msg: &BillingMessage) -> Result<Outcome, ConfirmError> {
        let BillingMessage::Confirm { order_id, check, reason } = msg;
        for _ in 0..3 {
            match self.confirm_once(order_id, *check, *reason).await {
                Err(ConfirmError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(ConfirmError::Retryable(format!("order {order_id} kept changing")))
    }

    async fn confirm_once(&self, order_id: &str, check: u32, reason: ConfirmReason) -> Result<Outcome, ConfirmError> {
        let Some(order) = self.store.order(order_id).await? else {
            tracing::warn!(order_id, "Confirmation for an unknown order; dropped.");
            return Ok(Outcome::Unchanged);
        };
        if !order.state.is_open() {
            return Ok(Outcome::Unchanged);
        }
        let status = self.gateway.status(order_id).await?;
        let now = self.now();
        let stamp = now.to_string();
        let mut next = order.next(&stamp, describe(&status, reason));
        next.checks = order.checks + 1;
        match status.state {
            PaymentState::Completed
                if status.amount_paise == Some(order.amount_paise)
                    && order.amount_paise == order.plan.spec().price_paise =>
            {
                let mut account = self
                    .store
                    .account(&order.team_id)
                    .await?
                    .unwrap_or_else(|| BillingAccount::new(order.team_id.clone()));
                let term = account.add_term(order.plan, &order.id, now, &self.tz);
                next.state = OrderState::Completed;
                next.paid_paise = status.amount_paise;
                next.transaction_id = status.transaction_id.clone();
                next.term = Some(term.clone());
                self.store.settle(&next, &account).await?;
                tracing::info!(order_id, team_id = %order.team_id, plan = %order.plan, until = %term.end, "Payment confirmed; plan applied.");
                self.tell(team_message(
                    &order.team_id,
                    order_id,
                    format!("{} plan active", order.plan.spec().name),
                    format!(
                        "Payment of {} confirmed (order {order_id}). The {} plan runs from {} to {}.",
                        rupees(order.amount_paise),
                        order.plan.spec().name,
                        term.start,
                        term.end
                    ),
                ))
                .await;
                Ok(Outcome::Upgraded)
            }
            PaymentState::Completed => {
                next.state = OrderState::Flagged;
                next.paid_paise = status.amount_paise;
                next.transaction_id = status.transaction_id.clone();
                next.error = Some(format!(
                    "paid amount {:?} paise does not match the order's {} paise",
                    status.amount_paise, order.amount_paise
                ));
                self.store.update_order(&next).await?;
                // The operator's alarm watches for this line (`billing_flagged`).
                tracing::error!(
                    alert = "billing_flagged",
                    order_id,
                    team_id = %order.team_id,
                    expected_paise = order.amount_paise,
                    paid_paise = ?status.amount_paise,
                    "billing_flagged: a payment does not match its order; not applied. Reconcile it by hand."
                );
                tracing::info!(target: "dreamops::metrics", "{}", flagged_metric(now));
                Ok(Outcome::Flagged)
            }
            PaymentState::Failed => {
                next.state = OrderState::Failed;
                next.error = status.error.clone().or(Some("payment failed".into()));
                self.store.update_order(&next).await?;
                Ok(Outcome::Failed)
            }
            PaymentState::Pending | PaymentState::NotFound => {
                let expires = order.expires_at.parse::<Timestamp>().unwrap_or(now);
                if now > expires + EXPIRY_GRACE {
                    next.state = OrderState::Expired;
                    self.store.update_order(&next).await?;
                    return Ok(Outcome::Expired);
                }
                if status.state == PaymentState::Pending && order.state == OrderState::Created {
                    next.state = OrderState::Pending;
                }
                self.store.update_order(&next).await?;
                if reason == ConfirmReason::Scheduled {
                    let again = BillingMessage::Confirm { order_id: order_id.to_owned(), check: check + 1, reason };
                    self.queue
                        .send_billing(&again, delay(check + 1))
                        .await
                        .map_err(|e| ConfirmError::Retryable(format!("schedule the next check: {e}")))?;
                }
                Ok(Outcome::StillPending)
            }
        }
    }

    async fn tell(&self, (team, msg): (TeamId, ChatMessage)) {
        if let Some(chat) = &self.chat
            && let Err(e) = chat.post(&team, &msg).await
        {
            tracing::warn!(error = %e, team_id = %team, "Could not post the billing message.");
        }
    }

    /// The daily run: every open order is queued for a status check, and teams whose paid term ends within three
    /// days with nothing bought to follow it are reminded (once per term).
    pub async fn daily(&self) -> Result<DailyReport, ConfirmError> {
        let mut report = DailyReport::default();
        for o in self.store.open_orders().await? {
            let msg =
                BillingMessage::Confirm { order_id: o.id.clone(), check: o.checks, reason: ConfirmReason::Reconcile };
            self.queue.send_billing(&msg, Duration::ZERO).await.map_err(|e| ConfirmError::Retryable(e.to_string()))?;
            report.open_orders_checked += 1;
        }
        let now = self.now();
        for account in self.store.accounts().await? {
            let Some(term) = account.active(now) else { continue };
            let Ok(end) = term.end.parse::<Timestamp>() else { continue };
            let last = account.last_paid(now).map(|t| t.order_id.as_str());
            if end - REMIND_BEFORE > now || last != Some(term.order_id.as_str()) {
                continue;
            }
            if !self
                .store
                .claim_notice(&account.team_id, &format!("term:{}", term.order_id), Notice::RenewalDue)
                .await?
            {
                continue;
            }
            let spec = term.plan.spec();
            self.tell(team_message(
                &account.team_id,
                &term.order_id,
                format!("{} plan ends {}", spec.name, term.end),
                format!(
                    "Team {}'s {} plan ends at {}; the team then returns to Free (3 alerts a month). Renew for {}: \
                     POST /v1/teams/{}/billing/checkout with {{\"plan\": \"{}\"}}.",
                    account.team_id,
                    spec.name,
                    term.end,
                    rupees(spec.price_paise),
                    account.team_id,
                    term.plan
                ),
            ))
            .await;
            report.reminders_sent += 1;
        }
        Ok(report)
    }
}

fn describe(s: &OrderStatus, reason: ConfirmReason) -> String {
    let why = match reason {
        ConfirmReason::Callback => "after the provider's callback",
        ConfirmReason::Scheduled => "scheduled check",
        ConfirmReason::Reconcile => "daily reconciliation",
    };
    let state = match s.state {
        PaymentState::Pending => "PENDING",
        PaymentState::Completed => "COMPLETED",
        PaymentState::Failed => "FAILED",
        PaymentState::NotFound => "not found",
    };
    match s.amount_paise {
        Some(a) => format!("status {state}, amount {a} paise ({why})"),
        None => format!("status {state} ({why})"),
    }
}

/// One CloudWatch EMF record counting a flagged payment.
fn flagged_metric(now: Timestamp) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{"Namespace": "DreamOps", "Dimensions": [[]], "Metrics": [{"Name": "BillingFlagged", "Unit": "Count"}]}]
        },
        "BillingFlagged": 1
    })
    .to_string()
}
