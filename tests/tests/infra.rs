//! The Terraform in `infra/`, parsed and checked for the wiring a plan cannot see offline: every function directory
//! has a Lambda with its cargo-lambda zip (and SAM metadata), every queue a dead-letter queue and redrive, every
//! visibility timeout at least 6x its consumer's timeout, every SQS trigger reporting partial batch failures, no
//! IAM statement granting `*` on `*`, every environment variable a function's configuration requires set, and
//! every variable and output documented.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::{Block, Body, Expression, ObjectKey};

fn infra() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

/// Every `.tf` file of a directory, as one body.
fn load(dir: &Path) -> Body {
    let mut blocks = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "tf")) {
        let text = std::fs::read_to_string(f).unwrap();
        let body: Body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        blocks.extend(body.into_blocks());
    }
    Body::builder().add_blocks(blocks).build()
}

fn blocks<'a>(body: &'a Body, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier() == kind)
}

fn label(b: &Block, i: usize) -> &str {
    b.labels()[i].as_str()
}

fn attr<'a>(b: &'a Body, key: &str) -> Option<&'a Expression> {
    b.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn text(e: &Expression) -> String {
    e.to_string()
}

fn key_name(k: &ObjectKey) -> String {
    match k {
        ObjectKey::Identifier(i) => i.as_str().to_owned(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        ObjectKey::Expression(e) => e.to_string().trim_matches('"').to_owned(),
        _ => String::new(),
    }
}

/// The keys of an object expression, following `merge(local.x, {...})` into the root module's locals.
fn object_keys(e: &Expression, locals: &BTreeMap<String, Expression>) -> BTreeSet<String> {
    match e {
        Expression::Object(o) => o.keys().map(key_name).collect(),
        Expression::FuncCall(f) if f.name.name.as_str() == "merge" => {
            f.args.iter().flat_map(|a| object_keys(a, locals)).collect()
        }
        // `var.billing_enabled ? {…} : {}`: whatever either branch may set.
        Expression::Conditional(c) => {
            let mut keys = object_keys(&c.true_expr, locals);
            keys.extend(object_keys(&c.false_expr, locals));
            keys
        }
        Expression::Traversal(_) => {
            let t = text(e);
            let name = t.strip_prefix("local.").unwrap_or_else(|| panic!("cannot follow {t}"));
            object_keys(&locals[name], locals)
        }
        other => panic!("not an object: {other}"),
    }
}

fn locals(root: &Body) -> BTreeMap<String, Expression> {
    blocks(root, "locals").flat_map(|b| b.body().attributes().map(|a| (a.key().to_owned(), a.expr().clone()))).collect()
}

/// The `resource "kind" "name"` block.
fn resource<'a>(root: &'a Body, kind: &str, name: &str) -> &'a Block {
    blocks(root, "resource")
        .find(|r| label(r, 0) == kind && label(r, 1) == name)
        .unwrap_or_else(|| panic!("no {kind}.{name}"))
}

fn modules<'a>(root: &'a Body, source: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    blocks(root, "module").filter(move |m| attr(m.body(), "source").is_some_and(|s| text(s).contains(source)))
}

fn function_dirs() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The function module whose zip is `functions/<name>`'s build.
fn function_module<'a>(root: &'a Body, name: &str) -> &'a Block {
    let zip = format!("/{name}/bootstrap.zip");
    let found: Vec<&Block> = modules(root, "modules/function")
        .filter(|m| text(attr(m.body(), "zip_path").unwrap()).contains(&zip))
        .collect();
    assert_eq!(found.len(), 1, "exactly one function module deploys functions/{name} (zip path ending {zip})");
    found[0]
}

