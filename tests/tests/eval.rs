//! `dreamops eval` over the starter cases in ../shared/eval and the project's own cases in tests/eval/cases:
//! every case parses, nothing is harmful, the rules-only targets of the diagnosis issue hold, and every mutating
//! answer stays on the alert's own workload.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use domain::ActionKind;
use domain::observation::WorkloadKind;

fn starter_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval/cases");
    assert!(dir.is_dir(), "{} is missing: the tests run with ../shared beside the repository", dir.display());
    dir
}

fn own_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/cases")
}

fn all_cases() -> Vec<(PathBuf, domain::observation::Case)> {
    let mut out = Vec::new();
    for dir in [starter_dir(), own_dir()] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
            let case = dreamops::eval::load_case(&f).unwrap();
            out.push((f, case));
        }
    }
    out
}

#[test]
fn rules_meet_the_targets_on_starter_and_own_cases() {
    let report = dreamops::eval::eval_dirs(&[starter_dir(), own_dir()]).unwrap();
    let table = dreamops::eval::render(&report);
    let t = &report.overall;
    assert!(t.cases >= 74, "starter (14) + at least 60 own cases: {}", t.cases);
    assert_eq!(t.harmful, 0, "{table}");
    let pct = |n: usize, d: usize| n as f64 * 100.0 / d as f64;
    assert!(pct(t.action_exact, t.cases) >= 85.0, "exact-action accuracy below 85%\n{table}");
    assert!(pct(t.autofix_hits, t.autofix_cases) >= 80.0, "auto-fix recall below 80%\n{table}");
    assert!(pct(t.category_correct, t.cases) >= 80.0, "category accuracy below 80%\n{table}");
    // The floor is "escalate everything".
    let escalate_floor = report.cases.iter().filter(|s| s.expected_action == ActionKind::Escalate).count();
    assert!(t.action_exact > escalate_floor + t.cases / 5, "{table}");
}

#[test]
fn own_cases_cover_every_category_and_cite_a_source() {
    let mut categories = std::collections::BTreeSet::new();
    let mut own = 0;
    for (path, _) in all_cases().into_iter().filter(|(p, _)| p.starts_with(own_dir())) {
        own += 1;
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let url = raw["source"]["url"].as_str().unwrap();
        assert!(url.starts_with("https://"), "{}: source.url {url}", path.display());
        assert!(raw["source"]["derivation"].as_str().unwrap().len() > 40, "{}: derivation too thin", path.display());
        categories.insert(raw["expected"]["root_cause_category"].as_str().unwrap().to_owned());
    }
    assert!(own >= 60, "{own} own cases");
    let all = [
        "OOM_LIMIT_TOO_LOW",
        "MEMORY_LEAK",
        "BAD_CONFIG",
        "MISSING_SECRET_OR_CONFIGMAP",
        "BAD_IMAGE",
        "BAD_DEPLOY_REGRESSION",
        "PROBE_MISCONFIGURED",
        "APP_HUNG",
        "UNSCHEDULABLE",
        "TRAFFIC_SPIKE",
        "REPLICAS_SCALED_DOWN",
        "CPU_THROTTLING",
        "DEPENDENCY_FAILURE",
        "AUTH_OR_PERMISSION",
        "NETWORK_MISCONFIG",
        "NODE_PRESSURE",
        "NODE_FAILURE",
        "DISK_FULL",
        "CERTIFICATE_EXPIRED",
        "BENIGN_OR_SELF_RESOLVED",
        "SUSPICIOUS_INPUT",
    ];
    for c in all {
        assert!(categories.contains(c), "no own case for {c}");
    }
}

/// Whatever the text says, a mutating answer names the alert's own Deployment or one of its listed pods.
#[test]
fn mutating_answers_stay_on_the_alerts_own_workload() {
    for (path, case) in all_cases() {
        let a = dreamops::eval::analyze(&case);
        let Some(t) = a.target.as_ref().filter(|_| a.action.is_mutating()) else {
            assert!(a.target.is_none(), "{}: {} with a target", path.display(), a.action);
            continue;
        };
        let o = &case.observations;
        assert_eq!(t.namespace, o.namespace, "{}", path.display());
        match a.action {
            ActionKind::DeletePod => {
                assert_eq!(t.kind, "Pod");
                assert!(o.pods.iter().any(|p| p.name == t.name && p.owner.is_some()), "{}", path.display());
            }
            _ => {
                let w = o.workload.as_ref().unwrap();
                assert_eq!(
                    (w.kind, t.kind.as_str(), w.name.as_str()),
                    (WorkloadKind::Deployment, "Deployment", t.name.as_str())
                );
            }
        }
    }
}

