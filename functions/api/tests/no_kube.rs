//! The api function must never reach a cluster: its dependency graph (normal dependencies, resolved by
//! `cargo metadata`) contains no Kubernetes client. (It does link the model client: operations asked for in words
//! that the grammar cannot read go to the configured model, held to the operation schema.)

#[test]
fn api_links_no_kube_client() {
    let linked = fakes::graph::linked_packages(env!("CARGO_MANIFEST_DIR"), "api");
    for forbidden in ["kube", "kube-client", "k8s-openapi", "cluster", "eks", "aws-sdk-eks", "sandbox"] {
        assert!(!linked.contains(forbidden), "api links {forbidden}");
    }
    assert!(linked.contains("aws-sdk-dynamodb") && linked.contains("control"), "the walk found the real graph");
}
