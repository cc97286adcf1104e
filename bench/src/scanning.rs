//! Scanning, measured without a server: how long a scan takes against merely decompressing the
//! same layer (the walk, whiteouts and catalogers are the difference), and how long matching
//! stored inventories against the vulnerability database takes, which is what a database update
//! costs per image besides one metadata write.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_scan::{Advisories, ImageFiles, Inventory, Limits, catalog, osv, wanted};
use serde_json::{Value, json};

use crate::Error;

/// The Debian base layer of the shared test data, beside the repository, if it is there.
fn debian_layer() -> Option<PathBuf> {
    let wanted = Path::new("shared/testdata/images/debian-bookworm/layer1-debian-bookworm-minbase.tar.gz");
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().map(|d| d.join(wanted)).find(|p| p.is_file())
}

/// A stand-in layer when the test data is absent: a dpkg database and `files` MiB of files.
fn synthetic_layer(files: usize) -> Result<Vec<u8>, Error> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| -> Result<(), Error> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, data)?;
        Ok(())
    };
    let status: String = (0..200)
        .map(|n| {
            format!(
                "Package: pkg{n}\nStatus: install ok installed\nVersion: 1.{n}-1\nSource: src{}\n\n",
                n % 40
            )
        })
        .collect();
    add("var/lib/dpkg/status", status.as_bytes())?;
    add("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n")?;
    for n in 0..files {
        add(&format!("usr/share/data/{n}"), crate::data::pattern())?;
    }
    let tar = builder.into_inner()?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &tar)?;
    Ok(encoder.finish()?)
}

/// The fastest of `rounds` runs of `work`.
fn best_of(rounds: usize, mut work: impl FnMut() -> Result<(), Error>) -> Result<Duration, Error> {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        work()?;
        best = best.min(started.elapsed());
    }
    Ok(best)
}

/// Measures both and returns one JSON line.
pub(crate) fn run(quick: bool) -> Result<Value, Error> {
    let (layer, source) = match debian_layer() {
        Some(path) if !quick => {
            (std::fs::read(&path)?, "the Debian bookworm base layer of the shared test data")
        }
        _ => (synthetic_layer(if quick { 4 } else { 64 })?, "a generated layer (dpkg database and files)"),
    };
    let rounds = if quick { 1 } else { 3 };
    let mut decompressed = 0u64;
    let decompress = best_of(rounds, || {
        let mut decoder = flate2::read::MultiGzDecoder::new(layer.as_slice());
        decompressed = std::io::copy(&mut decoder, &mut std::io::sink())?;
        Ok(())
    })?;
    let mut inventory = Inventory::default();
    let scan = best_of(rounds, || {
        let mut files = ImageFiles::new(Limits::default()).inspecting(berth_scan::inspected);
        files.add_layer("layer", layer.as_slice(), &wanted)?;
        inventory = catalog(&files);
        Ok(())
    })?;

    // A database of one advisory per source package (fixed just above what is installed), and
    // many stored inventories like this one, matched as a database update matches them.
    let mut advisories = Advisories::default();
    let mut sources: Vec<(&str, &str)> =
        inventory.packages.iter().map(|p| (p.source_name.as_str(), p.source_version.as_str())).collect();
    sources.sort();
    sources.dedup();
    for (n, (source, version)) in sources.iter().enumerate() {
        let record = json!({"id": format!("CVE-2099-{n:05}"), "affected": [{"package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": format!("{version}+fix")}]}]}]});
        advisories
            .add(osv::Record::parse(record.to_string().as_bytes()).map_err(|e| format!("record: {e}"))?);
    }
    let stored = serde_json::to_string(&inventory)?;
    let inventories = if quick { 1_000 } else { 10_000 };
    let mut findings = 0;
    let rematch = best_of(1, || {
        for _ in 0..inventories {
            let inventory: Inventory = serde_json::from_str(&stored)?;
            findings += advisories.findings(&inventory).len();
        }
        Ok(())
    })?;
    Ok(json!({
        "layer": source,
        "layer_bytes": layer.len(),
        "decompressed_bytes": decompressed,
        "packages": inventory.packages.len(),
        "decompress_s": decompress.as_secs_f64(),
        "scan_s": scan.as_secs_f64(),
        "scan_over_decompress": scan.as_secs_f64() / decompress.as_secs_f64().max(1e-9),
        "rematch_inventories": inventories,
        "rematch_findings": findings,
        "rematch_s": rematch.as_secs_f64(),
    }))
}
