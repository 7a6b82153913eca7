//! Plans and billing on the `/v1` API: the public plan table, a team's billing (viewer) and checkout (admin).
//! The amount of an order always comes from the plan table; the client names only the plan.

use axum::http::StatusCode;
use billing::CheckoutError;
use domain::billing::{PLANS, PlanId, rupees};
use serde_json::json;

use crate::Control;
use crate::error::ApiError;
use crate::handlers::event;
use crate::routes::{Call, Reply};
use crate::views as v;

fn plan_view(p: &domain::billing::PlanSpec) -> v::PlanView {
    v::PlanView {
        id: p.id,
        name: p.name.to_owned(),
        price_paise: p.price_paise,
        price: rupees(p.price_paise),
        alerts: p.alerts,
        period: if p.id.is_paid() { "one month from activation".into() } else { "calendar month".into() },
    }
}

pub(crate) async fn plans(c: &Control, _call: Call) -> Result<Reply, ApiError> {
    Reply::ok(&v::PlanList {
        plans: PLANS.iter().map(plan_view).collect(),
        currency: "INR".into(),
        billing_enabled: c.billing.is_some(),
        timezone: c.billing.as_ref().and_then(|b| b.tz.iana_name()).map(str::to_owned),
    })
}

pub(crate) async fn get_billing(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?.id.clone();
    let Some(b) = &c.billing else {
        return Reply::ok(&v::BillingView::disabled());
    };
    let s = b.summary(&team).await.map_err(|e| ApiError::store("read the team's billing", e))?;
    Reply::ok(&v::BillingView {
        enabled: true,
        plan: Some(plan_view(s.plan.spec())),
        period: Some(s.period.clone()),
        used: s.used,
        limit: s.period.limit,
        remaining: s.remaining,
        blocked: s.blocked,
        next: s.next,
        orders: s.orders,
    })
}

pub(crate) async fn checkout(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::CheckoutBody = call.json()?;
    let team = call.team()?.id.clone();
    let Some(b) = &c.billing else {
        return Err(ApiError::conflict(
            "billing_disabled",
            "billing is not enabled on this deployment: alerts are not metered",
        ));
    };
    let plan = PlanId::parse(body.plan.trim()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_plan",
            format!("no plan {:?}: choose starter, pro or enterprise", body.plan),
        )
    })?;
    let p = call.principal()?;
    let result = b.checkout(&team, plan, &p.id).await.map_err(|e| match e {
        CheckoutError::BadRequest(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "plan_not_for_sale", m),
        CheckoutError::Conflict(m) => ApiError::conflict("already_renewed", m),
        CheckoutError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", m),
        CheckoutError::Provider(m) => ApiError::new(StatusCode::BAD_GATEWAY, "provider_refused", m),
        CheckoutError::Store(e) => ApiError::store("write the order", e),
    })?;
    let ev = event(
        c,
        &call,
        &team,
        "billing.checkout",
        &result.order.id,
        json!({"plan": plan, "amount_paise": result.order.amount_paise, "provider": result.order.provider}),
    );
    if let Err(e) = c.teams.record(&ev).await {
        tracing::error!(error = %e, "Could not record the checkout in the team's audit trail (the order has it).");
    }
    Reply::with(
        StatusCode::CREATED,
        &v::CheckoutView {
            order_id: result.order.id.clone(),
            plan,
            amount_paise: result.order.amount_paise,
            amount: rupees(result.order.amount_paise),
            redirect_url: result.redirect_url,
            expires_at: result.order.expires_at.clone(),
            note: result.note,
        },
    )
}
