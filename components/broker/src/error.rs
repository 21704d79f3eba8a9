//! The broker's one error type: what went wrong, as the client will read it
//! (`{"error": {"code", "message", "field"?, "details"?}}` with a status).
//! Domain code returns it too, so a refusal deep in a rule reaches the
//! client with its reason; `api` turns it into a response.

use serde_json::Value;

/// An error answered to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Extra structured context (e.g. the quota that was exhausted).
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }
    /// A 400 naming the offending field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(400, "invalid_field", message)
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    /// The same error, naming the field it is about.
    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// The same error, with structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }
}

/// Storage errors are internal errors.
pub fn storage(e: impl std::fmt::Debug) -> ApiError {
    ApiError::internal(format!("storage: {e:?}"))
}

/// How long a client is asked to wait after a transient database error.
pub const BUSY_RETRY_AFTER_S: u64 = 1;

/// A database error: `503` (with `Retry-After`) when trying again can
/// succeed (a deadlock or a lock wait between replicas, a database out of
/// reach: busy, not broken); otherwise [`storage`]'s `500`.
pub fn database(e: greenmesh_storage::Error) -> ApiError {
    if e.is_transient() {
        ApiError::new(
            503,
            "database_busy",
            "the database is busy or out of reach: try again shortly",
        )
        .with_details(
            serde_json::json!({ "retry_after_s": BUSY_RETRY_AFTER_S, "cause": format!("{e:?}") }),
        )
    } else {
        storage(e)
    }
}
