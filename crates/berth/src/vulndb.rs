//! `berth vulndb`: the vulnerability database scans match against, imported from OSV data; and
//! `berth sbom`: what a scan found in an image, as a CycloneDX document.

use std::path::{Path, PathBuf};

use berth_registry::Registry;
use berth_scan::osv;
use berth_server::feeds::{self, FeedOutcome, FeedSettings};
use clap::Subcommand;

pub(crate) const EXAMPLES: &str = "Examples:
  berth vulndb import debian.zip alpine.zip      # osv.dev's all.zip of each ecosystem
  berth vulndb import ./advisories/              # a folder of OSV records (*.json)
  berth vulndb update                            # from vulndb.feeds (BERTH_VULNDB_FEEDS)
  berth vulndb update https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip
  berth vulndb status";

#[derive(Subcommand)]
pub(crate) enum VulndbCommand {
    /// Import OSV records from zips (osv.dev's layout: one <id>.json per record) or folders of
    /// *.json files; a record replaces the one with its id. The running server re-matches every
    /// scanned image against the new database without reading its layers again.
    Import {
        /// Zip files or folders of OSV records.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Download OSV zips from their addresses (the configured vulndb.feeds, or the URLs given)
    /// and replace each feed's advisories with its download, at once: an advisory a feed no
    /// longer lists goes. A feed unchanged since its last download (ETag, Last-Modified) is not
    /// downloaded again; one that fails keeps its advisories. The server does the same every
    /// vulndb.update_interval_seconds.
    Update {
        /// Addresses of OSV zips (default: vulndb.feeds).
        urls: Vec<String>,
    },
    /// Show what the database holds, by import and by feed.
    Status,
}

pub(crate) async fn run(
    registry: &Registry,
    command: VulndbCommand,
    feeds: &FeedSettings,
) -> Result<(), String> {
    match command {
        VulndbCommand::Update { urls } => {
            update(registry, if urls.is_empty() { &feeds.urls } else { &urls }, feeds).await
        }
        VulndbCommand::Import { paths } => {
            for path in paths {
                let (records, skipped) = read(&path)?;
                let source = path
                    .file_name()
                    .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                registry.import_vulnerability_records(&source, &records).await.map_err(|e| e.to_string())?;
                println!("{source}: imported {} records", records.len());
                for (member, why) in skipped {
                    println!("  skipped {member}: {why}");
                }
            }
            Ok(())
        }
        VulndbCommand::Status => {
            let sources = registry.vulnerability_sources().await.map_err(|e| e.to_string())?;
            if sources.is_empty() {
                println!("the vulnerability database is empty: import OSV data with `berth vulndb import`");
            }
            for source in sources {
                let at = crate::maintenance::rfc3339(source.imported_at);
                println!("{}\t{} records\timported {at}", source.source, source.records);
            }
            for feed in registry.vulnerability_feeds().await.map_err(|e| e.to_string())? {
                let checked = crate::maintenance::rfc3339(feed.checked_at);
                let changed = feed.changed_at.map_or_else(|| "never".to_owned(), crate::maintenance::rfc3339);
                let outcome = feed.error.map_or_else(|| "ok".to_owned(), |e| format!("failed: {e}"));
                println!("feed {}\tchecked {checked} ({outcome})\tlast downloaded {changed}", feed.url);
            }
            Ok(())
        }
    }
}

/// `berth vulndb update`: every feed checked in turn; the command fails if any did.
async fn update(registry: &Registry, urls: &[String], settings: &FeedSettings) -> Result<(), String> {
    if urls.is_empty() {
        return Err("no feeds to update from: give the URLs of OSV zips, or set vulndb.feeds in the \
                    configuration file (BERTH_VULNDB_FEEDS)"
            .to_owned());
    }
    for url in urls {
        feeds::check_url(url)?;
    }
    let client = feeds::client()?;
    let mut failed = 0;
    for url in urls {
        match feeds::update_feed(registry, &client, url, settings).await {
            Ok(FeedOutcome::Unchanged) => println!("{url}: unchanged since the last download"),
            Ok(FeedOutcome::Replaced(download)) => {
                println!("{url}: {} records", download.records);
                for (member, why) in download.skipped {
                    println!("  skipped {member}: {why}");
                }
            }
            Err(e) => {
                eprintln!("{e}; the feed's advisories are kept");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} feeds could not be updated", urls.len()));
    }
    Ok(())
}

type Read = (Vec<(String, Vec<u8>)>, Vec<(String, String)>);

/// The records of a zip or a folder: (id, JSON), and the members skipped with why.
fn read(path: &Path) -> Result<Read, String> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    if path.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let json = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            match osv::Record::parse(&json) {
                Ok(record) => records.push((record.id, json)),
                Err(why) => skipped.push((file.display().to_string(), why)),
            }
        }
    } else {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let contents =
            osv::read_zip(std::io::BufReader::new(file)).map_err(|e| format!("{}: {e}", path.display()))?;
        records.extend(contents.records.into_iter().map(|(record, json)| (record.id, json)));
        skipped = contents.skipped;
    }
    Ok((records, skipped))
}

pub(crate) const SBOM_EXAMPLES: &str = "Examples:
  berth sbom 123456789012/team/app@sha256:6c3c...          # print it
  berth sbom 123456789012/team/app@sha256:6c3c... --attach # attach it; then, e.g.:
  oras discover --artifact-type application/vnd.cyclonedx+json registry.example.com/team/app@sha256:6c3c...";

/// `berth sbom ACCOUNT/REPOSITORY@DIGEST [--attach]`.
pub(crate) async fn sbom(registry: &Registry, image: &str, attach: bool) -> Result<(), String> {
    let usage = || {
        format!("{image:?} is not ACCOUNT/REPOSITORY@sha256:DIGEST (e.g. 123456789012/team/app@sha256:...)")
    };
    let (repo, digest) = image.split_once('@').ok_or_else(usage)?;
    let repo: berth_registry::RepoPath = repo.parse().map_err(|_| usage())?;
    let digest: berth_core::Digest = digest.parse().map_err(|_| usage())?;
    if attach {
        let referrer = registry.attach_sbom(&repo, &digest).await.map_err(|e| e.to_string())?;
        println!("{referrer}");
        return Ok(());
    }
    let document = registry.image_sbom(&repo, &digest).await.map_err(|e| e.to_string())?;
    println!("{document:#}");
    Ok(())
}
