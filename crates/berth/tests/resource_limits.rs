//! What clients can make the server hold: memory for bodies of requests it has not
//! authenticated, connections that send nothing, upload sessions, and the one metadata writer
//! that one tenant must not monopolise. Each test replays the attack against the real binary
//! and prints what it measured; timings are printed, never asserted.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

const MIB: usize = 1024 * 1024;

/// The server's peak resident memory so far (VmHWM), in bytes.
fn peak_rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kib: usize = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("number");
    kib * 1024
}

/// How the server met a flooding request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Met {
    /// It answered with this status.
    Answered(u16),
    /// It closed the connection while the client was still sending, and the reset it sent
    /// overtook its answer (a server that stops reading a body cannot prevent that).
    Reset,
    /// No answer within 30 seconds.
    Silent,
}

/// Sends `head` and then up to `body` bytes of zeros while reading the answer.
async fn flood_request(port: u16, head: String, body: usize) -> Met {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else { return Met::Reset };
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < body {
            let n = chunk.len().min(body - sent);
            writer.write_all(&chunk[..n]).await?;
            sent += n;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    sender.abort();
    match read {
        Err(_) => Met::Silent,
        Ok(false) => Met::Reset,
        Ok(true) => {
            let line = String::from_utf8_lossy(&answer);
            line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).map_or(Met::Reset, Met::Answered)
        }
    }
}

fn ecr_head(port: u16, operation: &str, authorization: Option<&str>, extra: &str, length: usize) -> String {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{operation}\r\n{auth}{extra}Content-Length: {length}\r\n\r\n"
    )
}

