//! The vulnerability database kept current from feeds (OSV zips at HTTP addresses): a download
//! replaces a feed's advisories at once, an unchanged feed is not downloaded again, a failed
//! or hostile download changes nothing, and the server checks its feeds on its own.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Berth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the feed's server answers next.
#[derive(Clone)]
enum Answer {
    /// A zip with this ETag; 304 when the request names it.
    Zip {
        body: Vec<u8>,
        etag: &'static str,
    },
    /// The head of a response whose body breaks off after `sent` of its `length` bytes.
    BrokenOff {
        length: usize,
        sent: Vec<u8>,
    },
    Status(u16),
    Html,
}

/// A feed's HTTP server: answers every GET with the current `Answer`, and keeps the
/// `If-None-Match` header of each request.
struct FeedServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl FeedServer {
    async fn start(first: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/Debian/all.zip", listener.local_addr().expect("address"));
        let answer = Arc::new(Mutex::new(first));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (answer_, seen_) = (Arc::clone(&answer), Arc::clone(&seen));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (answer, seen) = (Arc::clone(&answer_), Arc::clone(&seen_));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let if_none_match = head
                        .lines()
                        .find_map(|l| l.strip_prefix("if-none-match:"))
                        .map(|v| v.trim().to_owned());
                    seen.lock().expect("lock").push(if_none_match.clone());
                    let current = answer.lock().expect("lock").clone();
                    let response = match current {
                        Answer::Zip { etag, .. } if if_none_match.as_deref() == Some(etag) => {
                            format!("HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n")
                                .into_bytes()
                        }
                        Answer::Zip { body, etag } => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\netag: {etag}\r\n\
                                 last-modified: Thu, 03 Dec 2026 10:00:00 GMT\r\ncontent-length: {}\r\n\
                                 connection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                        Answer::BrokenOff { length, sent } => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
                            )
                            .into_bytes();
                            r.extend_from_slice(&sent);
                            r
                        }
                        Answer::Status(code) => format!(
                            "HTTP/1.1 {code} Trouble\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .into_bytes(),
                        Answer::Html => {
                            let body = "<html>maintenance</html>";
                            format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                                 connection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .into_bytes()
                        }
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, answer, seen }
    }

    fn answer(&self, next: Answer) {
        *self.answer.lock().expect("lock") = next;
    }

    fn requests(&self) -> Vec<Option<String>> {
        self.seen.lock().expect("lock").clone()
    }
}

/// An environment variable the command runs with.
type Env = (&'static str, &'static str);

/// An OSV zip in osv.dev's layout: one `<id>.json` per record.
fn osv_zip(ids: &[&str]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for id in ids {
        zip.start_file(format!("{id}.json"), zip::write::SimpleFileOptions::default()).expect("member");
        let record = serde_json::json!({
            "id": id, "modified": "2026-12-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.15-1"}]}]}]
        });
        zip.write_all(record.to_string().as_bytes()).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

/// The line `vulndb status` prints for the feed's advisories: its record count.
fn feed_records(berth: &Berth, url: &str) -> Option<u64> {
    let status = berth.command(&["vulndb", "status"]);
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(url)?.strip_prefix('\t')?;
        rest.split(' ').next()?.parse().ok()
    })
}

