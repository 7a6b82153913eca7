//! `dreamops eval` over the starter cases in ../shared/eval: every case parses, nothing harmful.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn cases_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval/cases");
    assert!(dir.is_dir(), "{} is missing: the tests run with ../shared beside the repository", dir.display());
    dir
}

#[test]
fn starter_cases_score_without_harm() {
    let report = dreamops::eval::eval_dir(&cases_dir()).unwrap();
    assert!(report.overall.cases >= 14);
    assert_eq!(report.overall.harmful, 0, "{}", dreamops::eval::render(&report));
    // The floor is "escalate everything": rules v1 must already do better on exact actions.
    let escalate_floor = report.cases.iter().filter(|s| s.expected_action == domain::ActionKind::Escalate).count();
    assert!(report.overall.action_exact > escalate_floor, "{}", dreamops::eval::render(&report));
}

#[test]
fn analyze_reads_only_alert_and_observations() {
    let path = cases_dir().join("dev-001-oom-limit-too-low.json");
    let mut case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let original = dreamops::eval::analyze(&domain::observation::Case::from_json(&case.to_string()).unwrap());
    // Changing the grader-only fields changes nothing.
    case["title"] = "misleading".into();
    case["tags"] = serde_json::json!(["memory-leak"]);
    case["expected"]["action"] = "RESTART".into();
    let again = dreamops::eval::analyze(&domain::observation::Case::from_json(&case.to_string()).unwrap());
    assert_eq!(original, again);
    assert_eq!(original.action, domain::ActionKind::RaiseMemoryLimit);
    let t = original.target.unwrap();
    assert_eq!(
        (t.kind.as_str(), t.name.as_str(), t.container.as_deref()),
        ("Deployment", "ledger-export-worker", Some("exporter"))
    );
}
