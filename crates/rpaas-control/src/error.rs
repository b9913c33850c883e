//! Typed errors of the store and of the API, and the one place an error becomes an HTTP
//! response: `{"errors": [{"field": "...", "reason": "..."}]}` with a status that says which
//! side caused it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the store: {0}")]
    Open(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("revision {expected} is stale (the current one is {current})")]
    Stale { expected: i64, current: i64 },
    #[error("no {0}")]
    NotFound(String),
    #[error("the store holds something unreadable: {0}")]
    Corrupt(String),
}

/// One problem with a request, by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field path (`acl.trusted[0]`, `upstream`), or `-` for the whole request.
    pub field: String,
    pub reason: String,
}

/// An API failure: the status and every problem.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<FieldError>,
}

/// The error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, field: &str, reason: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![FieldError {
                field: field.into(),
                reason: reason.into(),
            }],
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "-",
            "a valid API key is required (Authorization: Bearer KEY or X-API-Key: KEY)",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "-", format!("no such {what}"))
    }
    pub fn forbidden(field: &str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, field, reason)
    }
    /// 422 naming one field.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError {
            field: field.into(),
            reason: reason.into(),
        }])
    }

    pub fn invalid(errors: Vec<FieldError>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Stale { .. } => StatusCode::PRECONDITION_FAILED,
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Open(_) | StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(target: "rpaas::control", event = "store_unavailable", error = %e, "the control store is unavailable");
        }
        Self::new(status, "-", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(ErrorBody {
                errors: self.errors,
            }),
        )
            .into_response()
    }
}
