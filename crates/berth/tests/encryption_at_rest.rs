//! No plaintext of a pushed layer, config or manifest exists on disk: not at rest, and not
//! while an upload is in flight.

mod common;

use common::*;
use reqwest::Method;

const MARKER: &[u8] = b"BERTH-PLAINTEXT-MARKER-7f3a9c";

fn marker_layer(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

#[tokio::test]
async fn no_pushed_byte_is_on_disk_in_plaintext() {
    let berth = Berth::start().await;
    let r = repo("secret/app");
    let layer = marker_layer(3 * 1024 * 1024 + 17);

    // Mid-upload: two chunks, the first ending inside an encryption chunk.
    let start = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().expect("location").to_owned();
    let half = 1_500_001;
    let patch = berth
        .req(Method::PATCH, &location)
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", half - 1))
        .body(layer[..half].to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(patch.status(), 202);
    assert_eq!(files_containing(berth.data_dir(), MARKER), Vec::<String>::new(), "plaintext mid-upload");

    let location = patch.headers()["location"].to_str().expect("location").to_owned();
    let digest = sha256(&layer);
    let put = berth
        .req(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", format!("{half}-{}", layer.len() - 1))
        .body(layer[half..].to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(put.status(), 201, "{}", put.text().await.unwrap_or_default());

    // A config and a manifest that carry the marker too.
    let config =
        format!(r#"{{"architecture":"amd64","os":"linux","author":"{}"}}"#, String::from_utf8_lossy(MARKER));
    let config_digest = berth.push_blob(&r, config.as_bytes()).await;
    let annotation = format!(r#","annotations":{{"note":"{}"}}"#, String::from_utf8_lossy(MARKER));
    let manifest = image_manifest_bytes(&config_digest, config.len(), &digest, layer.len(), &annotation);
    let pushed = berth.put_manifest(&r, "v1", OCI_MANIFEST, &manifest).await;
    assert_eq!(pushed.status(), 201, "{}", pushed.text().await.unwrap_or_default());

    assert_eq!(files_containing(berth.data_dir(), MARKER), Vec::<String>::new(), "plaintext at rest");

    // The bytes are still served exactly.
    let got = berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}")).send().await.expect("send");
    assert_eq!(got.bytes().await.expect("body").as_ref(), layer.as_slice());
    let got = berth.get_manifest(&r, "v1").await;
    assert_eq!(got.bytes().await.expect("body").as_ref(), manifest.as_slice());
}

#[tokio::test]
async fn the_scan_itself_finds_plaintext_where_it_is() {
    // Guards the test above: the same scan does see a marker written in the clear.
    let berth = Berth::start().await;
    let plain = berth.data_dir().join("plain.txt");
    std::fs::write(&plain, marker_layer(100)).expect("write");
    assert_eq!(files_containing(berth.data_dir(), MARKER), vec![plain.display().to_string()]);
}
