//! PhonePe on loopback, both generations (facts: ../shared/reference/payments.md §1, protocols.md §3):
//!
//! - **PG v2**: `POST /v1/oauth/token` (form: `client_id`, `client_secret`, `client_version`,
//!   `grant_type=client_credentials`; answers `access_token`, `issued_at`/`expires_at` in epoch seconds),
//!   `POST /checkout/v2/pay` and `GET /checkout/v2/order/{id}/status` with `Authorization: O-Bearer <token>`
//!   (401 `AUTHORIZATION_FAILED` for an unknown or expired token), a reused `merchantOrderId` answered 417.
//! - **v1**: `POST /pg/v1/pay` (`{"request": base64}`) and `GET /pg/v1/status/{merchant}/{txn}` checked against
//!   `X-VERIFY = sha256(text + saltKey) + "###" + saltIndex`.
//! - Webhook senders for both: v2 `Authorization: sha256(username:password)`, v1 `X-VERIFY` over the base64
//!   `response`.
//!
//! Order states are scripted by the test (`set_state`, `set_status_amount`), and a pay can be made slow (it is
//! still created, as when a response is lost).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "DREAMOPSUAT_2612";
pub const CLIENT_SECRET: &str = "uat-client-secret-0001";
pub const CLIENT_VERSION: &str = "1";
pub const MERCHANT_ID: &str = "PGTESTPAYUAT";
pub const SALT_KEY: &str = "099eb0cd-02cf-4e2a-8aca-3e6c6aff0399";
pub const SALT_INDEX: &str = "1";

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `X-VERIFY` of a signed text.
pub fn x_verify(signed: &str) -> String {
    format!("{}###{SALT_INDEX}", sha256_hex(&format!("{signed}{SALT_KEY}")))
}

#[derive(Debug, Clone)]
pub struct FakeOrder {
    pub amount: u64,
    pub state: String,
    /// What the status API reports as the amount (defaults to the order's).
    pub status_amount: Option<u64>,
    pub redirect_url: String,
    pub callback_url: Option<String>,
    /// Times a create for this id was received.
    pub creates: u32,
}

#[derive(Debug, Default)]
struct Inner {
    /// token → expires_at (epoch seconds).
    tokens: HashMap<String, i64>,
    token_fetches: u32,
    token_ttl_secs: i64,
    orders: HashMap<String, FakeOrder>,
    /// The next pay answers after this long (the order is created first).
    slow_pay: Option<Duration>,
    status_calls: u32,
    requests: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FakePhonePe {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

impl FakePhonePe {
    /// Starts the server; its URL is the PG base (v2 and v1) and `{url}/v1/oauth/token` the token endpoint.
    pub async fn start() -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner { token_ttl_secs: 3600, ..Inner::default() }));
        let state = FakePhonePe { inner, url: String::new() };
        let app = axum::Router::new()
            .route("/v1/oauth/token", axum::routing::post(token))
            .route("/checkout/v2/pay", axum::routing::post(pay))
            .route("/checkout/v2/order/{id}/status", axum::routing::get(status))
            .route("/pg/v1/pay", axum::routing::post(pay_v1))
            .route("/pg/v1/status/{merchant}/{txn}", axum::routing::get(status_v1))
            .with_state(state.clone());
        let url = crate::serve(app).await?;
        Ok(FakePhonePe { url, ..state })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn token_url(&self) -> String {
        format!("{}/v1/oauth/token", self.url)
    }

    /// Tokens issued from now on live this long.
    pub fn set_token_ttl(&self, secs: i64) {
        self.lock().token_ttl_secs = secs;
    }

