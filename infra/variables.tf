# Every input of the DreamOps deployment. Only `eks_cluster_name` and `pagerduty_from_email` have no default.

variable "region" {
  description = "AWS region to deploy into; the EKS cluster must be in the same region."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, queues, table, secrets, log groups). Lower-case letters, digits and dashes."
  type        = string
  default     = "dreamops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "eks_cluster_name" {
  description = "Name of the EKS cluster the agent looks after. Its authentication mode must include API (access entries)."
  type        = string
}

variable "teams" {
  description = "Team ids (as in the webhook URLs) to declare secrets for, for their URL outputs. Teams themselves are created with `dreamops admin create-team --aws` or POST /v1/teams; their credentials are written through the control API (which creates a missing team secret), never through Terraform."
  type        = list(string)
  default     = ["default"]

  validation {
    condition     = alltrue([for t in var.teams : can(regex("^[a-z0-9][a-z0-9-]{0,62}$", t))])
    error_message = "Team ids are 1-63 lower-case letters, digits or dashes."
  }
}

variable "oidc_issuer" {
  description = "OIDC issuer whose RS256 tokens the control API accepts besides API keys (its `iss`, e.g. https://login.example.com/realms/ops); empty for API keys only."
  type        = string
  default     = ""

  validation {
    condition     = var.oidc_issuer == "" || startswith(var.oidc_issuer, "https://")
    error_message = "oidc_issuer must be an https URL (or empty)."
  }
}

variable "oidc_audience" {
  description = "Audiences (`aud`) a token must carry one of, comma-separated; required with oidc_issuer."
  type        = string
  default     = ""
}

variable "oidc_jwks_uri" {
  description = "The issuer's JWKS URL; empty to read it from <issuer>/.well-known/openid-configuration."
  type        = string
  default     = ""
}

variable "oidc_team_claim" {
  description = "The token claim naming the principal's team."
  type        = string
  default     = "dreamops_team"
}

variable "oidc_role_claim" {
  description = "The token claim naming the principal's role (viewer, responder, admin, operator); tokens without it take the role the team's member list gives the subject."
  type        = string
  default     = "dreamops_role"
}

variable "oidc_client_id" {
  description = "The dashboard's client id at the OIDC issuer: a public client (authorization code + PKCE, no secret) whose redirect URI is the dashboard_url output; the issuer must allow that origin (CORS) on its token endpoint. Empty: the dashboard signs in with API keys only."
  type        = string
  default     = ""
}

variable "api_key_cache_secs" {
  description = "How long each control-API execution environment reuses a verified API key: a revocation made elsewhere takes effect within this time (the environment that revoked it sees it at once)."
  type        = number
  default     = 30
}

variable "control_api_throttle_rate" {
  description = "Steady-state requests per second API Gateway accepts on the control API (ANY /v1/{proxy+}), across all clients; each function environment also limits each principal."
  type        = number
  default     = 50
}

variable "control_api_throttle_burst" {
  description = "Burst of requests API Gateway accepts on the control API above its steady rate."
  type        = number
  default     = 100
}

variable "pagerduty_from_email" {
  description = "Email of the PagerDuty user the agent acts as (PagerDuty requires it in the From header of notes and resolves)."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+$", var.pagerduty_from_email))
    error_message = "pagerduty_from_email must be an email address."
  }
}

variable "pagerduty_bot_user_id" {
  description = "PagerDuty user id of that user (e.g. PABC123); webhooks caused by it are recognised as the agent's own echoes. Empty to rely on the note prefix only."
  type        = string
  default     = ""
}

variable "agent_namespace" {
  description = "Kubernetes namespace the agent's own workloads run in; it is never changed by the agent."
  type        = string
  default     = "dreamops"
}

variable "executor_namespaces" {
  description = "Namespaces the executor and verifier may change (RoleBindings of the write role are rendered for these into the `kubernetes_rbac` output). Reads are cluster-wide."
  type        = list(string)
  default     = []
}

variable "llm_provider" {
  description = "Language model the analyzer consults when the rules are unsure: \"anthropic\", \"openai_compatible\", or \"\" for rules only. The key is `llm_api_key` in the deployment secret."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "anthropic", "openai_compatible"], var.llm_provider)
    error_message = "llm_provider must be \"\", \"anthropic\" or \"openai_compatible\"."
  }
}

variable "llm_model" {
  description = "Model id for llm_provider (required when a provider is set)."
  type        = string
  default     = ""
}

variable "llm_endpoint" {
  description = "Base URL of an OpenAI-compatible server, or a proxy for Anthropic; empty for the provider's own."
  type        = string
  default     = ""
}

variable "artifacts_dir" {
  description = "Directory holding <function>/bootstrap.zip, as `.ci/build-lambdas` (cargo lambda build --release --arm64 --output-format zip) writes them, relative to this directory."
  type        = string
  default     = "../target/lambda"
}

variable "function_timeouts" {
  description = "Timeout in seconds per function. Each SQS queue's visibility timeout is set to 6x its consumer's timeout."
  type        = map(number)
  default = {
    "webhook-intake"    = 10
    "analyzer"          = 120
    "executor"          = 60
    "verifier"          = 60
    "api"               = 15
    "payments-callback" = 5
    "quota"             = 60
  }

  validation {
    condition     = alltrue([for f in ["webhook-intake", "analyzer", "executor", "verifier", "api", "payments-callback", "quota"] : contains(keys(var.function_timeouts), f)]) && alltrue([for t in values(var.function_timeouts) : t >= 3 && t <= 900])
    error_message = "function_timeouts needs webhook-intake, analyzer, executor, verifier, api, payments-callback and quota, each 3-900 seconds (the intake should stay well under PagerDuty's 5-second budget and the payments callback under PhonePe's 3-5 s; API Gateway gives the api at most 30)."
  }
}

