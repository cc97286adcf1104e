//! The operations surface: `/healthz`, `/readyz` and Prometheus metrics at `/metrics`.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// The value of the sample whose name and labels are exactly `series`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_name_no_tenant() {
    let berth = Berth::start().await;
    let name = "secret-team/secret-app";
    let (status, out) = berth.ecr("CreateRepository", json!({"repositoryName": name})).await;
    assert_eq!(status, 200, "{out}");
    let r = repo(name);
    berth.push_image(&r, "v1", br#"{"os":"linux"}"#, b"metrics layer").await;
    for _ in 0..3 {
        assert_eq!(berth.get_manifest(&r, "v1").await.status(), 200);
    }
    let denied = berth.anon(Method::GET, &format!("/v2/{r}/manifests/v1")).send().await.expect("send");
    assert_eq!(denied.status(), 401);

    let response = berth
        .anon(Method::GET, "/metrics")
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200, "metrics need no credentials");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.expect("text");
    let count = |labels: &str| sample(&text, &format!("berth_http_requests_total{{{labels}}}"));
    assert_eq!(count(r#"surface="oci",operation="manifest",method="GET",status="2xx""#), Some(3.0), "{text}");
    assert_eq!(count(r#"surface="oci",operation="manifest",method="GET",status="4xx""#), Some(1.0), "{text}");
    assert_eq!(count(r#"surface="oci",operation="manifest",method="PUT",status="2xx""#), Some(1.0), "{text}");
    assert_eq!(count(r#"surface="ecr",operation="CreateRepository",method="POST",status="2xx""#), Some(1.0));
    let pulls =
        sample(&text, r#"berth_http_request_duration_seconds_count{surface="oci",operation="manifest"}"#);
    assert_eq!(pulls, Some(5.0), "three pulls, one refusal and one push were timed: {text}");
    assert!(text.contains("berth_http_requests_in_flight"), "{text}");
    for private in ["secret-team", "secret-app", ACCOUNT, "v1"] {
        assert!(!text.contains(private), "metrics name {private:?}:\n{text}");
    }
}

#[tokio::test]
async fn ready_while_serving() {
    let berth = Berth::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = berth.anon(Method::GET, path).send().await.expect("send");
        assert_eq!(response.status(), 200, "{path}");
    }
}

/// A registry whose scrapers show this token for the per-repository series, and at most
/// `max_repositories` repositories named in them.
async fn with_metrics_token(max_repositories: &str) -> (Berth, String, tempfile::TempDir) {
    let folder = tempfile::tempdir().expect("tempdir");
    let token = "metrics-token-0123456789abcdef".to_owned();
    let file = folder.path().join("token");
    std::fs::write(&file, format!("{token}\n")).expect("token");
    let file = file.to_str().expect("path").to_owned();
    let berth = Berth::start_with(&[
        ("BERTH_METRICS_TOKEN_FILE", file.as_str()),
        ("BERTH_METRICS_MAX_REPOSITORIES", max_repositories),
    ])
    .await;
    (berth, token, folder)
}

/// A scrape as Prometheus makes it (OpenMetrics), with the token if given.
async fn scrape(berth: &Berth, token: Option<&str>) -> (u16, String) {
    let mut request = berth.anon(Method::GET, "/metrics").header("accept", "application/openmetrics-text");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send");
    (response.status().as_u16(), response.text().await.expect("text"))
}

#[tokio::test]
async fn per_repository_pulls_count_image_pulls_only_and_only_the_token_sees_them() {
    let (berth, token, _folder) = with_metrics_token("1000").await;
    let r = repo("metrics/app");
    let layer = b"per-repository metrics layer".to_vec();
    let digest = berth.push_image(&r, "v1", br#"{"os":"linux"}"#, &layer).await;
    // The same image in a second repository of the account: stored once, held by both.
    berth.push_image(&repo("metrics/copy"), "v1", br#"{"os":"linux"}"#, &layer).await;
    for _ in 0..3 {
        assert_eq!(berth.get_manifest(&r, "v1").await.status(), 200);
    }
    // BatchGetImage is a pull too; HEAD, a blob read and the tags list are not.
    let (status, out) = berth
        .ecr("BatchGetImage", json!({"repositoryName": "metrics/app", "imageIds": [{"imageDigest": digest}]}))
        .await;
    assert_eq!((status, out["images"].as_array().map(Vec::len)), (200, Some(1)), "{out}");
    let head = berth.req(Method::HEAD, &format!("/v2/{r}/manifests/v1")).send().await.expect("send");
    assert_eq!(head.status(), 200);
    let layer_digest = sha256(&layer);
    let blob = berth.req(Method::GET, &format!("/v2/{r}/blobs/{layer_digest}")).send().await.expect("send");
    assert_eq!(blob.status(), 200);
    let ranged = berth
        .req(Method::GET, &format!("/v2/{r}/blobs/{layer_digest}"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("send");
    assert_eq!(ranged.status(), 206);

    let (status, text) = scrape(&berth, Some(&token)).await;
    assert_eq!(status, 200, "{text}");
    let series = |name: &str| {
        sample(&text, &format!(r#"berth_{name}_total{{account="{ACCOUNT}",repository="metrics/app"}}"#))
    };
    assert_eq!(series("repository_pulls"), Some(4.0), "3 manifest GETs and 1 BatchGetImage: {text}");
    assert_eq!(series("repository_pushes"), Some(1.0), "{text}");
    // The config and the layer were uploaded; the layer was served whole, then 10 bytes of it.
    let config_len = br#"{"os":"linux"}"#.len() as f64;
    assert_eq!(series("repository_bytes_received"), Some(config_len + layer.len() as f64), "{text}");
    assert_eq!(series("repository_bytes_sent"), Some(layer.len() as f64 + 10.0), "{text}");
    // Held: config, layer and the manifest's own bytes, in each repository in full, once in the account.
    let manifest_len = berth.get_manifest(&r, "v1").await.bytes().await.expect("manifest").len() as f64;
    let held = config_len + layer.len() as f64 + manifest_len;
    assert_eq!(
        sample(
            &text,
            &format!(r#"berth_repository_stored_bytes{{account="{ACCOUNT}",repository="metrics/copy"}}"#)
        ),
        Some(held),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"berth_repository_stored_bytes{account="000000000000",repository="metrics/app"}"#),
        Some(held)
    );
    assert_eq!(
        sample(&text, &format!(r#"berth_account_stored_bytes{{account="{ACCOUNT}"}}"#)),
        Some(held),
        "{text}"
    );
    assert_eq!(sample(&text, "berth_stored_bytes"), Some(held), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "one OpenMetrics document: {text}");
    assert_eq!(text.matches("# EOF").count(), 1);

    // Without the token: no tenant anywhere. With a wrong one: refused, saying why.
    let (status, anonymous) = scrape(&berth, None).await;
    assert_eq!(status, 200);
    // Not even the registry's total: its moves would tell who else stores what one uploads.
    for private in ["metrics/app", ACCOUNT, "repository_pulls", "stored_bytes"] {
        assert!(!anonymous.contains(private), "the anonymous scrape names {private:?}:\n{anonymous}");
    }
    let (status, refused) = scrape(&berth, Some("not-the-token-at-all")).await;
    assert_eq!(status, 401);
    assert!(refused.contains("metrics.token_file"), "{refused}");
    assert!(!refused.contains("metrics/app"));
}

#[tokio::test]
async fn repositories_past_the_cap_are_summed_as_other() {
    let (berth, token, _folder) = with_metrics_token("2").await;
    for name in ["cap/one", "cap/two", "cap/three", "cap/four"] {
        berth.push_image(&repo(name), "v1", br#"{"os":"linux"}"#, name.as_bytes()).await;
        assert_eq!(berth.get_manifest(&repo(name), "v1").await.status(), 200);
    }
    let (_, text) = scrape(&berth, Some(&token)).await;
    let pulls: Vec<&str> = text.lines().filter(|l| l.starts_with("berth_repository_pulls_total{")).collect();
    assert_eq!(pulls.len(), 3, "two repositories and other: {text}");
    assert_eq!(
        sample(&text, r#"berth_repository_pulls_total{account="other",repository="other"}"#),
        Some(2.0)
    );
}

/// `promtool check metrics` on `text`: its complaints, or `None` if it has none.
fn promtool_complaints(text: &str) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    (!out.status.success())
        .then(|| format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn scrapes_with_and_without_the_token_pass_promtool() {
    if std::process::Command::new("promtool").arg("--version").output().is_err() {
        skip("promtool", "promtool is not installed (the test command installs Debian's prometheus package)");
        return;
    }
    let (berth, token, _folder) = with_metrics_token("1000").await;
    let r = repo("promtool/app");
    berth.push_image(&r, "v1", br#"{"os":"linux"}"#, b"promtool layer").await;
    assert_eq!(berth.get_manifest(&r, "v1").await.status(), 200);
    for token in [None, Some(token.as_str())] {
        // The classic text format, as promtool reads it.
        let mut request = berth.anon(Method::GET, "/metrics");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("send");
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        let text = response.text().await.expect("text");
        assert_eq!(text.contains("berth_repository_pulls_total"), token.is_some(), "{text}");
        assert_eq!(promtool_complaints(&text), None, "with token: {}\n{text}", token.is_some());
    }
}

#[tokio::test]
async fn the_background_works_series_count_scans_and_garbage_collection_without_naming_a_tenant() {
    let berth = Berth::start_with(&[("BERTH_GC_INTERVAL_SECONDS", "1")]).await;
    let r = repo("background/app");
    let digest = berth.push_image(&r, "v1", br#"{"os":"linux"}"#, b"not a tar layer").await;
    let (status, out) = berth
        .ecr(
            "StartImageScan",
            json!({"repositoryName": "background/app", "imageId": {"imageDigest": digest}}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let (status, text) = scrape(&berth, None).await;
        assert_eq!(status, 200);
        let scans = ["COMPLETE", "FAILED"]
            .iter()
            .filter_map(|s| sample(&text, &format!(r#"berth_scans_total{{status="{s}"}}"#)))
            .sum::<f64>();
        if scans >= 1.0 && sample(&text, "berth_gc_passes_total").is_some_and(|n| n >= 1.0) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no scan or collection counted: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for series in [
        "berth_gc_reclaimed_bytes_total",
        r#"berth_lifecycle_images_total{action="expire"}"#,
        r#"berth_webhook_deliveries_total{result="failed"}"#,
    ] {
        assert!(sample(&text, series).is_some(), "{series} in {text}");
    }
    assert!(!text.contains("background/app") && !text.contains(ACCOUNT), "no tenant named: {text}");
}

#[tokio::test]
async fn every_response_carries_its_request_id_and_the_json_log_lines_of_the_request_name_it() {
    let berth = Berth::start_with(&[("BERTH_LOG_FORMAT", "json"), ("BERTH_LOG", "info")]).await;
    let id = |r: &reqwest::Response| {
        r.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let mut ids = Vec::new();
    for path in ["/healthz", "/metrics", "/v2/", "/nowhere"] {
        let response = berth.anon(Method::GET, path).send().await.expect("send");
        ids.push(id(&response).unwrap_or_else(|| panic!("{path} has no request id")));
    }
    let ecr = berth
        .ecr_response(
            &berth.owner_credentials().0,
            &berth.owner_credentials().1,
            "DescribeRepositories",
            json!({}),
            &Signing::default(),
        )
        .await;
    assert_eq!(ecr.headers().get_all("x-amzn-requestid").iter().count(), 1, "one id, not two");
    ids.push(id(&ecr).expect("the ECR API's id"));
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids repeat: {ids:?}");

    // A request that logs: a pull under a disabled customer key. Its log line names its id.
    berth.admin(&["kms", "create", "--account", ACCOUNT, "--alias", "alias/logged"]);
    let input = json!({"repositoryName": "logged/app", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/logged"}});
    assert_eq!(berth.ecr("CreateRepository", input).await.0, 200);
    let digest = berth.push_blob(&repo("logged/app"), b"logged layer").await;
    berth.admin(&["kms", "disable", "--account", ACCOUNT, "alias/logged"]);
    let refused = berth
        .req(Method::GET, &format!("/v2/{}/blobs/{digest}", repo("logged/app")))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 503);
    let request_id = id(&refused).expect("id");
    let log = berth.log_text();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["span"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no JSON log line carries {request_id}:\n{log}"));
    assert!(line["fields"]["message"].as_str().is_some_and(|m| m.contains("customer key")), "{line}");
    assert!(
        log.lines().all(|l| l.trim().is_empty() || serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
}