    /// Every token issued so far stops working (as after a credential rotation): the next call gets 401.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn token_fetches(&self) -> u32 {
        self.lock().token_fetches
    }

    pub fn status_calls(&self) -> u32 {
        self.lock().status_calls
    }

    /// The next pay is created, then answered after `delay` (longer than the client's timeout: a lost answer).
    pub fn slow_next_pay(&self, delay: Duration) {
        self.lock().slow_pay = Some(delay);
    }

    pub fn order(&self, id: &str) -> Option<FakeOrder> {
        self.lock().orders.get(id).cloned()
    }

    /// Every order id created, in no particular order.
    pub fn order_ids(&self) -> Vec<String> {
        self.lock().orders.keys().cloned().collect()
    }

    /// Scripts the state the status API reports (`PENDING`, `COMPLETED`, `FAILED`).
    pub fn set_state(&self, id: &str, state: &str) {
        if let Some(o) = self.lock().orders.get_mut(id) {
            o.state = state.to_owned();
        }
    }

    /// Scripts the amount the status API reports.
    pub fn set_status_amount(&self, id: &str, amount: u64) {
        if let Some(o) = self.lock().orders.get_mut(id) {
            o.status_amount = Some(amount);
        }
    }

    /// Method and path of every request, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn log(&self, line: String) {
        self.lock().requests.push(line);
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let now = now();
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("O-Bearer "))
            .unwrap_or("");
        self.lock().tokens.get(token).is_some_and(|exp| *exp > now)
    }

    /// Creates the order; `None` when its id was used before (PhonePe answers 417, see [`reused`]).
    fn create(&self, id: &str, amount: u64, redirect: &str, callback: Option<&str>) -> Option<Duration> {
        let mut inner = self.lock();
        if let Some(o) = inner.orders.get_mut(id) {
            o.creates += 1;
            return None;
        }
        inner.orders.insert(
            id.to_owned(),
            FakeOrder {
                amount,
                state: "PENDING".into(),
                status_amount: None,
                redirect_url: redirect.to_owned(),
                callback_url: callback.map(str::to_owned),
                creates: 1,
            },
        );
        Some(inner.slow_pay.take().unwrap_or_default())
    }

    /// Sends a v2 webhook as PhonePe does: `Authorization` = hex sha256(`username:password`); returns the status.
    pub async fn send_callback(&self, url: &str, username: &str, password: &str, order_id: &str, state: &str) -> u16 {
        let auth = sha256_hex(&format!("{username}:{password}"));
        self.send_callback_with(url, Some(&auth), order_id, state).await
    }

    /// As [`FakePhonePe::send_callback`] with any `Authorization` header (or none): forgeries.
    pub async fn send_callback_with(&self, url: &str, authorization: Option<&str>, order_id: &str, state: &str) -> u16 {
        let (amount, event) = {
            let inner = self.lock();
            let amount = inner.orders.get(order_id).map_or(100, |o| o.amount);
            let event = if state == "COMPLETED" { "checkout.order.completed" } else { "checkout.order.failed" };
            (amount, event)
        };
        let body = json!({
            "event": event,
            "type": event.to_ascii_uppercase().replace('.', "_"),
            "payload": {
                "merchantId": MERCHANT_ID, "merchantOrderId": order_id, "orderId": format!("OMO{order_id}"),
                "state": state, "amount": amount, "expireAt": now() * 1000 + 1_200_000,
                "paymentDetails": [{"transactionId": format!("OM{order_id}"), "paymentMode": "UPI_QR", "timestamp": now() * 1000, "amount": amount, "state": state}],
                "newFieldFromTheFuture": {"ignored": true}
            }
        });
        let mut req = reqwest::Client::new().post(url).json(&body);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// Sends a v1 server-to-server callback: `{"response": base64}` with `X-VERIFY` over that base64 text.
    pub async fn send_callback_v1(&self, url: &str, order_id: &str, code: &str, forged: bool) -> u16 {
        let amount = self.order(order_id).map_or(100, |o| o.amount);
        let state = match code {
            "PAYMENT_SUCCESS" => "COMPLETED",
            "PAYMENT_PENDING" => "PENDING",
            _ => "FAILED",
        };
        let doc = json!({"success": code == "PAYMENT_SUCCESS", "code": code, "message": "callback",
            "data": {"merchantId": MERCHANT_ID, "merchantTransactionId": order_id, "transactionId": format!("T{order_id}"),
                     "amount": amount, "state": state, "responseCode": "SUCCESS", "paymentInstrument": {"type": "UPI", "utr": "206378866112"}}});
        let encoded = B64.encode(doc.to_string());
        let verify = if forged { format!("{}###{SALT_INDEX}", sha256_hex(&encoded)) } else { x_verify(&encoded) };
        reqwest::Client::new()
            .post(url)
            .header("x-verify", verify)
            .json(&json!({"response": encoded}))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// PhonePe's answer to a reused `merchantOrderId`: not idempotent, a 417.
fn reused() -> Response {
    (
        StatusCode::EXPECTATION_FAILED,
        axum::Json(
            json!({"success": false, "code": "INVALID_TRANSACTION_ID", "message": "Order ID has already been used"}),
        ),
    )
        .into_response()
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"success": false, "code": code, "message": message, "data": {}}))).into_response()
}

