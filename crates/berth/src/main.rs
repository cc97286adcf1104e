//! The `berth` command: `serve` runs the registry; `admin`, `lifecycle` and `gc` maintain it;
//! `login-password` prints a registry password.

mod admin;
mod apply;
mod config;
mod data_dir;
mod events;
mod maintenance;
mod vulndb;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides, ProcessEnv};

#[derive(Parser)]
#[command(name = "berth", version, about = "A multi-account container registry that speaks ECR's API")]
struct Cli {
    /// TOML configuration file (every key optional; see config.example.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory for metadata, blobs, the key file and bootstrap credentials (default
    /// ./berth-data; only `serve` creates it).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry: the OCI Distribution API, the ECR API and the operations endpoints on
    /// one listener. The first start creates the data directory and the owner account.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:5000.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Administer accounts, users, access keys, policies and customer keys (works beside a running server).
    #[command(after_help = admin::EXAMPLES)]
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Run lifecycle policies by hand, or see what one would do to a repository and why.
    #[command(after_help = maintenance::LIFECYCLE_EXAMPLES)]
    Lifecycle {
        #[command(subcommand)]
        command: maintenance::LifecycleCommand,
    },
    /// Collect garbage now: the space of layers no image uses, of deleted images and of
    /// abandoned uploads (the server also does this every gc.interval_seconds).
    Gc {
        /// Print what would be reclaimed, and reclaim nothing.
        #[arg(long)]
        dry_run: bool,
        /// Spare what was last used less than this many seconds ago (default: gc.grace_seconds).
        /// Keep it longer than a client takes between uploading layers and pushing their manifest:
        /// a grace of 0 can collect a layer whose manifest is still to come (that push is then
        /// refused). Files no metadata names are always spared for 10 minutes.
        #[arg(long)]
        grace_seconds: Option<u64>,
        /// How to print what was reclaimed.
        #[arg(long, value_enum, default_value_t = maintenance::Output::Table)]
        output: maintenance::Output,
    },
    /// Image events (pushes, deletions) as webhooks receive them, and how far each was delivered
    /// (works beside a running server).
    #[command(after_help = events::EXAMPLES)]
    Events {
        #[command(subcommand)]
        command: events::EventsCommand,
    },
    /// Manage the vulnerability database that scans match images against (OSV data).
    #[command(after_help = vulndb::EXAMPLES)]
    Vulndb {
        #[command(subcommand)]
        command: vulndb::VulndbCommand,
    },
    /// Make the account's repositories match a file of `module` or `repository` blocks (HCL), as
    /// the shared-registry module describes them, over the ECR API of a berth, local or remote.
    #[command(after_help = apply::EXAMPLES)]
    Apply(apply::ApplyArgs),
    /// Print the software bill of materials (CycloneDX JSON) of a scanned image, or attach it
    /// to the image as an OCI referrer.
    #[command(after_help = vulndb::SBOM_EXAMPLES)]
    Sbom {
        /// The image, as ACCOUNT/REPOSITORY@sha256:DIGEST.
        image: String,
        /// Attach the SBOM to the image, in its repository, as an artifact of type
        /// application/vnd.cyclonedx+json whose subject is the image (listed by the referrers API
        /// and ListImageReferrers); prints the artifact's digest. Attaching again changes nothing.
        #[arg(long)]
        attach: bool,
    },
    /// Print a registry password for `docker login --username AWS`, valid for 12 hours.
    LoginPassword {
        /// The access key to issue it for; default: the owner's bootstrap key.
        #[arg(long)]
        access_key_id: Option<String>,
        /// Seconds the password stays valid, for a job that needs it briefly (1 to 43200).
        #[arg(long, default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(1..=43_200))]
        valid_for: u64,
    },
}

