//! Vulnerability scanning on a running server: scan on push over real Debian layers, findings in
//! ECR's shape, the once-a-day quota, and a database import that changes findings without any
//! layer being read again.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ACCOUNT, Berth, OCI_CONFIG, OCI_MANIFEST, berth_binary, sha256, skip};
use serde_json::{Value, json};

/// The Debian test data beside the repository, or `None` (said as a skip).
fn debian_data(test: &str) -> Option<PathBuf> {
    let wanted = Path::new("shared/testdata/images/debian-bookworm");
    let found =
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().map(|d| d.join(wanted)).find(|p| p.is_dir());
    if found.is_none() {
        skip(test, "the Debian layers of the shared test data are not beside the repository");
    }
    found
}

fn rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("oracle");
    text.lines().skip(1).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

/// Writes OSV records as Debian publishes them (ecosystem `Debian:12`, source package, fixed
/// version), one file per id, into `dir`.
fn write_records(dir: &Path, fixes: &[(String, String, String)]) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut by_id: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    for (source, fixed, id) in fixes {
        by_id.entry(id).or_default().push(json!({
            "package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}));
    }
    for (id, affected) in by_id {
        let record = json!({"id": id, "modified": "2026-11-01T00:00:00Z", "affected": affected});
        std::fs::write(dir.join(format!("{id}.json")), record.to_string()).expect("record");
    }
}

fn vulndb_import(berth: &Berth, dir: &Path) -> String {
    berth.command(&["vulndb", "import", dir.to_str().expect("a UTF-8 path")])
}

/// The JSON body of a GET on the registry's OCI API.
async fn get_json(berth: &Berth, path: &str) -> Value {
    let response = berth.req(reqwest::Method::GET, path).send().await.expect("GET");
    assert!(response.status().is_success(), "GET {path}: {}", response.status());
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

/// The scan report once it is no longer in progress.
async fn scan_report(berth: &Berth, name: &str, digest: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let input = json!({"repositoryName": name, "imageId": {"imageDigest": digest}, "maxResults": 1000});
        let (status, out) = berth.ecr("DescribeImageScanFindings", input).await;
        assert_eq!(status, 200, "{out}");
        if out["imageScanStatus"]["status"] != "IN_PROGRESS" || Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn finding_names(report: &Value) -> BTreeSet<(String, String)> {
    report["imageScanFindings"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let package =
                f["attributes"].as_array().expect("attributes").iter().find(|a| a["key"] == "package_name");
            (
                f["name"].as_str().unwrap_or("").to_owned(),
                package.map_or("", |a| a["value"].as_str().unwrap_or("")).to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn debian_findings_on_push_and_after_a_database_update_without_reading_layers() {
    let test = "debian_findings_on_push_and_after_a_database_update_without_reading_layers";
    let Some(data) = debian_data(test) else { return };
    let berth = Berth::start().await;
    let name = "scan/debian";
    let repository = format!("{ACCOUNT}/{name}");
    let (status, out) = berth
        .ecr(
            "CreateRepository",
            json!({"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await;
    assert_eq!(status, 200, "{out}");

    // The database first: the pending security fixes of the base image.
    let pending = rows(&data.join("pending-security-fixes.tsv"));
    let fixes: Vec<(String, String, String)> = pending
        .iter()
        .filter(|r| r[4] != "(none)")
        .map(|r| (r[0].clone(), r[2].clone(), r[4].clone()))
        .collect();
    let work = tempfile::tempdir().expect("tempdir");
    write_records(&work.path().join("first"), &fixes);
    let imported = vulndb_import(&berth, &work.path().join("first"));
    assert!(
        imported.contains(&format!(
            "imported {} records",
            fixes.iter().map(|f| &f.2).collect::<BTreeSet<_>>().len()
        )),
        "{imported}"
    );

    // The base layer, pushed as one image: scanned on push.
    let layer = std::fs::read(data.join("layer1-debian-bookworm-minbase.tar.gz")).expect("layer");
    let diff_id = &rows(&data.join("layers.tsv"))[0][4];
    let config =
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
            .to_string();
    let layer_digest = berth.push_blob(&repository, &layer).await;
    let config_digest = berth.push_blob(&repository, config.as_bytes()).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}]})
    .to_string();
    let digest = sha256(manifest.as_bytes());
    assert_eq!(
        berth.put_manifest(&repository, "bookworm", OCI_MANIFEST, manifest.as_bytes()).await.status(),
        201
    );

    let report = scan_report(&berth, name, &digest).await;
    assert_eq!(report["imageScanStatus"]["status"], "COMPLETE", "{report}");
    // dpkg-query's list has no header line: every row is a package.
    let text = std::fs::read_to_string(data.join("debian-bookworm.dpkg-query.tsv")).expect("oracle");
    let binaries: Vec<Vec<String>> =
        text.lines().map(|l| l.split('\t').map(str::to_owned).collect()).collect();
    let mut want = BTreeSet::new();
    for (source, _, id) in &fixes {
        for binary in binaries.iter().filter(|b| &b[3] == source) {
            want.insert((id.clone(), binary[0].clone()));
        }
    }
    assert_eq!(finding_names(&report), want);
    let counts = &report["imageScanFindings"]["findingSeverityCounts"];
    assert_eq!(counts["UNDEFINED"].as_u64(), Some(want.len() as u64), "{counts}");

    // The inventory as a CycloneDX SBOM: every package, named by its package URL.
    let sbom = Command::new(berth_binary())
        .args(["sbom", &format!("{repository}@{digest}"), "--data-dir"])
        .arg(berth.data_dir())
        .env("BERTH_LOG", "warn")
        .output()
        .expect("berth sbom runs");
    assert!(sbom.status.success(), "{}", String::from_utf8_lossy(&sbom.stderr));
    let sbom: Value = serde_json::from_slice(&sbom.stdout).expect("CycloneDX JSON");
    assert_eq!((sbom["bomFormat"].as_str(), sbom["specVersion"].as_str()), (Some("CycloneDX"), Some("1.5")));
    let purls: BTreeSet<&str> = sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(purls.len(), binaries.len(), "one component per package");
    for binary in &binaries {
        // Package URLs percent-encode `+` and `:` in names and versions.
        let encode = |text: &str| text.replace(':', "%3A").replace('+', "%2B");
        let purl = format!(
            "pkg:deb/debian/{}@{}?arch={}&distro=debian-12",
            encode(&binary[0]),
            encode(&binary[1]),
            binary[2]
        );
        assert!(purls.contains(purl.as_str()), "{purl} is missing");
    }

    // Attached to the image as an OCI referrer: listed by the referrers API (filtered by its
    // artifact type) and by ListImageReferrers, and its layer is the same document.
    let referrer = berth.command(&["sbom", &format!("{repository}@{digest}"), "--attach"]).trim().to_owned();
    assert!(referrer.starts_with("sha256:"), "{referrer}");
    let again = berth.command(&["sbom", &format!("{repository}@{digest}"), "--attach"]).trim().to_owned();
    assert_eq!(again, referrer, "attaching again changes nothing");
    let listed = get_json(
        &berth,
        &format!("/v2/{repository}/referrers/{digest}?artifactType=application/vnd.cyclonedx%2Bjson"),
    )
    .await;
    let manifests = listed["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{listed}");
    assert_eq!(
        (manifests[0]["digest"].as_str(), manifests[0]["artifactType"].as_str()),
        (Some(referrer.as_str()), Some("application/vnd.cyclonedx+json"))
    );
    let (status, out) = berth
        .ecr("ListImageReferrers", json!({"repositoryName": name, "subjectId": {"imageDigest": digest}}))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["referrers"][0]["digest"], referrer.as_str(), "{out}");
    let artifact = get_json(&berth, &format!("/v2/{repository}/manifests/{referrer}")).await;
    assert_eq!(artifact["subject"]["digest"], digest.as_str(), "{artifact}");
    let layer = artifact["layers"][0]["digest"].as_str().expect("the SBOM layer");
    let attached = get_json(&berth, &format!("/v2/{repository}/blobs/{layer}")).await;
    assert_eq!(attached, sbom, "the attached SBOM is the printed one");

    let (_, described) = berth
        .ecr("DescribeImages", json!({"repositoryName": name, "imageIds": [{"imageDigest": digest}]}))
        .await;
    let detail = &described["imageDetails"][0];
    assert_eq!(detail["imageScanStatus"]["status"], "COMPLETE", "{detail}");
    let summary = &detail["imageScanFindingsSummary"];
    assert_eq!(summary["findingSeverityCounts"]["UNDEFINED"].as_u64(), Some(want.len() as u64), "{detail}");
    assert!(
        summary["imageScanCompletedAt"].is_number() && summary["vulnerabilitySourceUpdatedAt"].is_number()
    );

    // Once a day: a second scan asked for now is refused with ECR's quota exception.
    let again = json!({"repositoryName": name, "imageId": {"imageTag": "bookworm"}});
    let (status, out) = berth.ecr("StartImageScan", again).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("LimitExceededException")), "{out}");

    // A new advisory, imported while the layers are gone from disk: the findings follow the
    // database, so nothing read them.
    for shard in std::fs::read_dir(berth.data_dir().join("blobs")).expect("blobs").flatten() {
        for file in std::fs::read_dir(shard.path()).expect("shard").flatten() {
            std::fs::remove_file(file.path()).expect("remove");
        }
    }
    let zlib = binaries.iter().find(|r| r[0] == "zlib1g").map(|r| r[3].clone());
    let source = zlib.unwrap_or_else(|| "zlib".to_owned());
    let second = work.path().join("second");
    std::fs::create_dir_all(&second).expect("dir");
    let record = json!({"id": "CVE-2026-99999", "modified": "2026-11-02T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:9.9.9-1"}]}]}]});
    std::fs::write(second.join("CVE-2026-99999.json"), record.to_string()).expect("record");
    vulndb_import(&berth, &second);
    let deadline = Instant::now() + Duration::from_secs(60);
    let updated = loop {
        let report = scan_report(&berth, name, &digest).await;
        let names = finding_names(&report);
        if names.iter().any(|(id, _)| id == "CVE-2026-99999") || Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(updated.contains(&("CVE-2026-99999".to_owned(), "zlib1g".to_owned())), "{updated:?}");
    let report = scan_report(&berth, name, &digest).await;
    let critical = report["imageScanFindings"]["findings"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["name"] == "CVE-2026-99999"))
        .expect("the new finding")
        .clone();
    let attribute = |key: &str| {
        critical["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["key"] == key))
            .map(|x| x["value"].clone())
    };
    assert_eq!(critical["severity"], "CRITICAL", "{critical}");
    assert_eq!(attribute("CVSS3_SCORE"), Some(json!("9.8")), "{critical}");
    assert_eq!(report["imageScanFindings"]["findingSeverityCounts"]["CRITICAL"], 1);
    assert!(want.is_subset(&updated), "the earlier findings stay");

    // The change is recorded as the image's scan event: exactly the one new critical finding,
    // for a subscriber to act on, and nothing for the findings that stayed.
    let tailed = berth.command(&["events", "tail", "--last", "50", "--output", "json"]);
    let changes: Vec<Value> = tailed
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|e| {
            e["detail"]["trigger"] == "VULNERABILITY_DATABASE_UPDATE" && e["detail"]["image-digest"] == digest
        })
        .collect();
    let last = changes.last().expect("a change record after the update");
    assert_eq!(last["detail-type"], "ECR Image Scan", "{last}");
    assert_eq!(last["detail"]["new-finding-count"], 1, "{last}");
    assert_eq!(last["detail"]["new-finding-severity-counts"], json!({"CRITICAL": 1}), "{last}");
    assert_eq!(last["detail"]["new-findings"][0]["name"], "CVE-2026-99999", "{last}");
    assert_eq!(last["detail"]["new-findings"][0]["package-name"], "zlib1g", "{last}");
    assert_eq!(last["detail"]["resolved-finding-count"], 0, "{last}");

    // An image never scanned: ECR's ScanNotFoundException.
    let (status, _) = berth.ecr("CreateRepository", json!({"repositoryName": "scan/off"})).await;
    assert_eq!(status, 200);
    let plain = berth.push_image(&format!("{ACCOUNT}/scan/off"), "v1", b"{}", b"layer").await;
    let input = json!({"repositoryName": "scan/off", "imageId": {"imageDigest": plain}});
    let (status, out) = berth.ecr("DescribeImageScanFindings", input).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("ScanNotFoundException")), "{out}");
}

fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()).expect("number") * 1024
}

#[tokio::test]
async fn a_layer_that_decompresses_to_ten_gigabytes_fails_its_scan_in_bounded_memory() {
    const MIB: u64 = 1024 * 1024;
    let berth = Berth::start().await;
    let pid = berth.pid().expect("running");
    let name = "scan/bomb";
    let repository = format!("{ACCOUNT}/{name}");
    let (status, _) = berth
        .ecr(
            "CreateRepository",
            json!({"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await;
    assert_eq!(status, 200);

    // A tar archive of one 10 GiB file of zeros, as 160 concatenated gzip members of 64 MiB each
    // (the first starting with the file's header): about 10 MiB on the wire.
    let member = |with_header: bool| {
        let mut raw = Vec::with_capacity(64 * MIB as usize);
        if with_header {
            let mut header = tar::Header::new_gnu();
            header.set_path("var/lib/big").expect("path");
            header.set_size(10 * 1024 * MIB);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            raw.extend_from_slice(header.as_bytes());
        }
        raw.resize(64 * MIB as usize, 0);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &raw).expect("gzip");
        encoder.finish().expect("gzip")
    };
    let (first, rest) = (member(true), member(false));
    let mut bomb = first;
    for _ in 1..160 {
        bomb.extend_from_slice(&rest);
    }
    let config =
        json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
            .to_string();
    let layer_digest = berth.push_blob(&repository, &bomb).await;
    let config_digest = berth.push_blob(&repository, config.as_bytes()).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": bomb.len()}]})
    .to_string();
    let digest = sha256(manifest.as_bytes());
    let before = peak_rss(pid);
    let started = Instant::now();
    assert_eq!(
        berth.put_manifest(&repository, "bomb", OCI_MANIFEST, manifest.as_bytes()).await.status(),
        201
    );
    let report = scan_report(&berth, name, &digest).await;
    let took = started.elapsed();
    let peak = peak_rss(pid);
    println!(
        "a 10 GiB layer ({:.1} MiB compressed): scan {} in {:.1} s ({}); server peak RSS {:.1} MiB (before the scan {:.1} MiB)",
        bomb.len() as f64 / MIB as f64,
        report["imageScanStatus"]["status"],
        took.as_secs_f64(),
        report["imageScanStatus"]["description"],
        peak as f64 / MIB as f64,
        before as f64 / MIB as f64
    );
    assert_eq!(report["imageScanStatus"]["status"], "FAILED", "{report}");
    let why = report["imageScanStatus"]["description"].as_str().unwrap_or("");
    assert!(why.contains("times its compressed size"), "{why}");
    assert!(peak < 256 * MIB, "peak RSS {peak} bytes");
}

#[tokio::test]
async fn a_registry_rule_scans_the_repositories_its_filter_names_on_push() {
    let berth = Berth::start().await;
    let config = json!({"scanType": "BASIC", "rules": [
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "team-a/*", "filterType": "WILDCARD"}]}]});
    let (status, out) = berth.ecr("PutRegistryScanningConfiguration", config.clone()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["registryScanningConfiguration"], config);
    let (_, out) = berth.ecr("GetRegistryScanningConfiguration", json!({})).await;
    assert_eq!((out["registryId"].as_str(), &out["scanningConfiguration"]), (Some(ACCOUNT), &config));

    // Named by the rule: scanned on push; not named, and not asking: never scanned.
    // A real (tiny) layer: a tar archive with an os-release.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let release = b"ID=alpine\nVERSION_ID=3.20.3\n";
    header.set_size(release.len() as u64);
    builder.append_data(&mut header, "etc/os-release", release.as_slice()).expect("entry");
    let layer = builder.into_inner().expect("tar");
    let named = berth.push_image(&format!("{ACCOUNT}/team-a/app"), "v1", b"{}", &layer).await;
    let other = berth.push_image(&format!("{ACCOUNT}/team-b/app"), "v1", b"{}", &layer).await;
    let report = scan_report(&berth, "team-a/app", &named).await;
    assert_eq!(report["imageScanStatus"]["status"], "COMPLETE", "{report}");
    let input = json!({"repositoryName": "team-b/app", "imageId": {"imageDigest": other}});
    let (status, out) = berth.ecr("DescribeImageScanFindings", input).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("ScanNotFoundException")), "{out}");

    // An index asked to be scanned scans its platform images.
    let repository = format!("{ACCOUNT}/team-b/app");
    let arm = berth.push_image(&repository, "arm", br#"{"architecture":"arm64"}"#, &layer).await;
    let mut sizes = Vec::new();
    for digest in [&other, &arm] {
        sizes.push(berth.get_manifest(&repository, digest).await.bytes().await.expect("body").len());
    }
    let index = json!({"schemaVersion": 2, "mediaType": common::OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": other, "size": sizes[0], "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": sizes[1], "platform": {"architecture": "arm64", "os": "linux"}}]})
    .to_string();
    assert_eq!(
        berth.put_manifest(&repository, "multi", common::OCI_INDEX, index.as_bytes()).await.status(),
        201
    );
    let (status, out) = berth
        .ecr("StartImageScan", json!({"repositoryName": "team-b/app", "imageId": {"imageTag": "multi"}}))
        .await;
    assert_eq!(status, 200, "{out}");
    let index_digest = sha256(index.as_bytes());
    let report = scan_report(&berth, "team-b/app", &index_digest).await;
    assert_eq!(report["imageScanStatus"]["status"], "UNSUPPORTED_IMAGE", "{report}");
    for child in [&other, &arm] {
        let report = scan_report(&berth, "team-b/app", child).await;
        assert_eq!(report["imageScanStatus"]["status"], "COMPLETE", "{child}: {report}");
    }

    let names = json!({"repositoryNames": ["team-a/app", "team-b/app", "team-c/none"]});
    let (status, out) = berth.ecr("BatchGetRepositoryScanningConfiguration", names).await;
    assert_eq!(status, 200, "{out}");
    let by_name = |name: &str| {
        out["scanningConfigurations"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["repositoryName"] == name))
            .cloned()
    };
    let a = by_name("team-a/app").expect("team-a");
    assert_eq!((a["scanFrequency"].as_str(), a["scanOnPush"].as_bool()), (Some("SCAN_ON_PUSH"), Some(false)));
    assert_eq!(a["appliedScanFilters"], json!([{"filter": "team-a/*", "filterType": "WILDCARD"}]));
    assert_eq!(by_name("team-b/app").expect("team-b")["scanFrequency"], "MANUAL");
    assert_eq!(
        out["failures"],
        json!([{"repositoryName": "team-c/none", "failureCode": "REPOSITORY_NOT_FOUND",
        "failureReason": "REPOSITORY_NOT_FOUND"}])
    );

    // What berth's scanner cannot do is refused, and the configuration stays.
    for refused in [
        json!({"scanType": "ENHANCED", "rules": []}),
        json!({"scanType": "BASIC", "rules": [{"scanFrequency": "CONTINUOUS_SCAN",
                        "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}]}),
    ] {
        let (status, out) = berth.ecr("PutRegistryScanningConfiguration", refused).await;
        assert_eq!((status, out["__type"].as_str()), (400, Some("ValidationException")), "{out}");
    }
    let (_, out) = berth.ecr("GetRegistryScanningConfiguration", json!({})).await;
    assert_eq!(out["scanningConfiguration"], config);
}