variable "function_memory_mb" {
  description = "Memory in MB per function (CPU scales with it). Defaults from peak RSS under the runtime emulator (cargo bench -p stage-lambda --bench lambda): intake 13.7 MiB after 320 webhooks, analyzer 22.3, executor 18.7, verifier 18.8 after a real incident; api, payments-callback and quota 12.5-13.6 at init. 128 MB leaves 5x headroom or more; the analyzer and the api get 256 for the CPU share, not the memory (analysis parses snapshots and history, the api answers people)."
  type        = map(number)
  default = {
    "webhook-intake"    = 128
    "analyzer"          = 256
    "executor"          = 128
    "verifier"          = 128
    "api"               = 256
    "payments-callback" = 128
    "quota"             = 128
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function: a ceiling that keeps a flood of alerts from starving the account, and a floor for the intake."
  type        = map(number)
  default = {
    "webhook-intake"    = 20
    "analyzer"          = 10
    "executor"          = 5
    "verifier"          = 5
    "api"               = 10
    "payments-callback" = 5
    "quota"             = 2
  }
}

variable "sqs_batch_size" {
  description = "Messages per invocation for the SQS-triggered stage functions."
  type        = number
  default     = 5

  validation {
    condition     = var.sqs_batch_size >= 1 && var.sqs_batch_size <= 10
    error_message = "sqs_batch_size must be 1-10 (larger batches need a batching window)."
  }
}

variable "sqs_max_concurrency" {
  description = "Maximum concurrent invocations the SQS event source mapping of each stage starts (2-1000); keep at or below the function's reserved concurrency."
  type        = number
  default     = 5

  validation {
    condition     = var.sqs_max_concurrency >= 2 && var.sqs_max_concurrency <= 1000
    error_message = "sqs_max_concurrency must be 2-1000."
  }
}

variable "max_receive_count" {
  description = "Deliveries of a stage message before SQS moves it to the dead-letter queue (the functions mark the incident failed on the last one)."
  type        = number
  default     = 5
}

variable "api_throttle_rate" {
  description = "Steady-state requests per second the webhook API accepts (HTTP API stage default route throttling)."
  type        = number
  default     = 20
}

variable "api_throttle_burst" {
  description = "Burst of requests the webhook API accepts above the steady rate."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Retention of the functions' and the API's log groups, in days."
  type        = number
  default     = 365
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when a dead-letter queue holds messages or a function errors. Empty: alarms only change state."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------------------------
# Billing: alerts metered per team and plan, payments through PhonePe.

variable "billing_enabled" {
  description = "Meter every team's alerts against its plan (Free: 3 a month) and take payments through PhonePe. Off: every team is unlimited and the payments functions are not deployed."
  type        = bool
  default     = true
}

variable "billing_timezone" {
  description = "IANA time zone whose calendar months are the Free plan's periods."
  type        = string
  default     = "Asia/Kolkata"
}

variable "billing_provider" {
  description = "Payment gateway: phonepe (PG v2: OAuth client credentials) or phonepe-v1 (salt key and X-VERIFY, for merchants holding v1 credentials). Its secrets are keys of the deployment secret: phonepe_client_secret, phonepe_webhook_username, phonepe_webhook_password (v1: phonepe_salt_key, phonepe_salt_index)."
  type        = string
  default     = "phonepe"

  validation {
    condition     = contains(["phonepe", "phonepe-v1"], var.billing_provider)
    error_message = "billing_provider is phonepe or phonepe-v1 (the mock provider runs only in `dreamops serve`)."
  }
}

variable "phonepe_environment" {
  description = "PhonePe environment: sandbox (UAT) or production."
  type        = string
  default     = "sandbox"

  validation {
    condition     = contains(["sandbox", "production"], var.phonepe_environment)
    error_message = "phonepe_environment is sandbox or production."
  }
}

variable "phonepe_merchant_id" {
  description = "PhonePe merchant id (required for phonepe-v1)."
  type        = string
  default     = ""
}

variable "phonepe_client_id" {
  description = "PhonePe PG v2 client id (required for phonepe). Its client secret is the deployment secret's phonepe_client_secret."
  type        = string
  default     = ""
}

variable "phonepe_client_version" {
  description = "PhonePe PG v2 client version (1 in UAT)."
  type        = string
  default     = "1"
}

variable "billing_return_url" {
  description = "Where customers land after paying (empty: the dashboard's Usage & plan page, which shows the plan once PhonePe confirmed the payment)."
  type        = string
  default     = ""
}

variable "billing_schedule" {
  description = "When the daily billing run reconciles orders left open and sends renewal reminders (EventBridge schedule expression, UTC)."
  type        = string
  default     = "cron(30 0 * * ? *)"
}

variable "health_check_allow_hosts" {
  description = "Hosts outside the cluster that a team's per-service health URL may name (verification polls it). Cluster Services (NAME.NAMESPACE.svc) need no entry and are reached through the API server's service proxy; loopback, link-local and metadata addresses are refused whatever is listed."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for h in var.health_check_allow_hosts : can(regex("^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$", h))])
    error_message = "Each entry is a host name (no scheme, port or path)."
  }
}
