//! Background work that runs beside the HTTP surfaces.

use std::sync::Arc;
use std::time::Duration;

use berth_registry::Registry;

/// How long an upload may sit untouched before it counts as abandoned.
pub const UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);
/// How often abandoned uploads are looked for.
const UPLOAD_EXPIRY_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Removes abandoned uploads and their staged bytes, periodically, until the task is dropped.
/// Every node may run it: removing an upload twice is harmless.
pub fn spawn_upload_expiry(registry: Arc<Registry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPLOAD_EXPIRY_INTERVAL);
        loop {
            ticks.tick().await;
            match registry.expire_uploads(UPLOAD_EXPIRY).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "removed abandoned uploads"),
                Err(e) => tracing::warn!(error = %e, "could not expire abandoned uploads"),
            }
        }
    })
}
