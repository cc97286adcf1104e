mod common;

use common::*;
use reqwest::Method;

#[tokio::test]
async fn push_and_pull_round_trip() {
    let berth = Berth::start().await;
    let r = repo("smoke/app");
    let digest =
        berth.push_image(&r, "v1", br#"{"architecture":"amd64","os":"linux"}"#, b"layer bytes").await;
    let got = berth
        .req(Method::GET, &format!("/v2/{r}/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["docker-content-digest"], digest.as_str());
    let body = got.bytes().await.expect("body");
    assert_eq!(sha256(&body), digest);
}