async fn token(State(f): State<FakePhonePe>, Form(form): Form<HashMap<String, String>>) -> Response {
    f.log("POST /v1/oauth/token".into());
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return api_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "grant_type must be client_credentials");
    }
    if field("client_id") != Some(CLIENT_ID)
        || field("client_secret") != Some(CLIENT_SECRET)
        || field("client_version") != Some(CLIENT_VERSION)
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": "INVALID_CLIENT", "errorCode": "OIM000", "message": "Client Not Found"})),
        )
            .into_response();
    }
    let mut inner = f.lock();
    inner.token_fetches += 1;
    let issued = now();
    let expires = issued + inner.token_ttl_secs;
    let access = format!("tok-{}-{}", inner.token_fetches, issued);
    inner.tokens.insert(access.clone(), expires);
    axum::Json(json!({
        "access_token": access, "encrypted_access_token": access, "expires_in": null,
        "issued_at": issued, "expires_at": expires, "session_expires_at": expires,
        "token_type": "O-Bearer", "refresh_token": null
    }))
    .into_response()
}

async fn pay(State(f): State<FakePhonePe>, headers: HeaderMap, body: Bytes) -> Response {
    f.log("POST /checkout/v2/pay".into());
    if !f.authorized(&headers) {
        return api_error(StatusCode::UNAUTHORIZED, "AUTHORIZATION_FAILED", "Token is invalid or expired");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "body is not JSON");
    };
    let id = v["merchantOrderId"].as_str().unwrap_or("");
    let amount = v["amount"].as_u64().unwrap_or(0);
    let expire = v["expireAfter"].as_u64().unwrap_or(1200);
    let redirect = v.pointer("/paymentFlow/merchantUrls/redirectUrl").and_then(Value::as_str).unwrap_or("");
    let valid_id =
        !id.is_empty() && id.len() <= 63 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_id
        || amount < 100
        || !(300..=3600).contains(&expire)
        || redirect.is_empty()
        || v.pointer("/paymentFlow/type").and_then(Value::as_str) != Some("PG_CHECKOUT")
    {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "invalid merchantOrderId, amount, expireAfter or paymentFlow",
        );
    }
    let Some(delay) = f.create(id, amount, redirect, None) else {
        return reused();
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    axum::Json(json!({
        "orderId": format!("OMO{id}"), "state": "PENDING", "expireAt": (now() + expire as i64) * 1000,
        "redirectUrl": format!("https://mercury-uat.phonepe.com/transact/uat_v2?token=fake-{id}")
    }))
    .into_response()
}

fn status_doc(id: &str, o: &FakeOrder) -> Value {
    json!({
        "merchantId": MERCHANT_ID, "merchantOrderId": id, "orderId": format!("OMO{id}"), "state": o.state,
        "amount": o.status_amount.unwrap_or(o.amount), "payableAmount": o.amount, "feeAmount": 0,
        "expireAt": now() * 1000 + 600_000, "metaInfo": {"udf1": "team"},
        "errorCode": if o.state == "FAILED" { Value::from("TXN_AUTO_FAILED") } else { Value::Null },
        "paymentDetails": [{"transactionId": format!("OM{id}"), "paymentMode": "UPI_QR", "timestamp": now() * 1000,
                            "amount": o.status_amount.unwrap_or(o.amount), "state": o.state}]
    })
}

