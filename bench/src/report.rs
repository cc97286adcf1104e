//! Turns the JSON lines of a `scripts/bench` run into `docs/benchmarks.md`: medians over rounds,
//! ratios, ceilings, server resources, and how the goals of issue 5 stand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::Error;
use crate::workloads::ALL;

/// The hand-written analysis between these markers survives regeneration of the file.
const ANALYSIS_START: &str = "<!-- analysis:start -->";
const ANALYSIS_END: &str = "<!-- analysis:end -->";

const BERTH: &str = "berth";
const REFERENCE: &str = "reference";
/// berth again, into repositories under a customer key.
const BERTH_KMS: &str = "berth-kms";
/// Two more berth servers for the manifest workloads alone: as configured by default, and with
/// per-repository metrics and the audit log off.
const BERTH_OBSERVED: &str = "berth-observed";
const BERTH_QUIET: &str = "berth-quiet";

pub(crate) struct Inputs<'a> {
    pub(crate) results: &'a Path,
    pub(crate) ceilings: &'a Path,
    /// The JSON line from `scanning`, when it ran.
    pub(crate) scanning: Option<&'a Path>,
    pub(crate) meta: &'a [(String, String)],
    /// A previous report whose analysis section is carried over.
    pub(crate) previous: Option<&'a Path>,
}

/// The results of one workload against one registry, over all rounds.
#[derive(Default)]
struct Runs {
    ok: Vec<Value>,
    errors: Vec<String>,
}