#[test]
fn analyze_reads_only_alert_and_observations() {
    let path = starter_dir().join("dev-001-oom-limit-too-low.json");
    let mut case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let original = dreamops::eval::analyze(&domain::observation::Case::from_json(&case.to_string()).unwrap());
    // Changing the grader-only fields changes nothing.
    case["title"] = "misleading".into();
    case["tags"] = serde_json::json!(["memory-leak"]);
    case["difficulty"] = "hard".into();
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

/// The blind cases (issue 13): written from public sources before any rule change. They must parse and cite their
/// source. Their score before the change is frozen in `tests/eval/BLIND.md`; since the rule change read their
/// misses they are no longer blind, so they now guard the targets on them (exact >= 85%, harmful 0) against
/// regressions, like the project's own cases.
#[test]
fn blind_cases_parse_and_cite_a_public_source() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/blind");
    let mut ids = std::collections::BTreeSet::new();
    let mut n = 0;
    for f in std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let case = dreamops::eval::load_case(&f).unwrap();
        assert!(ids.insert(case.id.clone()), "{}: id {} used twice", f.display(), case.id);
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert!(raw["source"]["url"].as_str().unwrap().starts_with("https://"), "{}", f.display());
        assert!(raw["source"]["derivation"].as_str().unwrap().len() > 80, "{}: derivation too thin", f.display());
        n += 1;
    }
    assert!(n >= 80, "{n} blind cases");
    let report = dreamops::eval::eval_dirs(&[dir]).unwrap();
    let table = dreamops::eval::render(&report);
    let t = &report.overall;
    assert_eq!(t.cases, n);
    assert_eq!(t.harmful, 0, "{table}");
    assert!(t.action_exact as f64 * 100.0 / t.cases as f64 >= 85.0, "exact-action accuracy below 85%\n{table}");
}

/// The holdout cases (`tests/eval/HOLDOUT.md`): written after the rule changes and never tuned on. They must parse,
/// cite a public source no other case uses, and score; their score is recorded, not asserted, so that a rule
/// change is never made to pass them.
#[test]
fn holdout_cases_parse_and_cite_sources_no_other_case_uses() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval");
    let url = |f: &std::path::Path| {
        let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        raw["source"]["url"].as_str().unwrap().to_owned()
    };
    let others: std::collections::BTreeSet<String> = [starter_dir(), own_dir(), root.join("blind")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .map(|f| url(&f))
        .collect();
    let dir = root.join("holdout");
    let mut n = 0;
    for f in std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        dreamops::eval::load_case(&f).unwrap();
        let u = url(&f);
        assert!(u.starts_with("https://") && !others.contains(&u), "{}: {u}", f.display());
        n += 1;
    }
    assert!(n >= 10, "{n} holdout cases");
    assert_eq!(dreamops::eval::eval_dirs(&[dir]).unwrap().overall.cases, n);
}

/// Confidence means something over every eval set: the reliability buckets account for every case, and at the
/// default `min_confidence` the fixes the agent would act on are right at least 95% of the time with none harmful.
#[test]
fn the_default_min_confidence_admits_only_fixes_that_held_up() {
    let blind = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval/blind");
    let report = dreamops::eval::eval_dirs(&[starter_dir(), own_dir(), blind]).unwrap();
    let table = dreamops::eval::render(&report);
    let r = &report.reliability;
    assert_eq!(r.buckets.iter().map(|b| b.cases).sum::<usize>(), report.overall.cases, "{table}");
    assert!((0.0..=1.0).contains(&r.ece), "{table}");
    let fixes: Vec<usize> = r.thresholds.iter().map(|t| t.fixes).collect();
    assert!(fixes.windows(2).all(|w| w[0] >= w[1]), "a higher threshold admits more fixes: {fixes:?}");
    let default = domain::TeamSettings::default().min_confidence;
    let at = r.thresholds.iter().find(|t| (t.min_confidence - default).abs() < 1e-9).expect("the default is reported");
    assert_eq!(at.fixes_harmful, 0, "{table}");
    assert!(at.fixes_right as f64 >= 0.95 * at.fixes as f64, "{table}");
    assert!(table.contains("ECE"), "{table}");
}

/// Every case this repository writes keeps to FORMAT.md 1.0's `source` object as `../shared/eval/schema.json`
/// defines it: a `kind` from its enum, and addresses that are https. (The engine itself ignores `source`, so a
/// held-out file with another kind still loads; this holds our own files to the format they claim.)
#[test]
fn every_case_here_cites_its_source_in_the_formats_terms() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(starter_dir().join("../schema.json")).expect("../shared/eval/schema.json"),
    )
    .unwrap();
    let source = &schema["properties"]["source"]["properties"];
    let kinds: Vec<&str> = source["kind"]["enum"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert!(kinds.contains(&"github_issue") && kinds.len() >= 5, "{kinds:?}");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("eval");
    let mut n = 0;
    for dir in ["cases", "blind", "holdout"] {
        for f in std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let kind = raw["source"]["kind"].as_str().unwrap_or_default();
            assert!(kinds.contains(&kind), "{}: source.kind {kind:?} is not one of {kinds:?}", f.display());
            for also in raw["source"]["also_see"].as_array().into_iter().flatten() {
                assert!(also.as_str().is_some_and(|u| u.starts_with("https://")), "{}: also_see {also}", f.display());
            }
            n += 1;
        }
    }
    assert!(n >= 390, "{n} cases");
}
