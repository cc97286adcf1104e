//! HTTP surfaces of berth on one listener: the OCI Distribution API under `/v2/`, the ECR
//! control plane at `POST /`, and the operations endpoints. Handlers are thin: parse the request, call one registry operation,
//! render its result or error. No storage or policy logic lives here.

mod audit;
mod auth;
mod body;
mod ecr;
pub mod feeds;
pub mod listener;
mod metrics;
mod oci;
mod origin;
mod request_id;
pub mod tls;
pub mod webhooks;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use berth_core::Cidr;
use berth_registry::Registry;

pub use audit::{AuditDestination, AuditLog};
pub use listener::{ListenerSettings, serve};
pub use tls::{Tls, TlsError, TlsFiles};

/// The query parameter of a blob URL handed out by GetDownloadUrlForLayer.
pub(crate) const DOWNLOAD_TOKEN_PARAM: &str = "X-Berth-Token";

/// How the HTTP surfaces treat request bodies and proxies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// How long a client may send nothing in the middle of a request body before the request
    /// ends (an upload keeps what arrived and can be resumed).
    pub body_idle_timeout: Duration,
    /// Bytes of request bodies held whole in memory at once, across all requests (ECR API
    /// requests and manifests; blobs stream to disk and are not counted).
    pub max_buffered_body_bytes: usize,
    /// Networks of reverse proxies whose `X-Forwarded-For` names the client. Empty: the peer
    /// address is the client.
    pub trusted_proxies: Vec<Cidr>,
    /// The bearer token a scraper shows to read the per-repository (tenant) series of
    /// `/metrics`; without one configured, they are never served.
    pub metrics_token: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_idle_timeout: Duration::from_secs(60),
            max_buffered_body_bytes: 256 * 1024 * 1024,
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

/// What every handler shares: the registry and how requests are treated.
pub(crate) struct App {
    registry: Arc<Registry>,
    settings: HttpSettings,
    budget: body::BodyBudget,
}

impl App {
    /// What the transport knows of a request, for policy conditions.
    fn origin(&self, parts: &http::request::Parts) -> berth_registry::RequestOrigin {
        origin::of(parts, &self.settings.trusted_proxies)
    }
}

/// Builds the router for all surfaces, every request measured for `/metrics` and, when it
/// changes something or is refused, recorded in `audit`.
pub fn router(registry: Arc<Registry>, settings: HttpSettings, audit: Arc<AuditLog>) -> Router {
    let metrics = Arc::new(metrics::Metrics::new(Arc::clone(&registry), settings.metrics_token.as_deref()));
    let audit = Arc::new(audit::AuditState { log: audit, trusted_proxies: settings.trusted_proxies.clone() });
    let budget = body::BodyBudget::new(settings.max_buffered_body_bytes);
    let app = Arc::new(App { registry: Arc::clone(&registry), settings, budget });
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(registry))
        .route("/metrics", get(metrics::serve).with_state(metrics.clone()))
        .route("/", axum::routing::post(ecr::dispatch).with_state(Arc::clone(&app)))
        .nest_service("/v2", oci::service(app))
        .fallback(oci::not_found)
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(axum::middleware::from_fn_with_state(audit, audit::track))
        // Outermost: everything a request does, measuring included, is logged under its id.
        .layer(axum::middleware::from_fn(request_id::tag))
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
