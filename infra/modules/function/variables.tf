variable "name" {
  description = "Function name (also names its role and log group)."
  type        = string
}

variable "zip_path" {
  description = "The cargo-lambda zip holding the `bootstrap` binary (arm64)."
  type        = string
}

variable "timeout" {
  description = "Timeout in seconds."
  type        = number
}

variable "memory_mb" {
  description = "Memory in MB."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions."
  type        = number
}

variable "environment" {
  description = "Environment variables: the function's whole configuration (no secret values; those are read from Secrets Manager)."
  type        = map(string)
}

variable "policy_statements" {
  description = "IAM statements of the function's own role, beyond writing its logs and traces: exactly the actions and resources it uses."
  type = list(object({
    sid       = string
    actions   = list(string)
    resources = list(string)
  }))
}

variable "kms_key_arn" {
  description = "KMS key encrypting the environment and the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Log retention in days."
  type        = number
}

variable "alarm_actions" {
  description = "Notified when the function errors."
  type        = list(string)
  default     = []
}
