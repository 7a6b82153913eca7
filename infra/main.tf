# DreamOps on AWS: webhook intake, the control API and the PhonePe callback behind one HTTP API, three SQS-chained
# stage functions, the quota function on the billing queue and a daily schedule, one DynamoDB table, secrets
# declared without values, one customer-managed key, least-privilege roles, EKS access entries, alarms.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_eks_cluster" "target" {
  name = var.eks_cluster_name
}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  table     = "${var.name_prefix}-incidents"

  secrets_prefix = var.name_prefix
  # Every team's secret (including teams added after this apply) and the deployment's.
  team_secrets_arn       = "arn:${local.partition}:secretsmanager:${var.region}:${local.account}:secret:${local.secrets_prefix}/teams/*"
  deployment_secret_arn  = "arn:${local.partition}:secretsmanager:${var.region}:${local.account}:secret:${local.secrets_prefix}/deployment-*"
  table_and_indexes_arns = [aws_dynamodb_table.incidents.arn, "${aws_dynamodb_table.incidents.arn}/index/*"]

  # What every stage function reads (see shared/stage-lambda/src/config.rs).
  stage_env = {
    DREAMOPS_TABLE                 = local.table
    DREAMOPS_SECRETS_PREFIX        = local.secrets_prefix
    DREAMOPS_EKS_CLUSTER           = var.eks_cluster_name
    DREAMOPS_PAGERDUTY_FROM        = var.pagerduty_from_email
    DREAMOPS_PAGERDUTY_BOT_USER_ID = var.pagerduty_bot_user_id
    DREAMOPS_AGENT_NAMESPACE       = var.agent_namespace
    DREAMOPS_MAX_RECEIVES          = tostring(var.max_receive_count)
    # Chat messages and GitHub issues link to the incident on the dashboard.
    DREAMOPS_DASHBOARD_URL = local.public_url
    # Hosts outside the cluster a service's health URL may name (verification polls them).
    DREAMOPS_HEALTH_ALLOW_HOSTS = join(",", var.health_check_allow_hosts)
  }

  # Statements every stage function needs besides its own queues.
  stage_statements = [
    {
      sid       = "Incidents"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      resources = local.table_and_indexes_arns
    },
    {
      sid       = "Secrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.team_secrets_arn, local.deployment_secret_arn]
    },
    {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.dreamops.arn]
    },
    {
      sid       = "Cluster"
      actions   = ["eks:DescribeCluster"]
      resources = [data.aws_eks_cluster.target.arn]
    },
  ]

  consume = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]

  public_url = aws_apigatewayv2_api.webhooks.api_endpoint

  # Metering: the intake reserves each alert's count, the analyzer announces 80% and 100% (see shared/aws/src/env.rs).
  metering_env = var.billing_enabled ? {
    DREAMOPS_BILLING_ENABLED  = "true"
    DREAMOPS_BILLING_TIMEZONE = var.billing_timezone
  } : {}

  # Checkout, callbacks and confirmation (see shared/aws/src/payments.rs). No secret value appears here.
  payments_env = var.billing_enabled ? merge(local.metering_env, {
    DREAMOPS_BILLING_PROVIDER       = var.billing_provider
    DREAMOPS_BILLING_QUEUE_URL      = module.billing_queue[0].url
    DREAMOPS_PUBLIC_URL             = local.public_url
    DREAMOPS_BILLING_RETURN_URL     = var.billing_return_url != "" ? var.billing_return_url : "${local.public_url}/#/usage"
    DREAMOPS_PHONEPE_MERCHANT_ID    = var.phonepe_merchant_id
    DREAMOPS_PHONEPE_CLIENT_ID      = var.phonepe_client_id
    DREAMOPS_PHONEPE_CLIENT_VERSION = var.phonepe_client_version
    DREAMOPS_PHONEPE_ENVIRONMENT    = var.phonepe_environment
  }) : {}
}

# ---------------------------------------------------------------------------------------------------------------
# Encryption key: table, queues, secrets, logs and function environments.

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_111:A key policy's "*" resource is the key itself; the account administers its own key, as AWS's default key policy does.
  # checkov:skip=CKV_AWS_356:In a key policy the resource "*" means this key and nothing else.
  # checkov:skip=CKV_AWS_109:Administration of this key by the owning account (AWS's default key policy); without it the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "dreamops" {
  description             = "DreamOps: incidents, queues, secrets, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "dreamops" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.dreamops.key_id
}

