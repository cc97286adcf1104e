//! Image events to a webhook, as a receiver sees them: each push and deletion exactly once, in
//! order, signed; after the receiver was down for a while, and across a restart of berth.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the receiver got: each request's event id header, signature header and body.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    signature: String,
    body: Value,
}

/// A webhook receiver on a fixed port: a bare HTTP/1.1 server answering 200 to every POST,
/// which the test stops (the port then refuses connections) and starts again.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(port: u16, got: Arc<Mutex<Vec<Received>>>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
        let port = listener.local_addr().expect("addr").port();
        let sink = Arc::clone(&got);
        let task = tokio::spawn(async move {
            // Dropped with this task when the receiver stops: open connections end too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let sink = Arc::clone(&sink);
                connections.spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut headers = Vec::new();
                        loop {
                            let mut line = String::new();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end().to_owned();
                            if line.is_empty() {
                                break;
                            }
                            headers.push(line);
                        }
                        let header = |name: &str| {
                            headers.iter().find_map(|h| {
                                let (k, v) = h.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                            })
                        };
                        let length: usize =
                            header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                        let mut body = vec![0u8; length];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        sink.lock().expect("lock").push(Received {
                            id: header("x-berth-event-id").unwrap_or_default(),
                            signature: header("x-berth-signature-256").unwrap_or_default(),
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        });
                        if write.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, got, task: Some(task) }
    }

    /// Stops accepting: connections to the port are refused until it starts again.
    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }

    async fn wait_for(&self, n: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: the receiver has {} events, expected {n}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
}

#[tokio::test]
async fn a_webhook_gets_every_push_and_delete_once_in_order_through_outages_and_restarts() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut receiver = Receiver::start(0, Arc::clone(&got)).await;
    let temp = tempfile::tempdir().expect("tempdir");
    let secret = "webhook-signing-key-0123456789abcdef";
    std::fs::write(temp.path().join("hook.key"), format!("{secret}\n")).expect("key");
    let config = temp.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "[[events.webhooks]]\nname = \"test\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret_file = \"{}\"\n",
            receiver.port,
            temp.path().join("hook.key").display()
        ),
    )
    .expect("config");
    let dir = temp.path().join("data");
    let mut berth = Berth::spawn_with_config(&dir, &config).await;

    // Pushes into two repositories, a tag deleted, an image deleted by digest.
    let app = repo("events/app");
    let v1 = berth.push_image(&app, "v1", br#"{"n":1}"#, b"layer one").await;
    let v2 = berth.push_image(&app, "v2", br#"{"n":2}"#, b"layer two").await;
    let other = repo("events/other");
    let o1 = berth.push_image(&other, "v1", br#"{"n":3}"#, b"layer three").await;
    let (status, out) = berth
        .ecr("BatchDeleteImage", json!({"repositoryName": "events/app", "imageIds": [{"imageDigest": v1}]}))
        .await;
    assert_eq!(status, 200, "{out}");
    receiver.wait_for(4, "the first pushes and deletion").await;

    // A scan's end, and an image archived.
    let (status, out) = berth
        .ecr("StartImageScan", json!({"repositoryName": "events/app", "imageId": {"imageDigest": v2}}))
        .await;
    assert_eq!(status, 200, "{out}");
    receiver.wait_for(5, "the scan's end").await;
    let (status, out) = berth
        .ecr(
            "UpdateImageStorageClass",
            json!({"repositoryName": "events/app", "imageId": {"imageDigest": v2}, "targetStorageClass": "ARCHIVE"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    receiver.wait_for(6, "the archive").await;

    // The receiver goes down; a push waits for it, and nothing else does.
    receiver.stop();
    let v3 = berth.push_image(&app, "v3", br#"{"n":4}"#, b"layer four").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), 6, "nothing arrives while the receiver is down");
    assert_eq!(berth.get_manifest(&app, "v3").await.status(), 200, "pulls go on meanwhile");
    receiver = Receiver::start(receiver.port, Arc::clone(&got)).await;
    receiver.wait_for(7, "the push made while the receiver was down").await;

    // Down again, and berth restarts before it comes back: the event waits in the outbox.
    receiver.stop();
    let v4 = berth.push_image(&app, "v4", br#"{"n":5}"#, b"layer five").await;
    berth.signal("TERM");
    assert!(berth.wait_exit_success(Duration::from_secs(30)), "berth stops cleanly");
    let berth = Berth::spawn_with_config(&dir, &config).await;
    receiver = Receiver::start(receiver.port, Arc::clone(&got)).await;
    receiver.wait_for(8, "the push made before the restart").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let got = got.lock().expect("lock").clone();
    let seen: Vec<(String, String, String, Option<String>)> = got
        .iter()
        .map(|r| {
            let d = &r.body["detail"];
            (
                d["repository-name"].as_str().unwrap_or("").to_owned(),
                d["action-type"]
                    .as_str()
                    .or(d["scan-status"].as_str().map(|_| "SCAN"))
                    .unwrap_or("")
                    .to_owned(),
                d["image-digest"].as_str().unwrap_or("").to_owned(),
                d["image-tag"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let push =
        |r: &str, d: &str, t: &str| (r.to_owned(), "PUSH".to_owned(), d.to_owned(), Some(t.to_owned()));
    assert_eq!(
        seen,
        vec![
            push("events/app", &v1, "v1"),
            push("events/app", &v2, "v2"),
            push("events/other", &o1, "v1"),
            ("events/app".to_owned(), "DELETE".to_owned(), v1.clone(), None),
            ("events/app".to_owned(), "SCAN".to_owned(), v2.clone(), None),
            ("events/app".to_owned(), "UPDATE_STORAGE_CLASS".to_owned(), v2.clone(), None),
            push("events/app", &v3, "v3"),
            push("events/app", &v4, "v4"),
        ],
        "each push, deletion, scan and archive once, in order"
    );
    let scan = &got[4].body;
    assert_eq!(scan["detail-type"], "ECR Image Scan", "{scan}");
    assert!(
        scan["detail"]["scan-status"].is_string() && scan["detail"]["finding-severity-counts"].is_object(),
        "{scan}"
    );
    assert_eq!(got[5].body["detail"]["target-storage-class"], "ARCHIVE");
    let ids: Vec<i64> = got.iter().map(|r| r.id.parse().expect("numeric event id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "no repeat, in order: {ids:?}");
    for received in &got {
        let body = received.body.to_string();
        assert_eq!(received.signature, hmac_hex(secret.as_bytes(), body.as_bytes()), "signature of {body}");
        assert_eq!(received.body["source"], "aws.ecr");
        assert_eq!(received.body["account"], ACCOUNT);
    }

    // The operator sees the same stream, and that the webhook is caught up.
    let out = std::process::Command::new(berth_binary())
        .args(["events", "tail", "--output", "json", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .expect("events tail");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tailed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        tailed.iter().map(|e| e["detail"].clone()).collect::<Vec<_>>(),
        got.iter().map(|r| r.body["detail"].clone()).collect::<Vec<_>>()
    );
    let status = std::process::Command::new(berth_binary())
        .args(["events", "status", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .expect("events status");
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["webhooks"][0]["behind"], 0, "{status}");
    drop(berth);
}
