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

    let response = berth.anon(Method::GET, "/metrics").send().await.expect("send");
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
