//! The OpenAPI 3.1 document, generated from the route table and the bodies' derived JSON Schemas. The committed
//! copy (`shared/control/openapi.json`) is checked against it by a test, so it is never stale.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::routes::{Access, ROUTES, Verb};
use crate::views::ErrorBody;

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

/// The document.
pub fn document() -> Value {
    let mut generator =
        SchemaSettings::draft2020_12().with(|s| s.definitions_path = "/components/schemas".into()).into_generator();
    let error_schema = generator.subschema_for::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), r.summary.into());
        op.insert("operationId".into(), operation_id(r.verb, r.path).into());
        op.insert("x-dreamops-access".into(), r.access.describe().into());
        let tag = r.path.split('/').nth(4).unwrap_or_else(|| r.path.split('/').nth(2).unwrap_or("v1"));
        op.insert("tags".into(), json!([tag]));
        let mut params = Vec::new();
        for seg in r.path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            params.push(json!({"name": seg, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        for (name, description) in r.query {
            params.push(json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}}));
        }
        if matches!(r.verb, Verb::Put) && r.request.is_some() && !r.path.contains("/integrations/") {
            params.push(json!({"name": "If-Match", "in": "header", "required": true,
                "description": "the ETag of the resource as read; 412 when it changed since, 428 when absent",
                "schema": {"type": "string"}}));
        }
        params.push(json!({"name": "X-Correlation-ID", "in": "header", "required": false,
            "description": "echoed on the answer and carried into the stage messages this request causes; generated when absent",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}}));
        op.insert("parameters".into(), Value::Array(params));
        if let Some(req) = r.request {
            let schema = req(&mut generator);
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": schema}}}),
            );
        } else if r.access == Access::Slack {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "description": "as Slack sends it: a `payload` field of JSON (interactions) or the slash command's fields",
                       "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}),
            );
        }
        let mut responses = Map::new();
        let body = (r.response)(&mut generator);
        responses.insert(
            r.status.to_string(),
            json!({"description": "success", "content": {"application/json": {"schema": body}}}),
        );
        if r.verb == Verb::Get {
            responses.insert("304".into(), json!({"description": "not modified (If-None-Match matched the ETag)"}));
        }
        responses.insert("400".into(), error_response("malformed request (body, query, correlation id)"));
        responses.insert("413".into(), error_response("body too large"));
        if r.access == Access::Slack {
            responses.insert("401".into(), error_response("not signed by the team's Slack app, or too old"));
        } else if r.access != Access::Public {
            responses.insert("401".into(), error_response("no, unknown, revoked or expired credential"));
            responses.insert("403".into(), error_response("the principal's role is not enough"));
            responses.insert("429".into(), error_response("rate limited (Retry-After says when to retry)"));
        }
        if matches!(r.access, Access::Team(_)) {
            responses.insert("404".into(), error_response("no such team or object, or another team's"));
        }
        for (status, code) in r.errors {
            responses.insert(status.to_string(), error_response(code));
        }
        responses.insert("503".into(), error_response("our transient fault; retry"));
        op.insert("responses".into(), Value::Object(responses));
        if r.access == Access::Slack {
            op.insert("security".into(), json!([{"slackSignature": []}]));
        } else if r.access != Access::Public {
            op.insert("security".into(), json!([{"apiKey": []}, {"bearer": []}, {"oidc": []}]));
        } else {
            op.insert("security".into(), json!([]));
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = entry.as_object_mut() {
            m.insert(r.verb.as_str().to_ascii_lowercase(), Value::Object(op));
        }
    }
    let _ = error_schema;
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "DreamOps control API",
            "version": "1",
            "description": "Teams, settings, integrations, API keys, incidents and approvals. Every error is {\"error\": {\"code\", \"message\"}}. Another team's objects answer 404."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key (dok_…) or an OIDC token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "slackSignature": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature", "description": "v0 HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` under the team's Slack signing secret; at most 5 minutes old"},
                "oidc": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "RS256, from the configured issuer"}
            }
        }
    })
}

fn operation_id(verb: Verb, path: &str) -> String {
    let mut id = verb.as_str().to_ascii_lowercase();
    for seg in path.trim_start_matches("/v1/").split('/') {
        let seg = seg.trim_start_matches('{').trim_end_matches('}').replace(['-', '.'], "_");
        id.push('_');
        id.push_str(&seg);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document must be what the code generates. To update it after changing a route or a body:
    /// `DREAMOPS_WRITE_OPENAPI=1 cargo test -p control openapi`.
    #[test]
    fn the_committed_openapi_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var_os("DREAMOPS_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "shared/control/openapi.json is stale: run `DREAMOPS_WRITE_OPENAPI=1 cargo test -p control openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented_with_its_access() {
        let doc = document();
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.verb.as_str().to_ascii_lowercase()];
            assert_eq!(op["x-dreamops-access"], r.access.describe(), "{r:?}");
            assert!(op["responses"][r.status.to_string()].is_object(), "{r:?}");
        }
        assert!(doc["components"]["schemas"]["Incident"].is_object());
        assert!(doc["components"]["schemas"]["TeamSettings"].is_object());
        let text = doc.to_string();
        assert!(!text.contains("#/$defs"), "every reference points into components");
    }
}