# ---------------------------------------------------------------------------------------------------------------
# State: one table (see shared/aws/src/dynamo.rs for the item layout).

resource "aws_dynamodb_table" "incidents" {
  name         = local.table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }
  attribute {
    name = "gsi2pk"
    type = "S"
  }
  attribute {
    name = "gsi2sk"
    type = "S"
  }

  # A team's incidents, newest first.
  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  # Incidents not yet in a terminal state (sparse).
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "gsi2pk"
    range_key       = "gsi2sk"
    projection_type = "ALL"
  }

  # Webhook delivery keys expire after 7 days.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.dreamops.arn
  }

  deletion_protection_enabled = true
}

# ---------------------------------------------------------------------------------------------------------------
# Secrets: declared here, values put with `aws secretsmanager put-secret-value` (never in Terraform state).

resource "aws_secretsmanager_secret" "team" {
  # checkov:skip=CKV2_AWS_57:The values are third-party credentials (PagerDuty signing secrets and tokens, Slack URLs, Alertmanager tokens) that only their issuers can rotate; the functions accept several values at once so a rotation needs no downtime.
  for_each                = toset(var.teams)
  name                    = "${local.secrets_prefix}/teams/${each.key}"
  description             = "DreamOps team ${each.key}: pagerduty_webhook_secrets, alertmanager_bearer_tokens, slack_webhook_url, pagerduty_api_token (JSON)."
  kms_key_id              = aws_kms_key.dreamops.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret" "deployment" {
  # checkov:skip=CKV2_AWS_57:Third-party API keys (PagerDuty, the model provider), rotated by their issuers; see the team secrets.
  name                    = "${local.secrets_prefix}/deployment"
  description             = "DreamOps deployment: pagerduty_api_token, llm_api_key, slack_webhook_url defaults; with billing, phonepe_client_secret, phonepe_webhook_username, phonepe_webhook_password (v1: phonepe_salt_key, phonepe_salt_index) (JSON)."
  kms_key_id              = aws_kms_key.dreamops.arn
  recovery_window_in_days = 7
}

# ---------------------------------------------------------------------------------------------------------------
# Queues: analysis → execution → verification, each with its dead-letter queue.

module "analysis_queue" {
  source                   = "./modules/queue"
  name                     = "${var.name_prefix}-analysis"
  consumer_timeout_seconds = var.function_timeouts["analyzer"]
  max_receive_count        = var.max_receive_count
  kms_key_arn              = aws_kms_key.dreamops.arn
  alarm_actions            = var.alarm_actions
}

module "execution_queue" {
  source                   = "./modules/queue"
  name                     = "${var.name_prefix}-execution"
  consumer_timeout_seconds = var.function_timeouts["executor"]
  max_receive_count        = var.max_receive_count
  kms_key_arn              = aws_kms_key.dreamops.arn
  alarm_actions            = var.alarm_actions
}

module "verification_queue" {
  source                   = "./modules/queue"
  name                     = "${var.name_prefix}-verification"
  consumer_timeout_seconds = var.function_timeouts["verifier"]
  max_receive_count        = var.max_receive_count
  kms_key_arn              = aws_kms_key.dreamops.arn
  alarm_actions            = var.alarm_actions
}

# Payment confirmations: the callback (and checkout, and the daily run) → quota.
module "billing_queue" {
  count                    = var.billing_enabled ? 1 : 0
  source                   = "./modules/queue"
  name                     = "${var.name_prefix}-billing"
  consumer_timeout_seconds = var.function_timeouts["quota"]
  max_receive_count        = var.max_receive_count
  kms_key_arn              = aws_kms_key.dreamops.arn
  alarm_actions            = var.alarm_actions
}

# ---------------------------------------------------------------------------------------------------------------
# Functions.

module "webhook_intake" {
  source               = "./modules/function"
  name                 = "${var.name_prefix}-webhook-intake"
  zip_path             = "${path.module}/${var.artifacts_dir}/webhook-intake/bootstrap.zip"
  timeout              = var.function_timeouts["webhook-intake"]
  memory_mb            = var.function_memory_mb["webhook-intake"]
  reserved_concurrency = var.reserved_concurrency["webhook-intake"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.metering_env, {
    DREAMOPS_TABLE                 = local.table
    DREAMOPS_ANALYSIS_QUEUE_URL    = module.analysis_queue.url
    DREAMOPS_SECRETS_PREFIX        = local.secrets_prefix
    DREAMOPS_PAGERDUTY_BOT_USER_ID = var.pagerduty_bot_user_id
  })

