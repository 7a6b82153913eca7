//! The intake function must stay small and never reach a cluster: its dependency graph (normal dependencies,
//! resolved by `cargo metadata`) contains no Kubernetes client, no model client and no HTTP client of its own.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

#[test]
fn webhook_intake_links_no_kube_client() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, &Value> =
        meta["resolve"]["nodes"].as_array().unwrap().iter().map(|n| (n["id"].as_str().unwrap(), n)).collect();
    let root = names.iter().find(|(_, n)| **n == "webhook-intake").map(|(id, _)| *id).unwrap();
    // Walk normal (non-dev, non-build) dependencies.
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for d in nodes[id]["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            if normal {
                stack.push(d["pkg"].as_str().unwrap());
            }
        }
    }
    let linked: BTreeSet<&str> = seen.iter().map(|id| names[id]).collect();
    for forbidden in ["kube", "kube-client", "k8s-openapi", "cluster", "llm", "reqwest"] {
        assert!(!linked.contains(forbidden), "webhook-intake links {forbidden}");
    }
    assert!(linked.contains("aws-sdk-dynamodb") && linked.contains("pipeline"), "the walk found the real graph");
}