async fn status(State(f): State<FakePhonePe>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    f.log(format!("GET /checkout/v2/order/{id}/status"));
    if !f.authorized(&headers) {
        return api_error(StatusCode::UNAUTHORIZED, "AUTHORIZATION_FAILED", "Token is invalid or expired");
    }
    let mut inner = f.lock();
    inner.status_calls += 1;
    match inner.orders.get(&id) {
        Some(o) => axum::Json(status_doc(&id, o)).into_response(),
        None => api_error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "No order found"),
    }
}

async fn pay_v1(State(f): State<FakePhonePe>, headers: HeaderMap, body: Bytes) -> Response {
    f.log("POST /pg/v1/pay".into());
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "body is not JSON");
    };
    let encoded = v["request"].as_str().unwrap_or("");
    let given = headers.get("x-verify").and_then(|h| h.to_str().ok()).unwrap_or("");
    if given != x_verify(&format!("{encoded}/pg/v1/pay")) {
        return api_error(StatusCode::UNAUTHORIZED, "AUTHORIZATION_FAILED", "X-VERIFY does not match");
    }
    let Some(payload) = B64.decode(encoded).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
        return api_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "request is not base64 JSON");
    };
    let id = payload["merchantTransactionId"].as_str().unwrap_or("");
    let amount = payload["amount"].as_u64().unwrap_or(0);
    if payload["merchantId"].as_str() != Some(MERCHANT_ID)
        || id.is_empty()
        || id.len() >= 35
        || amount < 100
        || payload.pointer("/paymentInstrument/type").and_then(Value::as_str) != Some("PAY_PAGE")
    {
        return api_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "invalid payload");
    }
    let redirect = payload["redirectUrl"].as_str().unwrap_or("");
    if f.create(id, amount, redirect, payload["callbackUrl"].as_str()).is_none() {
        return reused();
    }
    axum::Json(json!({"success": true, "code": "PAYMENT_INITIATED", "message": "Payment initiated",
        "data": {"merchantId": MERCHANT_ID, "merchantTransactionId": id,
                 "instrumentResponse": {"type": "PAY_PAGE", "redirectInfo": {"url": format!("https://mercury-uat.phonepe.com/transact/simulator?token={id}"), "method": "GET"}}}}))
    .into_response()
}

async fn status_v1(
    State(f): State<FakePhonePe>,
    Path((merchant, txn)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    f.log(format!("GET /pg/v1/status/{merchant}/{txn}"));
    let header = |n: &str| headers.get(n).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    if header("x-verify") != x_verify(&format!("/pg/v1/status/{merchant}/{txn}")) || header("x-merchant-id") != merchant
    {
        return api_error(StatusCode::UNAUTHORIZED, "AUTHORIZATION_FAILED", "X-VERIFY or X-MERCHANT-ID does not match");
    }
    let mut inner = f.lock();
    inner.status_calls += 1;
    let Some(o) = inner.orders.get(&txn) else {
        return api_error(StatusCode::NOT_FOUND, "TRANSACTION_NOT_FOUND", "No transaction found");
    };
    let code = match o.state.as_str() {
        "COMPLETED" => "PAYMENT_SUCCESS",
        "FAILED" => "PAYMENT_ERROR",
        _ => "PAYMENT_PENDING",
    };
    axum::Json(json!({"success": code == "PAYMENT_SUCCESS", "code": code, "message": "status",
        "data": {"merchantId": merchant, "merchantTransactionId": txn, "transactionId": format!("T{txn}"),
                 "amount": o.status_amount.unwrap_or(o.amount), "state": o.state, "responseCode": "SUCCESS"}}))
    .into_response()
}
