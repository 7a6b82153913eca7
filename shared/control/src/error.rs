//! API errors: one JSON shape, `{"error": {"code", "message", "details"?}}`, with a stable code per cause.
//! Internal faults are logged once here and answered with a generic message (no store or SDK text leaks out).

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ports::{SecretsError, StoreError};
use serde_json::{Value, json};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, headers: Vec::new() }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header(axum::http::header::WWW_AUTHENTICATE, "Bearer realm=\"dreamops\"")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
            .with_header(axum::http::header::RETRY_AFTER, retry_after_secs.max(1).to_string())
    }

    /// Our own transient fault: logged here, answered without its cause.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Control API could not {what}.");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("temporarily unable to {what}; retry later"))
    }

    pub fn store(what: &str, e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(m) if m.starts_with("bad cursor") => Self::bad_request("invalid_cursor", m),
            e => Self::unavailable(what, e),
        }
    }

    pub fn secrets(what: &str, e: SecretsError) -> Self {
        match e {
            SecretsError::ReadOnly(m) => {
                Self::conflict("managed_by_config", format!("{m} is set in the configuration; change it there"))
            }
            e => Self::unavailable(what, e),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}
