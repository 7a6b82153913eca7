//! `POST /webhooks/phonepe`: verify, dedupe, queue a confirmation, answer 200 — within PhonePe's 3–5 s and with
//! nothing applied here. The callback's word is never trusted: confirmation asks the status API.
//!
//! Answers: 401 missing or wrong authentication, 400 malformed, 200 for an order we never created (nothing
//! changes; a warning is logged), 200 for duplicates and settled orders, 503 when the store or queue is down (so
//! PhonePe retries).

use domain::billing::{BillingMessage, ConfirmReason};
use serde_json::{Value, json};

use crate::{Billing, CallbackError, CallbackHeaders};

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
    reply(status, json!({"error": {"code": code, "message": message.into()}}))
}

/// What the transport hands over.
#[derive(Debug, Clone, Copy)]
pub struct CallbackRequest<'a> {
    pub authorization: Option<&'a str>,
    pub x_verify: Option<&'a str>,
    pub body: &'a [u8],
}

/// Callbacks larger than this are not PhonePe's.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

impl Billing {
    pub async fn callback(&self, req: CallbackRequest<'_>) -> Reply {
        if req.body.len() > MAX_CALLBACK_BYTES {
            return error(413, "payload_too_large", format!("body exceeds {MAX_CALLBACK_BYTES} bytes"));
        }
        let headers = CallbackHeaders { authorization: req.authorization, x_verify: req.x_verify };
        let event = match self.gateway.callback(headers, req.body).await {
            Ok(e) => e,
            Err(CallbackError::Unauthorized(m)) => {
                tracing::warn!(reason = %m, "Payment callback refused.");
                return error(401, "unauthorized", m);
            }
            Err(CallbackError::Malformed(m)) => return error(400, "malformed", m),
            Err(CallbackError::Unavailable(m)) => return error(503, "unavailable", m),
        };
        let order = match self.store.order(&event.order_id).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::warn!(order_id = %event.order_id, event = %event.event, "Payment callback for an order we never created; ignored.");
                return reply(200, json!({"status": "ignored", "reason": "unknown_order"}));
            }
            Err(e) => return error(503, "unavailable", format!("could not read the order: {e}")),
        };
        if !order.state.is_open() {
            return reply(200, json!({"status": "ignored", "reason": "order_settled", "state": order.state}));
        }
        // No event id in the body: dedupe on what it says (a repeat of the same state changes nothing).
        let key = format!("phonepe:{}:{}:{}", event.event, event.order_id, event.state);
        match self.deliveries.record_delivery(&order.team_id, &key).await {
            Ok(true) => {}
            Ok(false) => return reply(200, json!({"status": "duplicate"})),
            Err(e) => return error(503, "unavailable", format!("could not record the callback: {e}")),
        }
        let msg = BillingMessage::Confirm { order_id: order.id.clone(), check: 0, reason: ConfirmReason::Callback };
        if let Err(e) = self.queue.send_billing(&msg, std::time::Duration::ZERO).await {
            // The order's scheduled checks still confirm it.
            return error(503, "unavailable", format!("could not queue the confirmation: {e}"));
        }
        tracing::info!(order_id = %order.id, event = %event.event, state = %event.state, "Payment callback queued for confirmation.");
        reply(200, json!({"status": "accepted"}))
    }
}
