//! Prometheus metrics of the HTTP surfaces, served at `/metrics`: requests by surface, operation,
//! method and status class, their latency to the response head, and requests in flight.
//!
//! These labels never name a repository, an account or a tag: `/metrics` answers without
//! credentials, and what one tenant does is not another's to read. Every label value comes from a
//! fixed set, so no request can grow the number of series.
//!
//! The per-repository series (pulls, pushes, bytes; `account` and `repository` labels) are served
//! only to a scraper that shows the configured metrics token (`Authorization: Bearer ...`); their
//! number is bounded by the registry's cap of tracked repositories.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets in seconds, from a cached manifest HEAD to a large blob's last PUT.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    surface: &'static str,
    operation: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    surface: &'static str,
    operation: &'static str,
}

/// The per-repository series, named in one place: `berth_repository_<name>_total`.
pub(crate) mod repository_series {
    pub(crate) const PULLS: &str = "repository_pulls";
    pub(crate) const PUSHES: &str = "repository_pushes";
    pub(crate) const BYTES_RECEIVED: &str = "repository_bytes_received";
    pub(crate) const BYTES_SENT: &str = "repository_bytes_sent";
    /// Bytes of the blobs a repository holds, each counted in full (attributed).
    pub(crate) const STORED_BYTES: &str = "repository_stored_bytes";
    /// Bytes of the distinct blobs an account's repositories hold (deduplicated in the account).
    pub(crate) const ACCOUNT_STORED_BYTES: &str = "account_stored_bytes";
}

/// The background work's series, named in one place: `berth_<name>_total`. They name no tenant.
pub(crate) mod background_series {
    /// Scans ended, by `status` (`COMPLETE`, `FAILED`).
    pub(crate) const SCANS: &str = "scans";
    /// Images lifecycle policies acted on, by `action` (`expire`, `archive`).
    pub(crate) const LIFECYCLE_IMAGES: &str = "lifecycle_images";
    pub(crate) const GC_PASSES: &str = "gc_passes";
    pub(crate) const GC_BLOBS: &str = "gc_reclaimed_blobs";
    pub(crate) const GC_BYTES: &str = "gc_reclaimed_bytes";
    pub(crate) const GC_ORPHAN_FILES: &str = "gc_orphan_files";
    pub(crate) const GC_UPLOADS: &str = "gc_abandoned_uploads";
    /// Webhook delivery attempts, by `result` (`delivered`, `failed`).
    pub(crate) const WEBHOOK_DELIVERIES: &str = "webhook_deliveries";
}

/// Bytes of every stored blob, each once. It names no tenant, but is served with the tenant
/// series all the same: watching it move as one uploads would tell whether another tenant
/// already stores the same bytes.
const STORED_BYTES: &str = "stored_bytes";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepositoryLabels {
    account: String,
    repository: String,
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    in_flight: Gauge,
    /// Where the per-repository counts come from.
    source: Arc<berth_registry::Registry>,
    /// SHA-256 of the metrics token: compared digest to digest, so the comparison's time says
    /// nothing of the token.
    token_digest: Option<Vec<u8>>,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

/// Who is scraping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scraper {
    /// No credentials: the tenant-free series.
    Anonymous,
    /// The metrics token: every series.
    Trusted,
    /// Credentials that are not the token: refused, so a misconfigured scraper notices.
    Refused,
}

impl Metrics {
    fn scraper(&self, headers: &HeaderMap) -> Scraper {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else { return Scraper::Anonymous };
        let shown =
            value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(|t| sha256(t.trim().as_bytes()));
        match (&self.token_digest, shown) {
            (Some(token), Some(shown)) if *token == shown => Scraper::Trusted,
            _ => Scraper::Refused,
        }
    }