/// SigV4 headers for an UploadLayerPart by `key`, signed over an empty body: whatever body
/// follows, the signature cannot verify.
fn signed_over_nothing(port: u16, key: &str, secret: &str) -> (String, String) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let host = format!("127.0.0.1:{port}");
    let target = "AmazonEC2ContainerRegistry_V20150921.UploadLayerPart";
    let headers =
        [("content-type", "application/x-amz-json-1.1"), ("host", host.as_str()), ("x-amz-target", target)];
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecr")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = format!("http://{host}/");
    let signable = SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(b""))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut authorization = String::new();
    let mut date = String::new();
    for (name, value) in instructions.headers() {
        match name {
            "authorization" => authorization = value.to_owned(),
            "x-amz-date" => date = format!("X-Amz-Date: {value}\r\n"),
            _ => {}
        }
    }
    (authorization, date)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_of_unauthenticated_requests_are_never_read() {
    let berth = Berth::start().await;
    let pid = berth.pid().expect("running");
    let port = berth.port;
    let before = peak_rss(pid);
    let (bogus, date) = signed_over_nothing(port, "AKIANOSUCHKEY0000000", "not-a-secret-of-anything");
    let mut requests = JoinSet::new();
    for _ in 0..64 {
        // The largest ECR request, without any Authorization header.
        requests.spawn(flood_request(port, ecr_head(port, "UploadLayerPart", None, "", 32 * MIB), 32 * MIB));
        // The same from a key that does not exist.
        let head = ecr_head(port, "UploadLayerPart", Some(&bogus), &date, 32 * MIB);
        requests.spawn(flood_request(port, head, 32 * MIB));
        // An anonymous manifest push of the largest size.
        let head = format!(
            "PUT /v2/{ACCOUNT}/flood/app/manifests/v1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: {OCI_MANIFEST}\r\nContent-Length: {}\r\n\r\n",
            4 * MIB
        );
        requests.spawn(flood_request(port, head, 4 * MIB));
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = requests.join_next().await {
        *statuses.entry(status.expect("task")).or_insert(0) += 1;
    }
    let peak = peak_rss(pid);
    println!(
        "pre-authentication flood: 192 connections offering {} MiB; answers {statuses:?}; peak RSS {:.1} MiB \
         (before: {:.1} MiB)",
        64 * (32 + 32 + 4),
        peak as f64 / MIB as f64,
        before as f64 / MIB as f64
    );
    assert!(
        statuses.keys().all(|met| matches!(met, Met::Answered(400..=499))),
        "every request is refused with a 4xx as soon as its headers are in: {statuses:?}"
    );
    assert!(peak < 100 * MIB, "peak RSS {peak} bytes");
    assert_eq!(berth.get_manifest(&repo("none/here"), "v1").await.status(), 404, "the server still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_of_a_known_key_are_held_within_the_budget() {
    // A key id is not a secret: a client that names a real one gets its body read before the
    // signature can be checked. The shared budget bounds what all such bodies hold.
    let berth = Berth::start_with(&[("BERTH_LIMITS_MAX_BUFFERED_BODY_BYTES", "16777216")]).await;
    let pid = berth.pid().expect("running");
    let port = berth.port;
    let (key, _) = berth.owner_credentials();
    let (authorization, date) = signed_over_nothing(port, &key, "not-the-owners-secret");
    let mut requests = JoinSet::new();
    for _ in 0..64 {
        let head = ecr_head(port, "UploadLayerPart", Some(&authorization), &date, 13 * MIB);
        requests.spawn(flood_request(port, head, 13 * MIB));
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(status) = requests.join_next().await {
        *statuses.entry(status.expect("task")).or_insert(0) += 1;
    }
    let peak = peak_rss(pid);
    println!(
        "64 bodies of 13 MiB from a known key under a 16 MiB budget: answers {statuses:?}; peak RSS {:.1} MiB",
        peak as f64 / MIB as f64
    );
    assert!(
        statuses.keys().all(|met| matches!(met, Met::Answered(400) | Met::Reset)),
        "refused (bad signature, or throttled while still sending): {statuses:?}"
    );
    assert!(peak < 100 * MIB, "peak RSS {peak} bytes");
}

/// Seconds until the server closes a connection that did `act` and then fell silent.
async fn seconds_until_closed(mut stream: TcpStream) -> f64 {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return start.elapsed().as_secs_f64(),
            Ok(Ok(_)) => continue,
            Err(_) => return f64::INFINITY,
        }
    }
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_after_their_timeouts() {
    let berth = Berth::start_with(&[
        ("BERTH_TIMEOUTS_REQUEST_HEAD_SECONDS", "2"),
        ("BERTH_TIMEOUTS_BODY_IDLE_SECONDS", "2"),
    ])
    .await;
    let port = berth.port;
    let connect = || TcpStream::connect(("127.0.0.1", port));

    let silent = connect().await.expect("connect");
    let mut partial_head = connect().await.expect("connect");
    partial_head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let mut idle = connect().await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).await.expect("read");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"), "the request is served");

    // A chunk that stops after 10 of its 1,000 bytes: the upload keeps what arrived.
    let r = repo("slow/app");
    let begun = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(begun.status(), 202);
    let location = begun.headers()["location"].to_str().expect("location").to_owned();
    let path = location.strip_prefix(&berth.url).unwrap_or(&location).to_owned();
    let auth =
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("AWS:{}", berth.password));
    let mut partial_body = connect().await.expect("connect");
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789"
    );
    partial_body.write_all(head.as_bytes()).await.expect("write");

    let (silent, partial_head, idle, partial_body) = tokio::join!(
        seconds_until_closed(silent),
        seconds_until_closed(partial_head),
        seconds_until_closed(idle),
        seconds_until_closed(partial_body),
    );
    println!(
        "closed after: silent {silent:.1} s, partial head {partial_head:.1} s, idle keep-alive {idle:.1} s, \
         partial body {partial_body:.1} s (timeouts 2 s)"
    );
    for (what, seconds) in
        [("silent", silent), ("partial head", partial_head), ("idle", idle), ("partial body", partial_body)]
    {
        assert!((1.5..10.0).contains(&seconds), "{what} connection closed after {seconds} s");
    }
    let status = berth.req(Method::GET, &path).send().await.expect("send");
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-9", "the upload kept what arrived and can resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_silent_connections_leave_room_for_everyone_else() {
    // The service manager's usual soft limit: 1,024 files. The server raises it as far as the
    // hard limit allows; the client side needs room for its own sockets too.
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("limit").1;
    if hard < 4096 {
        skip(
            "two_thousand_silent_connections_leave_room_for_everyone_else",
            &format!("the hard open-file limit here is {hard}, below the 4,096 the test needs"),
        );
        return;
    }
    rlimit::increase_nofile_limit(4096).expect("raise the test's own limit");
    let berth = Berth::start_with_file_limit(1024).await;
    let r = repo("crowd/app");
    berth.push_image(&r, "v1", br#"{"crowd":1}"#, b"crowd layer").await;
    let mut silent = Vec::with_capacity(2000);
    for _ in 0..2000 {
        silent.push(TcpStream::connect(("127.0.0.1", berth.port)).await.expect("connect"));
    }
    let start = Instant::now();
    let health =
        tokio::time::timeout(Duration::from_secs(5), berth.anon(Method::GET, "/healthz").send()).await;
    let health_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let pulled = tokio::time::timeout(Duration::from_secs(5), berth.get_manifest(&r, "v1")).await;
    let layer = sha256(b"crowd layer");
    let blob = tokio::time::timeout(
        Duration::from_secs(5),
        berth.req(Method::GET, &format!("/v2/{r}/blobs/{layer}")).send(),
    )
    .await;
    println!(
        "with 2,000 silent connections open: /healthz in {health_seconds:.3} s, a pull in {:.3} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(health.expect("/healthz answers").expect("send").status(), 200);
    assert_eq!(pulled.expect("the manifest answers").status(), 200);
    assert_eq!(blob.expect("the blob answers").expect("send").status(), 200);
    drop(silent);
}

#[tokio::test]
async fn open_uploads_are_capped_per_account() {
    let berth = Berth::start().await;
    let r = repo("uploads/app");
    let start = |password: &str, r: &str| {
        berth.req_with(password, Method::POST, &format!("/v2/{r}/blobs/uploads/")).send()
    };
    let mut first = None;
    for n in 0..1000 {
        let begun = start(&berth.password, &r).await.expect("send");
        assert_eq!(begun.status(), 202, "upload {n} of the 1,000 an account may hold");
        if first.is_none() {
            first = Some(begun.headers()["location"].to_str().expect("location").to_owned());
        }
    }
    let refused = start(&berth.password, &r).await.expect("send");
    assert_eq!(refused.status(), 429);
    assert_eq!(error_code(refused).await, "TOOMANYREQUESTS");
    let (status, out) = berth.ecr("InitiateLayerUpload", json!({"repositoryName": "uploads/app"})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("LimitExceededException")), "{out}");
    assert!(out["message"].as_str().is_some_and(|m| m.contains("1000")), "{out}");

    // Another account is not affected, and a cancelled upload frees its place.
    let (key, secret) = berth.account_with_key("111111111111");
    let other = berth.password_for(&key, &secret).await;
    assert_eq!(start(&other, "111111111111/uploads/app").await.expect("send").status(), 202);
    let first = first.expect("an upload");
    let path = first.strip_prefix(&berth.url).unwrap_or(&first);
    assert_eq!(berth.req(Method::DELETE, path).send().await.expect("send").status(), 204);
    assert_eq!(start(&berth.password, &r).await.expect("send").status(), 202);
}

/// Latencies in milliseconds: (p50, p99, max).
fn percentiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_tenants_largest_manifests_do_not_stall_another_tenants_pushes() {
    let berth = Berth::start().await;
    let noisy = repo("noisy/app");
    let config = br#"{"noisy":1}"#;
    let config_digest = berth.push_blob(&noisy, config).await;
    let layer_digest = berth.push_blob(&noisy, b"noisy layer").await;
    // The largest manifest berth accepts, filled with an annotation, different on every push.
    let largest = |n: usize| {
        let base = image_manifest_bytes(&config_digest, config.len(), &layer_digest, 11, "");
        let room = berth_core::MAX_MANIFEST_BYTES - base.len() - 64;
        let pad = format!("{n:08}{}", "x".repeat(room - 8));
        image_manifest_bytes(
            &config_digest,
            config.len(),
            &layer_digest,
            11,
            &format!(r#","annotations":{{"pad":"{pad}"}}"#),
        )
    };
    // And one naming 30,000 layers it does not hold, refused.
    let many: Vec<String> = (0..30_000)
        .map(|n| format!(r#"{{"mediaType":"l","digest":"{}","size":1}}"#, sha256(format!("{n}").as_bytes())))
        .collect();
    let crowded = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        many.join(",")
    )
    .into_bytes();

    let (key, secret) = berth.account_with_key("111111111111");
    let quiet_password = berth.password_for(&key, &secret).await;
    let quiet = "111111111111/quiet/app";
    let quiet_config = br#"{"quiet":1}"#;
    for (bytes, _) in [(&quiet_config[..], ()), (&b"quiet layer"[..], ())] {
        let digest = sha256(bytes);
        let pushed = berth
            .req_with(&quiet_password, Method::POST, &format!("/v2/{quiet}/blobs/uploads/?digest={digest}"))
            .body(bytes.to_vec())
            .send()
            .await
            .expect("send");
        assert_eq!(pushed.status(), 201);
    }
    let quiet_manifest =
        image_manifest_bytes(&sha256(quiet_config), quiet_config.len(), &sha256(b"quiet layer"), 11, "");

    let run_for = Duration::from_secs(10);
    let deadline = Instant::now() + run_for;
    let mut noisy_tasks = JoinSet::new();
    for worker in 0..16 {
        let client = berth.client.clone();
        let (url, password) = (berth.url.clone(), berth.password.clone());
        let (noisy, crowded) = (noisy.clone(), crowded.clone());
        let bodies: Vec<Vec<u8>> = (0..4).map(|i| largest(worker * 1000 + i)).collect();
        noisy_tasks.spawn(async move {
            let mut outcomes = (0usize, 0usize, Vec::new());
            let mut n = 0;
            while Instant::now() < deadline {
                let (body, tag, expect) = if n % 2 == 0 {
                    (bodies[(n / 2) % bodies.len()].clone(), format!("w{worker}-{n}"), 201)
                } else {
                    (crowded.clone(), format!("crowded-{worker}"), 400)
                };
                let response = client
                    .put(format!("{url}/v2/{noisy}/manifests/{tag}"))
                    .basic_auth("AWS", Some(&password))
                    .header("content-type", OCI_MANIFEST)
                    .body(body)
                    .send()
                    .await;
                match response.map(|r| r.status().as_u16()) {
                    Ok(status) if status == expect => outcomes.0 += 1,
                    other => outcomes.2.push(format!("{other:?} for {tag}")),
                }
                outcomes.1 += 1;
                n += 1;
            }
            outcomes
        });
    }
    let (mut starts, mut puts, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0;
    while Instant::now() < deadline {
        let t = Instant::now();
        let begun = berth
            .req_with(&quiet_password, Method::POST, &format!("/v2/{quiet}/blobs/uploads/"))
            .send()
            .await;
        starts.push(t.elapsed().as_secs_f64() * 1000.0);
        match begun {
            Ok(r) if r.status() == 202 => {
                let location = r.headers()["location"].to_str().expect("location").to_owned();
                let path = location.strip_prefix(&berth.url).unwrap_or(&location).to_owned();
                let cancelled = berth.req_with(&quiet_password, Method::DELETE, &path).send().await;
                if cancelled.map(|r| r.status().as_u16()).ok() != Some(204) {
                    failures.push("cancel".to_owned());
                }
            }
            other => failures.push(format!("upload start: {:?}", other.map(|r| r.status()))),
        }
        let t = Instant::now();
        let put = berth
            .req_with(&quiet_password, Method::PUT, &format!("/v2/{quiet}/manifests/q{n}"))
            .header("content-type", OCI_MANIFEST)
            .body(quiet_manifest.clone())
            .send()
            .await;
        puts.push(t.elapsed().as_secs_f64() * 1000.0);
        if put.map(|r| r.status().as_u16()).ok() != Some(201) {
            failures.push(format!("manifest put q{n}"));
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut noisy_ok, mut noisy_total, mut noisy_failures) = (0, 0, Vec::new());
    while let Some(outcome) = noisy_tasks.join_next().await {
        let (ok, total, bad) = outcome.expect("task");
        (noisy_ok, noisy_total) = (noisy_ok + ok, noisy_total + total);
        noisy_failures.extend(bad);
    }
    let (s50, s99, smax) = percentiles(starts.clone());
    let (p50, p99, pmax) = percentiles(puts.clone());
    println!(
        "noisy neighbour: 16 connections pushed {noisy_total} manifests of 4 MiB (stored) and 3.3 MB with 30,000 \
         layers (refused) for {} s; meanwhile the other account's upload start p50 {s50:.1} ms, p99 {s99:.1} ms, \
         max {smax:.1} ms ({} samples) and manifest PUT p50 {p50:.1} ms, p99 {p99:.1} ms, max {pmax:.1} ms",
        run_for.as_secs(),
        starts.len()
    );
    assert!(failures.is_empty(), "the quiet account's requests failed: {failures:?}");
    assert!(noisy_failures.is_empty(), "unexpected answers to the noisy account: {noisy_failures:?}");
    assert_eq!(noisy_ok, noisy_total);
    assert!(starts.len() >= 10, "the quiet account got {} requests through", starts.len());
}