impl Runs {
    fn median(&self, key: &str) -> Option<f64> {
        let mut values: Vec<f64> = self.ok.iter().filter_map(|r| r.get(key)?.as_f64()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
    }

    fn max(&self, key: &str) -> Option<f64> {
        self.ok.iter().filter_map(|r| r.get(key)?.as_f64()).reduce(f64::max)
    }

    /// The median of `key` as a table cell, or `failed` when every round failed.
    fn shown(&self, key: &str, unit: &str) -> String {
        match self.median(key) {
            None if !self.errors.is_empty() => "failed".to_owned(),
            v => cell(v, unit),
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        self.ok.first().and_then(|r| r.get(key)?.as_str().map(str::to_owned))
    }
}

/// The machine limit that bounds a workload, and what it is.
fn ceiling_for(workload: &str, ceilings: &Value) -> Option<(f64, &'static str)> {
    let get = |key: &str| ceilings.get(key).and_then(Value::as_f64);
    match workload {
        "push-large" => Some((get("hash_encrypt_mb_s")?, "SHA-256 + AES-256-GCM, 1 core")),
        // The client hashes what it pulls, on the same machine: whichever is slower bounds it.
        "pull-large" => {
            let (open, sha) = (get("aes_gcm_open_mb_s")?, get("sha256_mb_s")?);
            Some(if open < sha {
                (open, "AES-256-GCM open, 1 core")
            } else {
                (sha, "the client's SHA-256 check, 1 core")
            })
        }
        "push-small" => Some((get("fsync_per_s")?, "serial fdatasync/s, one per layer")),
        "pull-small" | "blob-head" | "manifest-get" | "manifest-head" | "mount" => {
            Some((get("http_req_s")?, "empty HTTP server, c=32"))
        }
        _ => None,
    }
}

/// Whether the load generator kept its core at least 90% busy in the median round.
fn client_bound(runs: &Runs) -> bool {
    let mut shares: Vec<f64> = runs
        .ok
        .iter()
        .filter_map(|r| Some(r.get("client_cpu_s")?.as_f64()? / r.get("duration_s")?.as_f64()?))
        .collect();
    shares.sort_by(f64::total_cmp);
    shares.get(shares.len() / 2).is_some_and(|s| *s >= 0.9)
}

/// Workloads whose server CPU is best read per GiB moved (the rest: per request).
fn per_gib(workload: &str) -> bool {
    matches!(workload, "push-large" | "pull-large" | "push-small" | "pull-small" | "push-images")
}

/// The server CPU of a workload's runs: per GiB moved for blob workloads, per operation else.
fn server_cpu(workload: &str, runs: &Runs) -> String {
    if per_gib(workload) {
        runs.median("server_cpu_s_per_gib").map_or_else(|| "—".to_owned(), |v| format!("{v:.2} s/GiB"))
    } else {
        runs.median("server_cpu_us_per_op").map_or_else(|| "—".to_owned(), |v| format!("{v:.0} µs/op"))
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        let digits = format!("{:.0}", value);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn cell(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{} {unit}", number(v)))
}

fn mib(kib: Option<f64>) -> String {
    kib.map_or_else(|| "—".to_owned(), |k| format!("{:.1} MiB", k / 1024.0))
}

pub(crate) fn render(inputs: &Inputs<'_>) -> Result<String, Error> {
    let mut runs: BTreeMap<(String, String), Runs> = BTreeMap::new();
    let text = fs::read_to_string(inputs.results)?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("results line {line:?}: {e}"))?;
        let get = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
        let entry = runs.entry((get("workload"), get("label"))).or_default();
        match value.get("error").and_then(Value::as_str) {
            Some(error) => entry.errors.push(error.to_owned()),
            None => entry.ok.push(value),
        }
    }
    let ceilings: Value = serde_json::from_str(&fs::read_to_string(inputs.ceilings)?)?;
    let ceiling = |key: &str| ceilings.get(key).and_then(Value::as_f64);
    let meta: BTreeMap<&str, &str> = inputs.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let meta_of = |k: &str| meta.get(k).copied().unwrap_or("unknown");
    let empty = Runs::default();
    let of = |w: &str, label: &str| runs.get(&(w.to_owned(), label.to_owned())).unwrap_or(&empty);

    let mut out = String::new();
    writeln!(out, "# Benchmarks: berth beside the reference registry")?;
    writeln!(out)?;
    writeln!(
        out,
        "Generated by `scripts/bench` (issue 5). Do not edit by hand except between the analysis \
         markers at the end, which regeneration keeps."
    )?;
    writeln!(out)?;
    writeln!(out, "| | |")?;
    writeln!(out, "|---|---|")?;
    for (label, key) in [
        ("date", "date"),
        ("commit", "commit"),
        ("CPU", "cpu"),
        ("cores", "cores"),
        ("kernel", "kernel"),
        ("mode", "mode"),
        ("rounds", "rounds"),
        ("reference", "reference_version"),
        ("machine load", "load"),
        ("run time", "duration"),
    ] {
        writeln!(out, "| {label} | {} |", meta_of(key))?;
    }
    writeln!(out)?;

    writeln!(out, "## Results")?;
    writeln!(out)?;
    writeln!(
        out,
        "Medians over the rounds. Ratio is berth ÷ reference (above 1: berth is faster). MB are \
         10^6 bytes. The ceiling is the machine limit that bounds the workload, measured in the \
         same run (see Ceilings)."
    )?;
    writeln!(out)?;
    writeln!(out, "| workload | berth | reference | ratio | ceiling | berth/ceiling |")?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for w in ALL {
        let (b, r) = (of(w, BERTH), of(w, REFERENCE));
        let unit = b.text("unit").or_else(|| r.text("unit")).unwrap_or_default();
        let show = |runs: &Runs| match (runs.median("value"), runs.errors.first()) {
            (_, Some(_)) if runs.ok.is_empty() => "failed".to_owned(),
            (v, _) if client_bound(runs) => format!("{} †", cell(v, &unit)),
            (v, _) => cell(v, &unit),
        };
        let (bv, rv) = (b.median("value"), r.median("value"));
        let ratio = match (bv, rv) {
            (Some(b), Some(r)) if r > 0.0 => format!("{b_r:.2}×", b_r = b / r),
            _ => "—".to_owned(),
        };
        let (ceiling_cell, share) = match ceiling_for(w, &ceilings) {
            Some((c, what)) => {
                let unit = if *w == "push-small" { "fsync/s".to_owned() } else { unit.clone() };
                let share = bv.map_or_else(|| "—".to_owned(), |b| format!("{:.0}%", 100.0 * b / c));
                (format!("{} ({what})", cell(Some(c), &unit)), share)
            }
            None => ("—".to_owned(), "—".to_owned()),
        };
        writeln!(out, "| {w} | {} | {} | {ratio} | {ceiling_cell} | {share} |", show(b), show(r))?;
    }
    writeln!(out)?;
    let marked = ALL.iter().any(|w| client_bound(of(w, BERTH)) || client_bound(of(w, REFERENCE)));
    if marked {
        writeln!(
            out,
            "† the load generator kept its core at least 90% busy in the median round: the figure \
             is bounded by the client on this machine, so the registry may be faster than shown."
        )?;
        writeln!(out)?;
    }

    let keyed: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|w| {
            let k = of(w, BERTH_KMS);
            !k.ok.is_empty() || !k.errors.is_empty()
        })
        .collect();
    if !keyed.is_empty() {
        writeln!(out, "### Customer keys")?;
        writeln!(out)?;
        writeln!(
            out,
            "The blob workloads again, into repositories created under a customer key (`KMS`: the \
             account's default key in the local key service), beside the same workloads into \
             `AES256` repositories (the registry's own key). A read opens the blob's data key \
             through its repository's key each time. The bytes are sealed alike; the machine's \
             AES-256-GCM limit on one core is {} sealing and {} opening (Ceilings).",
            cell(ceiling("aes_gcm_seal_mb_s"), "MB/s"),
            cell(ceiling("aes_gcm_open_mb_s"), "MB/s")
        )?;
        writeln!(out)?;
        writeln!(out, "| workload | AES256 | KMS | KMS ÷ AES256 | server CPU, AES256 | server CPU, KMS |")?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for w in keyed {
            let (plain, kms) = (of(w, BERTH), of(w, BERTH_KMS));
            let unit = plain.text("unit").or_else(|| kms.text("unit")).unwrap_or_default();
            let show = |runs: &Runs| runs.shown("value", &unit);
            let ratio = match (kms.median("value"), plain.median("value")) {
                (Some(k), Some(p)) if p > 0.0 => format!("{:.2}×", k / p),
                _ => "—".to_owned(),
            };
            let cpu = |runs: &Runs| server_cpu(w, runs);
            writeln!(
                out,
                "| {w} | {} | {} | {ratio} | {} | {} |",
                show(plain),
                show(kms),
                cpu(plain),
                cpu(kms)
            )?;
        }
        writeln!(out)?;
    }

    let observed: Vec<&str> = ALL
        .iter()
        .copied()
        .filter(|w| {
            let q = of(w, BERTH_QUIET);
            !q.ok.is_empty() || !q.errors.is_empty()
        })
        .collect();
    if !observed.is_empty() {
        writeln!(out, "### Observability")?;
        writeln!(out)?;
        writeln!(
            out,
            "The manifest workloads against two more berth servers, each with a data directory \
             only these workloads use: one as configured by default (every pull counted per \
             repository for `/metrics`, its pull time recorded, every request passed by the audit \
             log, which writes only changes and refusals), one with `metrics.per_repository = \
             false` and `audit.file = \"off\"`; they take turns going first. The loss is what \
             observing each request costs; the goal is under 5%."
        )?;
        writeln!(out)?;
        writeln!(out, "| workload | observed | quiet | loss | p99 observed | p99 quiet |")?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
        for w in observed {
            let (on, off) = (of(w, BERTH_OBSERVED), of(w, BERTH_QUIET));
            let unit = on.text("unit").or_else(|| off.text("unit")).unwrap_or_default();
            let show = |runs: &Runs| runs.shown("value", &unit);
            let loss = match (on.median("value"), off.median("value")) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.1}%", (1.0 - a / b) * 100.0),
                _ => "—".to_owned(),
            };
            let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2} ms"));
            writeln!(
                out,
                "| {w} | {} | {} | {loss} | {} | {} |",
                show(on),
                show(off),
                ms(on.median("p99_ms")),
                ms(off.median("p99_ms"))
            )?;
        }
        writeln!(out)?;
    }

    writeln!(out, "### Latency")?;
    writeln!(out)?;
    writeln!(
        out,
        "Per operation (one request; one whole blob push or pull; one whole image push; one full \
         tag list), milliseconds, medians over rounds."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| workload | berth p50 | berth p99 | reference p50 | reference p99 | what was measured |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---|")?;
    for w in ALL {
        let (b, r) = (of(w, BERTH), of(w, REFERENCE));
        let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"));
        let note = b.text("note").or_else(|| r.text("note")).unwrap_or_default();
        writeln!(
            out,
            "| {w} | {} | {} | {} | {} | {note} |",
            ms(b.median("p50_ms")),
            ms(b.median("p99_ms")),
            ms(r.median("p50_ms")),
            ms(r.median("p99_ms"))
        )?;
    }
    writeln!(out)?;
    let phases = |runs: &Runs| -> Option<String> {
        Some(format!(
            "PATCH (the bytes) {:.0} ms + PUT (verify, commit) {:.0} ms",
            runs.median("patch_ms")?,
            runs.median("put_ms")?
        ))
    };
    let (bp, rp) = (phases(of("push-large", BERTH)), phases(of("push-large", REFERENCE)));
    if bp.is_some() || rp.is_some() {
        writeln!(
            out,
            "Where push-large's time went: berth {}; reference {}.",
            bp.unwrap_or_else(|| "—".to_owned()),
            rp.unwrap_or_else(|| "—".to_owned())
        )?;
        writeln!(out)?;
    }

    writeln!(out, "### Server resources")?;
    writeln!(out)?;
    writeln!(
        out,
        "Server CPU is user + system seconds of the registry process over the timed phase only \
         (/proc/<pid>/stat), per GiB of blob content moved or per operation. Peak RSS is VmHWM, {}; \
         the largest value over the rounds.",
        match peak_scope(&runs) {
            "workload" =>
                "reset at the start of each timed phase (clear_refs) to the RSS of that \
                 moment, so it is the peak of that workload on top of whatever the process had \
                 kept from earlier ones",
            _ =>
                "over the process's whole life so far (the kernel refused to reset it), so it is \
                 the peak up to and including that workload",
        }
    )?;
    writeln!(out)?;
    writeln!(out, "| workload | berth CPU | reference CPU | berth peak RSS | reference peak RSS |")?;
    writeln!(out, "|---|---:|---:|---:|---:|")?;
    for w in ALL {
        let (b, r) = (of(w, BERTH), of(w, REFERENCE));
        let cpu = |runs: &Runs| server_cpu(w, runs);
        writeln!(
            out,
            "| {w} | {} | {} | {} | {} |",
            cpu(b),
            cpu(r),
            mib(b.max("server_peak_rss_kib")),
            mib(r.max("server_peak_rss_kib"))
        )?;
    }
    writeln!(out)?;
    let idle = |k: &str| meta.get(k).and_then(|v| v.parse::<f64>().ok());
    writeln!(
        out,
        "Idle RSS (VmRSS one second after start, before any request): berth {}, reference {}. \
         After the last workload: berth {}, reference {}.",
        mib(idle("berth_idle_rss_kib")),
        mib(idle("reference_idle_rss_kib")),
        mib(idle("berth_end_rss_kib")),
        mib(idle("reference_end_rss_kib"))
    )?;
    let client_share = runs
        .values()
        .flat_map(|r| r.ok.iter())
        .filter_map(|r| Some(r.get("client_cpu_s")?.as_f64()? / r.get("duration_s")?.as_f64()?))
        .reduce(f64::max);
    if let Some(share) = client_share {
        writeln!(
            out,
            "The load generator used at most {:.0}% of one core during any timed phase.",
            share * 100.0
        )?;
    }
    // How much of the machine unrelated processes took during the timed phases.
    let other: Vec<f64> = runs
        .values()
        .flat_map(|r| r.ok.iter())
        .filter_map(|r| Some(r.get("other_cpu_s")?.as_f64()? / r.get("duration_s")?.as_f64()?))
        .collect();
    if !other.is_empty() {
        let mean = other.iter().sum::<f64>() / other.len() as f64;
        let max = other.iter().copied().fold(0.0, f64::max);
        writeln!(
            out,
            "Other processes on the machine used on average {:.0}% of one core (at most {:.0}%) during \
             the timed phases.",
            mean * 100.0,
            max * 100.0
        )?;
    }
    writeln!(out)?;

    if let Some(path) = inputs.scanning {
        let scan: Value = serde_json::from_str(&fs::read_to_string(path)?)?;
        let number = |key: &str| scan.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
        writeln!(out, "## Scanning")?;
        writeln!(out)?;
        writeln!(
            out,
            "Measured by `berth-bench scanning` without a server, on {} ({:.1} MiB compressed, {:.1} MiB \
             decompressed, {} packages found). Decompressing is the floor a streaming scan cannot beat; the \
             goal is a scan at most 1.3 times that. Re-matching is what a vulnerability database update costs \
             per stored inventory in memory (parse and match); the registry adds one metadata write per image.",
            scan.get("layer").and_then(Value::as_str).unwrap_or("?"),
            number("layer_bytes") / (1024.0 * 1024.0),
            number("decompressed_bytes") / (1024.0 * 1024.0),
            number("packages"),
        )?;
        writeln!(out)?;
        writeln!(out, "| measure | value |")?;
        writeln!(out, "|---|---:|")?;
        writeln!(out, "| decompress only (best of rounds) | {:.3} s |", number("decompress_s"))?;
        writeln!(out, "| scan: walk, whiteouts, catalogers (best of rounds) | {:.3} s |", number("scan_s"))?;
        writeln!(out, "| scan / decompress | {:.2}× |", number("scan_over_decompress"))?;
        writeln!(
            out,
            "| re-match {} stored inventories ({} findings) | {:.3} s |",
            number("rematch_inventories"),
            number("rematch_findings"),
            number("rematch_s")
        )?;
        writeln!(out)?;
    }

    writeln!(out, "## Ceilings")?;
    writeln!(out)?;
    writeln!(
        out,
        "Measured by `berth-bench ceilings` in the same run, on the same disk as both registries' \
         data. CPU figures are per second of the measuring thread's own CPU time, so other load on \
         the machine does not lower them; disk and network figures are wall-clock."
    )?;
    writeln!(out)?;
    writeln!(out, "| ceiling | value | how |")?;
    writeln!(out, "|---|---:|---|")?;
    let rows: [(&str, &str, &str, &str); 12] = [
        ("SHA-256", "sha256_mb_s", "MB/s", "ring::digest, 1 MiB updates, 1 core"),
        ("AES-256-GCM seal", "aes_gcm_seal_mb_s", "MB/s", "ring::aead, 64 KiB records in place, 1 core"),
        ("AES-256-GCM open", "aes_gcm_open_mb_s", "MB/s", "64 KiB records copied in, then opened, 1 core"),
        (
            "hash + encrypt",
            "hash_encrypt_mb_s",
            "MB/s",
            "SHA-256, copy, seal per 64 KiB, 1 core: the push ceiling",
        ),
        ("disk write", "disk_write_mb_s", "MB/s", "1 MiB writes then fdatasync, timed together"),
        ("disk read (page cache)", "disk_read_cached_mb_s", "MB/s", "the file just written, read back"),
        ("disk read (device)", "disk_read_direct_mb_s", "MB/s", "O_DIRECT, 1 MiB reads"),
        ("fdatasync", "fsync_per_s", "/s", "4 KiB append + fdatasync, one writer"),
        ("fdatasync p50", "fsync_p50_ms", "ms", ""),
        ("loopback TCP", "loopback_mb_s", "MB/s", "one stream, 1 MiB writes and reads"),
        ("empty HTTP server", "http_req_s", "req/s", "hyper answering 500 B, this client, c=32"),
        ("empty HTTP server p99", "http_p99_ms", "ms", ""),
    ];
    for (name, key, unit, how) in rows {
        writeln!(out, "| {name} | {} | {how} |", cell(ceiling(key), unit))?;
    }
    writeln!(out)?;

    writeln!(out, "## Goals (issue 5)")?;
    writeln!(out)?;
    let med = |w: &str, l: &str, k: &str| of(w, l).median(k);
    let ratio = |w: &str| Some(med(w, BERTH, "value")? / med(w, REFERENCE, "value")?);
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    };
    let fmt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or_else(|| "—".to_owned(), f);
    let push_share = med("push-large", BERTH, "value").zip(ceiling("hash_encrypt_mb_s")).map(|(b, c)| b / c);
    let get_p99 = med("manifest-get", BERTH, "p99_ms");
    writeln!(out, "| goal | measured | |")?;
    writeln!(out, "|---|---:|---|")?;
    writeln!(
        out,
        "| push large ≥ 4× reference | {} | {} |",
        fmt(ratio("push-large"), &|r| format!("{r:.2}×")),
        verdict(ratio("push-large").map(|r| r >= 4.0))
    )?;
    writeln!(
        out,
        "| push large ≥ 70% of hash + encrypt ceiling | {} | {} |",
        fmt(push_share, &|s| format!("{:.0}%", s * 100.0)),
        verdict(push_share.map(|s| s >= 0.7))
    )?;
    writeln!(
        out,
        "| pull large ≥ reference (plaintext) rate | {} | {} |",
        fmt(ratio("pull-large"), &|r| format!("{r:.2}×")),
        verdict(ratio("pull-large").map(|r| r >= 1.0))
    )?;
    writeln!(
        out,
        "| manifest GET ≥ 10× reference req/s | {} | {} |",
        fmt(ratio("manifest-get"), &|r| format!("{r:.2}×")),
        verdict(ratio("manifest-get").map(|r| r >= 10.0))
    )?;
    writeln!(
        out,
        "| manifest GET p99 < 5 ms at c=32 | {} | {} |",
        fmt(get_p99, &|v| format!("{v:.2} ms")),
        verdict(get_p99.map(|v| v < 5.0))
    )?;
    let idle_mib = idle("berth_idle_rss_kib").map(|k| k / 1024.0);
    writeln!(
        out,
        "| idle RSS < 30 MiB | {} | {} |",
        fmt(idle_mib, &|v| format!("{v:.1} MiB")),
        verdict(idle_mib.map(|v| v < 30.0))
    )?;
    writeln!(out)?;

    let failures: Vec<String> = runs
        .iter()
        .flat_map(|((w, l), r)| r.errors.iter().map(move |e| format!("- {w} against {l}: {e}")))
        .collect();
    if !failures.is_empty() {
        writeln!(out, "## Failures")?;
        writeln!(out)?;
        for f in failures {
            writeln!(out, "{f}")?;
        }
        writeln!(out)?;
    }

    writeln!(out, "## How it was run")?;
    writeln!(out)?;
    writeln!(out, "{}", METHOD.trim())?;
    if let Some(notes) = meta.get("notes").filter(|n| !n.is_empty()) {
        writeln!(out)?;
        writeln!(out, "{notes}")?;
    }
    writeln!(out)?;

    writeln!(out, "## Analysis")?;
    writeln!(out)?;
    let kept = inputs.previous.and_then(|p| fs::read_to_string(p).ok()).and_then(|old| analysis(&old));
    writeln!(out, "{ANALYSIS_START}")?;
    match kept {
        Some(text) => writeln!(out, "{}", text.trim_matches('\n'))?,
        None => writeln!(out, "No analysis written yet for these numbers.")?,
    }
    writeln!(out, "{ANALYSIS_END}")?;
    Ok(out)
}

