//! The PhonePe clients (v2 and v1) against the protocol fake: tokens, pay, status, callbacks.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use billing::{
    CallbackError, CallbackHeaders, Environment, Gateway, GatewayConfig, GatewayError, PayRequest, PaymentState,
    Provider,
};
use domain::TeamId;
use domain::ports::{Secret, SecretName, Secrets, SecretsError};
use fakes::phonepe::{self as pp, FakePhonePe};

#[derive(Debug, Default)]
struct Deployment(BTreeMap<SecretName, String>);

#[async_trait]
impl Secrets for Deployment {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        Err(SecretsError::Missing(format!("{} of {team}", name.key())))
    }
    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.0.get(&name).map(|v| vec![Secret::new(v.clone())]).ok_or_else(|| SecretsError::Missing(name.key().into()))
    }
}

fn secrets() -> Arc<dyn Secrets> {
    Arc::new(Deployment(BTreeMap::from([
        (SecretName::PhonePeClientSecret, pp::CLIENT_SECRET.to_owned()),
        (SecretName::PhonePeWebhookUsername, "dreamops_hook".to_owned()),
        (SecretName::PhonePeWebhookPassword, "Hook2026pass".to_owned()),
        (SecretName::PhonePeSaltKey, pp::SALT_KEY.to_owned()),
        (SecretName::PhonePeSaltIndex, pp::SALT_INDEX.to_owned()),
    ])))
}

fn config(fake: &FakePhonePe, provider: Provider) -> GatewayConfig {
    GatewayConfig {
        provider,
        merchant_id: pp::MERCHANT_ID.into(),
        client_id: pp::CLIENT_ID.into(),
        client_version: pp::CLIENT_VERSION.into(),
        environment: Environment::Sandbox,
        pg_url: Some(fake.url.clone()),
        token_url: Some(fake.token_url()),
        public_url: "http://127.0.0.1:1".into(),
    }
}

fn gateway(fake: &FakePhonePe, provider: Provider) -> Arc<dyn Gateway> {
    billing::gateway(&config(fake, provider), billing::http_client().unwrap(), secrets()).unwrap()
}

fn pay_request(id: &str) -> PayRequest {
    PayRequest {
        order_id: id.into(),
        amount_paise: 299_900,
        expire_after: Duration::from_secs(1200),
        redirect_url: "https://dreamops.example/billing".into(),
        callback_url: "https://dreamops.example/webhooks/phonepe".into(),
        customer: "acme".into(),
        message: "DreamOps Pro".into(),
    }
}

#[tokio::test]
async fn v2_pays_once_and_reads_the_status() {
    let fake = FakePhonePe::start().await.unwrap();
    let g = gateway(&fake, Provider::PhonePe);
    let resp = g.pay(&pay_request("do_pay1")).await.unwrap();
    assert!(resp.redirect_url.starts_with("https://mercury-uat.phonepe.com/"), "{resp:?}");
    assert_eq!(resp.provider_order_id.as_deref(), Some("OMOdo_pay1"));
    // PhonePe refuses a reused id; the client says so instead of treating it as success.
    assert_eq!(g.pay(&pay_request("do_pay1")).await, Err(GatewayError::DuplicateOrder));
    assert_eq!(fake.order("do_pay1").unwrap().creates, 2);

    let s = g.status("do_pay1").await.unwrap();
    assert_eq!((s.state, s.amount_paise), (PaymentState::Pending, Some(299_900)));
    fake.set_state("do_pay1", "COMPLETED");
    let s = g.status("do_pay1").await.unwrap();
    assert_eq!((s.state, s.transaction_id.as_deref()), (PaymentState::Completed, Some("OMdo_pay1")));
    fake.set_state("do_pay1", "FAILED");
    let s = g.status("do_pay1").await.unwrap();
    assert_eq!((s.state, s.error.as_deref()), (PaymentState::Failed, Some("TXN_AUTO_FAILED")));
    assert_eq!(g.status("do_never").await.unwrap().state, PaymentState::NotFound);
    assert_eq!(fake.token_fetches(), 1, "one token for every call");
}

