//! `berth events`: the image events webhooks receive, for an operator, beside a running server.

use std::time::Duration;

use berth_registry::{ImageEvent, Registry};
use clap::Subcommand;
use serde_json::json;

use crate::maintenance::Output;

pub(crate) const EXAMPLES: &str = "\
Examples:
  berth events tail                  the last 20 events
  berth events tail --follow         and every new one as it happens (Ctrl-C to stop)
  berth events tail --since 1200 --output json
  berth events status                how far each configured webhook has been delivered";

#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// Print image events (pushes, deletions), oldest first.
    Tail {
        /// Print the events after this id (default: the last --last events).
        #[arg(long)]
        since: Option<i64>,
        /// How many of the newest events to print without --since.
        #[arg(long, default_value_t = 20)]
        last: u32,
        /// Keep printing new events as they happen.
        #[arg(long)]
        follow: bool,
        /// `table`: one line per event; `json`: each event's body (ECR's EventBridge shape) on a line.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Show how far each configured webhook has been delivered.
    Status,
}

fn print(event: &ImageEvent, output: Output) {
    match output {
        Output::Json => println!("{}", event.body),
        Output::Table => {
            let time = event.body["time"].as_str().unwrap_or("");
            let tag = event.tag.as_deref().map(|t| format!(" ({t})")).unwrap_or_default();
            println!(
                "{:>8}  {time}  {:<6}  {}/{}@{}{tag}",
                event.id, event.action, event.account, event.repository, event.digest
            );
        }
    }
}

pub(crate) async fn run(
    registry: &Registry,
    command: EventsCommand,
    webhooks: &[String],
) -> Result<(), String> {
    let failed = |e: berth_registry::RegistryError| e.to_string();
    match command {
        EventsCommand::Tail { since, last, follow, output } => {
            let mut after = match since {
                Some(id) => id,
                None => registry.latest_event().await.map_err(failed)?.saturating_sub(i64::from(last)),
            };
            loop {
                let events =
                    registry.events_after(after, berth_registry::EVENT_BATCH).await.map_err(failed)?;
                for event in &events {
                    print(event, output);
                    after = event.id;
                }
                if events.len() < berth_registry::EVENT_BATCH as usize {
                    if !follow {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        EventsCommand::Status => {
            let (cursors, latest) = registry.webhook_status(webhooks).await.map_err(failed)?;
            let webhooks: Vec<_> = cursors
                .iter()
                .map(|(name, delivered)| {
                    json!({
                        "name": name,
                        "deliveredUpTo": delivered,
                        "behind": delivered.map(|d| latest - d),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "latestEvent": latest, "webhooks": webhooks }))
                    .map_err(|e| e.to_string())?
            );
            Ok(())
        }
    }
}