/// `"workload"` when every run could reset the server's peak RSS before its timed phase.
fn peak_scope(runs: &BTreeMap<(String, String), Runs>) -> &'static str {
    let mut all = runs.values().flat_map(|r| r.ok.iter()).peekable();
    if all.peek().is_some() && all.all(|r| r.get("peak_scope").and_then(Value::as_str) == Some("workload")) {
        "workload"
    } else {
        "process"
    }
}

/// The text between the analysis markers of an earlier report.
fn analysis(text: &str) -> Option<String> {
    let start = text.find(ANALYSIS_START)? + ANALYSIS_START.len();
    let end = text[start..].find(ANALYSIS_END)? + start;
    Some(text[start..end].to_owned())
}

const METHOD: &str = r"
- `scripts/bench` builds `berth` and `berth-bench` in release mode, installs the reference
  (Debian's `docker-registry`, CNCF distribution) if it is missing, and starts both on loopback
  ports: berth with its embedded default (SQLite, sealed blobs under a temporary data directory);
  the reference through `scripts/interop/reference-registry.sh` (filesystem storage under the
  same temporary directory, htpasswd basic auth, in-memory blob descriptor cache, info-level
  access log). Both are asked for every request with HTTP Basic credentials, as docker sends them
  after `docker login`; distribution checks its bcrypt htpasswd entry on each request, berth
  verifies its token's signature and looks up the access key.
- Every workload runs against each registry in turn, the order alternating by round. Fixtures
  (the blobs a pull reads, the 10,000 tags, the base image) are created before the timed phase;
  pushes use content that is new in every round, into new repositories.
- The load generator (`bench/`, hyper HTTP/1.1, one connection per concurrent worker, all on one
  thread) sends what docker sends: POST, one streamed chunked PATCH with the whole layer, PUT
  `?digest=`; manifest requests by tag with docker's Accept header; pulls are hashed as they
  arrive and compared with the expected digest, manifest digests are checked on every request.
- Client and servers share the same cores: the client's own CPU (hashing pulled layers,
  generating pushed ones) competes with the server, as it would for a docker client on the host.
";