#[test]
fn every_function_directory_is_deployed_from_its_zip() {
    let root = load(&infra());
    let fns = function_dirs();
    assert_eq!(fns, ["analyzer", "api", "executor", "payments-callback", "quota", "verifier", "webhook-intake"]);
    for name in &fns {
        let m = function_module(&root, name);
        let sam = blocks(&root, "resource")
            .filter(|r| label(r, 0) == "null_resource" && label(r, 1).starts_with("sam_metadata_"))
            .find(|r| {
                let t = text(attr(r.body(), "triggers").unwrap());
                t.contains(&format!("module.{}.", label(m, 0))) || t.contains(&format!("module.{}[0].", label(m, 0)))
            })
            .unwrap_or_else(|| panic!("no sam_metadata resource for module.{}", label(m, 0)));
        let triggers = text(attr(sam.body(), "triggers").unwrap());
        assert!(triggers.contains(&format!("../functions/{name}")), "{triggers}");
        assert!(triggers.contains(&format!("/{name}/bootstrap.zip")) && triggers.contains("ZIP_LAMBDA_FUNCTION"));
    }
    // The module deploys the zip it is given, as the cargo-lambda custom runtime on arm64.
    let module = load(&infra().join("modules/function"));
    let lambda = blocks(&module, "resource").find(|r| label(r, 0) == "aws_lambda_function").unwrap();
    let b = lambda.body();
    assert_eq!(text(attr(b, "filename").unwrap()), "var.zip_path");
    assert!(text(attr(b, "source_code_hash").unwrap()).contains("var.zip_path"));
    assert_eq!(text(attr(b, "runtime").unwrap()), "\"provided.al2023\"");
    assert_eq!(text(attr(b, "handler").unwrap()), "\"bootstrap\"");
    assert!(text(attr(b, "architectures").unwrap()).contains("arm64"));
    let logs = blocks(&module, "resource").find(|r| label(r, 0) == "aws_cloudwatch_log_group").unwrap();
    assert!(attr(logs.body(), "retention_in_days").is_some(), "log groups have retention");
}

#[test]
fn queues_have_dead_letter_queues_and_visibility_of_six_consumer_timeouts() {
    let root = load(&infra());
    let queue = load(&infra().join("modules/queue"));
    let main = blocks(&queue, "resource").find(|r| label(r, 0) == "aws_sqs_queue" && label(r, 1) == "this").unwrap();
    let redrive = text(attr(main.body(), "redrive_policy").unwrap());
    assert!(redrive.contains("aws_sqs_queue.dlq.arn") && redrive.contains("maxReceiveCount"), "{redrive}");
    let Expression::Operation(op) = attr(main.body(), "visibility_timeout_seconds").unwrap() else {
        panic!("visibility timeout is not computed from the consumer's timeout")
    };
    let hcl::Operation::Binary(op) = op.as_ref() else { panic!("not a product") };
    let factor = match (&op.lhs_expr, &op.rhs_expr) {
        (Expression::Number(n), e) | (e, Expression::Number(n)) if text(e) == "var.consumer_timeout_seconds" => {
            n.as_f64().unwrap()
        }
        _ => panic!("visibility is not a multiple of var.consumer_timeout_seconds"),
    };
    assert_eq!(op.operator, hcl::BinaryOperator::Mul);
    assert!(factor >= 6.0, "visibility is {factor}x the consumer timeout");

    // Each queue's consumer timeout is the timeout of the function its event source mapping triggers.
    let queues: Vec<&Block> = modules(&root, "modules/queue").collect();
    assert_eq!(queues.len(), 4);
    let mappings: Vec<&Block> =
        blocks(&root, "resource").filter(|r| label(r, 0) == "aws_lambda_event_source_mapping").collect();
    assert_eq!(mappings.len(), 4, "analyzer, executor, verifier, quota");
    // `module.x.arn`, or `module.x[0].arn` for what billing_enabled deploys.
    let module_of = |t: &str| -> String {
        let inner = t.strip_prefix("module.").and_then(|t| t.strip_suffix(".arn")).unwrap_or_default();
        inner.strip_suffix("[0]").unwrap_or(inner).to_owned()
    };
    for q in queues {
        let qname = label(q, 0);
        let esm = mappings
            .iter()
            .find(|m| module_of(&text(attr(m.body(), "event_source_arn").unwrap())) == qname)
            .unwrap_or_else(|| panic!("queue {qname} triggers nothing"));
        let f = text(attr(esm.body(), "function_name").unwrap());
        let fname = module_of(&f);
        let fname = fname.as_str();
        let function = modules(&root, "modules/function").find(|m| label(m, 0) == fname).unwrap();
        assert_eq!(
            text(attr(q.body(), "consumer_timeout_seconds").unwrap()),
            text(attr(function.body(), "timeout").unwrap()),
            "queue {qname}'s visibility follows {fname}'s timeout"
        );
        let rt = text(attr(esm.body(), "function_response_types").unwrap());
        assert!(rt.contains("ReportBatchItemFailures"), "{fname}: partial batch failures must be reported");
        assert!(attr(esm.body(), "batch_size").is_some(), "{fname}: batch size");
        let scaling = esm.body().blocks().find(|b| b.identifier() == "scaling_config").expect("scaling_config");
        assert!(attr(scaling.body(), "maximum_concurrency").is_some(), "{fname}: maximum concurrency");
    }
}

