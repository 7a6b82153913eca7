//! API Gateway HTTP API (payload format 2.0) events, as API Gateway hands them to a Lambda function: what tests
//! feed the webhook-intake handler directly or through `cargo lambda invoke --data-file`.

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
