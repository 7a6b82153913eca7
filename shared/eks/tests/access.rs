//! The EKS bearer token, checked against an independent SigV4 computation (what STS verifies when the API
//! server forwards the presigned URL), and the kube client built from it sending exactly that token.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_credential_types::Credentials;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn at() -> SystemTime {
    let t: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.as_second() as u64)
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn decode_token(token: &str) -> (String, BTreeMap<String, String>) {
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(token.strip_prefix("k8s-aws-v1.").unwrap()).unwrap()).unwrap();
    let (base, query) = url.split_once('?').unwrap();
    let params =
        query.split('&').map(|kv| kv.split_once('=').unwrap()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    (base.to_owned(), params)
}

#[test]
fn the_token_is_a_presigned_get_caller_identity_that_sigv4_verifies() {
    let creds = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test");
    let token = eks::token(&creds, "eu-west-1", "prod-eu-1", at()).unwrap();
    assert!(!token.contains('='), "base64url without padding");
    let (base, p) = decode_token(&token);
    assert_eq!(base, "https://sts.eu-west-1.amazonaws.com/");
    assert_eq!(p["Action"], "GetCallerIdentity");
    assert_eq!(p["Version"], "2011-06-15");
    assert_eq!(p["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(p["X-Amz-Credential"], "AKIDEXAMPLE%2F20261121%2Feu-west-1%2Fsts%2Faws4_request");
    assert_eq!(p["X-Amz-Date"], "20261121T100000Z");
    assert_eq!(p["X-Amz-Expires"], "60");
    assert_eq!(p["X-Amz-SignedHeaders"], "host%3Bx-k8s-aws-id");

    // Recompute the signature from scratch, as STS will.
    let canonical_query = p
        .iter()
        .filter(|(k, _)| *k != "X-Amz-Signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let empty = hex::encode(Sha256::digest(b""));
    let canonical = format!(
        "GET\n/\n{canonical_query}\nhost:sts.eu-west-1.amazonaws.com\nx-k8s-aws-id:prod-eu-1\n\nhost;x-k8s-aws-id\n{empty}"
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n20261121T100000Z\n20261121/eu-west-1/sts/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = ["20261121", "eu-west-1", "sts", "aws4_request"]
        .iter()
        .fold(format!("AWS4{SECRET}").into_bytes(), |k, part| hmac(&k, part));
    assert_eq!(p["X-Amz-Signature"], hex::encode(hmac(&key, &to_sign)));

    // A session token travels in the URL; a different cluster name signs differently.
    let session = Credentials::new("ASIAEXAMPLE", SECRET, Some("sess/tok".into()), None, "test");
    let (_, sp) = decode_token(&eks::token(&session, "eu-west-1", "prod-eu-1", at()).unwrap());
    assert_eq!(sp["X-Amz-Security-Token"], "sess%2Ftok");
    let (_, other) = decode_token(&eks::token(&creds, "eu-west-1", "staging", at()).unwrap());
    assert_ne!(other["X-Amz-Signature"], p["X-Amz-Signature"]);
}

#[tokio::test]
async fn the_kube_client_sends_the_token_as_bearer() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/version",
        axum::routing::get(move |h: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(h["authorization"].to_str().unwrap().to_owned());
                axum::Json(
                    serde_json::json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-eks", "gitCommit": "x",
                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                    "compiler": "gc", "platform": "linux/amd64"}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let creds = Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test");
    let token = eks::token(&creds, "eu-west-1", "prod-eu-1", SystemTime::now()).unwrap();
    let info =
        eks::ClusterInfo { name: "prod-eu-1".into(), endpoint: format!("http://{addr}"), ca_data: String::new() };
    let client = kube::Client::try_from(eks::kube_config(&info, &token).await.unwrap()).unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.git_version, "v1.33.0-eks");
    assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {token}")]);
}

#[tokio::test]
async fn describe_reads_endpoint_and_ca_from_the_eks_api() {
    let moto = fakes::moto::Moto::start().await;
    let sdk = aws::local_config(&moto.url).await;
    let client = aws_sdk_eks::Client::new(&sdk);
    client
        .create_cluster()
        .name("prod-eu-1")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids("subnet-1").build())
        .send()
        .await
        .unwrap();
    let info = eks::describe(&client, "prod-eu-1").await.unwrap();
    assert!(info.endpoint.starts_with("https://"), "{info:?}");
    assert!(!info.ca_data.is_empty());
    let err = eks::describe(&client, "nope").await.unwrap_err();
    assert!(err.to_string().contains("describe cluster nope"), "{err}");
}
