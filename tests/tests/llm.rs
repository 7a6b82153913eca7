//! The analyzer consulting a language model end to end: a sandbox scenario whose rules verdict the team finds too
//! unsure, the real Anthropic client against the protocol fake, and the incident recording who decided.
#![allow(clippy::unwrap_used)]

use domain::action::ActionKind;
use domain::diagnosis::DecidedBy;
use domain::state::State;
use dreamops::demo::{RunOptions, run_with};
use fakes::model::{FakeModel, anthropic_tool_use};
use serde_json::json;

async fn options(base: &str) -> RunOptions {
    let config: llm::LlmConfig = serde_json::from_value(json!({
        "provider": "anthropic", "model": "claude-test", "endpoint": base, "timeout_secs": 5, "max_retries": 1
    }))
    .unwrap();
    let mut settings = dreamops::demo::demo_settings();
    // The hung-pod rule is 0.88 sure; this team wants more before it trusts the rules alone.
    settings.min_confidence = 0.9;
    RunOptions { settings, llm: Some(llm::build(&config, fakes::model::KEY.into()).unwrap()) }
}

#[tokio::test]
async fn a_valid_model_answer_is_acted_on_and_recorded_as_the_models() {
    let (fake, base) = FakeModel::start().await.unwrap();
    // The model proposes a rolling restart of the alert's own Deployment (valid, if blunter than the rules).
    fake.then(200, &[], anthropic_tool_use("diagnosis", json!({
        "category": "APP_HUNG", "action": "RESTART",
        "target": {"kind": "Deployment", "namespace": "payments", "name": "payment-gateway"}, "confidence": 0.93,
        "diagnosis": "One payment-gateway pod is wedged; a rolling restart replaces it with the others.",
        "evidence": ["readiness failing on one pod only"]
    })));
    let r = run_with("hung-pod", options(&base).await).await.unwrap();
    let d = r.incident.diagnosis.clone().unwrap();
    assert_eq!((d.decided_by, d.rule.as_str()), (DecidedBy::Llm, "llm:claude-test"));
    assert_eq!(r.incident.current_action().unwrap().action.kind(), ActionKind::Restart);
    assert_eq!(r.incident.state, State::Resolved, "{}", dreamops::demo::render(&r));
    assert!(r.timeline.iter().any(|e| e.what.contains("by the language model")), "the timeline says who decided");
    let (_, body) = &fake.requests()[0];
    assert!(body["messages"][0]["content"].as_str().unwrap().contains("<untrusted-data nonce="));
}

#[tokio::test]
async fn an_invalid_model_answer_escalates_with_the_rules_diagnosis() {
    let (fake, base) = FakeModel::start().await.unwrap();
    fake.then(
        200,
        &[],
        anthropic_tool_use(
            "diagnosis",
            json!({
                "category": "APP_HUNG", "action": "RESTART",
                "target": {"kind": "Deployment", "namespace": "kube-system", "name": "coredns"},
                "confidence": 0.99, "diagnosis": "Restart CoreDNS.", "evidence": []
            }),
        ),
    );
    let r = run_with("hung-pod", options(&base).await).await.unwrap();
    let d = r.incident.diagnosis.clone().unwrap();
    assert_eq!(d.decided_by, DecidedBy::Rules);
    assert_eq!(d.proposal.action, ActionKind::Escalate);
    assert!(d.evidence.iter().any(|e| e.starts_with("LLM:") && e.contains("namespace")), "{:?}", d.evidence);
    assert_eq!(r.incident.state, State::Escalated);
    assert!(r.incident.actions.is_empty(), "nothing was changed");
    assert_eq!(fake.requests().len(), 1);
}

/// Operations in words the grammar cannot read go to the model, whose answer must fit the same closed schema,
/// name only words of the request and pass the same bounds: the real Anthropic client against the protocol fake.
#[tokio::test]
async fn operations_the_grammar_cannot_read_are_read_by_the_model_under_the_same_rules() {
    use pipeline::intent::Request;
    let (fake, base) = FakeModel::start().await.unwrap();
    let config: llm::LlmConfig = serde_json::from_value(json!({
        "provider": "anthropic", "model": "claude-test", "endpoint": base, "timeout_secs": 5, "max_retries": 0
    }))
    .unwrap();
    let model = llm::build(&config, fakes::model::KEY.into()).unwrap();
    let bounds = domain::TeamSettings::default().bounds;
    let read = |text: &'static str| {
        let model = model.clone();
        async move {
            pipeline::operations::understand(text, &bounds, Some(model.as_ref()), std::time::Duration::from_secs(5))
                .await
        }
    };
    // The grammar reads this one: the model is not asked.
    assert!(matches!(read("restart checkout-api in shop").await, Ok(Request::Act(_))));
    assert!(fake.requests().is_empty());

    fake.then(
        200,
        &[],
        anthropic_tool_use("operation", json!({"operation": "restart", "namespace": "shop", "name": "checkout-api"})),
    );
    match read("please give checkout-api over in shop a fresh start").await {
        Ok(Request::Act(p)) => {
            assert_eq!(p.action, ActionKind::Restart);
            let t = p.target.unwrap();
            assert_eq!((t.namespace.as_str(), t.name.as_str()), ("shop", "checkout-api"));
        }
        other => panic!("{other:?}"),
    }
    let (_, body) = &fake.requests()[0];
    assert_eq!(body["tool_choice"]["name"], "operation", "the answer is forced into the closed schema");

    // A name the request never said, a protected namespace, a number past the bounds, a field outside the
    // schema: each refused, nothing to act on.
    for (text, answer) in [
        (
            "checkout-api in shop looks stuck",
            json!({"operation": "restart", "namespace": "shop", "name": "payments-db"}),
        ),
        (
            "coredns in kube-system looks stuck",
            json!({"operation": "restart", "namespace": "kube-system", "name": "coredns"}),
        ),
        (
            "checkout-api in shop needs far more room",
            json!({"operation": "scale_up", "namespace": "shop", "name": "checkout-api", "replicas": 100000}),
        ),
        (
            "checkout-api in shop, you know what to do",
            json!({"operation": "restart", "namespace": "shop", "name": "checkout-api", "also": "delete namespace shop"}),
        ),
        (
            "tidy up checkout-api in shop",
            json!({"operation": "delete_namespace", "namespace": "shop", "name": "checkout-api"}),
        ),
    ] {
        fake.then(200, &[], anthropic_tool_use("operation", answer.clone()));
        let r = read(text).await;
        assert!(r.is_err(), "{text:?} with the model answering {answer}: {r:?}");
    }
}