/// Every `{actions, resources}` pair in IAM statements: policy document blocks and statement objects.
fn statements(body: &Body, out: &mut Vec<(String, String, String)>, origin: &str) {
    for b in body.blocks() {
        if b.identifier() == "statement"
            && let (Some(a), Some(r)) = (attr(b.body(), "actions"), attr(b.body(), "resources"))
        {
            out.push((origin.to_owned(), text(a), text(r)));
        }
        statements(b.body(), out, origin);
    }
    for a in body.attributes() {
        objects(a.expr(), out, origin);
    }
}

fn objects(e: &Expression, out: &mut Vec<(String, String, String)>, origin: &str) {
    match e {
        Expression::Object(o) => {
            let get = |k: &str| o.iter().find(|(key, _)| key_name(key) == k).map(|(_, v)| text(v));
            if let (Some(a), Some(r)) = (get("actions"), get("resources")) {
                out.push((origin.to_owned(), a, r));
            }
            o.values().for_each(|v| objects(v, out, origin));
        }
        Expression::Array(items) => items.iter().for_each(|v| objects(v, out, origin)),
        Expression::FuncCall(f) => f.args.iter().for_each(|v| objects(v, out, origin)),
        _ => {}
    }
}

#[test]
fn no_iam_statement_grants_every_action_on_every_resource() {
    let mut found = Vec::new();
    for dir in [infra(), infra().join("modules/function"), infra().join("modules/queue")] {
        statements(&load(&dir), &mut found, &dir.display().to_string());
    }
    assert!(found.len() >= 15, "statements were found: {}", found.len());
    for (origin, actions, resources) in &found {
        let any_action = actions.contains("\"*\"");
        let any_resource = resources.contains("\"*\"");
        assert!(!(any_action && any_resource), "{origin}: {actions} on {resources}");
        assert!(!any_action, "{origin}: the action \"*\" is never needed ({actions})");
    }
    // The functions' own statements never use a wildcard service action.
    for (origin, actions, _) in found.iter().filter(|(o, _, _)| !o.ends_with("infra")) {
        assert!(!actions.contains(":*"), "{origin}: {actions}");
    }
}

