//! HTTP surfaces of berth on one listener: the OCI Distribution API under `/v2/`, the ECR
//! control plane at `POST /`, and the operations endpoints. Handlers are thin: parse the request, call one registry operation,
//! render its result or error. No storage or policy logic lives here.

mod auth;
mod ecr;
mod metrics;
mod oci;
pub mod workers;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use berth_registry::Registry;

/// The query parameter of a blob URL handed out by GetDownloadUrlForLayer.
pub(crate) const DOWNLOAD_TOKEN_PARAM: &str = "X-Berth-Token";

/// The client's address, when the listener recorded it (`into_make_service_with_connect_info`).
pub(crate) fn source_ip(extensions: &http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// Builds the router for all surfaces, every request measured for `/metrics`.
pub fn router(registry: Arc<Registry>) -> Router {
    let metrics = Arc::new(metrics::Metrics::new());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(registry.clone()))
        .route("/metrics", get(metrics::serve).with_state(metrics.clone()))
        .route("/", axum::routing::post(ecr::dispatch).with_state(registry.clone()))
        .nest_service("/v2", oci::service(registry.clone()))
        .fallback(oci::not_found)
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
}

/// `GET /readyz`: ready when the metadata store answers, so a load balancer stops sending
/// requests to a node that could only fail them.
async fn ready(axum::extract::State(registry): axum::extract::State<Arc<Registry>>) -> http::StatusCode {
    match registry.ready().await {
        Ok(()) => http::StatusCode::OK,
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            http::StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

#[cfg(test)]
mod tests;
