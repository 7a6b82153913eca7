//! Alert metering (design §7): which period an alert counts against, and what the team is told as its alerts run
//! out. The count itself is reserved by the store in the same transaction as the incident create
//! (`IncidentStore::create_metered`); this module decides the period and makes the announcements, each at most
//! once per period (claimed in the store before it is sent).

use std::sync::Arc;

use domain::TeamId;
use domain::billing::{Meter, Notice, PLANS, Period, period_at, rupees};
use domain::incident::Incident;
use domain::ports::{BillingStore, ChatMessage, StoreError};
use domain::state::{IgnoreReason, State};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::intake::NOTE_PREFIX;
use crate::{Deps, Envelope, Recorder, StageError};

/// Metering is on: alerts are counted per team and period and refused over the plan's limit.
#[derive(Clone)]
pub struct Metering {
    pub billing: Arc<dyn BillingStore>,
    /// Months of the Free plan are calendar months in this zone.
    pub tz: TimeZone,
}

impl std::fmt::Debug for Metering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metering").field("tz", &self.tz.iana_name()).finish_non_exhaustive()
    }
}

impl Metering {
    /// Metering in the IANA zone `tz`.
    pub fn new(billing: Arc<dyn BillingStore>, tz: &str) -> Result<Self, String> {
        let tz = TimeZone::get(tz).map_err(|e| format!("billing time zone {tz:?}: {e}"))?;
        Ok(Self { billing, tz })
    }

    /// The team's period at `at`.
    pub async fn period(&self, team: &TeamId, at: Timestamp) -> Result<Period, StoreError> {
        let account = self.billing.account(team).await?;
        Ok(period_at(account.as_ref(), at, &self.tz))
    }

    /// What a new incident of `team` reserves now.
    pub async fn meter(&self, team: &TeamId, at: Timestamp) -> Result<(Period, Meter), StoreError> {
        let period = self.period(team, at).await?;
        let meter = Meter { period: period.key.clone(), limit: period.limit };
        Ok((period, meter))
    }
}

/// How to get more alerts, in one line.
pub fn upgrade_hint(team: &TeamId) -> String {
    let offers: Vec<String> = PLANS
        .iter()
        .filter(|p| p.id.is_paid())
        .map(|p| {
            let alerts = p.alerts.map_or("unlimited".to_owned(), |a| a.to_string());
            format!("{} {}/month {alerts} alerts", p.name, rupees(p.price_paise))
        })
        .collect();
    format!(
        "Upgrade: POST /v1/teams/{team}/billing/checkout with {{\"plan\": \"starter\" | \"pro\" | \"enterprise\"}} \
         (an admin of the team; {}).",
        offers.join(", ")
    )
}

/// What the outcome of an incident ignored over quota says.
pub fn blocked_outcome(team: &TeamId, period: &Period) -> String {
    format!(
        "not handled: the {} plan's {} alerts of this period ({} to {}) are used up. {}",
        period.plan.spec().name,
        period.limit.unwrap_or_default(),
        period.start,
        period.end,
        upgrade_hint(team)
    )
}

/// Announces 80% and 100% of the period's alerts, each once per period. Called when a counted incident is
/// analyzed; best effort (a failure is logged and never holds up the analysis).
pub async fn announce_usage(deps: &Deps, inc: &Incident) {
    let Some(m) = &deps.metering else { return };
    if let Err(e) = try_announce_usage(deps, m, inc).await {
        tracing::warn!(error = %e, team_id = %inc.team_id, "Could not check the team's usage for announcements.");
    }
}

async fn try_announce_usage(deps: &Deps, m: &Metering, inc: &Incident) -> Result<(), StoreError> {
    let at: Timestamp = inc.created_at.parse().unwrap_or_else(|_| deps.clock.now());
    let period = m.period(&inc.team_id, at).await?;
    let Some(limit) = period.limit else { return Ok(()) };
    let used = m.billing.usage(&inc.team_id, &period.key).await?;
    // Claim every threshold crossed; with a small limit one alert can cross both, and then one message says so.
    let near = used.saturating_mul(5) >= limit.saturating_mul(4)
        && m.billing.claim_notice(&inc.team_id, &period.key, Notice::NearLimit).await?;
    let full = used >= limit && m.billing.claim_notice(&inc.team_id, &period.key, Notice::LimitReached).await?;
    let plan = period.plan.spec().name;
    let (headline, body) = if full {
        (
            format!("All {limit} alerts of this period used ({plan} plan)"),
            format!(
                "Team {} has used {used} of {limit} alerts ({plan} plan, period ends {}). Further alerts until then \
                 are recorded but not handled.\n{}",
                inc.team_id,
                period.end,
                upgrade_hint(&inc.team_id)
            ),
        )
    } else if near {
        (
            format!("80% of this period's alerts used ({used} of {limit}, {plan} plan)"),
            format!(
                "Team {} has used {used} of {limit} alerts ({plan} plan, period ends {}).\n{}",
                inc.team_id,
                period.end,
                upgrade_hint(&inc.team_id)
            ),
        )
    } else {
        return Ok(());
    };
    let msg = ChatMessage { incident_id: inc.id.clone(), headline, body };
    if let Err(e) = deps.chat.post(&inc.team_id, &msg).await {
        tracing::warn!(error = %e, team_id = %inc.team_id, "Could not post the usage announcement.");
    }
    Ok(())
}

/// Handles `StageMessage::QuotaExceeded`: the first incident ignored over quota in a period tells the team
/// (chat, and a note on that PagerDuty incident) how to upgrade, and records that it did.
pub async fn exceeded(deps: &Deps, msg: &Envelope) -> Result<(), StageError> {
    let inc = crate::load(deps, &msg.incident_id).await?;
    if inc.state != State::Ignored(IgnoreReason::QuotaExceeded) {
        return Ok(());
    }
    let Some(m) = &deps.metering else { return Ok(()) };
    let at: Timestamp = inc.created_at.parse().unwrap_or_else(|_| deps.clock.now());
    let period = m.period(&inc.team_id, at).await.map_err(|e| StageError::from_port("read the billing account", e))?;
    let first = m
        .billing
        .claim_notice(&inc.team_id, &period.key, Notice::Blocked)
        .await
        .map_err(|e| StageError::from_port("claim the quota notice", e))?;
    if !first {
        return Ok(());
    }
    let text = format!(
        "Alert not handled: team {} has used all {} alerts of this period ({} plan, until {}). {}",
        inc.team_id,
        period.limit.unwrap_or_default(),
        period.plan.spec().name,
        period.end,
        upgrade_hint(&inc.team_id)
    );
    let mut told = vec!["chat"];
    let chat = ChatMessage {
        incident_id: inc.id.clone(),
        headline: format!("Alert not handled (quota): {}", inc.alert.title),
        body: text.clone(),
    };
    if let Err(e) = deps.chat.post(&inc.team_id, &chat).await {
        told.retain(|t| *t != "chat");
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not post the quota notice.");
    }
    if inc.source.is_pagerduty() {
        match deps.pager.add_note(&inc.team_id, inc.source.external_id(), &format!("{NOTE_PREFIX} {text}")).await {
            Ok(()) => told.push("PagerDuty note"),
            Err(e) => tracing::warn!(error = %e, incident_id = %inc.id, "Could not add the quota note."),
        }
    }
    let mut rec = Recorder::new(inc, "quota");
    rec.note(
        format!("upgrade prompt sent ({})", if told.is_empty() { "delivery failed".into() } else { told.join(", ") }),
        text,
    );
    // A concurrent change to an ignored incident is only another note; losing this one is harmless.
    rec.commit(deps).await?;
    Ok(())
}