  policy_statements = [
    {
      # Conditional creates (with the usage counter's update in the same transaction), delivery keys, the team's
      # plan, reads by key; human updates commit incidents.
      sid       = "Incidents"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
      resources = [aws_dynamodb_table.incidents.arn]
    },
    {
      sid       = "EnqueueAnalysis"
      actions   = ["sqs:SendMessage"]
      resources = [module.analysis_queue.arn]
    },
    {
      # Webhook signing secrets and Alertmanager tokens: team secrets only.
      sid       = "TeamSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.team_secrets_arn]
    },
    {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.dreamops.arn]
    },
  ]
}

module "analyzer" {
  source               = "./modules/function"
  name                 = "${var.name_prefix}-analyzer"
  zip_path             = "${path.module}/${var.artifacts_dir}/analyzer/bootstrap.zip"
  timeout              = var.function_timeouts["analyzer"]
  memory_mb            = var.function_memory_mb["analyzer"]
  reserved_concurrency = var.reserved_concurrency["analyzer"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.stage_env, local.metering_env, {
    DREAMOPS_DLQ_URL                = module.analysis_queue.dlq_url
    DREAMOPS_EXECUTION_QUEUE_URL    = module.execution_queue.url
    DREAMOPS_VERIFICATION_QUEUE_URL = module.verification_queue.url
    DREAMOPS_LLM_PROVIDER           = var.llm_provider
    DREAMOPS_LLM_MODEL              = var.llm_model
    DREAMOPS_LLM_ENDPOINT           = var.llm_endpoint
  })

  policy_statements = concat(local.stage_statements, [
    {
      sid       = "ConsumeAnalysis"
      actions   = local.consume
      resources = [module.analysis_queue.arn]
    },
    {
      # Auto-approved fixes to execution, approval deadlines to verification, give-ups to its own DLQ.
      sid       = "Enqueue"
      actions   = ["sqs:SendMessage"]
      resources = [module.execution_queue.arn, module.verification_queue.arn, module.analysis_queue.dlq_arn]
    },
  ])
}

module "executor" {
  source               = "./modules/function"
  name                 = "${var.name_prefix}-executor"
  zip_path             = "${path.module}/${var.artifacts_dir}/executor/bootstrap.zip"
  timeout              = var.function_timeouts["executor"]
  memory_mb            = var.function_memory_mb["executor"]
  reserved_concurrency = var.reserved_concurrency["executor"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.stage_env, {
    DREAMOPS_DLQ_URL                = module.execution_queue.dlq_url
    DREAMOPS_VERIFICATION_QUEUE_URL = module.verification_queue.url
  })

  policy_statements = concat(local.stage_statements, [
    {
      sid       = "ConsumeExecution"
      actions   = local.consume
      resources = [module.execution_queue.arn]
    },
    {
      sid       = "Enqueue"
      actions   = ["sqs:SendMessage"]
      resources = [module.verification_queue.arn, module.execution_queue.dlq_arn]
    },
  ])
}

module "verifier" {
  source               = "./modules/function"
  name                 = "${var.name_prefix}-verifier"
  zip_path             = "${path.module}/${var.artifacts_dir}/verifier/bootstrap.zip"
  timeout              = var.function_timeouts["verifier"]
  memory_mb            = var.function_memory_mb["verifier"]
  reserved_concurrency = var.reserved_concurrency["verifier"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.stage_env, {
    DREAMOPS_DLQ_URL                = module.verification_queue.dlq_url
    DREAMOPS_VERIFICATION_QUEUE_URL = module.verification_queue.url
  })

  policy_statements = concat(local.stage_statements, [
    {
      sid       = "ConsumeVerification"
      actions   = local.consume
      resources = [module.verification_queue.arn]
    },
    {
      # Re-checks with back-off go back on its own queue.
      sid       = "Enqueue"
      actions   = ["sqs:SendMessage"]
      resources = [module.verification_queue.arn, module.verification_queue.dlq_arn]
    },
  ])
}

