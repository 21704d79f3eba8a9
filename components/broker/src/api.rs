//! API plumbing: JSON errors that name the field, JSON bodies, query strings.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use spin_sdk::http::Response;

/// An error answered to the client as `{"error": {"code", "message", "field"?}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Extra structured context (e.g. the quota that was exhausted).
    pub details: Option<Value>,
}

/// What handlers return.
pub type ApiResult = Result<Response, ApiError>;

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

    pub fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        if let Some(details) = self.details {
            error["details"] = details;
        }
        json_response(self.status, &json!({ "error": error }))
    }
}

/// Storage errors are internal errors.
pub fn storage(e: impl std::fmt::Debug) -> ApiError {
    ApiError::internal(format!("storage: {e:?}"))
}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// Parses a JSON body into `T`; a wrong type or missing field names the field.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {inner}"))
        } else if path.is_empty() || path == "." {
            ApiError::bad_request(inner.to_string())
        } else {
            ApiError::invalid(path, inner.to_string())
        }
    })
}

/// The value of query parameter `name`.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if kv == name => Some(""),
        _ => None,
    })
}

/// `?wait=SECONDS`, capped at [`MAX_WAIT_SECS`].
pub fn wait_param(query: &str) -> Result<u64, ApiError> {
    match query_param(query, "wait") {
        None => Ok(0),
        Some(v) => v
            .parse::<u64>()
            .map(|s| s.min(MAX_WAIT_SECS))
            .map_err(|_| ApiError::invalid("wait", "wait must be a whole number of seconds")),
    }
}

/// Longest long-poll, kept under the component's time limit.
pub const MAX_WAIT_SECS: u64 = 25;
