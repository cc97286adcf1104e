//! Lifecycle policies end to end on a running server: the ECR operations, previews through the
//! API and the CLI, runs by hand and by the server's own scheduler, and garbage collection that
//! gives the space back without losing what a push was told is stored.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    ACCOUNT, Berth, OCI_INDEX, OCI_MANIFEST, image_manifest_bytes, random_bytes, sha256, stored_blobs,
};
use reqwest::Method;
use serde_json::{Value, json};

/// An RFC 3339 time `days` from now (to the second, rounded up so that it is never earlier).
fn days_ahead(days: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::seconds(1);
    at.replace_nanosecond(0)
        .expect("zero nanoseconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// The repository's images as (digest, sorted tags).
async fn images(berth: &Berth, name: &str) -> BTreeMap<String, Vec<String>> {
    let (status, out) =
        berth.ecr("DescribeImages", json!({"repositoryName": name, "maxResults": 1000})).await;
    assert_eq!(status, 200, "{out}");
    out["imageDetails"]
        .as_array()
        .expect("imageDetails")
        .iter()
        .map(|d| {
            let mut tags: Vec<String> = d["imageTags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            tags.sort();
            (d["imageDigest"].as_str().expect("digest").to_owned(), tags)
        })
        .collect()
}

async fn all_tags(berth: &Berth, name: &str) -> BTreeSet<String> {
    images(berth, name).await.into_values().flatten().collect()
}

fn rule(priority: u32, selection: Value) -> Value {
    json!({"rulePriority": priority, "description": format!("rule {priority}"), "selection": selection,
           "action": {"type": "expire"}})
}

async fn put_policy(berth: &Berth, name: &str, rules: Vec<Value>) -> String {
    let text = json!({ "rules": rules }).to_string();
    let (status, out) =
        berth.ecr("PutLifecyclePolicy", json!({"repositoryName": name, "lifecyclePolicyText": text})).await;
    assert_eq!(status, 200, "{out}");
    text
}

/// Pushes an image whose config is unique to `seed`, over `layer`, under `tag`.
async fn push(berth: &Berth, name: &str, tag: &str, seed: &str, layer: &[u8]) -> String {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    berth.push_image(&format!("{ACCOUNT}/{name}"), tag, config.as_bytes(), layer).await
}

#[tokio::test]
async fn a_custom_policy_keeps_the_last_30_prod_images() {
    let berth = Berth::start().await;
    let name = "lc/prod";
    for n in 1..=35 {
        push(&berth, name, &format!("prod-{n}"), &n.to_string(), b"shared layer").await;
        // Distinct push times, so that "oldest" has one answer.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    put_policy(
        &berth,
        name,
        vec![rule(
            1,
            json!({"tagStatus": "tagged", "tagPrefixList": ["prod-"], "countType": "imageCountMoreThan",
                   "countNumber": 30}),
        )],
    )
    .await;
    let repository = format!("{ACCOUNT}/{name}");
    let dry = berth.command(&["lifecycle", "run", "--repository", &repository, "--dry-run"]);
    assert!(dry.contains("would expire 5 and archive 0 of 35 images"), "{dry}");
    assert_eq!(all_tags(&berth, name).await.len(), 35, "a dry run changes nothing");
    let (_, policy) = berth.ecr("GetLifecyclePolicy", json!({"repositoryName": name})).await;
    assert!(policy.get("lastEvaluatedAt").is_none(), "a dry run is not an evaluation: {policy}");

    let run = berth.command(&["lifecycle", "run", "--repository", &repository]);
    assert!(run.contains("did expire 5 and archive 0 of 35 images"), "{run}");
    let expected: BTreeSet<String> = (6..=35).map(|n| format!("prod-{n}")).collect();
    assert_eq!(all_tags(&berth, name).await, expected, "exactly the 5 oldest expired");
    for n in 1..=5 {
        assert!(run.contains(&format!("prod-{n} ")), "the run names what it expired: {run}");
    }
    let pulled = berth.get_manifest(&repository, "prod-1").await;
    assert_eq!(pulled.status(), 404);
    let (_, policy) = berth.ecr("GetLifecyclePolicy", json!({"repositoryName": name})).await;
    let evaluated = policy["lastEvaluatedAt"].as_f64().expect("lastEvaluatedAt after a run");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!((now - evaluated).abs() < 120.0, "{policy}");
}

/// An image index of two platform images, tagged `tag`, with a signature referring to it.
async fn push_index_with_signature(berth: &Berth, name: &str, tag: &str) -> (String, Vec<String>, String) {
    let repository = format!("{ACCOUNT}/{name}");
    let mut children = Vec::new();
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
        let (manifest, digest) =
            berth.image_manifest(&repository, config.as_bytes(), format!("{arch} layer").as_bytes()).await;
        let r = berth.put_manifest(&repository, &digest, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201);
        entries.push(json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len(),
                            "platform": {"architecture": arch, "os": "linux"}}));
        children.push(digest);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).to_string();
    let r = berth.put_manifest(&repository, tag, OCI_INDEX, index.as_bytes()).await;
    assert_eq!(r.status(), 201);
    let index_digest = sha256(index.as_bytes());
    let empty = berth.push_blob(&repository, b"{}").await;
    let signature = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": index.len()},
    })
    .to_string();
    let signature_digest = sha256(signature.as_bytes());
    let r = berth.put_manifest(&repository, &signature_digest, OCI_MANIFEST, signature.as_bytes()).await;
    assert_eq!(r.status(), 201);
    (index_digest, children, signature_digest)
}