module "api" {
  source               = "./modules/function"
  name                 = "${var.name_prefix}-api"
  zip_path             = "${path.module}/${var.artifacts_dir}/api/bootstrap.zip"
  timeout              = var.function_timeouts["api"]
  memory_mb            = var.function_memory_mb["api"]
  reserved_concurrency = var.reserved_concurrency["api"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.payments_env, {
    DREAMOPS_TABLE               = local.table
    DREAMOPS_SECRETS_PREFIX      = local.secrets_prefix
    DREAMOPS_SECRETS_KMS_KEY     = aws_kms_key.dreamops.arn
    DREAMOPS_EXECUTION_QUEUE_URL = module.execution_queue.url
    DREAMOPS_ANALYSIS_QUEUE_URL  = module.analysis_queue.url
    DREAMOPS_DASHBOARD_URL       = local.public_url
    DREAMOPS_HEALTH_ALLOW_HOSTS  = join(",", var.health_check_allow_hosts)
    # Operations in words the grammar cannot read go to the same model as diagnosis.
    DREAMOPS_LLM_PROVIDER    = var.llm_provider
    DREAMOPS_LLM_MODEL       = var.llm_model
    DREAMOPS_LLM_ENDPOINT    = var.llm_endpoint
    DREAMOPS_KEY_CACHE_SECS  = tostring(var.api_key_cache_secs)
    DREAMOPS_OIDC_ISSUER     = var.oidc_issuer
    DREAMOPS_OIDC_AUDIENCE   = var.oidc_audience
    DREAMOPS_OIDC_JWKS_URI   = var.oidc_jwks_uri
    DREAMOPS_OIDC_TEAM_CLAIM = var.oidc_team_claim
    DREAMOPS_OIDC_ROLE_CLAIM = var.oidc_role_claim
    DREAMOPS_OIDC_CLIENT_ID  = var.oidc_client_id
  })

  policy_statements = concat([
    {
      # Incidents, teams, keys, audit events, failed-authentication counters: items of the one table.
      sid       = "Items"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      resources = local.table_and_indexes_arns
    },
    {
      # Approvals hand the action to the executor; the deep health check reads the queue's depth.
      sid       = "Execution"
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
      resources = [module.execution_queue.arn]
    },
    {
      # Operations asked for in words (the API, /dreamops in Slack) are analysed like alerts.
      sid       = "Analysis"
      actions   = ["sqs:SendMessage"]
      resources = [module.analysis_queue.arn]
    },
    {
      # Integration credentials are written through the API: team secrets only, never the deployment's.
      sid       = "TeamSecrets"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret", "secretsmanager:DescribeSecret"]
      resources = [local.team_secrets_arn]
    },
    {
      # The deployment secret is read (never written): which outbound credentials a team inherits, and PhonePe's
      # client secret for checkout.
      sid       = "DeploymentSecretRead"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.deployment_secret_arn]
    },
    {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.dreamops.arn]
    },
    ], var.billing_enabled ? [
    {
      # Checkout schedules the new order's first status check.
      sid       = "ScheduleConfirmation"
      actions   = ["sqs:SendMessage"]
      resources = [module.billing_queue[0].arn]
    },
  ] : [])
}

module "payments_callback" {
  count                = var.billing_enabled ? 1 : 0
  source               = "./modules/function"
  name                 = "${var.name_prefix}-payments-callback"
  zip_path             = "${path.module}/${var.artifacts_dir}/payments-callback/bootstrap.zip"
  timeout              = var.function_timeouts["payments-callback"]
  memory_mb            = var.function_memory_mb["payments-callback"]
  reserved_concurrency = var.reserved_concurrency["payments-callback"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.payments_env, {
    DREAMOPS_TABLE          = local.table
    DREAMOPS_SECRETS_PREFIX = local.secrets_prefix
  })

  policy_statements = [
    {
      # The order a callback names, and its dedupe key.
      sid       = "Orders"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
      resources = [aws_dynamodb_table.incidents.arn]
    },
    {
      sid       = "QueueConfirmation"
      actions   = ["sqs:SendMessage"]
      resources = [module.billing_queue[0].arn]
    },
    {
      # PhonePe's webhook credentials (or v1 salt key) in the deployment secret; no team secret.
      sid       = "DeploymentSecretRead"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.deployment_secret_arn]
    },
    {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.dreamops.arn]
    },
  ]
}

