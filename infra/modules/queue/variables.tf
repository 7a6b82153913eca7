variable "name" {
  description = "Queue name; the dead-letter queue is `<name>-dlq`."
  type        = string
}

variable "consumer_timeout_seconds" {
  description = "Timeout of the function consuming the queue; the visibility timeout is 6x this, as AWS recommends for SQS event sources."
  type        = number
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key encrypting both queues."
  type        = string
}

variable "alarm_actions" {
  description = "Notified when the dead-letter queue holds messages."
  type        = list(string)
  default     = []
}