#[test]
fn every_environment_variable_a_function_requires_is_set() {
    let root = load(&infra());
    let locals = locals(&root);
    let env_of = |name: &str| object_keys(attr(function_module(&root, name).body(), "environment").unwrap(), &locals);

    let intake = env_of("webhook-intake");
    for var in webhook_intake::REQUIRED_ENV {
        assert!(intake.contains(*var), "webhook-intake needs {var}");
    }
    let api = env_of("api");
    for var in api::REQUIRED_ENV {
        assert!(api.contains(*var), "api needs {var}");
    }
    for (name, required) in [("payments-callback", payments_callback::REQUIRED_ENV), ("quota", quota::REQUIRED_ENV)] {
        let env = env_of(name);
        for var in required {
            assert!(env.contains(*var), "{name} needs {var}");
        }
    }
    // Metering reaches the intake (which counts) and the analyzer (which announces); checkout reaches the api.
    for name in ["webhook-intake", "analyzer", "api", "payments-callback", "quota"] {
        assert!(env_of(name).contains(aws::env::BILLING_ENABLED), "{name} needs {}", aws::env::BILLING_ENABLED);
    }
    for stage in stage_lambda::Stage::ALL {
        let env = env_of(stage.function_name());
        for var in stage.required_env() {
            assert!(env.contains(var), "{} needs {var}", stage.function_name());
        }
        assert!(!env.contains(stage_lambda::config::KUBE_API_URL), "deployments reach the cluster through EKS only");
    }
    // Nothing set that no function reads (a typo would silently fall back to a default).
    let known: BTreeSet<&str> = [
        "DREAMOPS_TABLE",
        "DREAMOPS_ANALYSIS_QUEUE_URL",
        "DREAMOPS_SECRETS_PREFIX",
        "DREAMOPS_PAGERDUTY_BOT_USER_ID",
        "DREAMOPS_MAX_BODY_BYTES",
        "DREAMOPS_SECRETS_TTL_SECS",
        "DREAMOPS_DLQ_URL",
        "DREAMOPS_MAX_RECEIVES",
        "DREAMOPS_EXECUTION_QUEUE_URL",
        "DREAMOPS_VERIFICATION_QUEUE_URL",
        "DREAMOPS_EKS_CLUSTER",
        "DREAMOPS_PAGERDUTY_FROM",
        "DREAMOPS_PAGERDUTY_API_URL",
        "DREAMOPS_AGENT_NAMESPACE",
        "DREAMOPS_SETTINGS_TTL_SECS",
        api::SECRETS_KMS_KEY,
        api::DASHBOARD_URL,
        api::HEALTH_ALLOW_HOSTS,
        stage_lambda::config::DASHBOARD_URL,
        api::KEY_CACHE_SECS,
        api::OIDC_ISSUER,
        api::OIDC_AUDIENCE,
        api::OIDC_JWKS_URI,
        api::OIDC_TEAM_CLAIM,
        api::OIDC_ROLE_CLAIM,
        api::OIDC_CLIENT_ID,
        "DREAMOPS_LLM_PROVIDER",
        "DREAMOPS_LLM_MODEL",
        "DREAMOPS_LLM_ENDPOINT",
        aws::env::BILLING_ENABLED,
        aws::env::BILLING_TIMEZONE,
        billing::aws::BILLING_PROVIDER,
        billing::aws::BILLING_QUEUE_URL,
        billing::aws::PUBLIC_URL,
        billing::aws::BILLING_RETURN_URL,
        billing::aws::PHONEPE_MERCHANT_ID,
        billing::aws::PHONEPE_CLIENT_ID,
        billing::aws::PHONEPE_CLIENT_VERSION,
        billing::aws::PHONEPE_ENVIRONMENT,
    ]
    .into();
    for f in function_dirs() {
        for var in env_of(&f) {
            assert!(known.contains(var.as_str()), "{f} sets {var}, which nothing reads");
        }
    }
}

#[test]
fn every_variable_and_output_is_documented() {
    for dir in [infra(), infra().join("modules/function"), infra().join("modules/queue")] {
        let body = load(&dir);
        for kind in ["variable", "output"] {
            for b in blocks(&body, kind) {
                let d = attr(b.body(), "description").map(text).unwrap_or_default();
                assert!(d.len() > 12, "{}: {kind} {} has no description", dir.display(), label(b, 0));
            }
        }
    }
}

