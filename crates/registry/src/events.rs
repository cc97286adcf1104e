//! Image events for webhooks. The metadata store records an event in the transaction of each
//! push that changes a repository and each deletion (its outbox), so an event exists exactly when
//! its change does. Each webhook has a cursor: the last event it was given (or that its filter
//! passed over). Deliveries are jobs of the one queue: a fan-out job, scheduled with every event,
//! schedules a delivery job per webhook, which hands that webhook its next events in order and
//! moves its cursor; the HTTP side lives with the server. Events are kept for a retention period,
//! after which a webhook that was down longer misses them, and is told so in the log.

use berth_meta::StoredEvent;
use serde_json::{Value, json};

use crate::jobs::{EVENT_DELIVERY, JobDone};
use crate::{Registry, RegistryError};

/// Events handed to a delivery at a time.
pub const EVENT_BATCH: u32 = 100;

/// A push or a deletion, as a webhook is told of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    pub id: i64,
    pub account: String,
    pub repository: String,
    /// `PUSH` or `DELETE`.
    pub action: String,
    pub digest: String,
    pub tag: Option<String>,
    /// The event's body, shaped as ECR's EventBridge event (`ECR Image Action`).
    pub body: Value,
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl Registry {
    async fn image_event(&self, event: StoredEvent) -> ImageEvent {
        let own: serde_json::Map<String, Value> =
            event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let mut resources = json!([]);
        let (kind, mut detail) = if event.action == "SCAN" {
            // The severity counts as they stand when the event is read: the findings follow the
            // vulnerability database.
            resources = json!([format!(
                "arn:aws:ecr:{}:{}:repository/{}",
                self.settings.region, event.account, event.repository
            )]);
            let counts = self.severity_counts_now(&event.account, &event.repository, &event.digest).await;
            (
                "ECR Image Scan",
                json!({
                    "repository-name": event.repository,
                    "image-digest": event.digest,
                    "finding-severity-counts": counts,
                    "image-tags": [],
                }),
            )
        } else {
            (
                "ECR Image Action",
                json!({
                    "result": "SUCCESS",
                    "repository-name": event.repository,
                    "image-digest": event.digest,
                    "action-type": event.action,
                }),
            )
        };
        for (key, value) in own {
            detail[key] = value;
        }
        if let Some(tag) = &event.tag {
            detail["image-tag"] = json!(tag);
        }
        let body = json!({
            "version": "0",
            "id": format!("berth-event-{}", event.id),
            "detail-type": kind,
            "source": "aws.ecr",
            "account": event.account,
            "time": rfc3339(event.at),
            "region": self.settings.region,
            "resources": resources,
            "detail": detail,
        });
        ImageEvent {
            id: event.id,
            account: event.account,
            repository: event.repository,
            action: event.action,
            digest: event.digest,
            tag: event.tag,
            body,
        }
    }

    /// The webhooks events are delivered to, by name. A webhook named for the first time begins
    /// after the newest event: it is told of changes from now on.
    pub async fn register_webhooks(&self, names: &[String]) -> Result<(), RegistryError> {
        let latest = self.meta.latest_event().await?;
        for name in names {
            self.meta.begin_event_cursor(name, latest, self.now_millis()).await?;
        }
        let mut registered = self.webhooks.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *registered = names.to_vec();
        Ok(())
    }

    /// Events after `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<ImageEvent>, RegistryError> {
        let mut events = Vec::new();
        for event in self.meta.events_after(after, limit).await? {
            events.push(self.image_event(event).await);
        }
        Ok(events)
    }

    /// The newest event's id (0 when there is none).
    pub async fn latest_event(&self) -> Result<i64, RegistryError> {
        Ok(self.meta.latest_event().await?)
    }

    /// The last event a webhook is done with.
    pub async fn webhook_cursor(&self, name: &str) -> Result<i64, RegistryError> {
        Ok(self.meta.event_cursor(name).await?.unwrap_or(0))
    }

    /// Records that a webhook is done with every event up to `id`.
    pub async fn advance_webhook(&self, name: &str, id: i64) -> Result<(), RegistryError> {
        Ok(self.meta.set_event_cursor(name, id, self.now_millis()).await?)
    }

    /// Where each webhook stands: its name, its cursor; and the newest event's id.
    pub async fn webhook_status(
        &self,
        names: &[String],
    ) -> Result<(Vec<(String, Option<i64>)>, i64), RegistryError> {
        let mut cursors = Vec::new();
        for name in names {
            cursors.push((name.clone(), self.meta.event_cursor(name).await?));
        }
        Ok((cursors, self.meta.latest_event().await?))
    }

    /// Counts a webhook delivery attempt, for `/metrics`.
    pub fn note_delivery(&self, ok: bool) {
        self.background.delivered(ok);
    }

    /// What the background work has done since start.
    pub fn background_work(&self) -> crate::BackgroundWork {
        self.background.read()
    }

    /// Resolves when a delivery may have become due.
    pub async fn delivery_scheduled(&self) {
        self.deliveries_waiting.notified().await;
    }

    /// The fan-out job: a delivery for every webhook, due now.
    pub(crate) async fn fan_out_events(&self) -> Result<JobDone, RegistryError> {
        let names = self.webhooks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let now = self.now_millis();
        for name in &names {
            // A delivery waiting out a failure keeps its back-off: new events do not hurry a
            // webhook that is down.
            self.meta.request_job(&format!("{EVENT_DELIVERY}{name}"), "", now).await?;
        }
        if !names.is_empty() {
            self.deliveries_waiting.notify_waiters();
        }
        Ok(JobDone::Finished)
    }

    /// Removes events older than the retention; a webhook whose cursor is behind what is left
    /// has missed events, and the log says how it stands.
    pub(crate) async fn prune_events(&self) -> Result<(), RegistryError> {
        let before = self
            .now_millis()
            .saturating_sub(i64::try_from(self.settings.event_retention.as_millis()).unwrap_or(i64::MAX));
        let latest = self.meta.latest_event().await?;
        if self.meta.prune_events(before).await? == 0 {
            return Ok(());
        }
        // Every event up to this one is gone.
        let gone_up_to = self.meta.events_after(0, 1).await?.first().map_or(latest, |e| e.id - 1);
        let names = self.webhooks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for name in names {
            let cursor = self.meta.event_cursor(&name).await?.unwrap_or(0);
            if cursor < gone_up_to {
                tracing::warn!(
                    webhook = %name, delivered_up_to = cursor, missed = gone_up_to - cursor,
                    "a webhook was unreachable for longer than the event retention; events older than it were removed undelivered"
                );
                self.meta.set_event_cursor(&name, gone_up_to, self.now_millis()).await?;
            }
        }
        Ok(())
    }
}
