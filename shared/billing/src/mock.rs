//! The mock gateway, for development: its payment URL is a page served by `dreamops serve`
//! (`/billing/mock/{order}`) where you complete or fail the payment. Completing it does what PhonePe does: the
//! order's status changes, and a v2-shaped callback with a v2 `Authorization` header is POSTed to the callback
//! URL — so the same callback → queue → status check → upgrade path runs as with PhonePe, with no shortcut.
//! Its state lives in this process; never configure it in production.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use crate::{
    CallbackError, CallbackEvent, CallbackHeaders, Gateway, GatewayError, OrderStatus, PayRequest, PayResponse,
    PaymentState, Provider, v2_authorization,
};

/// The path of an order's payment page under the public URL.
pub const PAGE_PREFIX: &str = "/billing/mock/";

#[derive(Debug, Clone)]
struct MockOrder {
    amount_paise: u64,
    state: PaymentState,
    callback_url: String,
    redirect_url: String,
    message: String,
}

#[derive(Debug)]
pub struct MockGateway {
    public_url: String,
    http: reqwest::Client,
    /// This process's webhook credentials (random per start).
    username: String,
    password: String,
    orders: Mutex<HashMap<String, MockOrder>>,
}

/// What the payment page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOrder {
    pub order_id: String,
    pub amount_paise: u64,
    pub message: String,
    pub open: bool,
}

impl MockGateway {
    pub fn new(public_url: &str, http: reqwest::Client) -> Self {
        let password = uuid::Uuid::new_v4().simple().to_string();
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            http,
            username: "dreamops_mock".into(),
            password,
            orders: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MockOrder>> {
        self.orders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The order a payment page shows, if this gateway created it.
    pub fn page_order(&self, order_id: &str) -> Option<PageOrder> {
        self.lock().get(order_id).map(|o| PageOrder {
            order_id: order_id.to_owned(),
            amount_paise: o.amount_paise,
            message: o.message.clone(),
            open: o.state == PaymentState::Pending,
        })
    }

    /// The customer completes (`paid`) or fails the payment on the page: the status changes and the callback is
    /// sent, as PhonePe would. Returns where to send the customer next.
    pub async fn finish(&self, order_id: &str, paid: bool) -> Result<String, GatewayError> {
        let (order, state) = {
            let mut orders = self.lock();
            let Some(o) = orders.get_mut(order_id) else {
                return Err(GatewayError::Rejected(format!("no mock order {order_id}")));
            };
            if o.state != PaymentState::Pending {
                return Err(GatewayError::Rejected(format!("mock order {order_id} is no longer open")));
            }
            o.state = if paid { PaymentState::Completed } else { PaymentState::Failed };
            (o.clone(), if paid { "COMPLETED" } else { "FAILED" })
        };
        let event = if paid { "checkout.order.completed" } else { "checkout.order.failed" };
        let body = json!({
            "event": event,
            "type": event.to_ascii_uppercase().replace('.', "_"),
            "payload": {
                "merchantOrderId": order_id,
                "orderId": format!("MOCK{order_id}"),
                "state": state,
                "amount": order.amount_paise,
                "paymentDetails": [{"transactionId": format!("MOCKTXN{order_id}"), "paymentMode": "UPI_INTENT", "state": state}],
            },
        });
        let resp = self
            .http
            .post(&order.callback_url)
            .header("authorization", v2_authorization(&self.username, &self.password))
            .json(&body)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("mock callback to {}: {e}", order.callback_url)))?;
        if !resp.status().is_success() {
            return Err(GatewayError::Unavailable(format!("mock callback answered HTTP {}", resp.status())));
        }
        Ok(order.redirect_url)
    }
}

#[async_trait]
impl Gateway for MockGateway {
    fn provider(&self) -> Provider {
        Provider::Mock
    }

    async fn pay(&self, req: &PayRequest) -> Result<PayResponse, GatewayError> {
        let mut orders = self.lock();
        if orders.contains_key(&req.order_id) {
            return Err(GatewayError::DuplicateOrder);
        }
        orders.insert(
            req.order_id.clone(),
            MockOrder {
                amount_paise: req.amount_paise,
                state: PaymentState::Pending,
                callback_url: req.callback_url.clone(),
                redirect_url: req.redirect_url.clone(),
                message: req.message.clone(),
            },
        );
        Ok(PayResponse {
            provider_order_id: Some(format!("MOCK{}", req.order_id)),
            redirect_url: format!("{}{PAGE_PREFIX}{}", self.public_url, req.order_id),
        })
    }

    async fn status(&self, order_id: &str) -> Result<OrderStatus, GatewayError> {
        Ok(match self.lock().get(order_id) {
            Some(o) => OrderStatus {
                state: o.state,
                amount_paise: Some(o.amount_paise),
                transaction_id: (o.state == PaymentState::Completed).then(|| format!("MOCKTXN{order_id}")),
                error: (o.state == PaymentState::Failed).then(|| "USER_DECLINED".to_owned()),
            },
            None => {
                OrderStatus { state: PaymentState::NotFound, amount_paise: None, transaction_id: None, error: None }
            }
        })
    }

    async fn callback(&self, headers: CallbackHeaders<'_>, body: &[u8]) -> Result<CallbackEvent, CallbackError> {
        crate::verify_v2(headers.authorization, &self.username, &self.password, body)
    }
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The payment page: the order and two buttons (plain forms, no script).
pub fn page(order: &PageOrder) -> String {
    let id = escape(&order.order_id);
    let buttons = if order.open {
        format!(
            r#"<form method="post" action="{PAGE_PREFIX}{id}/complete"><button type="submit">Pay {amount}</button></form>
<form method="post" action="{PAGE_PREFIX}{id}/fail"><button type="submit">Fail the payment</button></form>"#,
            amount = escape(&domain::billing::rupees(order.amount_paise))
        )
    } else {
        "<p>This payment is finished.</p>".to_owned()
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DreamOps mock payment</title></head>
<body><main><h1>Mock payment</h1>
<p>Simulated checkout for development: no money moves.</p>
<dl><dt>Order</dt><dd>{id}</dd><dt>For</dt><dd>{message}</dd><dt>Amount</dt><dd>{amount}</dd></dl>
{buttons}
</main></body></html>
"#,
        message = escape(&order.message),
        amount = escape(&domain::billing::rupees(order.amount_paise)),
    )
}
