//! The `dreamops` binary as a user runs it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn dreamops(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dreamops"))
        .args(args)
        .env_remove("DREAMOPS_CONFIG")
        .env_remove("DREAMOPS_LLM_API_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_of_one_scenario_prints_a_timeline_and_exits_zero() {
    let (code, out, err) = dreamops(&["demo", "--scenario", "hung-pod"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("━━ hung-pod ━━"));
    assert!(out.contains("diagnosed APP_HUNG"), "{out}");
    assert!(out.contains("PASS: ended resolved with DELETE_POD"), "{out}");
    assert!(out.contains("1/1 scenarios ended as expected."));
}

#[test]
fn unknown_scenarios_and_bad_case_files_are_clear_errors() {
    let (code, _, err) = dreamops(&["demo", "--scenario", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scenario \"nope\"") && err.contains("oom-limit"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"schema_version": "2.0"}"#).unwrap();
    let (code, _, err) = dreamops(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.json"), "{err}");
    let (code, _, err) = dreamops(&["eval", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    // --llm needs an [llm] section, and Anthropic needs its key.
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/eval/cases/dop-001-oom-limit-too-low.json");
    let cfg = dir.path().join("dreamops.toml");
    std::fs::write(&cfg, "[server]\nport = 1\n").unwrap();
    let (code, _, err) = dreamops(&["analyze", case, "--llm", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("[llm]"), "{err}");
    std::fs::write(&cfg, "[llm]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-5\"\n").unwrap();
    let (code, _, err) = dreamops(&["analyze", case, "--llm", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("DREAMOPS_LLM_API_KEY"), "{err}");
}