    /// The series counted at scrape time: with `tenants`, stored bytes and the per-repository
    /// and per-account series, as OpenMetrics text; without, none. A store that cannot count
    /// leaves the stored bytes out, with a log line, rather than failing the scrape.
    async fn render_dynamic(&self, tenants: bool) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::with_prefix("berth");
        self.register_background_series(&mut registry);
        if !tenants {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry)?;
            return Ok(text);
        }
        let stored = match self.source.stored_bytes().await {
            Ok(stored) => Some(stored),
            Err(e) => {
                tracing::warn!(error = %e, "cannot count stored bytes for /metrics");
                None
            }
        };
        if let Some(stored) = &stored {
            let total = Gauge::<i64>::default();
            total.set(i64::try_from(stored.total).unwrap_or(i64::MAX));
            registry.register(STORED_BYTES, "Bytes of every stored blob, each counted once", total);
        }
        self.register_tenant_series(&mut registry, stored.as_deref());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }

    /// What scans, lifecycle runs, garbage collection and webhook deliveries did since start.
    fn register_background_series(&self, registry: &mut Registry) {
        use background_series as name;
        let work = self.source.background_work();
        let counter = |value: u64| {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            counter
        };
        let family = |label: &'static str, values: [(&'static str, u64); 2]| {
            let family = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
            for (kind, value) in values {
                family.get_or_create(&vec![(label, kind)]).inc_by(value);
            }
            family
        };
        registry.register(
            name::SCANS,
            "Image scans ended since start, by status",
            family("status", [("COMPLETE", work.scans_complete), ("FAILED", work.scans_failed)]),
        );
        registry.register(
            name::LIFECYCLE_IMAGES,
            "Images lifecycle policies expired or archived since start",
            family("action", [("expire", work.lifecycle_expired), ("archive", work.lifecycle_archived)]),
        );
        registry.register(name::GC_PASSES, "Garbage collection passes since start", counter(work.gc_passes));
        registry.register(
            name::GC_BLOBS,
            "Blobs garbage collection removed since start",
            counter(work.gc_blobs),
        );
        registry.register(
            name::GC_BYTES,
            "Bytes of the blobs garbage collection removed",
            counter(work.gc_bytes),
        );
        registry.register(
            name::GC_ORPHAN_FILES,
            "Stored files no metadata named, removed since start",
            counter(work.gc_orphan_files),
        );
        registry.register(name::GC_UPLOADS, "Abandoned uploads ended since start", counter(work.gc_uploads));
        registry.register(
            name::WEBHOOK_DELIVERIES,
            "Webhook delivery attempts since start, by result",
            family("result", [("delivered", work.deliveries_ok), ("failed", work.deliveries_failed)]),
        );
    }

    /// The per-repository and per-account series, repositories past the cap summed as `other`.
    fn register_tenant_series(&self, registry: &mut Registry, stored: Option<&berth_registry::StoredBytes>) {
        let cap = self.source.settings().metrics_max_repositories;
        let families: [(&str, &str, Family<RepositoryLabels, Counter>); 4] = [
            (
                repository_series::PULLS,
                "Image pulls by clients (manifest GET, BatchGetImage), as ECR's RepositoryPullCount",
                Family::default(),
            ),
            (repository_series::PUSHES, "Image pushes (manifest PUT, PutImage)", Family::default()),
            (repository_series::BYTES_RECEIVED, "Blob bytes uploaded by clients", Family::default()),
            (repository_series::BYTES_SENT, "Blob bytes served to clients", Family::default()),
        ];
        for activity in self.source.repository_activity() {
            let labels = RepositoryLabels {
                account: activity.account.clone(),
                repository: activity.repository.clone(),
            };
            for ((_, _, family), value) in families.iter().zip([
                activity.pulls,
                activity.pushes,
                activity.bytes_received,
                activity.bytes_sent,
            ]) {
                family.get_or_create(&labels).inc_by(value);
            }
        }
        for (name, help, family) in families {
            registry.register(name, help, family);
        }
        let Some(stored) = stored else { return };
        let per_repository = Family::<RepositoryLabels, Gauge>::default();
        for (i, (account, name, bytes)) in stored.repositories.iter().enumerate() {
            let labels = if i < cap {
                RepositoryLabels { account: account.to_string(), repository: name.to_string() }
            } else {
                let other = berth_registry::activity::OTHER.to_owned();
                RepositoryLabels { account: other.clone(), repository: other }
            };
            per_repository.get_or_create(&labels).inc_by(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
        let per_account = Family::<AccountLabels, Gauge>::default();
        for (account, bytes) in &stored.accounts {
            per_account
                .get_or_create(&AccountLabels { account: account.to_string() })
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
        registry.register(
            repository_series::STORED_BYTES,
            "Bytes of the blobs a repository holds, each counted in full",
            per_repository,
        );
        registry.register(
            repository_series::ACCOUNT_STORED_BYTES,
            "Bytes of the distinct blobs an account's repositories hold",
            per_account,
        );
    }

    pub(crate) fn new(source: Arc<berth_registry::Registry>, token: Option<&str>) -> Self {
        let mut registry = Registry::with_prefix("berth");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<OperationLabels, Histogram>::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head",
            latency.clone(),
        );
        registry.register("http_requests_in_flight", "HTTP requests being handled", in_flight.clone());
        Self {
            registry,
            requests,
            latency,
            in_flight,
            source,
            token_digest: token.map(|t| sha256(t.as_bytes())),
        }
    }

    /// The whole scrape as one document: the series counted at scrape time go before the
    /// closing `# EOF` of the fixed ones.
    async fn render_with(&self, tenants: bool) -> Result<String, std::fmt::Error> {
        let base = self.render()?;
        let dynamic = self.render_dynamic(tenants).await?;
        let base = base.strip_suffix("# EOF\n").unwrap_or(&base);
        Ok(format!("{base}{dynamic}"))
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Counts a request while it is handled, also if the client goes away mid-way.
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware: measures every request of the router.
pub(crate) async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let (surface, operation) = classify(request.method(), request.uri().path(), request.headers());
    let method = method_label(request.method());
    let started = Instant::now();
    metrics.in_flight.inc();
    let _in_flight = InFlight(metrics.in_flight.clone());
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&OperationLabels { surface, operation })
        .observe(started.elapsed().as_secs_f64());
    let status = status_class(response.status());
    metrics.requests.get_or_create(&RequestLabels { surface, operation, method, status }).inc();
    response
}

/// `GET /metrics`: the tenant-free series, and with the metrics token the per-repository ones.
pub(crate) async fn serve(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let text = match metrics.scraper(&headers) {
        Scraper::Refused => {
            return (
                StatusCode::UNAUTHORIZED,
                "the bearer token is not this registry's metrics token (metrics.token_file); scrape without \
                 credentials for the series that name no tenant\n",
            )
                .into_response();
        }
        Scraper::Anonymous => metrics.render_with(false).await,
        Scraper::Trusted => metrics.render_with(true).await,
    };
    // Prometheus asks for OpenMetrics; other scrapers (and promtool) get the classic text format.
    let openmetrics = headers
        .get(http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match text {
        Ok(text) if openmetrics => {
            ([(http::header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))], text).into_response()
        }
        Ok(text) => (
            [(http::header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT))],
            prometheus_text(&text),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): a counter's HELP and TYPE
/// name its `_total` samples, and there is no `# EOF`.
fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Held until TYPE says whether the family is a counter.
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if kind == "counter" { format!("{name}_total") } else { name.to_owned() };
            if let Some(help) = help.take() {
                let text =
                    help.strip_prefix("# HELP ").and_then(|h| h.split_once(' ')).map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The surface and operation a request addresses, from a fixed set of names.
fn classify(method: &Method, path: &str, headers: &HeaderMap) -> (&'static str, &'static str) {
    if path == "/" && method == Method::POST {
        return ("ecr", crate::ecr::operation_label(headers));
    }
    let Some(rest) = path.strip_prefix("/v2") else {
        return match path {
            "/metrics" => ("operations", "metrics"),
            "/healthz" => ("operations", "healthz"),
            "/readyz" => ("operations", "readyz"),
            _ => ("other", "other"),
        };
    };
    let operation = if rest.is_empty() || rest == "/" {
        "base"
    } else if rest == "/_catalog" {
        "catalog"
    } else if rest.ends_with("/tags/list") {
        "tags"
    } else if rest.contains("/blobs/uploads") {
        "blob_upload"
    } else if rest.contains("/blobs/") {
        "blob"
    } else if rest.contains("/manifests/") {
        "manifest"
    } else if rest.contains("/referrers/") {
        "referrers"
    } else {
        "other"
    };
    ("oci", operation)
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_text_format_names_counters_by_their_samples_and_has_no_eof() {
        let openmetrics = "# HELP berth_x Things done.\n# TYPE berth_x counter\nberth_x_total{a=\"b\"} 3\n\
                           # HELP berth_g In flight.\n# TYPE berth_g gauge\nberth_g 1\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP berth_x_total Things done.\n# TYPE berth_x_total counter\nberth_x_total{a=\"b\"} 3\n\
             # HELP berth_g In flight.\n# TYPE berth_g gauge\nberth_g 1\n"
        );
    }

    #[test]
    fn requests_fall_into_a_fixed_set_of_names_without_tenant_data() {
        let none = HeaderMap::new();
        let c = |method: Method, path: &str| classify(&method, path, &none);
        assert_eq!(c(Method::GET, "/v2/"), ("oci", "base"));
        assert_eq!(c(Method::GET, "/v2/000000000000/team/app/manifests/v1"), ("oci", "manifest"));
        assert_eq!(c(Method::PATCH, "/v2/000000000000/app/blobs/uploads/abc"), ("oci", "blob_upload"));
        assert_eq!(c(Method::GET, "/v2/000000000000/app/blobs/sha256:00"), ("oci", "blob"));
        assert_eq!(c(Method::GET, "/v2/000000000000/app/tags/list"), ("oci", "tags"));
        assert_eq!(c(Method::GET, "/v2/_catalog"), ("oci", "catalog"));
        assert_eq!(c(Method::GET, "/readyz"), ("operations", "readyz"));
        assert_eq!(c(Method::GET, "/anything/else"), ("other", "other"));
        let mut ecr = HeaderMap::new();
        ecr.insert("x-amz-target", HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.PutImage"));
        assert_eq!(classify(&Method::POST, "/", &ecr), ("ecr", "PutImage"));
        ecr.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonEC2ContainerRegistry_V20150921.Secret/Repo"),
        );
        assert_eq!(classify(&Method::POST, "/", &ecr), ("ecr", "unknown"));
        assert_eq!(method_label(&Method::OPTIONS), "other");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
    }

    /// Every label value a request can produce is one the README's table lists.
    #[test]
    fn the_readme_documents_every_label_value() {
        let readme = include_str!("../../../README.md");
        let table: String = readme.lines().filter(|l| l.starts_with("| `")).collect::<Vec<_>>().join("\n");
        let none = HeaderMap::new();
        let paths = [
            "/v2/",
            "/v2/_catalog",
            "/v2/a/b/tags/list",
            "/v2/a/b/manifests/v1",
            "/v2/a/b/blobs/sha256:0",
            "/v2/a/b/blobs/uploads/",
            "/v2/a/b/referrers/sha256:0",
            "/v2/a/b/nothing",
            "/metrics",
            "/healthz",
            "/readyz",
            "/elsewhere",
        ];
        let mut values: Vec<&str> = Vec::new();
        for path in paths {
            let (surface, operation) = classify(&Method::GET, path, &none);
            values.extend([surface, operation]);
        }
        for target in [
            "",
            "AmazonEC2ContainerRegistry_V20150921.PutImage",
            "AmazonEC2ContainerRegistry_V20150921.CreatePullThroughCacheRule",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("x-amz-target", HeaderValue::from_static(target));
            values.push(classify(&Method::POST, "/", &headers).1);
        }
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            values.push(method_label(&method));
        }
        for status in [100, 200, 301, 404, 500] {
            values.push(status_class(StatusCode::from_u16(status).expect("status")));
        }
        for value in values {
            assert!(
                table.contains(&format!("`{value}`")),
                "the README's metrics table does not list `{value}`"
            );
        }
    }
}
