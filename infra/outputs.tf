output "webhook_base_url" {
  description = "Base URL of the webhook API."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "control_api_url" {
  description = "Base URL of the control API (export it as DREAMOPS_URL for the dreamops CLI)."
  value       = trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")
}

output "dashboard_url" {
  description = "The dashboard (sign in with a team API key, or OIDC when oidc_client_id is set); it calls only the control API."
  value       = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/"
}

output "pagerduty_webhook_urls" {
  description = "Per team: the URL to register as a PagerDuty Generic Webhook (v3) subscription."
  value       = { for t in var.teams : t => "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhooks/pagerduty/${t}" }
}

output "alertmanager_webhook_urls" {
  description = "Per team: the URL of an Alertmanager webhook receiver (with http_config.authorization credentials = the team's bearer token)."
  value       = { for t in var.teams : t => "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhooks/alertmanager/${t}" }
}

output "slack_request_urls" {
  description = "Per team: the Request URLs of the team's own Slack app: Interactivity (`interactions`, for the Approve and Reject buttons) and the `/dreamops` slash command (`commands`)."
  value = { for t in var.teams : t => {
    interactions = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhooks/slack/${t}/interactions"
    commands     = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhooks/slack/${t}/commands"
  } }
}

output "phonepe_webhook_url" {
  description = "The URL to register in PhonePe's Business Dashboard (Developer Settings → Webhook), with the username and password put in the deployment secret; empty when billing is off."
  value       = var.billing_enabled ? "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhooks/phonepe" : ""
}

output "team_secret_ids" {
  description = "Per team: the Secrets Manager secret to put the team's JSON document into."
  value       = { for t, s in aws_secretsmanager_secret.team : t => s.name }
}

output "deployment_secret_id" {
  description = "The Secrets Manager secret holding the deployment's JSON document (pagerduty_api_token, llm_api_key; with billing, phonepe_client_secret, phonepe_webhook_username, phonepe_webhook_password or phonepe_salt_key, phonepe_salt_index)."
  value       = aws_secretsmanager_secret.deployment.name
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.incidents.name
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queue of each stage, to inspect and redrive."
  value = {
    analysis     = module.analysis_queue.dlq_url
    execution    = module.execution_queue.dlq_url
    verification = module.verification_queue.dlq_url
    billing      = var.billing_enabled ? module.billing_queue[0].dlq_url : ""
  }
}

output "kubernetes_rbac" {
  description = "The Kubernetes RBAC the access entries' groups need; apply with `terraform output -raw kubernetes_rbac | kubectl apply -f -`."
  value       = templatefile("${path.module}/kubernetes/rbac.yaml.tftpl", { namespaces = var.executor_namespaces })
}
