//! The listener: accepts connections up to a cap, serves HTTP/1.1 on each (over TLS when it has
//! a certificate) with a deadline for the handshake and for every request head (which also ends
//! silent and idle keep-alive connections), records each peer's address for `aws:SourceIp`, and
//! drains gracefully on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How the listener treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSettings {
    /// Most connections served at once; further ones wait in the kernel's backlog until a
    /// connection closes, so the process never runs out of file descriptors.
    pub max_connections: usize,
    /// How long a connection may take to send a whole request head, counted from when it opens
    /// or from its previous response: this closes silent sockets, slow headers and idle
    /// keep-alive connections alike.
    pub request_head_timeout: Duration,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self { max_connections: 4096, request_head_timeout: Duration::from_secs(30) }
    }
}

/// Whether a request arrived over TLS (`aws:SecureTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SecureTransport(pub(crate) bool);

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// How long to pause accepting after an error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` (with `tls`, HTTPS) until `shutdown` resolves, then lets requests
/// in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ListenerSettings,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.request_head_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let secure = SecureTransport(tls.is_some());
        let service = app.clone().map_request(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request.extensions_mut().insert(secure);
            request
        });
        let service = TowerToHyperService::new(service);
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        let handshake_deadline = settings.request_head_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                // The handshake is held to the request-head deadline too: a client that opens
                // a connection and says nothing holds a slot no longer over TLS than without.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Requests in flight finish, but a client that stops reading cannot hold the process forever.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            seconds = SHUTDOWN_GRACE.as_secs(),
            "connections still open after the grace period; closing them"
        );
    }
}