fn feed_line(berth: &Berth, url: &str) -> String {
    let status = berth.command(&["vulndb", "status"]);
    status.lines().find(|l| l.starts_with(&format!("feed {url}"))).unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_replaces_its_advisories_only_when_it_changed_and_keeps_them_when_a_download_fails() {
    let berth = Berth::start().await;
    let feed =
        FeedServer::start(Answer::Zip { body: osv_zip(&["DSA-1", "DSA-2", "DSA-3"]), etag: "\"one\"" }).await;
    let url = feed.url.clone();

    let (ok, out, err) = berth.try_command(&["vulndb", "update", &url], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("{url}: 3 records")), "{out}");
    assert_eq!(feed_records(&berth, &url), Some(3));
    assert!(feed_line(&berth, &url).contains("(ok)"), "{}", feed_line(&berth, &url));

    // Unchanged: the request names the last download's ETag and nothing is downloaded.
    let (ok, out, _) = berth.try_command(&["vulndb", "update", &url], &[]);
    assert!(ok && out.contains("unchanged since the last download"), "{out}");
    assert_eq!(feed.requests(), vec![None, Some("\"one\"".to_owned())]);

    // Changed upstream: DSA-1 withdrawn from the feed, DSA-4 added.
    feed.answer(Answer::Zip { body: osv_zip(&["DSA-2", "DSA-3", "DSA-4"]), etag: "\"two\"" });
    let (ok, out, err) = berth.try_command(&["vulndb", "update", &url], &[]);
    assert!(ok && out.contains(&format!("{url}: 3 records")), "{out}{err}");
    feed.answer(Answer::Zip { body: osv_zip(&["DSA-4"]), etag: "\"three\"" });
    let (ok, out, err) = berth.try_command(&["vulndb", "update", &url], &[]);
    assert!(ok && out.contains(&format!("{url}: 1 records")), "{out}{err}");
    assert_eq!(feed_records(&berth, &url), Some(1), "advisories the feed no longer lists are gone");

    // Whatever goes wrong, the advisories stay as they were and the command says why.
    let whole = osv_zip(&["DSA-5", "DSA-6"]);
    let failures: Vec<(Answer, &[Env], &str)> = vec![
        (
            Answer::BrokenOff { length: whole.len(), sent: whole[..whole.len() / 2].to_vec() },
            &[],
            "broke off",
        ),
        (Answer::Status(503), &[], "answered 503"),
        (Answer::Html, &[], "did not answer an OSV zip"),
        (Answer::Zip { body: osv_zip(&[]), etag: "\"empty\"" }, &[], "no OSV records"),
        (
            Answer::Zip { body: whole.clone(), etag: "\"big\"" },
            &[("BERTH_VULNDB_MAX_DOWNLOAD_BYTES", "100")],
            "vulndb.max_download_bytes",
        ),
    ];
    for (answer, env, why) in failures {
        feed.answer(answer);
        let (ok, out, err) = berth.try_command(&["vulndb", "update", &url], env);
        assert!(!ok, "a failed download is a failed command: {out}");
        assert!(err.contains(why) && err.contains("the feed's advisories are kept"), "{why}: {err}");
        assert_eq!(feed_records(&berth, &url), Some(1), "{why}: the advisories changed");
        assert!(feed_line(&berth, &url).contains("failed:"), "{why}: {}", feed_line(&berth, &url));
    }
    let scratch = berth.data_dir().join("vulndb-downloads");
    let left: Vec<_> = std::fs::read_dir(&scratch).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "downloads left behind: {left:?}");

    // A feed named wrongly is refused before anything is fetched.
    let (ok, _, err) = berth.try_command(&["vulndb", "update", "ftp://example.com/all.zip"], &[]);
    assert!(!ok && err.contains("http:// or https://"), "{err}");
    let (ok, _, err) = berth.try_command(&["vulndb", "update"], &[]);
    assert!(!ok && err.contains("vulndb.feeds"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checks_its_feeds_on_its_own() {
    let feed = FeedServer::start(Answer::Zip { body: osv_zip(&["DSA-10", "DSA-11"]), etag: "\"a\"" }).await;
    let berth = Berth::start_with(&[
        ("BERTH_VULNDB_FEEDS", feed.url.as_str()),
        ("BERTH_VULNDB_UPDATE_INTERVAL_SECONDS", "1"),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while feed_records(&berth, &feed.url) != Some(2) {
        assert!(Instant::now() < deadline, "the server never downloaded its feed: {:?}", feed.requests());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And again on its interval, with the download's ETag: unchanged, nothing is read.
    while feed.requests().len() < 3 {
        assert!(Instant::now() < deadline, "the server checked its feed only once");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(feed.requests()[1..3], [Some("\"a\"".to_owned()), Some("\"a\"".to_owned())]);
    assert_eq!(feed_records(&berth, &feed.url), Some(2));
}
