//! Payments in the local runtime: the billing service wired to the embedded store and a local `billing` queue,
//! and its HTTP routes — `POST /webhooks/phonepe` (the provider's callback, as the `payments-callback` function
//! serves it on AWS), the mock provider's payment page, and the page customers return to.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use billing::mock::{self, MockGateway};
use billing::{Billing, CallbackRequest};
use domain::billing::BillingMessage;
use domain::ports::{BillingStore, Chat, Clock, IncidentStore};

use crate::config::ResolvedBilling;
use crate::queue::LocalQueue;
use crate::runtime::LocalBilling;

pub use billing::checkout::{CALLBACK_PATH, RETURN_PATH};

/// Pages carry no script and may not be framed.
const PAGE_CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The billing service of one local process, and the mock gateway when that is the provider.
#[derive(Debug, Clone)]
pub struct LocalPayments {
    pub billing: LocalBilling,
    pub mock: Option<Arc<MockGateway>>,
}

/// Builds the billing service over `store`.
pub fn build<S>(
    resolved: &ResolvedBilling,
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    chat: Arc<dyn Chat>,
    http: reqwest::Client,
) -> Result<LocalPayments, String>
where
    S: BillingStore + IncidentStore + 'static,
{
    let (gateway, mock): (Arc<dyn billing::Gateway>, Option<Arc<MockGateway>>) = match resolved.gateway.provider {
        billing::Provider::Mock => {
            let m = Arc::new(MockGateway::new(&resolved.gateway.public_url, http));
            (m.clone(), Some(m))
        }
        _ => (billing::gateway(&resolved.gateway, http, Arc::new(resolved.secrets.clone()))?, None),
    };
    let tz = jiff::tz::TimeZone::get(&resolved.timezone).map_err(|e| e.to_string())?;
    let queue = Arc::new(LocalQueue::<BillingMessage>::new(clock.clone()));
    let service = Billing {
        store: store.clone(),
        deliveries: store,
        gateway,
        queue: queue.clone(),
        clock,
        chat: Some(chat),
        tz,
        settings: billing::checkout::BillingSettings::at(&resolved.gateway.public_url, resolved.return_url.as_deref()),
    };
    Ok(LocalPayments { billing: LocalBilling { service, queue }, mock })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn callback(State(p): State<LocalPayments>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = p
        .billing
        .service
        .callback(CallbackRequest {
            authorization: header(&headers, "authorization"),
            x_verify: header(&headers, "x-verify"),
            body: &body,
        })
        .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn message_page(title: &str, text: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{t}</title></head>\n<body><main><h1>{t}</h1><p>{m}</p>\
         </main></body></html>\n",
        t = esc(title),
        m = esc(text)
    )
}

async fn mock_page(State(p): State<LocalPayments>, Path(id): Path<String>) -> Response {
    match p.mock.as_ref().and_then(|m| m.page_order(&id)) {
        Some(order) => html(StatusCode::OK, mock::page(&order)),
        None => html(StatusCode::NOT_FOUND, message_page("No such payment", "This mock payment does not exist.")),
    }
}

async fn mock_finish(p: &LocalPayments, id: &str, paid: bool) -> Response {
    let Some(m) = &p.mock else {
        return html(StatusCode::NOT_FOUND, message_page("No such payment", "The mock provider is not configured."));
    };
    match m.finish(id, paid).await {
        Ok(next) => (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response(),
        Err(e) => html(StatusCode::CONFLICT, message_page("Payment not changed", &e.to_string())),
    }
}

async fn mock_complete(State(p): State<LocalPayments>, Path(id): Path<String>) -> Response {
    mock_finish(&p, &id, true).await
}

async fn mock_fail(State(p): State<LocalPayments>, Path(id): Path<String>) -> Response {
    mock_finish(&p, &id, false).await
}

async fn returned() -> Response {
    html(
        StatusCode::OK,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Payment submitted</title></head>\n<body><main>\
         <h1>Payment submitted</h1><p>Thank you. The plan changes as soon as the payment provider confirms the \
         payment, usually within a minute; GET /v1/teams/{team}/billing shows it.</p>\
         <p><a id=\"back\" href=\"/#/usage\">Back to the dashboard</a></p></main></body></html>\n"
            .to_owned(),
    )
}

/// `POST /webhooks/phonepe`, the return page, and the mock provider's pages when it is the provider.
pub fn routes(p: LocalPayments) -> Router {
    let mut r = Router::new().route(CALLBACK_PATH, post(callback)).route(RETURN_PATH, get(returned));
    if p.mock.is_some() {
        r = r
            .route("/billing/mock/{id}", get(mock_page))
            .route("/billing/mock/{id}/complete", post(mock_complete))
            .route("/billing/mock/{id}/fail", post(mock_fail));
    }
    r.with_state(p)
}
