//! One id per request: generated as the request arrives, carried by every log line written
//! while it is handled (a `request` span), and returned as `x-amzn-RequestId` on every response
//! of every surface, as the ECR API returns it, so that a client's error can be found in the logs.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

/// The id of the request being handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(pub(crate) String);

pub(crate) const HEADER: &str = "x-amzn-requestid";

/// Middleware: gives the request its id, its span, and its response the header.
pub(crate) async fn tag(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    request.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
