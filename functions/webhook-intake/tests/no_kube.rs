//! The intake function must stay small and never reach a cluster: its dependency graph (normal dependencies,
//! resolved by `cargo metadata`) contains no Kubernetes client, no model client and no HTTP client of its own.

#[test]
fn webhook_intake_links_no_kube_client() {
    let linked = fakes::graph::linked_packages(env!("CARGO_MANIFEST_DIR"), "webhook-intake");
    for forbidden in ["kube", "kube-client", "k8s-openapi", "cluster", "llm", "reqwest"] {
        assert!(!linked.contains(forbidden), "webhook-intake links {forbidden}");
    }
    assert!(linked.contains("aws-sdk-dynamodb") && linked.contains("pipeline"), "the walk found the real graph");
}
