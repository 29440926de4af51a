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
    /// Operator API: off (`console.token` empty) or no such conversation.
    #[error("not found")]
    NotFound,
    /// Operator API: no valid bearer token or console session.
    #[error("authentication required: send `Authorization: Bearer <console.token>` or log in at /console/")]
    NotAuthenticated,
    /// Operator API: a cookie-authenticated POST that may come from another site.
    #[error("refused: cross-site request (send it from the console, or use a bearer token)")]
    CrossSite,
    /// Operator API: the request cannot be done now; `code` is stable, `reason` for people.
    #[error("{reason}")]
    Conflict { code: &'static str, reason: String },
    /// Logged where it happened; the client gets no details.
    #[error("internal error")]
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            // The operator API speaks JSON.
            ApiError::NotFound => return json_error(StatusCode::NOT_FOUND, "not_found", &self),
            ApiError::NotAuthenticated => {
                let mut response = json_error(StatusCode::UNAUTHORIZED, "unauthorized", &self);
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                return response;
            }
            ApiError::CrossSite => return json_error(StatusCode::FORBIDDEN, "cross_site", &self),
            ApiError::Conflict { code, .. } => {
                return json_error(StatusCode::CONFLICT, code, &self)
            }
            ApiError::Internal => {
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &self)
            }
        };
        (status, self.to_string()).into_response()
    }
}

/// `{"error": code, "reason": text}`.
fn json_error(status: StatusCode, code: &str, error: &ApiError) -> Response {
    let body = serde_json::json!({"error": code, "reason": error.to_string()});
    (status, axum::Json(body)).into_response()
}
