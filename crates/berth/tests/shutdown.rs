//! SIGTERM lets requests in flight finish; the server then exits cleanly and the data is whole.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use reqwest::Method;

#[tokio::test]
async fn sigterm_finishes_an_upload_in_flight() {
    let mut berth = Berth::start().await;
    let temp = berth.take_temp().expect("temp dir");
    let dir = berth.data_dir().to_owned();
    let r = repo("shutdown/app");
    let first = vec![7u8; 3 * 1024 * 1024];
    let second = vec![9u8; 2 * 1024 * 1024];
    let whole = [first.clone(), second.clone()].concat();
    let digest = sha256(&whole);

    // A monolithic upload whose body arrives in two parts, with SIGTERM between them.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let request = berth
        .req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={digest}"))
        .header("content-length", whole.len().to_string())
        .body(body)
        .send();
    let in_flight = tokio::spawn(request);
    tx.send(Ok(Bytes::from(first))).await.expect("send first part");
    tokio::time::sleep(Duration::from_millis(300)).await;

    berth.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(Bytes::from(second))).await.expect("send second part");
    drop(tx);

    let response = in_flight.await.expect("task").expect("the in-flight request completes");
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    assert!(
        berth.wait_exit_success(Duration::from_secs(30)),
        "berth did not exit cleanly within 30 s of SIGTERM"
    );

    let restarted = Berth::spawn(&dir).await;
    let got = restarted.req(Method::GET, &format!("/v2/{r}/blobs/{digest}")).send().await.expect("send");
    assert_eq!(got.status(), 200);
    assert_eq!(sha256(&got.bytes().await.expect("body")), digest);
    drop(restarted);
    drop(temp);
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
