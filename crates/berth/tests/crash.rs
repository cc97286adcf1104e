//! `kill -9` during a storm of concurrent pushes: after a restart every push that got its 201
//! is intact and digest-verified, and nothing partial is served.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;

/// Pushes in flight at once.
const PUSHERS: usize = 24;
/// Crash rounds, each killing the server at a different moment of the storm.
const ROUNDS: usize = 3;

#[derive(Default)]
struct Ledger {
    /// Blobs whose upload got 201: repository, digest, bytes.
    blobs: Vec<(String, String, Vec<u8>)>,
    /// Blobs whose upload was in flight when the server died.
    in_flight: Vec<(String, String, Vec<u8>)>,
    /// Manifests whose PUT got 201: repository, tag, digest.
    manifests: Vec<(String, String, String)>,
}

/// A small deterministic generator, so a failing round can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One pusher: blobs by the three upload styles, then a manifest, until the server dies.
async fn pusher(berth: Arc<BerthHandle>, worker: usize, seed: u64, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let repository = repo(&format!("crash/w{worker}"));
    for round in 0.. {
        let config = format!(r#"{{"os":"linux","worker":{worker},"round":{round}}}"#).into_bytes();
        let len = 4 * 1024 + (rng.next() % (1536 * 1024)) as usize;
        let layer = rng.bytes(len);
        let mut digests = Vec::new();
        for (i, bytes) in [config.clone(), layer.clone()].into_iter().enumerate() {
            let digest = sha256(&bytes);
            ledger.lock().expect("ledger").in_flight.push((
                repository.clone(),
                digest.clone(),
                bytes.clone(),
            ));
            let style = (round + i + worker) % 3;
            let acknowledged = upload(&berth, &repository, &digest, &bytes, style).await;
            let mut l = ledger.lock().expect("ledger");
            l.in_flight.retain(|(_, d, _)| d != &digest);
            if !acknowledged {
                // The connection died: we cannot know whether the commit happened.
                l.in_flight.push((repository.clone(), digest.clone(), bytes));
                return;
            }
            l.blobs.push((repository.clone(), digest.clone(), bytes));
            digests.push((digest, [config.len(), layer.len()][i]));
        }
        let manifest = image_manifest_bytes(&digests[0].0, digests[0].1, &digests[1].0, digests[1].1, "");
        let tag = format!("r{round}");
        let sent = berth
            .client
            .request(Method::PUT, format!("{}/v2/{repository}/manifests/{tag}", berth.url))
            .basic_auth("AWS", Some(&berth.password))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 201 => {
                ledger.lock().expect("ledger").manifests.push((repository.clone(), tag, sha256(&manifest)))
            }
            Ok(r) => panic!("manifest push refused: {} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(_) => return,
        }
    }
}

/// Connection details shared by the pushers.
struct BerthHandle {
    url: String,
    password: String,
    client: reqwest::Client,
}

/// What became of a request: an answer, or no answer because the server died under it.
/// Only a failed transport means the server died; every answer is held to what it must be.
async fn sent(request: reqwest::RequestBuilder) -> Option<reqwest::Response> {
    request.send().await.ok()
}

/// Requires `status` of an answer and returns its `Location`; anything else fails the test.
async fn located(response: reqwest::Response, status: u16, what: &str) -> String {
    let got = response.status().as_u16();
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
    match location {
        Some(location) if got == status => location,
        _ => panic!(
            "{what}: expected {status} with a Location, got {got}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// Uploads a blob: `true` once it is acknowledged with 201, `false` if the server died first.
/// A server that answers anything but what the protocol promises fails the test.
async fn upload(berth: &BerthHandle, repository: &str, digest: &str, bytes: &[u8], style: usize) -> bool {
    let auth = |b: reqwest::RequestBuilder| b.basic_auth("AWS", Some(&berth.password));
    let base = &berth.url;
    let start_upload = || auth(berth.client.post(format!("{base}/v2/{repository}/blobs/uploads/")));
    let finished = match style {
        // Monolithic POST ?digest=.
        0 => {
            sent(
                auth(berth.client.post(format!("{base}/v2/{repository}/blobs/uploads/?digest={digest}")))
                    .body(bytes.to_vec()),
            )
            .await
        }
        // POST, one streamed PATCH, PUT (what docker does).
        1 => {
            let Some(start) = sent(start_upload()).await else { return false };
            let location = located(start, 202, "upload start").await;
            let Some(patch) =
                sent(auth(berth.client.patch(format!("{base}{location}"))).body(bytes.to_vec())).await
            else {
                return false;
            };
            let location = located(patch, 202, "PATCH").await;
            sent(auth(berth.client.put(format!("{base}{location}?digest={digest}")))).await
        }
        // POST, two chunks with Content-Range, PUT.
        _ => {
            let Some(start) = sent(start_upload()).await else { return false };
            let mut location = located(start, 202, "upload start").await;
            let cut = bytes.len() / 3;
            for (from, to) in [(0, cut), (cut, bytes.len())] {
                let chunk = auth(berth.client.patch(format!("{base}{location}")))
                    .header("content-range", format!("{from}-{}", to - 1))
                    .body(bytes[from..to].to_vec());
                let Some(patch) = sent(chunk).await else { return false };
                location = located(patch, 202, "chunk").await;
            }
            sent(auth(berth.client.put(format!("{base}{location}?digest={digest}")))).await
        }
    };
    match finished {
        None => false,
        Some(response) if response.status() == 201 => true,
        Some(response) => panic!(
            "the server refused a valid upload of {digest}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_pushes_survive_kill_9() {
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
            | 1;
    println!("crash test seed: {seed}");
    let mut berth = Berth::start().await;
    let temp = berth.take_temp().expect("temp dir");
    let dir = berth.data_dir().to_owned();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut totals = (0, 0, 0);

    for round in 0..ROUNDS {
        let handle = Arc::new(BerthHandle {
            url: berth.url.clone(),
            password: berth.password.clone(),
            client: berth.client.clone(),
        });
        let tasks: Vec<_> = (0..PUSHERS)
            .map(|w| tokio::spawn(pusher(handle.clone(), w + round * PUSHERS, seed, ledger.clone())))
            .collect();
        // Let the storm build, then crash at a moment that differs per round.
        let storm = Duration::from_millis(700 + 450 * round as u64 + seed % 300);
        let started = Instant::now();
        while started.elapsed() < storm {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        berth.kill9();
        for task in tasks {
            task.await.expect("pusher did not panic");
        }
        berth = Berth::spawn(&dir).await;
        let l = std::mem::take(&mut *ledger.lock().expect("ledger"));
        verify(&berth, &l).await;
        println!(
            "round {round}: {} blobs and {} manifests acknowledged and intact, {} uploads in flight at the kill",
            l.blobs.len(),
            l.manifests.len(),
            l.in_flight.len()
        );
        totals = (totals.0 + l.blobs.len(), totals.1 + l.manifests.len(), totals.2 + l.in_flight.len());
    }
    println!(
        "crash test: {} acknowledged blobs, {} acknowledged manifests, {} in-flight uploads over {ROUNDS} kills",
        totals.0, totals.1, totals.2
    );
    assert!(totals.0 >= 20 && totals.1 >= 5, "the storm pushed too little to test anything: {totals:?}");
    drop(berth);
    drop(temp);
}

async fn verify(berth: &Berth, ledger: &Ledger) {
    for (repository, digest, bytes) in &ledger.blobs {
        let r =
            berth.req(Method::GET, &format!("/v2/{repository}/blobs/{digest}")).send().await.expect("send");
        assert_eq!(r.status(), 200, "acknowledged blob {digest} in {repository} is gone");
        let body = r.bytes().await.expect("body");
        assert_eq!(sha256(&body), *digest, "acknowledged blob {digest} is corrupt");
        assert_eq!(body.len(), bytes.len());
    }
    for (repository, digest, bytes) in &ledger.in_flight {
        // Either never committed, or committed whole; never partial.
        let r =
            berth.req(Method::GET, &format!("/v2/{repository}/blobs/{digest}")).send().await.expect("send");
        match r.status().as_u16() {
            404 => {}
            200 => {
                assert_eq!(r.bytes().await.expect("body").as_ref(), bytes.as_slice(), "partial blob served")
            }
            other => panic!("in-flight blob {digest} answered {other}"),
        }
    }
    for (repository, tag, digest) in &ledger.manifests {
        let r = berth
            .req(Method::GET, &format!("/v2/{repository}/manifests/{tag}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "acknowledged manifest {repository}:{tag} is gone");
        let body = r.bytes().await.expect("body");
        assert_eq!(sha256(&body), *digest, "manifest {repository}:{tag} changed");
    }
    // No tag anywhere points at nothing, and every manifest's blobs are there.
    let repositories: std::collections::BTreeSet<&String> = ledger.blobs.iter().map(|(r, _, _)| r).collect();
    for repository in repositories {
        let listed =
            berth.req(Method::GET, &format!("/v2/{repository}/tags/list")).send().await.expect("send");
        let status = listed.status().as_u16();
        let list: serde_json::Value = listed.json_or_null().await;
        let tags: Vec<&str> =
            list["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
        let acknowledged = ledger.manifests.iter().filter(|(r, _, _)| r == repository).count();
        if acknowledged > 0 {
            assert_eq!(status, 200, "tags of {repository}: {list}");
            assert!(
                tags.len() >= acknowledged,
                "{repository} lists {} tags for {acknowledged} acknowledged manifests",
                tags.len()
            );
        } else {
            // Blobs without a manifest: the repository may hold no tag, but must answer.
            assert!(status == 200 || status == 404, "tags of {repository} answered {status}: {list}");
        }
        for tag in tags {
            let m = berth
                .req(Method::GET, &format!("/v2/{repository}/manifests/{tag}"))
                .header("accept", OCI_MANIFEST)
                .send()
                .await
                .expect("send");
            assert_eq!(m.status(), 200, "tag {repository}:{tag} points at nothing");
            let manifest: serde_json::Value = m.json_or_null().await;
            let referenced = std::iter::once(&manifest["config"])
                .chain(manifest["layers"].as_array().into_iter().flatten());
            for descriptor in referenced {
                let digest = descriptor["digest"].as_str().expect("digest");
                let b = berth
                    .req(Method::HEAD, &format!("/v2/{repository}/blobs/{digest}"))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(b.status(), 200, "{repository}:{tag} references missing blob {digest}");
            }
        }
    }
}
