//! Request bodies: streamed with a limit on how long the client may stay silent, and, where a
//! body must be held whole (ECR requests, manifests), buffered within a per-request limit and a
//! budget shared by every request, so that no number of clients can make the process hold more.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_registry::{ByteStream, RegistryError};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in units of this many bytes.
const UNIT: usize = 1024;
/// How long a request waits for budget held by others before it is told to retry.
const BUDGET_WAIT: Duration = Duration::from_secs(10);
/// How much of a refused, too-large body is read and dropped so that the client, still sending,
/// gets to read the refusal instead of a reset connection; past this the connection is closed.
const DISCARD_LIMIT: u64 = 16 * 1024 * 1024;

/// Bytes of request bodies the process may hold in memory at once, across all requests.
#[derive(Clone)]
pub(crate) struct BodyBudget {
    units: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub(crate) fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Self { units: Arc::new(Semaphore::new(units)), total: units * UNIT }
    }
}

/// A body held in memory, with the budget it holds until it is dropped.
pub(crate) struct BufferedBody {
    pub(crate) bytes: bytes::Bytes,
    _held: Option<OwnedSemaphorePermit>,
}

/// The body as a stream whose next piece must arrive within `idle`, so that a client that stops
/// sending mid-body cannot hold the request open; what arrived before stays (an upload remains
/// resumable from there).
pub(crate) fn idle_bounded(body: Body, idle: Duration) -> ByteStream {
    let stream = body.into_data_stream();
    Box::pin(futures_util::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
            Ok(Some(Err(e))) => Some((Err(io::Error::other(e)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client sent nothing for {} s", idle.as_secs()),
                )),
                None,
            )),
        }
    }))
}

/// Reads a whole body of at most `limit` bytes (`what` names it in the refusal), arriving with
/// no pause longer than `idle`. Its bytes come out of `budget`: all at once when the body
/// declares its length (so that requests never sit on part of the budget waiting for the rest),
/// else as they arrive; a request that cannot get them within [`BUDGET_WAIT`] is told to retry.
pub(crate) async fn read_bounded(
    body: Body,
    idle: Duration,
    limit: usize,
    what: &'static str,
    budget: &BodyBudget,
) -> Result<BufferedBody, RegistryError> {
    let too_large = || RegistryError::TooLarge { what, limit: limit as u64 };
    let declared = http_body::Body::size_hint(&body).exact();
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DISCARD_LIMIT) {
            discard(idle_bounded(body, idle), DISCARD_LIMIT).await;
        }
        return Err(too_large());
    }
    let deadline = tokio::time::Instant::now() + BUDGET_WAIT;
    let mut reserved = Reservation { budget, held: None, units: 0, deadline };
    if let Some(declared) = declared {
        reserved.grow_to(usize::try_from(declared).map_err(|_| too_large())?).await?;
    }
    let mut stream = idle_bounded(body, idle);
    let mut bytes = Vec::with_capacity(reserved.units * UNIT);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| RegistryError::BodyInterrupted(e.to_string()))?;
        let length = bytes.len() + piece.len();
        if length > limit {
            discard(stream, DISCARD_LIMIT.saturating_sub(length as u64)).await;
            return Err(too_large());
        }
        // Budget first, then the copy: a request waiting for budget holds only the piece the
        // connection already read.
        reserved.grow_to(length).await?;
        bytes.extend_from_slice(&piece);
    }
    Ok(BufferedBody { bytes: bytes.into(), _held: reserved.held })
}

/// Reads and drops what remains of a refused body, up to `at_most` bytes.
async fn discard(mut stream: ByteStream, at_most: u64) {
    let mut read = 0u64;
    while read <= at_most {
        match stream.next().await {
            Some(Ok(piece)) => read += piece.len() as u64,
            Some(Err(_)) | None => return,
        }
    }
}

/// Budget a request holds, and until when it may wait for more.
struct Reservation<'a> {
    budget: &'a BodyBudget,
    held: Option<OwnedSemaphorePermit>,
    units: usize,
    deadline: tokio::time::Instant,
}

impl Reservation<'_> {
    /// Holds budget for `bytes` in all.
    async fn grow_to(&mut self, bytes: usize) -> Result<(), RegistryError> {
        let needed = bytes.div_ceil(UNIT).saturating_sub(self.units);
        if needed == 0 {
            return Ok(());
        }
        let throttled = || {
            RegistryError::Throttled(format!(
                "the registry is holding {} MiB of other requests' bodies, its limit \
                 (limits.max_buffered_body_bytes); retry shortly",
                self.budget.total / (1024 * 1024)
            ))
        };
        let more = u32::try_from(needed).map_err(|_| throttled())?;
        let acquire = Arc::clone(&self.budget.units).acquire_many_owned(more);
        let permit = match tokio::time::timeout_at(self.deadline, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(throttled()),
        };
        self.units += needed;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    /// A body of unknown length, as a chunked request sends it.
    fn body_of(pieces: Vec<&'static [u8]>) -> Body {
        let stream = futures_util::stream::iter(
            pieces.into_iter().map(|p| Ok::<_, io::Error>(bytes::Bytes::from_static(p))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn bodies_hold_budget_until_dropped_and_refuse_past_their_limit() {
        let budget = BodyBudget::new(4 * UNIT);
        let first = read_bounded(body_of(vec![&[1; 1500], &[2; 1500]]), IDLE, 8 * UNIT, "body", &budget)
            .await
            .expect("fits");
        assert_eq!(first.bytes.len(), 3000);
        assert_eq!(budget.units.available_permits(), 1, "3000 bytes hold three units");
        let too_long = read_bounded(body_of(vec![&[0; 10]]), IDLE, 5, "body", &budget).await;
        assert!(matches!(too_long, Err(RegistryError::TooLarge { limit: 5, .. })));
        drop(first);
        assert_eq!(budget.units.available_permits(), 4, "dropping a body returns its budget");
    }

    #[tokio::test]
    async fn a_declared_length_is_reserved_whole_and_refused_early_when_too_long() {
        let budget = BodyBudget::new(4 * UNIT);
        let declared = read_bounded(Body::from(vec![7u8; 3000]), IDLE, 8 * UNIT, "body", &budget).await;
        assert_eq!(declared.expect("fits").bytes.len(), 3000);
        let over = read_bounded(Body::from(vec![7u8; 9 * UNIT]), IDLE, 8 * UNIT, "body", &budget).await;
        assert!(matches!(over, Err(RegistryError::TooLarge { .. })), "refused from its declared length");
        assert_eq!(budget.units.available_permits(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_budget_asks_the_client_to_retry() {
        let budget = BodyBudget::new(UNIT);
        let held =
            read_bounded(body_of(vec![&[1; 1000]]), IDLE, 8 * UNIT, "body", &budget).await.expect("fits");
        let refused = read_bounded(body_of(vec![&[2; 1000]]), IDLE, 8 * UNIT, "body", &budget).await;
        assert!(matches!(refused, Err(RegistryError::Throttled(_))), "waits, then refuses");
        drop(held);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_ends_its_body() {
        let first = futures_util::stream::iter([Ok::<_, io::Error>(bytes::Bytes::from_static(b"first"))]);
        let body = Body::from_stream(first.chain(futures_util::stream::pending()));
        let mut stream = idle_bounded(body, Duration::from_secs(5));
        assert_eq!(stream.next().await.expect("piece").expect("data"), "first");
        let ended = stream.next().await.expect("an error, not the end");
        assert_eq!(ended.expect_err("timed out").kind(), io::ErrorKind::TimedOut);
    }
}