#[test]
fn the_control_api_is_routed_throttled_and_reaches_no_cluster() {
    let root = load(&infra());
    let routes: Vec<&Block> = blocks(&root, "resource").filter(|r| label(r, 0) == "aws_apigatewayv2_route").collect();
    let control = routes
        .iter()
        .find(|r| text(attr(r.body(), "route_key").unwrap()) == "\"ANY /v1/{proxy+}\"")
        .expect("ANY /v1/{proxy+} is routed");
    assert!(text(attr(control.body(), "target").unwrap()).contains("aws_apigatewayv2_integration.api.id"));
    let integration = blocks(&root, "resource")
        .find(|r| label(r, 0) == "aws_apigatewayv2_integration" && label(r, 1) == "api")
        .unwrap();
    assert_eq!(text(attr(integration.body(), "integration_uri").unwrap()), "module.api.invoke_arn");
    let stage = blocks(&root, "resource").find(|r| label(r, 0) == "aws_apigatewayv2_stage").unwrap();
    let settings = stage.body().blocks().find(|b| b.identifier() == "route_settings").expect("route throttling");
    assert!(text(attr(settings.body(), "route_key").unwrap()).contains("aws_apigatewayv2_route.control"));
    assert!(
        attr(settings.body(), "throttling_rate_limit").is_some()
            && attr(settings.body(), "throttling_burst_limit").is_some()
    );

    // Least privilege: no EKS at all, secrets written only under the team prefix, no access entry.
    let api = function_module(&root, "api");
    let mut found = Vec::new();
    statements(api.body(), &mut found, "api");
    assert!(found.len() >= 4, "{found:?}");
    for (_, actions, resources) in &found {
        assert!(!actions.contains("eks:"), "the api reaches no cluster: {actions}");
        if actions.contains("PutSecretValue") || actions.contains("CreateSecret") {
            let compact: String = resources.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(compact, "[local.team_secrets_arn]", "secrets are written under the team prefix only");
        }
    }
    let entries: Vec<String> = blocks(&root, "resource")
        .filter(|r| label(r, 0) == "aws_eks_access_entry")
        .map(|r| text(attr(r.body(), "principal_arn").unwrap()))
        .collect();
    assert!(!entries.iter().any(|p| p.contains("module.api.")), "{entries:?}");
    let alarms: Vec<&str> = blocks(&root, "resource")
        .filter(|r| label(r, 0) == "aws_cloudwatch_metric_alarm")
        .map(|r| label(r, 1))
        .collect();
    assert!(alarms.contains(&"control_api_5xx") && alarms.contains(&"control_api_throttles"), "{alarms:?}");
}

#[test]
fn billing_is_wired_callback_to_queue_to_quota_with_a_daily_run() {
    let root = load(&infra());
    // Everything billing deploys is conditional on the variable (off: unmetered, nothing deployed).
    for (kind, name) in [
        ("aws_apigatewayv2_route", "payments_callback"),
        ("aws_apigatewayv2_integration", "payments_callback"),
        ("aws_lambda_permission", "payments_callback"),
        ("aws_lambda_event_source_mapping", "quota"),
        ("aws_cloudwatch_event_rule", "billing_daily"),
        ("aws_cloudwatch_event_target", "billing_daily"),
        ("aws_lambda_permission", "billing_daily"),
        ("aws_cloudwatch_metric_alarm", "billing_flagged"),
    ] {
        let count =
            text(attr(resource(&root, kind, name).body(), "count").unwrap_or_else(|| panic!("{kind}.{name} count")));
        assert!(count.contains("var.billing_enabled"), "{kind}.{name}: {count}");
    }
    for m in ["billing_queue", "payments_callback", "quota"] {
        let b = modules(&root, "modules/").find(|b| label(b, 0) == m).unwrap();
        assert!(text(attr(b.body(), "count").unwrap()).contains("var.billing_enabled"), "module.{m}");
    }
    let route = resource(&root, "aws_apigatewayv2_route", "payments_callback");
    assert_eq!(text(attr(route.body(), "route_key").unwrap()), "\"POST /webhooks/phonepe\"");
    assert!(text(attr(route.body(), "target").unwrap()).contains("aws_apigatewayv2_integration.payments_callback"));
    let integration = resource(&root, "aws_apigatewayv2_integration", "payments_callback");
    assert!(text(attr(integration.body(), "integration_uri").unwrap()).contains("module.payments_callback[0]"));
    let timeout: u64 = text(attr(integration.body(), "timeout_milliseconds").unwrap()).parse().unwrap();
    assert!(timeout <= 5000, "PhonePe waits 3-5 s; the integration gives up after {timeout} ms");
    let target = resource(&root, "aws_cloudwatch_event_target", "billing_daily");
    assert_eq!(text(attr(target.body(), "arn").unwrap()), "module.quota[0].arn");
    let esm = resource(&root, "aws_lambda_event_source_mapping", "quota");
    assert_eq!(text(attr(esm.body(), "event_source_arn").unwrap()), "module.billing_queue[0].arn");

    // The callback reads orders, writes dedupe keys, queues and reads the deployment secret: nothing else.
    let mut found = Vec::new();
    statements(function_module(&root, "payments-callback").body(), &mut found, "payments-callback");
    let actions: BTreeSet<String> =
        found.iter().flat_map(|(_, a, _)| a.split(',').map(|s| s.trim().to_owned())).collect();
    for a in &actions {
        assert!(
            !a.contains("eks:") && !a.contains("UpdateItem") && !a.contains("Query"),
            "payments-callback may not {a}"
        );
    }
    assert!(found.iter().all(|(_, _, r)| !r.contains("team_secrets_arn")), "payments-callback reads no team secret");
    // No PhonePe secret value is ever in the configuration (only ids and names).
    let main = std::fs::read_to_string(infra().join("main.tf")).unwrap();
    for key in ["DREAMOPS_PHONEPE_CLIENT_SECRET", "DREAMOPS_PHONEPE_WEBHOOK_PASSWORD", "DREAMOPS_PHONEPE_SALT_KEY"] {
        assert!(!main.contains(key), "{key} must come from the deployment secret, not the environment");
    }
}

