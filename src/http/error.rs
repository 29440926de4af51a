//! The one error type at the HTTP edge. Client errors keep a short reason; internal ones are
//! logged once where they happen and answered with an opaque status, never with details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("forbidden")]
    Forbidden,
    #[error("invalid or missing signature")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(&'static str),
    /// The inbox could not record the body; Meta will redeliver it.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, self.to_string()).into_response()
    }
}
