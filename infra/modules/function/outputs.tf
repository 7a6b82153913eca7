output "arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "invoke_arn" {
  description = "ARN API Gateway integrations invoke."
  value       = aws_lambda_function.this.invoke_arn
}

output "role_arn" {
  description = "ARN of the function's role (the principal of its EKS access entry)."
  value       = aws_iam_role.this.arn
}

output "timeout" {
  description = "Timeout in seconds."
  value       = aws_lambda_function.this.timeout
}