#[test]
fn the_dashboard_is_served_by_the_api_function_and_payments_return_to_it() {
    let root = load(&infra());
    let route = resource(&root, "aws_apigatewayv2_route", "dashboard");
    let keys = text(attr(route.body(), "for_each").unwrap());
    assert!(keys.contains("\"GET /\"") && keys.contains("\"GET /ui/{file}\""), "{keys}");
    assert!(text(attr(route.body(), "target").unwrap()).contains("aws_apigatewayv2_integration.api.id"));
    let permission = resource(&root, "aws_lambda_permission", "dashboard");
    assert_eq!(text(attr(permission.body(), "function_name").unwrap()), "module.api.name");
    let arns = text(attr(permission.body(), "for_each").unwrap());
    assert!(arns.contains("/*/GET/") && arns.contains("/*/GET/ui/*"), "only GET of the page and its files: {arns}");
    // Without a configured return URL, customers come back to the dashboard's plan page (AWS has no other page).
    let locals = locals(&root);
    let env = text(&locals["payments_env"]);
    assert!(env.contains("/#/usage"), "{env}");
}

#[test]
fn slack_requests_reach_the_api_function_and_operations_can_be_analysed() {
    let root = load(&infra());
    let route = resource(&root, "aws_apigatewayv2_route", "slack");
    let keys = text(attr(route.body(), "for_each").unwrap());
    for path in ["/webhooks/slack/{team}/interactions", "/webhooks/slack/{team}/commands"] {
        assert!(keys.contains(&format!("POST {path}")), "{keys}");
        assert!(
            control::routes::ROUTES.iter().any(|r| r.path == path && r.verb == control::routes::Verb::Post),
            "{path} is routed to a route the API declares"
        );
    }
    assert!(text(attr(route.body(), "target").unwrap()).contains("aws_apigatewayv2_integration.api.id"));
    let permission = resource(&root, "aws_lambda_permission", "slack");
    assert_eq!(text(attr(permission.body(), "function_name").unwrap()), "module.api.name");
    assert!(text(attr(permission.body(), "source_arn").unwrap()).ends_with("/*/POST/webhooks/slack/*\""));
    // The api function may queue analysis (operations) besides execution (approvals), and nothing else.
    let api = function_module(&root, "api");
    let mut found = Vec::new();
    statements(api.body(), &mut found, "api");
    let sends: Vec<&(String, String, String)> =
        found.iter().filter(|(_, a, _)| a.contains("sqs:SendMessage")).collect();
    assert!(sends.iter().any(|(_, _, r)| r.contains("module.analysis_queue.arn")), "{sends:?}");
    assert!(!sends.iter().any(|(_, _, r)| r.contains("verification_queue")), "{sends:?}");
}
