//! API Gateway HTTP API (payload format 2.0) events, as API Gateway hands them to a Lambda function: what tests
//! feed the webhook-intake handler directly or through `cargo lambda invoke --data-file`.

use base64::Engine;
use serde_json::{Map, Value, json};

/// A `POST` to `path` matched by `route_key` (e.g. `POST /webhooks/pagerduty/{team}`), with `headers` (lower-case
/// names) and a text body. Path parameters are read from the route key's `{name}` segments.
pub fn http_api_event(route_key: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let method = route_key.split(' ').next().unwrap_or("POST");
    let template = route_key.split(' ').nth(1).unwrap_or(path);
    let mut params = Map::new();
    for (t, p) in template.split('/').zip(path.split('/')) {
        if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            params.insert(name.to_owned(), p.into());
        }
    }
    let mut h: Map<String, Value> = headers.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    h.entry("content-type").or_insert("application/json".into());
    h.insert("content-length".into(), body.len().to_string().into());
    h.insert("host".into(), "abc123.execute-api.us-east-1.amazonaws.com".into());
    h.insert("x-forwarded-proto".into(), "https".into());
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7",
                     "userAgent": headers.iter().find(|(k, _)| *k == "user-agent").map_or("test", |(_, v)| *v)},
            "requestId": "test-request", "routeKey": route_key, "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 1795341600000u64
        },
        "pathParameters": params,
        "body": body,
        "isBase64Encoded": false
    })
}

/// Any request to the control API's `ANY /v1/{proxy+}` route, as API Gateway hands it to the `api` function:
/// `path_and_query` like `/v1/teams/a/incidents?state=resolved`, lower-case header names, an optional text body,
/// the client's address as `requestContext.http.sourceIp`. A form body (`application/x-www-form-urlencoded`, as
/// Slack sends) arrives base64-encoded with `isBase64Encoded: true`, as API Gateway's payload 2.0 delivers it.
pub fn control_event(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    source_ip: &str,
) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut h: Map<String, Value> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::from(*v))).collect();
    if body.is_some() {
        h.entry("content-type").or_insert("application/json".into());
    }
    let form = h
        .get("content-type")
        .and_then(Value::as_str)
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    h.insert("host".into(), "abc123.execute-api.us-east-1.amazonaws.com".into());
    h.insert("x-forwarded-proto".into(), "https".into());
    let mut qs = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        qs.insert(k.to_owned(), v.into());
    }
    let proxy = path.strip_prefix("/v1/").unwrap_or(path);
    json!({
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": if qs.is_empty() { Value::Null } else { Value::Object(qs) },
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "test"},
            "requestId": "test-request", "routeKey": "ANY /v1/{proxy+}", "stage": "$default",
            "time": "01/Dec/2026:10:00:00 +0000", "timeEpoch": 1796119200000u64
        },
        "pathParameters": {"proxy": proxy},
        "body": if form { body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)) } else { body.map(str::to_owned) },
        "isBase64Encoded": form
    })
}