#[tokio::test]
async fn v2_tokens_are_reused_to_half_life_and_refreshed_after_expiry_and_after_a_401() {
    let fake = FakePhonePe::start().await.unwrap();
    fake.set_token_ttl(4);
    let g = gateway(&fake, Provider::PhonePe);
    g.pay(&pay_request("do_tok1")).await.unwrap();
    g.status("do_tok1").await.unwrap();
    assert_eq!(fake.token_fetches(), 1, "within half its life the token is reused");
    // Past half-life (2 of 4 s) a new token is fetched before the old one expires.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    g.status("do_tok1").await.unwrap();
    assert_eq!(fake.token_fetches(), 2);
    // Tokens revoked at the provider: the 401 makes the client refresh once and succeed.
    fake.set_token_ttl(3600);
    fake.revoke_tokens();
    assert_eq!(g.status("do_tok1").await.unwrap().state, PaymentState::Pending);
    assert_eq!(fake.token_fetches(), 3);
    // Fully expired tokens are never sent.
    fake.set_token_ttl(1);
    fake.revoke_tokens();
    g.status("do_tok1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    g.status("do_tok1").await.unwrap();
    assert_eq!(fake.token_fetches(), 5);
}

#[tokio::test]
async fn v2_a_lost_pay_answer_is_a_timeout_not_a_second_post() {
    let fake = FakePhonePe::start().await.unwrap();
    let g = gateway(&fake, Provider::PhonePe);
    fake.slow_next_pay(Duration::from_secs(7));
    let err = g.pay(&pay_request("do_slow")).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(fake.order("do_slow").unwrap().creates, 1, "never re-posted");
    assert_eq!(g.status("do_slow").await.unwrap().state, PaymentState::Pending, "the status tells what happened");
}

#[tokio::test]
async fn v2_bad_credentials_are_refused_for_good() {
    let fake = FakePhonePe::start().await.unwrap();
    let mut c = config(&fake, Provider::PhonePe);
    c.client_id = "SOMEONE_ELSE".into();
    let g = billing::gateway(&c, billing::http_client().unwrap(), secrets()).unwrap();
    let err = g.status("x").await.unwrap_err();
    assert!(matches!(&err, GatewayError::Rejected(m) if m.contains("INVALID_CLIENT")), "{err:?}");
    let empty: Arc<dyn Secrets> = Arc::new(Deployment::default());
    let g = billing::gateway(&config(&fake, Provider::PhonePe), billing::http_client().unwrap(), empty).unwrap();
    let err = g.status("x").await.unwrap_err();
    assert!(matches!(&err, GatewayError::Config(m) if m.contains("DREAMOPS_PHONEPE_CLIENT_SECRET")), "{err:?}");
}

#[tokio::test]
async fn v2_callbacks_need_the_configured_credentials() {
    let fake = FakePhonePe::start().await.unwrap();
    let g = gateway(&fake, Provider::PhonePe);
    let body = br#"{"event":"checkout.order.completed","payload":{"merchantOrderId":"do_1","state":"COMPLETED"}}"#;
    let good = billing::v2_authorization("dreamops_hook", "Hook2026pass");
    let ev = g.callback(CallbackHeaders { authorization: Some(&good), x_verify: None }, body).await.unwrap();
    assert_eq!((ev.order_id.as_str(), ev.state.as_str()), ("do_1", "COMPLETED"));
    let forged = billing::v2_authorization("dreamops_hook", "guessed1");
    let r = g.callback(CallbackHeaders { authorization: Some(&forged), x_verify: None }, body).await;
    assert!(matches!(r, Err(CallbackError::Unauthorized(_))));
    let r = g.callback(CallbackHeaders::default(), body).await;
    assert!(matches!(r, Err(CallbackError::Unauthorized(_))));
}

#[tokio::test]
async fn v1_signs_pay_and_status_and_checks_callbacks() {
    let fake = FakePhonePe::start().await.unwrap();
    let g = gateway(&fake, Provider::PhonePeV1);
    let resp = g.pay(&pay_request("do_v1a")).await.unwrap();
    assert!(resp.redirect_url.contains("token=do_v1a"), "{resp:?}");
    assert_eq!(
        fake.order("do_v1a").unwrap().callback_url.as_deref(),
        Some("https://dreamops.example/webhooks/phonepe")
    );
    assert_eq!(g.pay(&pay_request("do_v1a")).await, Err(GatewayError::DuplicateOrder));
    assert_eq!(g.status("do_v1a").await.unwrap().state, PaymentState::Pending);
    fake.set_state("do_v1a", "COMPLETED");
    let s = g.status("do_v1a").await.unwrap();
    assert_eq!((s.state, s.amount_paise), (PaymentState::Completed, Some(299_900)));
    assert_eq!(g.status("do_nope").await.unwrap().state, PaymentState::NotFound);

    // Callbacks: the fake signs as PhonePe does; capture one through a tiny receiver.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, Vec<u8>)>();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let v = headers.get("x-verify").and_then(|h| h.to_str().ok()).map(str::to_owned);
                let _ = tx.send((v, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert_eq!(fake.send_callback_v1(&url, "do_v1a", "PAYMENT_SUCCESS", false).await, 200);
    let (verify, body) = rx.recv().await.unwrap();
    let ev = g.callback(CallbackHeaders { authorization: None, x_verify: verify.as_deref() }, &body).await.unwrap();
    assert_eq!(
        (ev.event.as_str(), ev.order_id.as_str(), ev.state.as_str()),
        ("PAYMENT_SUCCESS", "do_v1a", "COMPLETED")
    );
    assert_eq!(fake.send_callback_v1(&url, "do_v1a", "PAYMENT_SUCCESS", true).await, 200);
    let (verify, body) = rx.recv().await.unwrap();
    let r = g.callback(CallbackHeaders { authorization: None, x_verify: verify.as_deref() }, &body).await;
    assert!(matches!(r, Err(CallbackError::Unauthorized(_))), "a forged X-VERIFY");
    let r = g.callback(CallbackHeaders::default(), &body).await;
    assert!(matches!(r, Err(CallbackError::Unauthorized(_))), "no X-VERIFY");
}
