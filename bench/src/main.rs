//! `berth-bench`: the load generator and machine-ceiling probe behind `scripts/bench`.
//!
//! `run` drives one workload against one registry and prints one JSON line; `ceilings` measures
//! the machine's limits; `report` turns a run's JSON lines into `docs/benchmarks.md`.

mod ceilings;
mod client;
mod data;
mod ecr;
mod probe;
mod report;
mod scanning;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::json;

/// Errors end the command with a message; there is nothing to recover in a benchmark.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(name = "berth-bench", about = "Benchmarks a container registry (see scripts/bench)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workload against one registry; prints one JSON line.
    Run {
        /// One of: push-large, pull-large, push-small, pull-small, blob-head, mount,
        /// manifest-get, manifest-head, tags-list, push-images.
        #[arg(long)]
        workload: String,
        /// The registry, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "AWS")]
        user: String,
        /// Taken from the environment by default, so it does not show in the process list.
        #[arg(long, env = "BERTH_BENCH_PASSWORD", hide_env_values = true)]
        password: String,
        /// Repository prefix: berth needs an account id (000000000000).
        #[arg(long, default_value = "000000000000")]
        namespace: String,
        /// Small sizes and counts, so the whole matrix finishes in seconds.
        #[arg(long)]
        quick: bool,
        /// Distinguishes rounds: pushes send content unique to the seed into new repositories.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The registry's process id, to sample its CPU time and peak RSS from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Copied into the output line (the registry's name in the report).
        #[arg(long, default_value = "")]
        label: String,
        /// Copied into the output line.
        #[arg(long, default_value_t = 0)]
        round: u32,
    },
    /// Measure the machine's ceilings (hashing, encryption, disk, loopback); prints one JSON line.
    Ceilings {
        /// Where to write the disk test files (use the registries' file system).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        quick: bool,
    },
    /// Measure scanning against decompression, and re-matching stored inventories; prints one
    /// JSON line.
    Scanning {
        #[arg(long)]
        quick: bool,
    },
    /// Call one ECR API operation, signed as the credentials file's key (to set a registry up).
    Ecr {
        /// The registry, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        url: String,
        /// A credentials file (berth's bootstrap-credentials, or ~/.aws/credentials).
        #[arg(long)]
        credentials: PathBuf,
        /// The operation, e.g. CreateRepositoryCreationTemplate.
        operation: String,
        /// Its input, as JSON.
        input: String,
    },
    /// Print a TCP port that is free on 127.0.0.1.
    FreePort,
    /// Read a `run` JSON line on standard input; print it as one short human line.
    Summary,
    /// Write the markdown report from a run's JSON lines.
    Report {
        /// JSON lines from `run`, one per workload, registry and round.
        #[arg(long)]
        results: PathBuf,
        /// The JSON line from `ceilings`.
        #[arg(long)]
        ceilings: PathBuf,
        /// The JSON line from `scanning`, if it ran.
        #[arg(long)]
        scanning: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// KEY=VALUE facts about the run (date, commit, cpu, idle RSS, ...).
        #[arg(long, value_parser = parse_meta)]
        meta: Vec<(String, String)>,
        /// An earlier report whose analysis section is kept.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// `412.3 MB/s, p50 2.10 ms, p99 9.80 ms, server 1.52 CPU s`, or the error.
fn summary(line: &serde_json::Value) -> String {
    if let Some(error) = line.get("error").and_then(|e| e.as_str()) {
        return format!("error: {error}");
    }
    let number = |key: &str| line.get(key).and_then(serde_json::Value::as_f64);
    let unit = line.get("unit").and_then(|u| u.as_str()).unwrap_or("");
    let mut text = format!("{:.1} {unit}", number("value").unwrap_or(0.0));
    for (key, label) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
        if let Some(v) = number(key) {
            text.push_str(&format!(", {label} {v:.2} ms"));
        }
    }
    if let Some(cpu) = number("server_cpu_s") {
        text.push_str(&format!(", server {cpu:.2} CPU s"));
    }
    if let Some(kib) = number("server_peak_rss_kib") {
        text.push_str(&format!(", peak RSS {:.1} MiB", kib / 1024.0));
    }
    text
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { workload, url, user, password, namespace, quick, seed, server_pid, label, round } => {
            let result = (|| -> Result<serde_json::Value, Error> {
                let target = Arc::new(client::Target::new(&url, &user, &password, &namespace)?);
                let ctx = workloads::Ctx {
                    target,
                    sizes: workloads::Sizes::new(quick),
                    seed,
                    server_pid: server_pid.map(|p| p.to_string()),
                };
                // One thread: the load generator takes at most one core and leaves the other
                // to the server.
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(workloads::run(&ctx, &workload))
            })();
            match result {
                Ok(mut line) => {
                    line["label"] = json!(label);
                    line["round"] = json!(round);
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let error = e.to_string();
                    let line =
                        json!({ "workload": workload, "label": label, "round": round, "error": error });
                    println!("{line}");
                    eprintln!("berth-bench: {workload} against {url}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ceilings { dir, quick } => match ceilings::run(&dir, quick) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berth-bench: ceilings: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Scanning { quick } => match scanning::run(quick) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berth-bench: scanning: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Ecr { url, credentials, operation, input } => {
            let result = (|| -> Result<serde_json::Value, Error> {
                let input: serde_json::Value = serde_json::from_str(&input)?;
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(ecr::call(&url, &credentials, &operation, &input))
            })();
            match result {
                Ok(answer) => {
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("berth-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::FreePort => match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(address) => {
                println!("{}", address.port());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berth-bench: no free port: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Summary => {
            let mut line = String::new();
            let parsed = std::io::stdin()
                .read_line(&mut line)
                .map_err(Error::from)
                .and_then(|_| Ok(serde_json::from_str::<serde_json::Value>(&line)?));
            match parsed {
                Ok(value) => {
                    println!("{}", summary(&value));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("berth-bench: summary: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report { results, ceilings, scanning, out, meta, previous } => {
            let inputs = report::Inputs {
                results: &results,
                ceilings: &ceilings,
                scanning: scanning.as_deref(),
                meta: &meta,
                previous: previous.as_deref(),
            };
            match report::render(&inputs).and_then(|text| Ok(std::fs::write(&out, text)?)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth-bench: report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