module "quota" {
  count                = var.billing_enabled ? 1 : 0
  source               = "./modules/function"
  name                 = "${var.name_prefix}-quota"
  zip_path             = "${path.module}/${var.artifacts_dir}/quota/bootstrap.zip"
  timeout              = var.function_timeouts["quota"]
  memory_mb            = var.function_memory_mb["quota"]
  reserved_concurrency = var.reserved_concurrency["quota"]
  kms_key_arn          = aws_kms_key.dreamops.arn
  log_retention_days   = var.log_retention_days
  alarm_actions        = var.alarm_actions

  environment = merge(local.payments_env, {
    DREAMOPS_TABLE          = local.table
    DREAMOPS_SECRETS_PREFIX = local.secrets_prefix
  })

  policy_statements = [
    {
      # Orders, accounts and notices; settling is one transaction over the order and the account; open orders and
      # accounts are read through the indexes.
      sid       = "Billing"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"]
      resources = local.table_and_indexes_arns
    },
    {
      sid       = "ConsumeBilling"
      actions   = local.consume
      resources = [module.billing_queue[0].arn]
    },
    {
      # Re-checks of pending orders on PhonePe's schedule, and the daily reconciliation.
      sid       = "ScheduleConfirmation"
      actions   = ["sqs:SendMessage"]
      resources = [module.billing_queue[0].arn]
    },
    {
      # PhonePe's credentials (deployment secret) and each team's Slack webhook for payment and renewal notices.
      sid       = "Secrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.deployment_secret_arn, local.team_secrets_arn]
    },
    {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.dreamops.arn]
    },
  ]
}

resource "aws_lambda_event_source_mapping" "quota" {
  count                   = var.billing_enabled ? 1 : 0
  event_source_arn        = module.billing_queue[0].arn
  function_name           = module.quota[0].arn
  batch_size              = var.sqs_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = 2
  }
}

resource "aws_cloudwatch_event_rule" "billing_daily" {
  count               = var.billing_enabled ? 1 : 0
  name                = "${var.name_prefix}-billing-daily"
  description         = "DreamOps daily billing run: reconcile open orders, send renewal reminders."
  schedule_expression = var.billing_schedule
}

resource "aws_cloudwatch_event_target" "billing_daily" {
  count = var.billing_enabled ? 1 : 0
  rule  = aws_cloudwatch_event_rule.billing_daily[0].name
  arn   = module.quota[0].arn
}

resource "aws_lambda_permission" "billing_daily" {
  count         = var.billing_enabled ? 1 : 0
  statement_id  = "AllowDailyBillingRun"
  action        = "lambda:InvokeFunction"
  function_name = module.quota[0].name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.billing_daily[0].arn
}

# A payment that does not match its order is never applied; the quota function logs `billing_flagged` and counts it
# as the EMF metric DreamOps/BillingFlagged, which alarms the operator.
resource "aws_cloudwatch_metric_alarm" "billing_flagged" {
  count               = var.billing_enabled ? 1 : 0
  alarm_name          = "${var.name_prefix}-billing-flagged"
  alarm_description   = "A payment did not match its order (amount) and was not applied: reconcile it by hand with the order in the table."
  namespace           = "DreamOps"
  metric_name         = "BillingFlagged"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# ---------------------------------------------------------------------------------------------------------------
# SQS → stage functions, with partial batch failures.

resource "aws_lambda_event_source_mapping" "analyzer" {
  event_source_arn        = module.analysis_queue.arn
  function_name           = module.analyzer.arn
  batch_size              = var.sqs_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_max_concurrency
  }
}

resource "aws_lambda_event_source_mapping" "executor" {
  event_source_arn        = module.execution_queue.arn
  function_name           = module.executor.arn
  batch_size              = var.sqs_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_max_concurrency
  }
}

resource "aws_lambda_event_source_mapping" "verifier" {
  event_source_arn        = module.verification_queue.arn
  function_name           = module.verifier.arn
  batch_size              = var.sqs_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.sqs_max_concurrency
  }
}

# ---------------------------------------------------------------------------------------------------------------
# Webhook API.

resource "aws_cloudwatch_log_group" "api" {
  name              = "/aws/apigateway/${var.name_prefix}-webhooks"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.dreamops.arn
}

resource "aws_apigatewayv2_api" "webhooks" {
  name          = "${var.name_prefix}-webhooks"
  protocol_type = "HTTP"
  description   = "PagerDuty and Alertmanager webhooks for DreamOps"
}