fn main() -> ExitCode {
    // `apply` keeps exit code 2 for "changes pending", so its usage and configuration errors are
    // 1, as its other errors are; a pipeline must not read a typo as a plan.
    let applying = subcommand_name(std::env::args().skip(1)).is_some_and(|c| c == "apply");
    let invalid = if applying { ExitCode::FAILURE } else { ExitCode::from(2) };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { invalid } else { ExitCode::SUCCESS };
        }
    };
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        Command::LoginPassword { .. }
        | Command::Admin { .. }
        | Command::Lifecycle { .. }
        | Command::Gc { .. }
        | Command::Vulndb { .. }
        | Command::Events { .. }
        | Command::Sbom { .. }
        | Command::Apply(_) => None,
    };
    let overrides = Overrides { listen, data_dir: cli.data_dir.clone() };
    let config = match config::load(cli.config.as_deref(), &ProcessEnv, &overrides) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("berth: the configuration is not valid:");
            for problem in problems {
                eprintln!("  - {problem}");
            }
            return invalid;
        }
    };
    let mut config = config;
    if matches!(cli.command, Command::Apply(_)) && std::env::var_os("BERTH_LOG").is_none() {
        // apply reports its own progress; the AWS SDK's notes on where it found credentials are
        // noise in a pipeline's output.
        config.log = "warn".to_owned();
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Apply(args) => apply::run(args, &config).await,
            other => run(other, config).await.map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The subcommand a command line names, before it is parsed: the first word that is neither a
/// global option nor the value of one (`berth --data-dir d apply ...` names `apply`).
fn subcommand_name(args: impl Iterator<Item = String>) -> Option<String> {
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "--data-dir" => {
                args.next();
            }
            option if option.starts_with('-') => {}
            word => return Some(word.to_owned()),
        }
    }
    None
}

/// Runs every command but `apply`, which has exit codes of its own.
async fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Serve { .. } => serve(config).await,
        Command::LoginPassword { access_key_id, valid_for } => {
            login_password(config, access_key_id, Duration::from_secs(valid_for)).await
        }
        Command::Admin { command } => {
            let registry = data_dir::open_existing(&config).await?;
            let result = admin::run(&registry, command).await;
            registry.close().await;
            match config.command_audit_log() {
                Ok(log) => admin::audit(&log, &std::env::args().collect::<Vec<_>>(), &result),
                Err(e) => eprintln!("warning: this command is not in the audit log: {e}"),
            }
            result
        }
        Command::Lifecycle { command } => {
            let registry = data_dir::open_existing(&config).await?;
            let result = maintenance::lifecycle(&registry, command).await;
            registry.close().await;
            result
        }
        Command::Sbom { image, attach } => {
            let registry = data_dir::open_existing(&config).await?;
            let result = vulndb::sbom(&registry, &image, attach).await;
            registry.close().await;
            result
        }
        Command::Events { command } => {
            let registry = data_dir::open_existing(&config).await?;
            let names: Vec<String> = config.events.webhooks.iter().map(|w| w.name.clone()).collect();
            let result = events::run(&registry, command, &names).await;
            registry.close().await;
            result
        }
        Command::Vulndb { command } => {
            let registry = data_dir::open_existing(&config).await?;
            let result = vulndb::run(&registry, command, &config.feed_settings()).await;
            registry.close().await;
            result
        }
        Command::Gc { dry_run, grace_seconds, output } => {
            let registry = data_dir::open_existing(&config).await?;
            let grace = Duration::from_secs(grace_seconds.unwrap_or(config.gc.grace_seconds));
            let result = maintenance::gc(&registry, grace, dry_run, output).await;
            registry.close().await;
            result
        }
        Command::Apply(_) => Err("apply runs on its own".to_owned()),
    }
}

fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_format == "json" {
        // One object per line, the request's id among the fields of every line written for it.
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        // Colour only for a person at a terminal; a log file or a collector gets plain text.
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

async fn serve(config: Config) -> Result<(), String> {
    // One server per data directory: a second one would contend for the database and fail
    // requests of both. Held until the process exits.
    if let Some(refusal) = config.plain_http_refusal() {
        return Err(refusal);
    }
    let tls = match config.tls_files() {
        Some(files) => Some(Arc::new(berth_server::Tls::load(files).map_err(|e| e.to_string())?)),
        None => None,
    };
    let metrics_token = config.metrics_token()?;
    let _lock = data_dir::lock_for_serving(&config)?;
    let registry = data_dir::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%address, scheme, data_dir = %config.data_dir.display(), "berth is serving");
    let reloader = tls.as_ref().map(|tls| Arc::clone(tls).spawn_reloader());
    let max_connections = connection_cap(config.limits.max_connections);
    let http = berth_server::HttpSettings { metrics_token, ..config.http_settings() };
    let audit = Arc::new(config.audit_log()?);
    let app = berth_server::router(Arc::clone(&registry), http, audit);
    let webhooks = config.webhooks()?;
    let names: Vec<String> = webhooks.iter().map(|w| w.name.clone()).collect();
    registry
        .register_webhooks(&names)
        .await
        .map_err(|e| format!("cannot begin the webhooks' deliveries: {e}"))?;
    let jobs = berth_server::workers::spawn_job_worker(Arc::clone(&registry), config.job_schedule());
    let deliveries = berth_server::webhooks::spawn_delivery_worker(Arc::clone(&registry), webhooks);
    let feeds = berth_server::feeds::spawn_feed_worker(Arc::clone(&registry), config.feed_settings());
    let acceptor = tls.as_ref().map(|tls| tls.acceptor());
    berth_server::serve(
        listener,
        app,
        config.listener_settings(max_connections),
        acceptor,
        shutdown_signal(),
    )
    .await;
    jobs.abort();
    deliveries.abort();
    feeds.abort();
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    tracing::info!("in-flight requests finished; closing the metadata store");
    registry.close().await;
    Ok(())
}

/// File descriptors kept free of connections: the database, blobs being read and written,
/// uploads being staged.
const RESERVED_FILES: u64 = 512;

/// Raises the process's open-file limit as far as it may go, and returns how many connections
/// can be served within it (at most `configured`): beyond the limit the listener would fail to
/// accept, and every client, not only the excess ones, would suffer.
fn connection_cap(configured: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return configured;
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX).max(1);
    if fits < configured {
        tracing::warn!(
            open_file_limit = limit,
            configured,
            serving = fits,
            "the open-file limit allows fewer connections than limits.max_connections; raise the limit \
             (ulimit -n, LimitNOFILE=) to serve more"
        );
        return fits;
    }
    configured
}

/// Resolves on SIGTERM or SIGINT; requests in flight then finish before the server stops.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn login_password(
    config: Config,
    access_key_id: Option<String>,
    valid_for: Duration,
) -> Result<(), String> {
    let registry = data_dir::open_existing(&config).await?;
    let access_key_id = match access_key_id {
        Some(id) => id,
        None => data_dir::bootstrap_access_key_id(&config)?,
    };
    let token = registry.issue_token_for(&access_key_id, valid_for).await.map_err(|e| e.to_string())?;
    println!("{}", token.password);
    registry.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::{Cli, subcommand_name};

    #[test]
    fn the_subcommand_is_found_behind_global_options() {
        let name = |line: &str| subcommand_name(line.split_whitespace().map(str::to_owned));
        assert_eq!(name("apply -f x.hcl").as_deref(), Some("apply"));
        assert_eq!(name("--data-dir apply serve").as_deref(), Some("serve"), "a value is not a command");
        assert_eq!(name("--config c.toml --data-dir=d apply --plan").as_deref(), Some("apply"));
        assert_eq!(name("--help"), None);
    }

    /// Every command and every argument says what it is for.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() {
                missing.push(format!("{path}: no description"));
            }
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} {}: no help", arg.get_id()));
                }
            }
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
        let admin =
            Cli::command().find_subcommand_mut("admin").expect("admin").render_long_help().to_string();
        assert!(admin.contains("Examples:") && admin.contains("berth admin key create"), "{admin}");
    }
}