#[tokio::test]
async fn the_preview_says_why_and_the_api_answers_in_ecr_shapes() {
    let berth = Berth::start().await;
    let name = "lc/preview";
    let mut release = Vec::new();
    for n in 1..=4 {
        release.push(push(&berth, name, &format!("release-{n}"), &format!("r{n}"), b"layer").await);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // Re-tagging `dev` leaves the first image untagged.
    let untagged = push(&berth, name, "dev", "dev-1", b"layer").await;
    push(&berth, name, "dev", "dev-2", b"layer").await;
    let (index, children, signature) = push_index_with_signature(&berth, name, "multi").await;

    // Before any policy or preview, ECR's exceptions.
    let (status, out) = berth.ecr("StartLifecyclePolicyPreview", json!({"repositoryName": name})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("LifecyclePolicyNotFoundException")), "{out}");
    let (status, out) = berth.ecr("GetLifecyclePolicyPreview", json!({"repositoryName": name})).await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("LifecyclePolicyPreviewNotFoundException")),
        "{out}"
    );

    let policy = put_policy(
        &berth,
        name,
        vec![
            rule(1, json!({"tagStatus": "tagged", "tagPatternList": ["release*"], "countType": "imageCountMoreThan",
                           "countNumber": 2})),
            rule(2, json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                           "countNumber": 14})),
        ],
    )
    .await;
    let (status, out) = berth.ecr("StartLifecyclePolicyPreview", json!({"repositoryName": name})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        (out["status"].as_str(), out["lifecyclePolicyText"].as_str()),
        (Some("IN_PROGRESS"), Some(policy.as_str()))
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let preview = loop {
        let (status, out) = berth.ecr("GetLifecyclePolicyPreview", json!({"repositoryName": name})).await;
        assert_eq!(status, 200, "{out}");
        if out["status"] == "COMPLETE" {
            break out;
        }
        assert_eq!(out["status"], "IN_PROGRESS", "{out}");
        assert!(Instant::now() < deadline, "the preview did not complete: {out}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Today only the count rule acts: the two oldest release images.
    let results = preview["previewResults"].as_array().expect("previewResults");
    let acted: BTreeSet<&str> = results.iter().filter_map(|r| r["imageDigest"].as_str()).collect();
    assert_eq!(acted, BTreeSet::from([release[0].as_str(), release[1].as_str()]), "{preview}");
    for result in results {
        assert_eq!(result["action"], json!({"type": "EXPIRE"}), "{result}");
        assert_eq!(
            (result["appliedRulePriority"].as_u64(), result["storageClass"].as_str()),
            (Some(1), Some("STANDARD"))
        );
        assert!(result["imagePushedAt"].is_number() && result["imageTags"].is_array(), "{result}");
    }
    assert_eq!(preview["summary"]["expiringImageTotalCount"], 2, "{preview}");
    assert_eq!(preview["summary"]["transitioningImageTotalCounts"], json!([]));
    // Filters and pages.
    let (_, untagged_only) = berth
        .ecr(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": name, "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await;
    assert_eq!(untagged_only["previewResults"], json!([]), "{untagged_only}");
    assert_eq!(untagged_only["summary"]["expiringImageTotalCount"], 2, "the summary counts every result");
    let (_, by_tag) = berth
        .ecr(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": name, "imageIds": [{"imageTag": "release-2"}]}),
        )
        .await;
    assert_eq!(by_tag["previewResults"].as_array().map(Vec::len), Some(1), "{by_tag}");
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut input = json!({"repositoryName": name, "maxResults": 1});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let (status, page) = berth.ecr("GetLifecyclePolicyPreview", input).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["previewResults"].as_array().expect("results").iter().cloned());
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged.len(), 2, "one result per page, each once: {paged:?}");
    let (status, out) =
        berth.ecr("GetLifecyclePolicyPreview", json!({"repositoryName": name, "maxResults": 101})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")), "{out}");

    // The CLI's explanation 15 days ahead: the untagged image is now old enough; the index's
    // children are untagged and as old, but the index keeps them; the signature follows it.
    let explained = berth.command(&[
        "lifecycle",
        "preview",
        "--repository",
        &format!("{ACCOUNT}/{name}"),
        "--now",
        &days_ahead(15),
        "--output",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&explained).expect("JSON");
    let by_digest: BTreeMap<&str, &Value> = doc["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| (i["imageDigest"].as_str().expect("digest"), i))
        .collect();
    let verdict = |digest: &str| {
        let i = by_digest.get(digest).unwrap_or_else(|| panic!("{digest} not listed: {doc}"));
        (i["verdict"].as_str().unwrap_or(""), i["reason"]["kind"].as_str().unwrap_or(""))
    };
    assert_eq!(verdict(&untagged), ("expire", "age"));
    assert_eq!(verdict(&release[0]), ("expire", "rank"));
    assert_eq!(verdict(&release[3]), ("keep", "rank"));
    assert_eq!(verdict(&index), ("keep", "notSelected"));
    for child in &children {
        assert_eq!(verdict(child), ("keep", "listedByIndex"));
    }
    assert_eq!(verdict(&signature), ("keep", "followsSubject"));
    let table = berth.command(&[
        "lifecycle",
        "preview",
        "--repository",
        &format!("{ACCOUNT}/{name}"),
        "--now",
        &days_ahead(15),
    ]);
    assert!(
        table.contains("pushed 15 days ago: more than 14") && table.contains("3 of 10 images acted on"),
        "{table}"
    );
}

#[tokio::test]
async fn the_server_runs_every_policy_on_its_own() {
    let berth = Berth::start_with(&[("BERTH_LIFECYCLE_INTERVAL_SECONDS", "1")]).await;
    let name = "lc/scheduled";
    for n in 1..=3 {
        push(&berth, name, &format!("keep-{n}"), &n.to_string(), b"layer").await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    put_policy(
        &berth,
        name,
        vec![rule(
            1,
            json!({"tagStatus": "tagged", "tagPrefixList": ["keep-"], "countType": "imageCountMoreThan",
                            "countNumber": 1}),
        )],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, policy) = berth.ecr("GetLifecyclePolicy", json!({"repositoryName": name})).await;
        if policy.get("lastEvaluatedAt").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the scheduler never ran the policy: {policy}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(all_tags(&berth, name).await, BTreeSet::from(["keep-3".to_owned()]));
}

#[tokio::test]
async fn garbage_collection_gives_the_space_back() {
    let berth = Berth::start().await;
    let name = "lc/gc";
    let big = random_bytes(3 * 1024 * 1024, 7);
    let doomed = push(&berth, name, "old", "old", &big).await;
    let kept = push(&berth, name, "new", "new", b"small layer").await;
    // A file no metadata names, as a crash between a write and its commit leaves: an old one is
    // garbage, a fresh one may be a commit in progress.
    let old_orphan = berth.data_dir().join("blobs/zz/orphan-old");
    let new_orphan = berth.data_dir().join("blobs/zz/orphan-new");
    std::fs::create_dir_all(old_orphan.parent().expect("shard")).expect("shard");
    std::fs::write(&old_orphan, vec![0u8; 1000]).expect("orphan");
    std::fs::write(&new_orphan, vec![0u8; 1000]).expect("orphan");
    let long_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&old_orphan)
        .expect("open")
        .set_modified(long_ago)
        .expect("stamp");

    let (status, out) = berth
        .ecr("BatchDeleteImage", json!({"repositoryName": name, "imageIds": [{"imageDigest": doomed}]}))
        .await;
    assert_eq!(status, 200, "{out}");
    let (before_bytes, before_files) = stored_blobs(berth.data_dir());

    // Within the default grace (an hour), nothing goes: the layer was uploaded moments ago.
    let report: Value = serde_json::from_str(&berth.command(&["gc", "--output", "json"])).expect("JSON");
    assert_eq!((report["blobs"].as_u64(), report["orphanFiles"].as_u64()), (Some(0), Some(1)), "{report}");
    assert!(!old_orphan.exists() && new_orphan.exists(), "the old orphan goes, the fresh one stays");

    let dry: Value = serde_json::from_str(&berth.command(&[
        "gc",
        "--dry-run",
        "--grace-seconds",
        "0",
        "--output",
        "json",
    ]))
    .expect("JSON");
    // The image's manifest, config and big layer. The fresh orphan stays whatever the grace: it
    // may be a blob put in place whose commit has not landed yet.
    assert_eq!((dry["blobs"].as_u64(), dry["orphanFiles"].as_u64()), (Some(3), Some(0)), "{dry}");
    assert!(dry["bytes"].as_u64().expect("bytes") >= big.len() as u64, "{dry}");
    assert_eq!(stored_blobs(berth.data_dir()).1, before_files - 1, "a dry run deletes nothing");
    let done: Value =
        serde_json::from_str(&berth.command(&["gc", "--grace-seconds", "0", "--output", "json"]))
            .expect("JSON");
    assert_eq!(
        (done["blobs"].as_u64(), done["bytes"].as_u64()),
        (dry["blobs"].as_u64(), dry["bytes"].as_u64())
    );
    let (after_bytes, after_files) = stored_blobs(berth.data_dir());
    let reclaimed = before_bytes - after_bytes;
    println!(
        "data directory blobs: {before_bytes} -> {after_bytes} bytes ({reclaimed} reclaimed; the expired image held \
         {} bytes of content, {} bytes with the old orphan)",
        done["bytes"],
        done["bytes"].as_u64().unwrap_or(0) + 1000
    );
    assert_eq!(after_files, before_files - 4, "3 blobs and the old orphan are gone");
    assert!(new_orphan.exists(), "a file written moments ago outlives a zero grace");
    let content = done["bytes"].as_u64().expect("bytes") + 1000;
    // Sealed files carry a little framing per 64 KiB chunk over the content they hold.
    assert!(reclaimed >= content && reclaimed <= content + content / 100 + 4096, "{reclaimed} vs {content}");
    assert_eq!(berth.get_manifest(&format!("{ACCOUNT}/{name}"), &kept).await.status(), 200, "the rest stays");
}

/// What writers were told is stored: image digest -> (manifest, blobs it names).
type Acknowledged = Arc<Mutex<BTreeMap<String, (Vec<u8>, Vec<(String, Vec<u8>)>)>>>;

#[tokio::test]
async fn collection_racing_pushes_and_deletes_loses_no_acknowledged_image() {
    // The server collects every second, sparing only what was used in the last second: pushes
    // race it constantly.
    let berth = Arc::new(
        Berth::start_with(&[("BERTH_GC_INTERVAL_SECONDS", "1"), ("BERTH_GC_GRACE_SECONDS", "1")]).await,
    );
    let repository = format!("{ACCOUNT}/lc/race");
    let shared: Arc<Vec<Vec<u8>>> = Arc::new((0..6).map(|n| random_bytes(64 * 1024, 100 + n)).collect());
    let acknowledged: Acknowledged = Arc::default();
    let refused = Arc::new(Mutex::new(0usize));
    let stop = Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        let (berth, repository, shared, acknowledged, refused) = (
            Arc::clone(&berth),
            repository.clone(),
            Arc::clone(&shared),
            Arc::clone(&acknowledged),
            Arc::clone(&refused),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                n += 1;
                let layer = shared[((writer + n) % shared.len() as u64) as usize].clone();
                let config = format!(r#"{{"os":"linux","writer":{writer},"n":{n}}}"#).into_bytes();
                let config_digest = berth.push_blob(&repository, &config).await;
                let layer_digest = berth.push_blob(&repository, &layer).await;
                let manifest =
                    image_manifest_bytes(&config_digest, config.len(), &layer_digest, layer.len(), "");
                let digest = sha256(&manifest);
                let r =
                    berth.put_manifest(&repository, &format!("w{writer}-{n}"), OCI_MANIFEST, &manifest).await;
                match r.status().as_u16() {
                    201 => {
                        acknowledged
                            .lock()
                            .expect("lock")
                            .insert(digest, (manifest, vec![(config_digest, config), (layer_digest, layer)]));
                    }
                    // A layer collected between its upload and the manifest: refused, not lost.
                    400 | 404 => *refused.lock().expect("lock") += 1,
                    other => panic!("manifest push answered {other}: {}", r.text().await.unwrap_or_default()),
                }
            }
        }));
    }
    let deleter = {
        let (berth, acknowledged) = (Arc::clone(&berth), Arc::clone(&acknowledged));
        tokio::spawn(async move {
            let mut deleted = 0;
            while Instant::now() < stop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let victim = acknowledged.lock().expect("lock").keys().nth(deleted * 7 % 5).cloned();
                let Some(victim) = victim else { continue };
                let r = berth
                    .req(Method::DELETE, &format!("/v2/{}/manifests/{victim}", "000000000000/lc/race"))
                    .send()
                    .await;
                assert_eq!(r.expect("send").status(), 202);
                acknowledged.lock().expect("lock").remove(&victim);
                deleted += 1;
            }
            deleted
        })
    };
    for task in tasks {
        task.await.expect("writer");
    }
    let deleted = deleter.await.expect("deleter");
    let kept = acknowledged.lock().expect("lock").clone();
    println!(
        "{} images acknowledged and kept, {deleted} deleted, {} pushes refused because a layer was collected first",
        kept.len(),
        refused.lock().expect("lock")
    );
    assert!(kept.len() > 50, "the writers pushed too little to race anything: {}", kept.len());
    for (digest, (manifest, blobs)) in &kept {
        let r = berth.get_manifest(&repository, digest).await;
        assert_eq!(r.status(), 200, "acknowledged image {digest} is gone");
        let body = r.bytes().await.expect("body");
        assert_eq!((sha256(&body), body.as_ref()), (digest.clone(), manifest.as_slice()));
        for (blob, bytes) in blobs {
            let r =
                berth.req(Method::GET, &format!("/v2/{repository}/blobs/{blob}")).send().await.expect("send");
            assert_eq!(r.status(), 200, "blob {blob} of acknowledged image {digest} is gone");
            assert_eq!(&r.bytes().await.expect("body")[..], bytes.as_slice(), "blob {blob} of {digest}");
        }
    }

    // Once the pushes stop, two passes after the grace leave exactly what the images use.
    let expected: BTreeSet<String> = kept
        .iter()
        .flat_map(|(d, (_, blobs))| std::iter::once(d.clone()).chain(blobs.iter().map(|(b, _)| b.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let files = stored_blobs(berth.data_dir()).1;
        if files == expected.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{files} stored files remain for {} blobs in use", expected.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let uploads = std::fs::read_dir(berth.data_dir().join("uploads")).expect("uploads").count();
    assert_eq!(uploads, 0, "no upload was left behind");
}

/// The storage-class change of one image, as the ECR API answers it.
async fn move_image(berth: &Berth, name: &str, digest: &str, target: &str) -> (u16, Value) {
    let input =
        json!({"repositoryName": name, "imageId": {"imageDigest": digest}, "targetStorageClass": target});
    berth.ecr("UpdateImageStorageClass", input).await
}

/// The image's detail when listed with `imageStatus` `status`, if it is listed.
async fn listed_as(berth: &Berth, name: &str, digest: &str, status: &str) -> Option<Value> {
    let filter = json!({"repositoryName": name, "filter": {"imageStatus": status}});
    let (code, out) = berth.ecr("DescribeImages", filter).await;
    assert_eq!(code, 200, "{out}");
    out["imageDetails"].as_array().expect("imageDetails").iter().find(|d| d["imageDigest"] == digest).cloned()
}

#[tokio::test]
async fn an_archived_image_is_refused_on_pull_until_it_is_restored() {
    let berth = Berth::start().await;
    let name = "lc/archive";
    let repository = format!("{ACCOUNT}/{name}");
    let solo = push(&berth, name, "solo", "solo", b"solo layer").await;
    let (index, children, signature) = push_index_with_signature(&berth, name, "multi").await;

    // A platform image of an active index stays with the index.
    let (status, out) = move_image(&berth, name, &children[0], "ARCHIVE").await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("ImageStorageClassUpdateNotSupportedException")),
        "{out}"
    );
    let (status, out) = move_image(&berth, name, &solo, "GLACIER").await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")), "{out}");
    let missing = sha256(b"never pushed");
    let (status, out) = move_image(&berth, name, &missing, "ARCHIVE").await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("ImageNotFoundException")), "{out}");

    // Archived: out of pulls and of the default listing, with its referrer.
    let pull_index = || async {
        let path = format!("/v2/{repository}/manifests/multi");
        berth.req(Method::GET, &path).header("accept", OCI_INDEX).send().await.expect("send")
    };
    assert_eq!(pull_index().await.status(), 200, "pullable before");
    let (status, out) = move_image(&berth, name, &index, "ARCHIVE").await;
    assert_eq!((status, out["imageStatus"].as_str()), (200, Some("ARCHIVED")), "{out}");
    let (status, _) = move_image(&berth, name, &index, "ARCHIVE").await;
    assert_eq!(status, 200, "archiving what is archived changes nothing");
    let pull = pull_index().await;
    assert_eq!(pull.status(), 404);
    let body = pull.text().await.expect("body");
    assert!(body.contains("MANIFEST_UNKNOWN") && body.contains("archived"), "{body}");
    let (_, got) = berth
        .ecr("BatchGetImage", json!({"repositoryName": name, "imageIds": [{"imageTag": "multi"}]}))
        .await;
    assert!(got["images"].as_array().expect("images").is_empty(), "{got}");
    assert!(got["failures"][0]["failureReason"].as_str().unwrap_or("").contains("archived"), "{got}");
    assert!(listed_as(&berth, name, &index, "ACTIVE").await.is_none(), "ECR lists active images by default");
    let archived = listed_as(&berth, name, &index, "ARCHIVED").await.expect("listed as archived");
    assert_eq!(archived["imageStatus"], "ARCHIVED");
    assert!(archived["lastArchivedAt"].is_number(), "{archived}");
    assert!(
        listed_as(&berth, name, &signature, "ARCHIVED").await.is_some(),
        "the signature follows its subject"
    );
    assert!(listed_as(&berth, name, &children[0], "ACTIVE").await.is_some(), "children stay where they are");
    assert!(listed_as(&berth, name, &index, "ANY").await.is_some());
    assert!(listed_as(&berth, name, &index, "ACTIVATING").await.is_none(), "berth restores at once");

    // Restored through the API: pullable again, with the time it came back.
    let (status, out) = move_image(&berth, name, &index, "STANDARD").await;
    assert_eq!((status, out["imageStatus"].as_str()), (200, Some("ACTIVE")), "{out}");
    assert_eq!(pull_index().await.status(), 200);
    let restored = listed_as(&berth, name, &index, "ACTIVE").await.expect("active again");
    assert!(restored["lastActivatedAt"].is_number() && restored["lastArchivedAt"].is_number(), "{restored}");
    assert!(listed_as(&berth, name, &signature, "ACTIVE").await.is_some());

    // A lifecycle rule archives, and pushing the same image again restores it.
    put_policy(
        &berth,
        name,
        vec![json!({"rulePriority": 1, "description": "archive solo",
                    "selection": {"tagStatus": "tagged", "tagPrefixList": ["solo"],
                                  "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "transition", "targetStorageClass": "archive"}})],
    )
    .await;
    let again = push(&berth, name, "solo-2", "solo-2", b"solo layer").await;
    let run = berth.command(&["lifecycle", "run", "--repository", &repository]);
    assert!(run.contains("did expire 0 and archive 1 of"), "{run}");
    assert!(listed_as(&berth, name, &solo, "ARCHIVED").await.is_some(), "the older solo image is archived");
    assert!(listed_as(&berth, name, &again, "ACTIVE").await.is_some());
    assert_eq!(berth.get_manifest(&repository, "solo").await.status(), 404);
    assert_eq!(push(&berth, name, "solo", "solo", b"solo layer").await, solo, "the same image");
    assert_eq!(berth.get_manifest(&repository, "solo").await.status(), 200, "a push restores");
    let back = listed_as(&berth, name, &solo, "ACTIVE").await.expect("active after the push");
    assert!(back["lastActivatedAt"].is_number(), "{back}");
}