resource "aws_apigatewayv2_integration" "intake" {
  api_id                 = aws_apigatewayv2_api.webhooks.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.webhook_intake.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 10000
}

locals {
  # Each route authenticates in the function: PagerDuty by HMAC signature over the raw body, Alertmanager by bearer
  # token, both per team from Secrets Manager. API Gateway authorizers cannot check a body signature.
  webhook_routes = [
    "POST /webhooks/pagerduty",
    "POST /webhooks/pagerduty/{team}",
    "POST /webhooks/alertmanager/{team}",
  ]
}

resource "aws_apigatewayv2_integration" "api" {
  api_id                 = aws_apigatewayv2_api.webhooks.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.api.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 29000
}

resource "aws_apigatewayv2_route" "control" {
  # checkov:skip=CKV_AWS_309:The control API authenticates every request itself (API keys by SHA-256 in the table, OIDC tokens against the issuer's JWKS) and authorizes it per route and team; one HTTP API route can carry only one authorizer, which could not accept both.
  api_id    = aws_apigatewayv2_api.webhooks.id
  route_key = "ANY /v1/{proxy+}"
  target    = "integrations/${aws_apigatewayv2_integration.api.id}"
}

resource "aws_apigatewayv2_route" "dashboard" {
  # checkov:skip=CKV_AWS_309:The dashboard's static files (its page, script, style and icon) hold no data and must load before anyone signs in; everything the page shows comes from /v1, which authenticates and authorizes every request.
  for_each  = toset(["GET /", "GET /ui/{file}"])
  api_id    = aws_apigatewayv2_api.webhooks.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.api.id}"
}

resource "aws_apigatewayv2_integration" "payments_callback" {
  count                  = var.billing_enabled ? 1 : 0
  api_id                 = aws_apigatewayv2_api.webhooks.id
  integration_type       = "AWS_PROXY"
  integration_uri        = module.payments_callback[0].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 5000
}

resource "aws_apigatewayv2_route" "payments_callback" {
  # checkov:skip=CKV_AWS_309:PhonePe authenticates with its own header (v2 Authorization = SHA-256 of the configured username:password, v1 X-VERIFY with the salt key), checked by the function in constant time; an API Gateway authorizer cannot compute either, and the confirmation re-checks every payment with PhonePe's status API.
  count     = var.billing_enabled ? 1 : 0
  api_id    = aws_apigatewayv2_api.webhooks.id
  route_key = "POST /webhooks/phonepe"
  target    = "integrations/${aws_apigatewayv2_integration.payments_callback[0].id}"
}

resource "aws_lambda_permission" "payments_callback" {
  count         = var.billing_enabled ? 1 : 0
  statement_id  = "AllowPaymentsCallback"
  action        = "lambda:InvokeFunction"
  function_name = module.payments_callback[0].name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.webhooks.execution_arn}/*/*/webhooks/phonepe"
}

resource "aws_apigatewayv2_route" "webhooks" {
  # checkov:skip=CKV_AWS_309:Authentication is the webhook's own: the PagerDuty HMAC signature or the Alertmanager bearer token, checked by the function against per-team secrets (an authorizer cannot verify a body signature).
  for_each  = toset(local.webhook_routes)
  api_id    = aws_apigatewayv2_api.webhooks.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.intake.id}"
}

resource "aws_apigatewayv2_route" "slack" {
  # checkov:skip=CKV_AWS_309:Slack signs every request (v0: HMAC-SHA256 of the raw body under the team's signing secret, at most five minutes old), checked by the api function in constant time before anything is read; an authorizer cannot verify a body signature. The Slack user is then mapped to a team member and role.
  for_each  = toset(["POST /webhooks/slack/{team}/interactions", "POST /webhooks/slack/{team}/commands"])
  api_id    = aws_apigatewayv2_api.webhooks.id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.api.id}"
}

