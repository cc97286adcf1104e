//! Webhooks: image events delivered by HTTP POST, in order, to each configured endpoint.
//!
//! A delivery job hands one webhook the events after its cursor: each event its filter passes
//! is POSTed as JSON (ECR's EventBridge shape) with an HMAC-SHA256 signature of the body, and the
//! cursor moves past it once the endpoint answers 2xx; events the filter passes over move the
//! cursor too. An endpoint that is down or answers otherwise fails the job, which is tried again
//! later (1 s, doubling, at most 5 minutes between tries): nothing is lost and no other webhook
//! or job waits on it. A crash between a delivery and its cursor's move delivers that event
//! again: receivers tell repeats by `X-Berth-Event-Id`.

use std::sync::Arc;
use std::time::Duration;

use berth_registry::jobs::JobDone;
use berth_registry::{EVENT_BATCH, ImageEvent, Job, Registry, RegistryError};

/// A webhook: where events go and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Names the webhook's cursor: renaming it starts it afresh.
    pub name: String,
    pub url: String,
    /// The key of the `X-Berth-Signature-256` HMAC; none, no signature.
    pub secret: Option<Vec<u8>>,
    /// Accounts whose events are sent; empty: all.
    pub accounts: Vec<String>,
    /// Repository names (`*` matches any run of characters) whose events are sent; empty: all.
    pub repositories: Vec<String>,
    /// `PUSH`, `DELETE`, `SCAN`, `UPDATE_STORAGE_CLASS`; empty: all.
    pub actions: Vec<String>,
}

impl Webhook {
    fn wants(&self, event: &ImageEvent) -> bool {
        let any_or =
            |list: &[String], test: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|i| test(i));
        any_or(&self.accounts, &|a| a == event.account)
            && any_or(&self.repositories, &|p| berth_core::glob_matches(p, &event.repository, false))
            && any_or(&self.actions, &|a| a.eq_ignore_ascii_case(&event.action))
    }
}

/// Why `url` cannot be a webhook's address, if it cannot.
pub fn check_url(url: &str) -> Result<(), &'static str> {
    let uri: http::Uri = url.parse().map_err(|_| "is not an address")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("must be an http:// or https:// address");
    }
    match uri.authority() {
        None => Err("names no host"),
        Some(authority) if authority.host().is_empty() => Err("names no host"),
        // A password here would end up in logs and job errors; deliveries are signed instead.
        Some(authority) if authority.as_str().contains('@') => {
            Err("must not carry credentials; sign deliveries with secret_file instead")
        }
        Some(_) => Ok(()),
    }
}

/// The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one delivery job hands out events before it makes room for the next webhook's.
const TURN: Duration = Duration::from_secs(20);
const LEASE: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs each webhook's deliveries, one task per webhook, until the returned task is dropped.
pub fn spawn_delivery_worker(registry: Arc<Registry>, webhooks: Vec<Webhook>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Redirects are not followed: a POST redirected becomes a GET without the event, and a
        // 2xx to that would move the cursor past an event nobody received.
        let client = match reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot make the webhook client; no event will be delivered");
                return;
            }
        };
        let mut workers = tokio::task::JoinSet::new();
        for webhook in webhooks {
            workers.spawn(deliver_forever(Arc::clone(&registry), client.clone(), webhook));
        }
        // Dropping the set (when this task is aborted) ends every worker.
        while workers.join_next().await.is_some() {}
    })
}