resource "aws_lambda_permission" "slack" {
  statement_id  = "AllowSlackApp"
  action        = "lambda:InvokeFunction"
  function_name = module.api.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.webhooks.execution_arn}/*/POST/webhooks/slack/*"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.webhooks.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = var.api_throttle_rate
    throttling_burst_limit = var.api_throttle_burst
  }

  # The control API's own budget, so dashboard polling can never starve the webhooks (and the reverse).
  route_settings {
    route_key              = aws_apigatewayv2_route.control.route_key
    throttling_rate_limit  = var.control_api_throttle_rate
    throttling_burst_limit = var.control_api_throttle_burst
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      routeKey       = "$context.routeKey"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latencyMs      = "$context.responseLatency"
      integrationMs  = "$context.integrationLatency"
      error          = "$context.integrationErrorMessage"
    })
  }
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowWebhookApi"
  action        = "lambda:InvokeFunction"
  function_name = module.webhook_intake.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.webhooks.execution_arn}/*/*"
}

resource "aws_lambda_permission" "control" {
  statement_id  = "AllowControlApi"
  action        = "lambda:InvokeFunction"
  function_name = module.api.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.webhooks.execution_arn}/*/*/v1/*"
}

resource "aws_lambda_permission" "dashboard" {
  for_each      = { page = "/*/GET/", assets = "/*/GET/ui/*" }
  statement_id  = "AllowDashboard-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = module.api.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.webhooks.execution_arn}${each.value}"
}

resource "aws_cloudwatch_metric_alarm" "control_api_5xx" {
  alarm_name          = "${var.name_prefix}-control-api-5xx"
  alarm_description   = "The control API answered 5xx (our fault: the store, the queue or Secrets Manager unavailable, or the function failing)."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.webhooks.id, Stage = aws_apigatewayv2_stage.default.name, Resource = "/v1/{proxy+}", Method = "ANY" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "control_api_throttles" {
  alarm_name          = "${var.name_prefix}-api-throttles"
  alarm_description   = "The control API function hit its reserved concurrency (requests were throttled)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = module.api.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# ---------------------------------------------------------------------------------------------------------------
# EKS: the analyzer reads; the executor and the verifier (which undoes fixes that did not hold) also write, in the
# namespaces the `kubernetes_rbac` output binds. Groups, not access policies, so the RBAC is exactly ours.

resource "aws_eks_access_entry" "analyzer" {
  cluster_name      = var.eks_cluster_name
  principal_arn     = module.analyzer.role_arn
  kubernetes_groups = ["dreamops-readers"]
  type              = "STANDARD"
}

resource "aws_eks_access_entry" "executor" {
  cluster_name      = var.eks_cluster_name
  principal_arn     = module.executor.role_arn
  kubernetes_groups = ["dreamops-readers", "dreamops-writers"]
  type              = "STANDARD"
}

resource "aws_eks_access_entry" "verifier" {
  cluster_name      = var.eks_cluster_name
  principal_arn     = module.verifier.role_arn
  kubernetes_groups = ["dreamops-readers", "dreamops-writers"]
  type              = "STANDARD"
}

# ---------------------------------------------------------------------------------------------------------------
# SAM CLI's Terraform hook: where each function's source is and where cargo-lambda puts its zip.

resource "null_resource" "sam_metadata_webhook_intake" {
  triggers = {
    resource_name        = "module.webhook_intake.aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/webhook-intake"
    built_output_path    = "${path.module}/${var.artifacts_dir}/webhook-intake/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_analyzer" {
  triggers = {
    resource_name        = "module.analyzer.aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/analyzer"
    built_output_path    = "${path.module}/${var.artifacts_dir}/analyzer/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_executor" {
  triggers = {
    resource_name        = "module.executor.aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/executor"
    built_output_path    = "${path.module}/${var.artifacts_dir}/executor/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_api" {
  triggers = {
    resource_name        = "module.api.aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/api"
    built_output_path    = "${path.module}/${var.artifacts_dir}/api/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_payments_callback" {
  triggers = {
    resource_name        = "module.payments_callback[0].aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/payments-callback"
    built_output_path    = "${path.module}/${var.artifacts_dir}/payments-callback/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_quota" {
  triggers = {
    resource_name        = "module.quota[0].aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/quota"
    built_output_path    = "${path.module}/${var.artifacts_dir}/quota/bootstrap.zip"
  }
}

resource "null_resource" "sam_metadata_verifier" {
  triggers = {
    resource_name        = "module.verifier.aws_lambda_function.this"
    resource_type        = "ZIP_LAMBDA_FUNCTION"
    original_source_code = "${path.module}/../functions/verifier"
    built_output_path    = "${path.module}/${var.artifacts_dir}/verifier/bootstrap.zip"
  }
}