async fn deliver_forever(registry: Arc<Registry>, client: reqwest::Client, webhook: Webhook) {
    let worker = format!("{}-webhook-{}", std::process::id(), uuid::Uuid::new_v4());
    loop {
        match registry.claim_delivery(&webhook.name, &worker, LEASE).await {
            Ok(Some(job)) => {
                let outcome = deliver(&registry, &client, &webhook, TURN).await;
                end(&registry, &worker, &job, outcome).await;
            }
            Ok(None) => {
                tokio::select! {
                    () = registry.delivery_scheduled() => {}
                    () = tokio::time::sleep(POLL_INTERVAL) => {}
                }
            }
            Err(e) => {
                tracing::warn!(webhook = %webhook.name, error = %e, "cannot look for webhook deliveries");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

async fn end(registry: &Registry, worker: &str, job: &Job, outcome: Result<JobDone, RegistryError>) {
    let ended = match outcome {
        Ok(done) => registry.finish_job(job, worker, done).await,
        Err(e) => {
            // 1 s after the first failure, doubling to at most 5 minutes.
            let shift = job.attempts.saturating_sub(1).min(16);
            let retry = Duration::from_secs(1u64 << shift).min(MAX_BACKOFF);
            tracing::warn!(webhook = %job.kind, error = %e, retry_in = ?retry, "a webhook delivery failed; it will be tried again");
            registry.fail_job(job, worker, &e, retry).await
        }
    };
    if let Err(e) = ended {
        tracing::warn!(job = job.id, error = %e, "cannot record the end of a webhook delivery; it will run again");
    }
}

/// Hands `webhook` its next events, in order, for at most `turn`.
async fn deliver(
    registry: &Registry,
    client: &reqwest::Client,
    webhook: &Webhook,
    turn: Duration,
) -> Result<JobDone, RegistryError> {
    let started = tokio::time::Instant::now();
    let mut cursor = registry.webhook_cursor(&webhook.name).await?;
    loop {
        let events = registry.events_after(cursor, EVENT_BATCH).await?;
        if events.is_empty() {
            return Ok(JobDone::Finished);
        }
        for event in &events {
            // A turn ends within one POST of `turn`, well inside the job's lease.
            if started.elapsed() > turn {
                return Ok(JobDone::Again(registry.now_millis()));
            }
            if webhook.wants(event) {
                let posted = post(client, webhook, event).await;
                registry.note_delivery(posted.is_ok());
                posted.map_err(RegistryError::Internal)?;
            }
            registry.advance_webhook(&webhook.name, event.id).await?;
            cursor = event.id;
        }
        if events.len() < EVENT_BATCH as usize {
            return Ok(JobDone::Finished);
        }
    }
}

async fn post(client: &reqwest::Client, webhook: &Webhook, event: &ImageEvent) -> Result<(), String> {
    let body = event.body.to_string();
    let mut request = client
        .post(&webhook.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("x-berth-event-id", event.id.to_string())
        .header(http::header::USER_AGENT, concat!("berth/", env!("CARGO_PKG_VERSION")));
    if let Some(secret) = &webhook.secret {
        request = request.header("x-berth-signature-256", signature(secret, body.as_bytes()));
    }
    let response = request.body(body).send().await.map_err(|e| format!("{}: {e}", webhook.url))?;
    let status = response.status();
    if status.is_success() { Ok(()) } else { Err(format!("{} answered {status}", webhook.url)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_addresses_are_http_with_a_host_and_no_credentials() {
        assert_eq!(check_url("https://hooks.example.com/berth?x=1"), Ok(()));
        assert_eq!(check_url("http://127.0.0.1:9000/hook"), Ok(()));
        for bad in [
            "http://",
            "ftp://example.com/",
            "hooks.example.com/x",
            "https://user:pass@example.com/",
            "not a url",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signature_is_the_hmac_of_the_body_in_hex() {
        // RFC 4231's test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn filters_pass_what_they_name_and_all_when_empty() {
        let event = ImageEvent {
            id: 1,
            account: "111111111111".to_owned(),
            repository: "team/app".to_owned(),
            action: "PUSH".to_owned(),
            digest: "sha256:00".to_owned(),
            tag: None,
            body: serde_json::Value::Null,
        };
        let hook = |accounts: &[&str], repositories: &[&str], actions: &[&str]| Webhook {
            name: "w".to_owned(),
            url: String::new(),
            secret: None,
            accounts: accounts.iter().map(|s| (*s).to_owned()).collect(),
            repositories: repositories.iter().map(|s| (*s).to_owned()).collect(),
            actions: actions.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert!(hook(&[], &[], &[]).wants(&event));
        assert!(hook(&["111111111111"], &["team/*"], &["push"]).wants(&event));
        assert!(!hook(&["222222222222"], &[], &[]).wants(&event));
        assert!(!hook(&[], &["other/*"], &[]).wants(&event));
        assert!(!hook(&[], &[], &["DELETE"]).wants(&event));
    }
}
