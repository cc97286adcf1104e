//! The behaviour every [`MetaStore`] backend must show, as one suite each backend's tests run.

use berth_core::{
    AccountId, Digest, EncryptionType, RepositoryName, RepositorySettings, StorageClass, Tag, TagMutability,
};

use crate::{
    AccessKey, Account, BlobCommit, BlobRecord, EVENTS_JOB, ImageDetail, ImageFilter, LayerParts,
    ManifestDeletion, ManifestRecord, MetaError, MetaStore, NewManifest, NewRepository, PREVIEW_JOB, Page,
    PreviewStatus, REMATCH_JOB, SCAN_JOB, StoredScan, TagFilter, Upload, WrappedKey, now_millis,
};

fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32)).parse().expect("test digest")
}

fn blob(n: u8, location: &str) -> BlobRecord {
    BlobRecord {
        digest: digest(n),
        size: u64::from(n) * 10,
        location: location.to_owned(),
        keys: vec![WrappedKey { key_id: "local:test".to_owned(), wrapped: vec![n; 4] }],
    }
}

fn upload(id: &str, repository_id: i64) -> Upload {
    Upload {
        id: id.to_owned(),
        repository_id,
        length: 0,
        key_id: "local:test".to_owned(),
        wrapped_key: vec![1, 2, 3],
        created_at: now_millis(),
        parts: LayerParts::default(),
    }
}

fn manifest(n: u8, subject: Option<Digest>) -> ManifestRecord {
    ManifestRecord {
        digest: digest(n),
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        artifact_type: Some("application/vnd.example".to_owned()),
        size: 100,
        subject,
        pushed_at: now_millis(),
        image_size: u64::from(n) * 7,
        last_pulled_at: None,
        storage_class: StorageClass::Standard,
        last_archived_at: None,
        last_activated_at: None,
    }
}

/// A filter by tags alone, over images in any storage class.
fn any(tags: TagFilter) -> ImageFilter {
    ImageFilter { tags, storage_class: None }
}

/// Content records are ignored when the digest is stored already, as in these tests.
fn blob_for_manifest() -> BlobRecord {
    blob(0, "blobs/unused")
}

fn name(s: &str) -> RepositoryName {
    s.parse().expect("test repository name")
}

fn tag(s: &str) -> Tag {
    s.parse().expect("test tag")
}

/// Stores a blob through the upload path, as the registry does.
async fn store_blob(store: &dyn MetaStore, repo: i64, n: u8) -> BlobCommit {
    let id = format!("up-{repo}-{n}");
    store.create_upload(&upload(&id, repo), u64::MAX).await.expect("create upload");
    store.commit_blob(repo, &id, &blob(n, &format!("blobs/{id}"))).await.expect("commit")
}

/// Runs every check against `store`, which must be empty.
pub async fn run(store: &dyn MetaStore) {
    accounts_and_keys(store).await;
    // Before anything leaves unused content: it counts all there is.
    garbage_is_what_no_image_uses_after_the_grace(store).await;
    repositories_are_per_account(store).await;
    blobs_are_stored_once_and_linked_per_repository(store).await;
    a_blob_has_one_wrap_per_key_and_they_go_with_it(store).await;
    a_wrap_goes_once_no_holder_is_under_its_key(store).await;
    a_keys_wraps_are_walked_replaced_only_if_unchanged_and_rewraps_progress(store).await;
    stored_bytes_count_per_repository_per_account_and_in_all(store).await;
    uploads_advance_only_from_their_current_length(store).await;
    manifests_require_their_references(store).await;
    images_have_at_most_max_tags(store).await;
    tags_move_list_in_order_and_delete(store).await;
    referrers_and_manifest_deletion(store).await;
    repositories_keep_their_settings_and_delete_only_when_asked(store).await;
    images_list_with_their_tags_in_pages(store).await;
    creation_templates_round_trip(store).await;
    policies_are_stored_per_repository_and_registry(store).await;
    users_own_their_policies_and_keys(store).await;
    lifecycle_policies_images_and_previews(store).await;
    scans_keep_their_inventory_and_imports_schedule_a_rematch(store).await;
    a_feed_replaces_its_own_advisories_and_keeps_them_when_a_check_fails(store).await;
    jobs_are_claimed_once_and_taken_over_when_a_lease_runs_out(store).await;
    image_events_are_recorded_with_their_change_in_order(store).await;
}

async fn image_events_are_recorded_with_their_change_in_order(store: &dyn MetaStore) {
    let r = repo(store, "events/app").await;
    let start = store.latest_event().await.expect("latest");
    store_blob(store, r, 150).await;
    let image = |n: u8| NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(n, None),
        blobs: vec![digest(150)],
        manifests: vec![],
    };
    store.put_manifest(r, &image(151), Some(&tag("v1")), true, 1000).await.expect("push");
    // The same push again changes nothing, and records nothing.
    store.put_manifest(r, &image(151), Some(&tag("v1")), true, 1000).await.expect("again");
    store.put_manifest(r, &image(152), Some(&tag("v1")), true, 1000).await.expect("v1 moves");
    store.put_manifest(r, &image(151), Some(&tag("v0")), true, 1000).await.expect("a second tag");
    assert!(store.delete_tag(r, &tag("v0")).await.expect("untag"));
    assert_eq!(store.delete_manifest(r, &digest(151)).await.expect("delete"), ManifestDeletion::Deleted);
    assert!(!store.delete_tag(r, &tag("v0")).await.expect("untag again"), "nothing to delete, no event");

    let events = store.events_after(start, 100).await.expect("events");
    let seen: Vec<(&str, String, Option<&str>)> =
        events.iter().map(|e| (e.action.as_str(), e.digest.clone(), e.tag.as_deref())).collect();
    assert_eq!(
        seen,
        vec![
            ("PUSH", digest(151).to_string(), Some("v1")),
            ("PUSH", digest(152).to_string(), Some("v1")),
            ("PUSH", digest(151).to_string(), Some("v0")),
            ("DELETE", digest(151).to_string(), Some("v0")),
            ("DELETE", digest(151).to_string(), None),
        ]
    );
    assert!(events.iter().all(|e| e.account == "111111111111" && e.repository == "events/app"));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "in the order they committed");
    assert_eq!(store.latest_event().await.expect("latest"), events[4].id);
    assert_eq!(store.events_after(events[1].id, 2).await.expect("page").len(), 2);
    // A move to the archive is an event with its detail; one that moves nothing is none.
    assert!(store.set_storage_class(r, &digest(152), StorageClass::Archive, 5).await.expect("archive"));
    assert!(!store.set_storage_class(r, &digest(152), StorageClass::Archive, 6).await.expect("again"));
    let moved = store.events_after(events[4].id, 10).await.expect("events");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        (moved[0].action.as_str(), moved[0].detail.as_deref()),
        ("UPDATE_STORAGE_CLASS", Some(r#"{"target-storage-class":"ARCHIVE"}"#))
    );
    let fanout = store.claim_job(&[EVENTS_JOB], "w", i64::MAX - 1, i64::MAX).await.expect("claim");
    assert!(fanout.is_some(), "the events scheduled their delivery");

    // Cursors begin once, move forward only.
    assert_eq!(store.event_cursor("hook").await.expect("cursor"), None);
    store.begin_event_cursor("hook", events[0].id, 1).await.expect("begin");
    store.begin_event_cursor("hook", events[4].id, 2).await.expect("begin again");
    assert_eq!(store.event_cursor("hook").await.expect("cursor"), Some(events[0].id), "begun once");
    store.set_event_cursor("hook", events[3].id, 3).await.expect("advance");
    store.set_event_cursor("hook", events[1].id, 4).await.expect("not back");
    assert_eq!(store.event_cursor("hook").await.expect("cursor"), Some(events[3].id));

    // A repository deleted with its images: a DELETE event for each.
    let gone = repo(store, "events/gone").await;
    store_blob(store, gone, 153).await;
    let last = store.latest_event().await.expect("latest");
    let image = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(154, None),
        blobs: vec![digest(153)],
        manifests: vec![],
    };
    store.put_manifest(gone, &image, Some(&tag("v1")), true, 1000).await.expect("push");
    store.delete_repository(gone, true).await.expect("force delete");
    let seen: Vec<(String, String, String)> = store
        .events_after(last, 10)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.repository, e.action, e.digest))
        .collect();
    let d154 = digest(154).to_string();
    assert_eq!(
        seen,
        vec![
            ("events/gone".to_owned(), "PUSH".to_owned(), d154.clone()),
            ("events/gone".to_owned(), "DELETE".to_owned(), d154)
        ]
    );

    assert_eq!(store.prune_events(0).await.expect("prune"), 0, "nothing is older than the epoch");
    assert!(store.prune_events(i64::MAX).await.expect("prune") >= events.len() as u64);
    assert!(store.events_after(start, 100).await.expect("events").is_empty());
}

async fn garbage_is_what_no_image_uses_after_the_grace(store: &dyn MetaStore) {
    let (a, b) = (repo(store, "gc/a").await, repo(store, "gc/b").await);
    for n in [90, 91, 92, 93] {
        store_blob(store, a, n).await;
    }
    store.link_blob(b, &digest(92)).await.expect("mount");
    // Image 94 in `a` uses layer 90; layer 92 is used by an image in `b` only.
    let image = NewManifest {
        content: blob(94, "blobs/m94"),
        content_written: true,
        record: manifest(94, None),
        blobs: vec![digest(90)],
        manifests: vec![],
    };
    store.put_manifest(a, &image, Some(&tag("v1")), true, 1000).await.expect("image in a");
    let other = NewManifest {
        content: blob(95, "blobs/m95"),
        content_written: true,
        record: manifest(95, None),
        blobs: vec![digest(92)],
        manifests: vec![],
    };
    store.put_manifest(b, &other, Some(&tag("v1")), true, 1000).await.expect("image in b");

    // Everything was taken just now: a grace that ends before now spares it all.
    let early = store.collect_garbage(now_millis() - 60_000, 100, false).await.expect("collect");
    assert_eq!(early, Default::default(), "nothing is reclaimed within its grace");

    let later = now_millis() + 1_000;
    let preview = store.collect_garbage(later, 100, true).await.expect("dry run");
    let digests = |g: &crate::Garbage| g.blobs.iter().map(|b| b.digest.clone()).collect::<Vec<_>>();
    // Unused holds: 91, 92 and 93 in `a`. Blobs nothing uses: 91 and 93 (92 is b's).
    assert_eq!((preview.released_holds, digests(&preview)), (3, vec![digest(91), digest(93)]));
    assert!(store.get_blob(&digest(91)).await.expect("get").is_some(), "a dry run changes nothing");
    let done = store.collect_garbage(later, 100, false).await.expect("collect");
    assert_eq!(done, preview, "the pass does what its dry run said");
    assert_eq!(store.get_blob(&digest(91)).await.expect("get"), None);
    assert_eq!(store.repository_blob(a, &digest(92)).await.expect("get"), None, "a's unused hold released");
    assert!(store.repository_blob(b, &digest(92)).await.expect("get").is_some(), "b's hold stays");
    for used in [90, 94] {
        assert!(store.repository_blob(a, &digest(used)).await.expect("get").is_some(), "{used} is in use");
    }

    // Deleting the image frees its layer and its own bytes on the next pass.
    assert_eq!(store.delete_manifest(a, &digest(94)).await.expect("delete"), ManifestDeletion::Deleted);
    let freed = store.collect_garbage(now_millis() + 1_000, 100, false).await.expect("collect");
    assert_eq!(digests(&freed), vec![digest(90), digest(94)]);
    let known = store
        .known_locations(&["blobs/m95".to_owned(), "blobs/m94".to_owned(), "blobs/nothing".to_owned()])
        .await
        .expect("known");
    assert_eq!(known, ["blobs/m95".to_owned()].into_iter().collect());
    for r in [a, b] {
        store.delete_repository(r, true).await.expect("clean up");
    }
}

async fn scans_keep_their_inventory_and_imports_schedule_a_rematch(store: &dyn MetaStore) {
    let r = repo(store, "scans/x").await;
    store_blob(store, r, 90).await;
    let image = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(90, None),
        blobs: vec![digest(90)],
        manifests: vec![],
    };
    store.put_manifest(r, &image, None, true, 1000).await.expect("image");
    // A push answers whether it stored the manifest's content, so that the registry keeps or
    // drops the copy it wrote: stored the first time, already there the next.
    let fresh = NewManifest {
        content: blob(93, "blobs/m93"),
        content_written: true,
        record: manifest(93, None),
        blobs: vec![],
        manifests: vec![],
    };
    assert!(store.put_manifest(r, &fresh, None, true, 1000).await.expect("first"), "stored");
    assert!(!store.put_manifest(r, &fresh, None, true, 1000).await.expect("again"), "already stored");
    let d = digest(90);
    // What a manifest push may reference: the blobs and images this repository holds, with sizes.
    let held =
        store.held_content(r, &[digest(90), digest(91)], &[digest(90), digest(92)]).await.expect("held");
    assert_eq!(held.blobs.into_iter().collect::<Vec<_>>(), [(digest(90), 900)]);
    let images: Vec<_> = held.manifests.into_iter().map(|(d, m)| (d, m.size, m.image_size)).collect();
    assert_eq!(images, [(digest(90), 100, 630)]);
    let other = repo(store, "scans/other").await;
    let elsewhere = store.held_content(other, &[digest(90)], &[digest(90)]).await.expect("held");
    assert!(elsewhere.blobs.is_empty() && elsewhere.manifests.is_empty(), "held per repository");
    assert_eq!(store.image_scan(r, &d).await.expect("get"), None);
    assert!(!store.start_image_scan(r, &digest(91), 10).await.expect("no such image"), "nothing to scan");
    assert!(store.start_image_scan(r, &d, 10).await.expect("start"));
    assert!(!store.start_image_scan(r, &d, 11).await.expect("again"), "one scan at a time");
    let pending = store.image_scan(r, &d).await.expect("get").expect("started");
    assert_eq!((pending.status.as_str(), pending.started_at), ("IN_PROGRESS", 10));
    let job = store.claim_job(&[SCAN_JOB], "w", 10, 100).await.expect("claim").expect("scheduled with it");
    assert_eq!(job.subject, format!("{r}/{d}"));
    store.finish_job(job.id, "w", None).await.expect("done");

    let done = StoredScan {
        status: "COMPLETE".to_owned(),
        description: "done".to_owned(),
        started_at: 10,
        completed_at: Some(20),
        inventory: Some("{inventory}".to_owned()),
        findings: Some("[]".to_owned()),
        matched_at: Some(20),
    };
    store.record_image_scan(r, &d, &done).await.expect("record");
    assert_eq!(store.image_scan(r, &d).await.expect("get"), Some(done.clone()));
    let events = store.latest_event().await.expect("latest");
    store.record_findings(r, &d, "[1]", 30, None).await.expect("rematch");
    let rematched = store.image_scan(r, &d).await.expect("get").expect("kept");
    assert_eq!((rematched.findings.as_deref(), rematched.matched_at), (Some("[1]"), Some(30)));
    assert!(store.events_after(events, 10).await.expect("events").is_empty(), "no change, no event");
    store.record_findings(r, &d, "[1,2]", 35, Some(r#"{"new-findings":[2]}"#)).await.expect("changed");
    let changed = store.events_after(events, 10).await.expect("events");
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0].action.as_str(), changed[0].digest.as_str(), changed[0].detail.as_deref()),
        ("SCAN", d.to_string().as_str(), Some(r#"{"new-findings":[2]}"#))
    );
    let stored = store.stored_inventories(None, 10).await.expect("inventories");
    assert!(stored.iter().any(|i| i.repository_id == r
        && i.digest == d
        && i.inventory == "{inventory}"
        && i.findings.as_deref() == Some("[1,2]")));
    let after = store.stored_inventories(Some((r, &d)), 10).await.expect("after");
    assert!(after.iter().all(|i| (i.repository_id, i.digest.to_string()) > (r, d.to_string())));

    store
        .import_vulnerability_records(
            "test",
            &[("CVE-1".to_owned(), b"{}".to_vec()), ("CVE-2".to_owned(), b"[]".to_vec())],
            40,
        )
        .await
        .expect("import");
    store
        .import_vulnerability_records("test", &[("CVE-2".to_owned(), b"{2}".to_vec())], 50)
        .await
        .expect("again");
    assert_eq!(store.vulnerability_records().await.expect("records"), vec![b"{}".to_vec(), b"{2}".to_vec()]);
    let sources = store.vulnerability_sources().await.expect("sources");
    assert_eq!((sources[0].source.as_str(), sources[0].records, sources[0].imported_at), ("test", 2, 50));
    let rematch = store.claim_job(&[REMATCH_JOB], "w", 50, 100).await.expect("claim").expect("scheduled");
    store.finish_job(rematch.id, "w", None).await.expect("done");

    // A deleted image takes its scan with it.
    assert_eq!(store.delete_manifest(r, &d).await.expect("delete"), ManifestDeletion::Deleted);
    assert_eq!(store.image_scan(r, &d).await.expect("get"), None);
}

async fn a_feed_replaces_its_own_advisories_and_keeps_them_when_a_check_fails(store: &dyn MetaStore) {
    let url = "https://feeds.example/Debian/all.zip";
    let record = |id: &str| (id.to_owned(), format!("{{\"id\":\"{id}\"}}").into_bytes());
    assert_eq!(store.vulnerability_feed(url).await.expect("feed"), None);
    store.import_vulnerability_records("by-hand", &[record("FEED-0")], 60).await.expect("import");
    store
        .replace_vulnerability_feed(url, &[record("FEED-1"), record("FEED-2")], (Some("\"v1\""), None), 70)
        .await
        .expect("first download");
    let first = store.vulnerability_feed(url).await.expect("feed").expect("recorded");
    assert_eq!(
        (first.etag.as_deref(), first.last_modified.as_deref(), first.changed_at, first.records),
        (Some("\"v1\""), None, Some(70), 2)
    );

    // A failed check keeps the advisories and validators, and says why.
    store.note_vulnerability_feed_check(url, 80, Some("connection refused")).await.expect("failed");
    let failed = store.vulnerability_feed(url).await.expect("feed").expect("kept");
    assert_eq!(
        (failed.checked_at, failed.error.as_deref(), failed.records),
        (80, Some("connection refused"), 2)
    );
    assert_eq!(failed.etag.as_deref(), Some("\"v1\""));

    // The next download replaces the feed's advisories only: one gone upstream goes, one of
    // another source stays.
    store
        .replace_vulnerability_feed(
            url,
            &[record("FEED-2"), record("FEED-3")],
            (None, Some("Tue, 01 Dec 2026")),
            90,
        )
        .await
        .expect("second download");
    let records: Vec<Vec<u8>> = store.vulnerability_records().await.expect("records");
    let has = |id: &str| records.iter().any(|r| r == &record(id).1);
    assert!(has("FEED-0") && !has("FEED-1") && has("FEED-2") && has("FEED-3"));
    let second = store.vulnerability_feeds().await.expect("feeds");
    assert_eq!(second.len(), 1);
    assert_eq!(
        (
            second[0].etag.as_deref(),
            second[0].last_modified.as_deref(),
            second[0].error.as_deref(),
            second[0].records
        ),
        (None, Some("Tue, 01 Dec 2026"), None, 2)
    );
    let rematch = store.claim_job(&[REMATCH_JOB], "w", 90, 100).await.expect("claim").expect("scheduled");
    store.finish_job(rematch.id, "w", None).await.expect("done");
}

async fn lifecycle_policies_images_and_previews(store: &dyn MetaStore) {
    let r = repo(store, "lifecycle/x").await;
    assert_eq!(store.lifecycle_policy(r).await.expect("get"), None);
    assert_eq!(store.set_lifecycle_policy(r, Some("one")).await.expect("set"), None);
    store.record_lifecycle_evaluation(r, 1_000).await.expect("evaluated");
    let first = store.lifecycle_policy(r).await.expect("get").expect("set");
    assert_eq!((first.text.as_str(), first.last_evaluated_at), ("one", Some(1_000)));
    let previous = store.set_lifecycle_policy(r, Some("two")).await.expect("replace").expect("had one");
    assert_eq!(previous, first, "replacing returns what was there");
    let second = store.lifecycle_policy(r).await.expect("get").expect("set");
    assert_eq!((second.text.as_str(), second.last_evaluated_at), ("two", None), "a new policy has not run");
    let with_policy = store.repositories_with_lifecycle_policy().await.expect("list");
    assert!(with_policy.iter().any(|repo| repo.id == r));

    // An index listing two images, one tagged, and a referrer of the index.
    for n in [80, 81] {
        store_blob(store, r, n).await;
        let image = NewManifest {
            content: blob_for_manifest(),
            content_written: true,
            record: manifest(n, None),
            blobs: vec![digest(n)],
            manifests: vec![],
        };
        store.put_manifest(r, &image, (n == 80).then(|| tag("b")).as_ref(), true, 1000).await.expect("image");
    }
    store
        .put_manifest(
            r,
            &NewManifest {
                content: blob_for_manifest(),
                content_written: true,
                record: manifest(80, None),
                blobs: vec![],
                manifests: vec![],
            },
            Some(&tag("a")),
            true,
            1000,
        )
        .await
        .expect("second tag");
    let index = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(82, None),
        blobs: vec![],
        manifests: vec![digest(80), digest(81)],
    };
    store.put_manifest(r, &index, Some(&tag("multi")), true, 1000).await.expect("index");
    let referrer = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(83, Some(digest(82))),
        blobs: vec![],
        manifests: vec![],
    };
    store.put_manifest(r, &referrer, None, true, 1000).await.expect("referrer");
    let images = store.lifecycle_images(r).await.expect("images");
    let view: Vec<_> = images
        .iter()
        .map(|i| (i.record.digest.clone(), i.tags.clone(), i.parents.clone(), i.record.subject.clone()))
        .collect();
    assert_eq!(
        view,
        vec![
            (digest(80), vec!["a".to_owned(), "b".to_owned()], vec![digest(82)], None),
            (digest(81), vec![], vec![digest(82)], None),
            (digest(82), vec!["multi".to_owned()], vec![], None),
            (digest(83), vec![], vec![], Some(digest(82))),
        ]
    );

    // Archive and restore record their times; a move to the class an image is in does nothing.
    assert!(store.set_storage_class(r, &digest(81), StorageClass::Archive, 5_000).await.expect("archive"));
    assert!(!store.set_storage_class(r, &digest(81), StorageClass::Archive, 6_000).await.expect("again"));
    let archived = store.get_manifest(r, &digest(81)).await.expect("get").expect("kept");
    assert_eq!((archived.storage_class, archived.last_archived_at), (StorageClass::Archive, Some(5_000)));
    assert!(store.set_storage_class(r, &digest(81), StorageClass::Standard, 7_000).await.expect("restore"));
    let restored = store.get_manifest(r, &digest(81)).await.expect("get").expect("kept");
    assert_eq!(
        (restored.storage_class, restored.last_archived_at, restored.last_activated_at),
        (StorageClass::Standard, Some(5_000), Some(7_000)),
        "the archive time stays on record"
    );
    assert!(!store.set_storage_class(r, &digest(99), StorageClass::Archive, 1).await.expect("missing"));

    // Listings filter by storage class; pushing an archived image again restores it.
    assert!(store.set_storage_class(r, &digest(80), StorageClass::Archive, 8_000).await.expect("archive"));
    let archived_only = ImageFilter { tags: TagFilter::Any, storage_class: Some(StorageClass::Archive) };
    let listed = store.list_images(r, archived_only, None, 10).await.expect("list archived");
    assert_eq!(listed.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(), vec![digest(80), digest(80)]);
    let active = ImageFilter { tags: TagFilter::Any, storage_class: Some(StorageClass::Standard) };
    let described = store.describe_images(r, active, Page { last: None, limit: 10 }).await.expect("describe");
    assert!(described.iter().all(|d| d.record.digest != digest(80)), "the archived image is not active");
    let first_push = store.get_manifest(r, &digest(80)).await.expect("get").expect("kept").pushed_at;
    let again = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: ManifestRecord { pushed_at: first_push + 9_000, ..manifest(80, None) },
        blobs: vec![digest(80)],
        manifests: vec![],
    };
    store.put_manifest(r, &again, None, true, 1000).await.expect("pushed again");
    let restored = store.get_manifest(r, &digest(80)).await.expect("get").expect("kept");
    assert_eq!(
        (restored.storage_class, restored.last_activated_at, restored.pushed_at),
        (StorageClass::Standard, Some(first_push + 9_000), first_push),
        "restored by the push, which keeps the first push time"
    );

    // One preview at a time, and its job is scheduled with it.
    assert_eq!(store.lifecycle_preview(r).await.expect("get"), None);
    store.start_lifecycle_preview(r, "p1", 10).await.expect("start");
    let again = store.start_lifecycle_preview(r, "p2", 11).await;
    assert!(matches!(again, Err(MetaError::AlreadyExists(_))), "{again:?}");
    let job = store.claim_job(&[PREVIEW_JOB], "w", 20, 100).await.expect("claim").expect("scheduled");
    assert_eq!(job.subject, r.to_string());
    store.finish_lifecycle_preview(r, PreviewStatus::Complete, Some("[]"), 30).await.expect("finish");
    store.finish_job(job.id, "w", None).await.expect("done");
    let preview = store.lifecycle_preview(r).await.expect("get").expect("exists");
    assert_eq!(
        (preview.policy.as_str(), preview.status, preview.results.as_deref(), preview.finished_at),
        ("p1", PreviewStatus::Complete, Some("[]"), Some(30))
    );
    store.start_lifecycle_preview(r, "p2", 40).await.expect("a finished preview can be replaced");
    let replaced = store.lifecycle_preview(r).await.expect("get").expect("exists");
    assert_eq!(
        (replaced.policy.as_str(), replaced.status, replaced.results),
        ("p2", PreviewStatus::InProgress, None)
    );
    let job = store.claim_job(&[PREVIEW_JOB], "w", 50, 100).await.expect("claim").expect("scheduled");
    store.finish_job(job.id, "w", None).await.expect("done");

    assert_eq!(
        store.set_lifecycle_policy(r, None).await.expect("delete").map(|p| p.text).as_deref(),
        Some("two")
    );
    assert_eq!(store.lifecycle_policy(r).await.expect("get"), None);
}

async fn jobs_are_claimed_once_and_taken_over_when_a_lease_runs_out(store: &dyn MetaStore) {
    store.schedule_job("test-a", "1", 100).await.expect("schedule");
    store.schedule_job("test-a", "1", 300).await.expect("again, later");
    store.schedule_job("test-b", "1", 200).await.expect("schedule");
    let only_a = store
        .jobs()
        .await
        .expect("jobs")
        .into_iter()
        .filter(|j| j.kind.starts_with("test-"))
        .collect::<Vec<_>>();
    assert_eq!(
        only_a.iter().map(|j| (j.kind.as_str(), j.run_after)).collect::<Vec<_>>(),
        vec![("test-a", 100), ("test-b", 200)],
        "scheduling twice keeps one job at the earlier time"
    );
    assert_eq!(
        store.claim_job(&["test-a", "test-b"], "w1", 99, 1_000).await.expect("claim"),
        None,
        "not due"
    );
    let a = store.claim_job(&["test-a", "test-b"], "w1", 250, 1_000).await.expect("claim").expect("due");
    assert_eq!((a.kind.as_str(), a.attempts, a.claimed_by.as_deref()), ("test-a", 1, Some("w1")));
    let b = store.claim_job(&["test-a", "test-b"], "w2", 250, 1_000).await.expect("claim").expect("due");
    assert_eq!(b.kind, "test-b", "a claimed job is not handed out twice");
    assert_eq!(store.claim_job(&["test-a", "test-b"], "w3", 250, 1_000).await.expect("claim"), None);

    // w1 dies: once its lease runs out, w3 takes the job over and w1 can no longer end it.
    let taken = store.claim_job(&["test-a"], "w3", 1_001, 2_000).await.expect("claim").expect("lease over");
    assert_eq!((taken.id, taken.attempts), (a.id, 2));
    assert!(!store.renew_job(a.id, "w1", 5_000).await.expect("renew"), "w1 lost it");
    store.finish_job(a.id, "w1", None).await.expect("a stale finish is ignored");
    assert!(store.jobs().await.expect("jobs").iter().any(|j| j.id == a.id), "still there");
    assert!(store.renew_job(a.id, "w3", 3_000).await.expect("renew"));
    store.finish_job(a.id, "w3", Some(10_000)).await.expect("periodic: again later");
    let again = store.jobs().await.expect("jobs").into_iter().find(|j| j.id == a.id).expect("kept");
    assert_eq!((again.run_after, again.claimed_by, again.attempts), (10_000, None, 0));

    store.fail_job(b.id, "w2", "disk full", 400).await.expect("fail");
    let failed = store.jobs().await.expect("jobs").into_iter().find(|j| j.id == b.id).expect("kept");
    assert_eq!(
        (failed.run_after, failed.last_error.as_deref(), failed.claimed_by),
        (400, Some("disk full"), None)
    );
    let retried = store.claim_job(&["test-b"], "w2", 400, 1_000).await.expect("claim").expect("retry due");
    // Scheduled again while held: finishing releases it to run once more instead of losing it.
    store.schedule_job("test-b", "1", 450).await.expect("again while held");
    store.finish_job(retried.id, "w2", None).await.expect("done");
    let rerun = store.claim_job(&["test-b"], "w2", 450, 1_000).await.expect("claim").expect("runs again");
    assert_eq!(rerun.id, retried.id);
    store.finish_job(rerun.id, "w2", None).await.expect("done");
    store.finish_job(again.id, "w9", None).await.expect("not held: ignored");
    let left: Vec<_> = store
        .jobs()
        .await
        .expect("jobs")
        .into_iter()
        .filter(|j| j.kind.starts_with("test-"))
        .map(|j| j.kind)
        .collect();
    assert_eq!(left, vec!["test-a".to_owned()]);
}

async fn users_own_their_policies_and_keys(store: &dyn MetaStore) {
    let a: AccountId = "111111111111".parse().expect("account");
    store.create_user(&a, "dev", "/team/").await.expect("create");
    assert!(matches!(store.create_user(&a, "dev", "/").await, Err(MetaError::AlreadyExists(_))));
    let missing: AccountId = "555555555555".parse().expect("account");
    assert!(matches!(store.create_user(&missing, "dev", "/").await, Err(MetaError::NotFound(_))));
    assert_eq!(store.list_users(&a).await.expect("list"), [("dev".to_owned(), "/team/".to_owned())]);
    assert_eq!(store.user_path(&a, "dev").await.expect("path").as_deref(), Some("/team/"));
    assert_eq!(store.user_path(&a, "nobody").await.expect("path"), None);
    store.put_user_policy(&a, "dev", "pull", "{1}").await.expect("put");
    store.put_user_policy(&a, "dev", "pull", "{2}").await.expect("replace");
    assert!(matches!(store.put_user_policy(&a, "ghost", "pull", "{}").await, Err(MetaError::NotFound(_))));
    assert_eq!(store.user_policies(&a, "dev").await.expect("list"), [("pull".to_owned(), "{2}".to_owned())]);
    let key = AccessKey {
        access_key_id: "AKIAUSERKEY000000001".to_owned(),
        account_id: a.clone(),
        user_name: Some("dev".to_owned()),
        sealed_secret: vec![1],
        active: true,
        created_at: now_millis(),
    };
    store.create_access_key(&key).await.expect("key");
    store.put_user_policy(&a, "dev", "push", "{3}").await.expect("put");
    assert!(
        store.delete_user_policy(&a, "dev", "push").await.expect("delete"),
        "an existing policy is deleted"
    );
    assert_eq!(store.user_policies(&a, "dev").await.expect("list").len(), 1, "and only that one");
    assert!(store.delete_user(&a, "dev").await.expect("delete"));
    assert!(
        !store.delete_user(&a, "dev").await.expect("delete again"),
        "a user deleted is not deleted twice"
    );
    assert_eq!(
        store.get_access_key(&key.access_key_id).await.expect("get"),
        None,
        "the user's keys go with it"
    );
    assert!(store.user_policies(&a, "dev").await.expect("list").is_empty());
    assert!(!store.delete_user_policy(&a, "dev", "pull").await.expect("delete"));
}

async fn policies_are_stored_per_repository_and_registry(store: &dyn MetaStore) {
    let a: AccountId = "111111111111".parse().expect("account");
    let r = repo(store, "policies/x").await;
    assert_eq!(store.repository_policy(&a, &name("policies/x")).await.expect("get"), None);
    assert_eq!(store.set_repository_policy(r, Some("one")).await.expect("set"), None);
    assert_eq!(store.set_repository_policy(r, Some("two")).await.expect("set").as_deref(), Some("one"));
    assert_eq!(store.repository_policy(&a, &name("policies/x")).await.expect("get").as_deref(), Some("two"));
    assert_eq!(store.repository_policy(&a, &name("policies/none")).await.expect("get"), None);
    assert_eq!(store.set_repository_policy(r, None).await.expect("delete").as_deref(), Some("two"));
    assert_eq!(store.repository_policy(&a, &name("policies/x")).await.expect("get"), None);

    assert_eq!(store.registry_policy(&a).await.expect("get"), None);
    store.set_registry_policy(&a, Some("reg")).await.expect("set");
    assert_eq!(store.registry_policy(&a).await.expect("get").as_deref(), Some("reg"));
    assert_eq!(store.registry_scanning(&a).await.expect("get"), None);
    store.set_registry_scanning(&a, "one").await.expect("set");
    store.set_registry_scanning(&a, "two").await.expect("replace");
    assert_eq!(store.registry_scanning(&a).await.expect("get").as_deref(), Some("two"));
    assert_eq!(store.set_registry_policy(&a, None).await.expect("delete").as_deref(), Some("reg"));
    assert_eq!(store.registry_policy(&a).await.expect("get"), None);

    // What an authorization reads, together.
    let facts = store.access_facts(&a, &name("policies/none")).await.expect("facts");
    assert_eq!(facts, crate::AccessFacts::default(), "nothing is known of a missing repository");
    store.set_repository_policy(r, Some("repo")).await.expect("set");
    store.set_registry_policy(&a, Some("reg")).await.expect("set");
    let facts = store.access_facts(&a, &name("policies/x")).await.expect("facts");
    assert_eq!(facts.repository.map(|r| r.id), Some(r));
    assert_eq!(
        (facts.repository_policy.as_deref(), facts.registry_policy.as_deref()),
        (Some("repo"), Some("reg"))
    );
    let missing = store.access_facts(&a, &name("policies/none")).await.expect("facts");
    assert_eq!((missing.repository, missing.repository_policy), (None, None));
    assert_eq!(
        missing.registry_policy.as_deref(),
        Some("reg"),
        "the registry policy holds without the repository"
    );
    let other: AccountId = "222222222222".parse().expect("account");
    assert_eq!(
        store.access_facts(&other, &name("policies/x")).await.expect("facts"),
        crate::AccessFacts::default()
    );
    store.set_repository_policy(r, None).await.expect("delete");
    store.set_registry_policy(&a, None).await.expect("delete");
}

async fn creation_templates_round_trip(store: &dyn MetaStore) {
    let a: AccountId = "111111111111".parse().expect("account");
    let template = crate::CreationTemplate {
        prefix: "mlops/".to_owned(),
        description: Some("ML images".to_owned()),
        settings: RepositorySettings {
            tag_mutability: TagMutability::ImmutableWithExclusion,
            mutability_exclusions: vec!["latest".to_owned()],
            scan_on_push: false,
            encryption: EncryptionType::Aes256,
            kms_key: None,
        },
        resource_tags: vec![("team".to_owned(), "ml".to_owned())],
        repository_policy: Some("{}".to_owned()),
        lifecycle_policy: None,
        applied_for: vec!["CREATE_ON_PUSH".to_owned(), "REPLICATION".to_owned()],
        custom_role_arn: None,
        created_at: 1,
        updated_at: 1,
    };
    store.put_creation_template(&a, &template, false).await.expect("create");
    assert!(matches!(
        store.put_creation_template(&a, &template, false).await,
        Err(MetaError::AlreadyExists(_))
    ));
    let mut root = template.clone();
    root.prefix = "ROOT".to_owned();
    assert!(matches!(store.put_creation_template(&a, &root, true).await, Err(MetaError::NotFound(_))));
    store.put_creation_template(&a, &root, false).await.expect("create root");
    let mut changed = template.clone();
    changed.resource_tags = vec![];
    changed.updated_at = 2;
    store.put_creation_template(&a, &changed, true).await.expect("replace");
    assert_eq!(store.creation_templates(&a).await.expect("list"), vec![root.clone(), changed]);
    assert!(store.delete_creation_template(&a, "ROOT").await.expect("delete"));
    assert!(!store.delete_creation_template(&a, "ROOT").await.expect("delete"));
    assert_eq!(store.creation_templates(&a).await.expect("list").len(), 1);
}

async fn accounts_and_keys(store: &dyn MetaStore) {
    let id: AccountId = "111111111111".parse().expect("account");
    let account = Account { id: id.clone(), name: "dev".to_owned(), created_at: now_millis() };
    store.create_account(&account).await.expect("create account");
    assert!(matches!(store.create_account(&account).await, Err(MetaError::AlreadyExists(_))));
    assert_eq!(store.get_account(&id).await.expect("get"), Some(account));
    assert_eq!(store.get_account(&"999999999999".parse().expect("id")).await.expect("get"), None);

    let key = AccessKey {
        access_key_id: "AKIATESTTESTTEST0001".to_owned(),
        account_id: id,
        user_name: None,
        sealed_secret: vec![9; 8],
        active: true,
        created_at: now_millis(),
    };
    store.create_access_key(&key).await.expect("create key");
    assert_eq!(store.list_access_keys(&key.account_id).await.expect("list"), vec![key.clone()]);
    assert!(store.list_accounts().await.expect("accounts").iter().any(|a| a.id == key.account_id));
    assert_eq!(store.get_access_key(&key.access_key_id).await.expect("get"), Some(key.clone()));
    store.set_access_key_active(&key.access_key_id, false).await.expect("disable");
    let disabled = store.get_access_key(&key.access_key_id).await.expect("get").expect("key");
    assert!(!disabled.active);
    store.delete_access_key(&key.access_key_id).await.expect("delete");
    assert_eq!(store.get_access_key(&key.access_key_id).await.expect("get"), None);
    assert!(matches!(store.delete_access_key(&key.access_key_id).await, Err(MetaError::NotFound(_))));

    let first = store.put_secret_once("token-key", b"one").await.expect("secret");
    let second = store.put_secret_once("token-key", b"two").await.expect("secret");
    assert_eq!((first.as_slice(), second.as_slice()), (&b"one"[..], &b"one"[..]));
}

async fn repositories_are_per_account(store: &dyn MetaStore) {
    let a: AccountId = "111111111111".parse().expect("account");
    let b: AccountId = "222222222222".parse().expect("account");
    store
        .create_account(&Account { id: b.clone(), name: "prod".to_owned(), created_at: 0 })
        .await
        .expect("create account");
    let missing: AccountId = "333333333333".parse().expect("account");
    assert!(matches!(store.ensure_repository(&missing, &name("x/y")).await, Err(MetaError::NotFound(_))));

    let r1 = store.ensure_repository(&a, &name("mlops/base")).await.expect("create");
    let again = store.ensure_repository(&a, &name("mlops/base")).await.expect("again");
    assert_eq!(r1, again, "ensure_repository must be idempotent");
    let r2 = store.ensure_repository(&b, &name("mlops/base")).await.expect("other account");
    assert_ne!(r1.id, r2.id);
    store.ensure_repository(&a, &name("zz")).await.expect("create");
    store.ensure_repository(&a, &name("aa")).await.expect("create");

    let only_a = store
        .list_repositories(std::slice::from_ref(&a), Page { last: None, limit: 100 })
        .await
        .expect("list");
    let names: Vec<_> = only_a.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(names, ["aa", "mlops/base", "zz"]);
    let after = store
        .list_repositories(&[a.clone(), b.clone()], Page { last: Some("111111111111/aa"), limit: 2 })
        .await
        .expect("list");
    let full: Vec<_> = after.iter().map(|r| format!("{}/{}", r.account_id, r.name)).collect();
    assert_eq!(full, ["111111111111/mlops/base", "111111111111/zz"]);
    assert!(store.list_repositories(&[], Page { last: None, limit: 10 }).await.expect("list").is_empty());
    assert_eq!(store.get_repository(&b, &name("aa")).await.expect("get"), None);
}

async fn repo(store: &dyn MetaStore, n: &str) -> i64 {
    let a: AccountId = "111111111111".parse().expect("account");
    store.ensure_repository(&a, &name(n)).await.expect("repository").id
}

async fn blobs_are_stored_once_and_linked_per_repository(store: &dyn MetaStore) {
    let r1 = repo(store, "blobs/one").await;
    let r2 = repo(store, "blobs/two").await;
    let first = store_blob(store, r1, 1).await;
    assert!(matches!(first, BlobCommit::Stored(ref b) if b.location == format!("blobs/up-{r1}-1")));
    // The same digest uploaded into another repository keeps the first copy.
    let second = store_blob(store, r2, 1).await;
    assert!(matches!(second, BlobCommit::AlreadyStored(ref b) if b.location == format!("blobs/up-{r1}-1")));
    assert!(store.get_upload(r2, &format!("up-{r2}-1")).await.expect("get").is_none(), "upload ended");

    let r3 = repo(store, "blobs/three").await;
    assert_eq!(store.repository_blob(r3, &digest(1)).await.expect("get"), None);
    assert!(store.link_blob(r3, &digest(1)).await.expect("mount"));
    assert!(store.repository_blob(r3, &digest(1)).await.expect("get").is_some());
    assert!(store.link_blob(r3, &digest(1)).await.expect("mount twice is harmless"));
    assert!(!store.link_blob(r3, &digest(200)).await.expect("mount"), "nothing to link");
    assert!(store.unlink_blob(r3, &digest(1)).await.expect("unlink"));
    assert!(!store.unlink_blob(r3, &digest(1)).await.expect("unlink"));
    assert!(store.repository_blob(r1, &digest(1)).await.expect("get").is_some(), "others keep it");
    assert!(store.get_blob(&digest(1)).await.expect("get").is_some());
}

async fn a_blob_has_one_wrap_per_key_and_they_go_with_it(store: &dyn MetaStore) {
    let r = repo(store, "wraps/one").await;
    let BlobCommit::Stored(stored) = store_blob(store, r, 60).await else { panic!("a new blob is stored") };
    assert_eq!(stored.keys, blob(60, "").keys, "the upload's wrap is recorded");
    let customer =
        WrappedKey { key_id: "arn:aws:kms:us-east-1:111111111111:key/k".to_owned(), wrapped: vec![7; 8] };
    let location = stored.location.clone();
    assert!(store.add_blob_key(&digest(60), &location, &customer).await.expect("add"));
    assert!(
        !store.add_blob_key(&digest(60), "blobs/elsewhere", &customer).await.expect("add"),
        "another copy"
    );
    // A second wrap under the same key changes nothing: the first one still opens the blob.
    let again = WrappedKey { wrapped: vec![8; 8], ..customer.clone() };
    assert!(store.add_blob_key(&digest(60), &location, &again).await.expect("add again"));
    let held = store.repository_blob(r, &digest(60)).await.expect("get").expect("held");
    assert_eq!(held.keys.len(), 2, "{held:?}");
    assert_eq!(held.wrapped_under(&customer.key_id), Some(&customer));
    assert_eq!(held.wrapped_under("local:test").map(|k| k.wrapped.clone()), Some(vec![60; 4]));
    assert_eq!(store.get_blob(&digest(60)).await.expect("get"), Some(held));
    assert!(!store.add_blob_key(&digest(61), &location, &customer).await.expect("add"), "no blob, no wrap");
    assert_eq!(store.get_blob(&digest(61)).await.expect("get"), None);

    // Collected, the blob takes its wraps along: stored again, it has only the new upload's.
    assert!(store.unlink_blob(r, &digest(60)).await.expect("unlink"));
    let gone = store.collect_garbage(now_millis() + 1_000, 100, false).await.expect("collect");
    assert!(gone.blobs.iter().any(|b| b.digest == digest(60) && b.keys.len() == 2), "{gone:?}");
    let BlobCommit::Stored(fresh) = store_blob(store, r, 60).await else { panic!("stored anew") };
    assert_eq!(fresh.keys, blob(60, "").keys);
    store.delete_repository(r, true).await.expect("clean up");
}

async fn a_wrap_goes_once_no_holder_is_under_its_key(store: &dyn MetaStore) {
    let key = "arn:aws:kms:us-east-1:111111111111:key/held";
    let plain = repo(store, "wraps/plain").await;
    let keyed = repo(store, "wraps/keyed").await;
    let settings = RepositorySettings {
        encryption: EncryptionType::Kms,
        kms_key: Some(key.to_owned()),
        ..RepositorySettings::default()
    };
    store.update_repository_settings(keyed, &settings).await.expect("settings");
    let BlobCommit::Stored(stored) = store_blob(store, plain, 80).await else { panic!("stored") };
    let customer = WrappedKey { key_id: key.to_owned(), wrapped: vec![9; 8] };
    assert!(store.add_blob_key(&digest(80), &stored.location, &customer).await.expect("add"));
    assert!(store.link_blob(keyed, &digest(80)).await.expect("link"));
    let later = now_millis() + 1_000;
    assert_eq!(
        store.drop_unneeded_wraps(later, "local:test", 100, false).await.expect("drop"),
        0,
        "both needed"
    );

    // The AES256 holder lets go: the registry key's wrap is unneeded, but not before `before`.
    assert!(store.unlink_blob(plain, &digest(80)).await.expect("unlink"));
    assert_eq!(
        store.drop_unneeded_wraps(now_millis() - 60_000, "local:test", 100, false).await.expect("drop"),
        0
    );
    assert_eq!(store.drop_unneeded_wraps(later, "local:test", 100, true).await.expect("count"), 1);
    assert!(store.touch_blob_key(&digest(80), "local:test").await.expect("touch"), "it is still there");
    assert_eq!(store.drop_unneeded_wraps(later, "local:test", 100, false).await.expect("drop"), 1);
    assert!(!store.touch_blob_key(&digest(80), "local:test").await.expect("touch"), "gone");
    let held = store.get_blob(&digest(80)).await.expect("get").expect("the blob stays");
    assert_eq!(held.keys, vec![customer], "only the key of its holder opens it");
    store.delete_repository(keyed, true).await.expect("clean up");
    store.delete_repository(plain, true).await.expect("clean up");
}

async fn a_keys_wraps_are_walked_replaced_only_if_unchanged_and_rewraps_progress(store: &dyn MetaStore) {
    let r = repo(store, "wraps/rewrap").await;
    let key = "arn:aws:kms:us-east-1:111111111111:key/rotated";
    for n in [70, 71, 72] {
        store_blob(store, r, n).await;
        let wrap = WrappedKey { key_id: key.to_owned(), wrapped: vec![n, 1] };
        let location = format!("blobs/up-{r}-{n}");
        assert!(store.add_blob_key(&digest(n), &location, &wrap).await.expect("add"));
    }
    assert_eq!(store.count_key_wraps(key).await.expect("count"), 3);
    let first = store.key_wraps(key, None, 2).await.expect("walk");
    assert_eq!(first, vec![(digest(70), vec![70, 1]), (digest(71), vec![71, 1])]);
    let rest = store.key_wraps(key, Some(&digest(71)), 2).await.expect("walk on");
    assert_eq!(rest, vec![(digest(72), vec![72, 1])]);

    // A wrap is replaced only while it is what the re-wrap read.
    assert!(store.replace_blob_key(&digest(70), key, &[70, 1], &[70, 2]).await.expect("replace"));
    assert!(!store.replace_blob_key(&digest(70), key, &[70, 1], &[70, 3]).await.expect("stale"));
    assert_eq!(store.key_wraps(key, None, 1).await.expect("walk")[0].1, vec![70, 2]);

    assert_eq!(store.key_rewrap(key).await.expect("get"), None);
    store.start_key_rewrap(key, 5_000).await.expect("start");
    let jobs = store.jobs().await.expect("jobs");
    assert!(jobs.iter().any(|j| j.kind == crate::REWRAP_JOB && j.subject == key), "{jobs:?}");
    store.advance_key_rewrap(key, 5_000, Some(&digest(71)), 2, None).await.expect("advance");
    store.advance_key_rewrap(key, 5_000, Some(&digest(72)), 1, Some(6_000)).await.expect("finish");
    let done = store.key_rewrap(key).await.expect("get").expect("recorded");
    assert_eq!((done.after, done.rewrapped, done.finished_at), (Some(digest(72)), 3, Some(6_000)));
    // Started over, it walks from the beginning again.
    store.start_key_rewrap(key, 7_000).await.expect("again");
    let again = store.key_rewrap(key).await.expect("get").expect("recorded");
    assert_eq!(
        (again.after.clone(), again.rewrapped, again.finished_at, again.requested_at),
        (None, 0, None, 7_000)
    );
    // A step of the older re-wrap, finishing late, changes nothing of the newer one.
    store.advance_key_rewrap(key, 5_000, Some(&digest(72)), 1, Some(8_000)).await.expect("stale");
    assert_eq!(store.key_rewrap(key).await.expect("get"), Some(again));
    store.delete_repository(r, true).await.expect("clean up");
}

async fn stored_bytes_count_per_repository_per_account_and_in_all(store: &dyn MetaStore) {
    let before = store.stored_bytes().await.expect("bytes");
    let a: AccountId = "111111111111".parse().expect("account");
    let (one, two) = (repo(store, "bytes/one").await, repo(store, "bytes/two").await);
    let empty = repo(store, "bytes/empty").await;
    // Blob 50 (500 bytes) in both repositories, blob 51 (510 bytes) in one.
    store_blob(store, one, 50).await;
    store_blob(store, two, 50).await;
    store_blob(store, one, 51).await;
    let after = store.stored_bytes().await.expect("bytes");
    let of = |name: &str| {
        after.repositories.iter().find(|(acc, n, _)| *acc == a && n.as_str() == name).map(|r| r.2)
    };
    assert_eq!((of("bytes/one"), of("bytes/two"), of("bytes/empty")), (Some(1010), Some(500), Some(0)));
    let account = |s: &crate::StoredBytes| s.accounts.iter().find(|(acc, _)| *acc == a).map_or(0, |r| r.1);
    assert_eq!(account(&after) - account(&before), 1010, "each blob once per account");
    assert_eq!(after.total - before.total, 1010, "each blob once in all");
    for r in [one, two, empty] {
        store.delete_repository(r, true).await.expect("clean up");
    }
}

async fn uploads_advance_only_from_their_current_length(store: &dyn MetaStore) {
    let r = repo(store, "uploads/x").await;
    // The cap counts every open upload of the account, across its repositories.
    let other = repo(store, "uploads/other").await;
    let open_before = {
        let mut n = 0;
        while store
            .create_upload(&upload(&format!("u-cap-{n}"), if n % 2 == 0 { r } else { other }), 3)
            .await
            .is_ok()
        {
            n += 1;
            assert!(n <= 3, "the cap of 3 was not enforced");
        }
        n
    };
    assert!(open_before <= 3);
    assert!(matches!(
        store.create_upload(&upload("u-cap-over", other), 3).await,
        Err(MetaError::LimitExceeded(_))
    ));
    for n in 0..open_before {
        store.delete_upload(&format!("u-cap-{n}")).await.expect("delete");
    }
    store.create_upload(&upload("u-adv", r), u64::MAX).await.expect("create");
    let parts = LayerParts { last: Some(10), short: None };
    store.advance_upload("u-adv", 0, 10, parts).await.expect("advance");
    let moved = store.advance_upload("u-adv", 0, 20, LayerParts { last: Some(20), short: Some(10) }).await;
    assert!(matches!(moved, Err(MetaError::UploadMoved { .. })));
    let read = store.get_upload(r, "u-adv").await.expect("get").expect("upload");
    assert_eq!((read.length, read.parts), (10, parts), "length and parts change together or not at all");
    let parts = LayerParts { last: Some(7), short: Some(10) };
    store.advance_upload("u-adv", 10, 17, parts).await.expect("advance");
    assert_eq!(store.get_upload(r, "u-adv").await.expect("get").map(|u| u.parts), Some(parts));
    let other = repo(store, "uploads/y").await;
    assert!(store.get_upload(other, "u-adv").await.expect("get").is_none(), "uploads are per repository");
    // The wall clock read here, not through the store's helper: the store must stamp real times.
    let wall_clock =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let cutoff = i64::try_from(wall_clock).unwrap_or(i64::MAX) + 1;
    assert_eq!(store.stale_uploads(cutoff, 10).await.expect("stale"), ["u-adv"]);
    assert!(
        store.stale_uploads(cutoff - 60_000, 10).await.expect("stale").is_empty(),
        "recent upload is not stale"
    );
    store.delete_upload("u-adv").await.expect("delete");
    assert!(store.get_upload(r, "u-adv").await.expect("get").is_none());
}

async fn manifests_require_their_references(store: &dyn MetaStore) {
    let r = repo(store, "manifests/x").await;
    store_blob(store, r, 10).await; // config
    store_blob(store, r, 11).await; // manifest content
    let image = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(11, None),
        blobs: vec![digest(10), digest(12)],
        manifests: vec![],
    };
    match store.put_manifest(r, &image, Some(&tag("v1")), true, 1000).await {
        Err(MetaError::MissingReferences { blobs, manifests }) => {
            assert_eq!((blobs, manifests), (vec![digest(12)], vec![]));
        }
        other => panic!("expected missing references, got {other:?}"),
    }
    assert_eq!(store.get_manifest(r, &digest(11)).await.expect("get"), None, "nothing half-written");
    assert_eq!(store.resolve_tag(r, &tag("v1")).await.expect("get"), None);

    store_blob(store, r, 12).await;
    store.put_manifest(r, &image, Some(&tag("v1")), true, 1000).await.expect("put");
    let got = store.resolve_tag(r, &tag("v1")).await.expect("get").expect("tagged");
    assert_eq!(got.digest, digest(11));

    // An index needs its children as manifests of the same repository.
    store_blob(store, r, 13).await;
    let index = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(13, None),
        blobs: vec![],
        manifests: vec![digest(11), digest(14)],
    };
    match store.put_manifest(r, &index, None, true, 1000).await {
        Err(MetaError::MissingReferences { blobs, manifests }) => {
            assert_eq!((blobs, manifests), (vec![], vec![digest(14)]), "children are told apart from blobs");
        }
        other => panic!("expected missing references, got {other:?}"),
    }
    let index = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(13, None),
        blobs: vec![],
        manifests: vec![digest(11)],
    };
    store.put_manifest(r, &index, None, true, 1000).await.expect("index");
    // A child stays while an index lists it; once the index is gone, it goes.
    assert_eq!(
        store.delete_manifest(r, &digest(11)).await.expect("delete"),
        ManifestDeletion::ListedBy(digest(13))
    );
    assert_eq!(store.resolve_tag(r, &tag("v1")).await.expect("get").map(|m| m.digest), Some(digest(11)));

    // Which blobs an image of the repository uses.
    store_blob(store, r, 15).await;
    for (n, used) in [(10, true), (12, true), (11, true), (13, true), (15, false), (16, false)] {
        assert_eq!(store.blob_in_use(r, &digest(n)).await.expect("in use"), used, "blob {n}");
    }
    let other = repo(store, "manifests/y").await;
    assert!(!store.blob_in_use(other, &digest(10)).await.expect("in use"), "use is per repository");

    assert_eq!(store.delete_manifest(r, &digest(13)).await.expect("delete"), ManifestDeletion::Deleted);
    assert_eq!(store.delete_manifest(r, &digest(11)).await.expect("delete"), ManifestDeletion::Deleted);
}

async fn images_have_at_most_max_tags(store: &dyn MetaStore) {
    let r = repo(store, "tag-limit/x").await;
    store_blob(store, r, 60).await;
    store_blob(store, r, 61).await;
    let image = |n: u8| NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(n, None),
        blobs: vec![],
        manifests: vec![],
    };
    for t in ["a", "b", "c"] {
        store.put_manifest(r, &image(60), Some(&tag(t)), true, 3).await.expect("put");
    }
    let over = store.put_manifest(r, &image(60), Some(&tag("d")), true, 3).await;
    assert!(matches!(over, Err(MetaError::LimitExceeded(_))), "{over:?}");
    assert_eq!(store.resolve_tag(r, &tag("d")).await.expect("get"), None, "nothing half-written");
    store
        .put_manifest(r, &image(60), Some(&tag("a")), true, 3)
        .await
        .expect("a tag it has already is no new tag");
    store.put_manifest(r, &image(60), None, true, 3).await.expect("no tag at all");
    store.put_manifest(r, &image(61), Some(&tag("c")), true, 3).await.expect("a tag moves away");
    store.put_manifest(r, &image(60), Some(&tag("d")), true, 3).await.expect("room again");
    assert_eq!(store.manifest_tags(r, &digest(60)).await.expect("tags"), ["a", "b", "d"]);
}

async fn tags_move_list_in_order_and_delete(store: &dyn MetaStore) {
    let r = repo(store, "tags/x").await;
    store_blob(store, r, 20).await;
    store_blob(store, r, 21).await;
    for t in ["b", "a", "c"] {
        let m = NewManifest {
            content: blob_for_manifest(),
            content_written: true,
            record: manifest(20, None),
            blobs: vec![],
            manifests: vec![],
        };
        store.put_manifest(r, &m, Some(&tag(t)), true, 1000).await.expect("put");
    }
    let m = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(21, None),
        blobs: vec![],
        manifests: vec![],
    };
    store.put_manifest(r, &m, Some(&tag("b")), true, 1000).await.expect("move tag");
    assert_eq!(store.resolve_tag(r, &tag("b")).await.expect("get").map(|m| m.digest), Some(digest(21)));
    let m = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(20, None),
        blobs: vec![],
        manifests: vec![],
    };
    assert!(
        matches!(
            store.put_manifest(r, &m, Some(&tag("b")), false, 1000).await,
            Err(MetaError::AlreadyExists(_))
        ),
        "an immutable tag moved"
    );
    assert_eq!(store.resolve_tag(r, &tag("b")).await.expect("get").map(|m| m.digest), Some(digest(21)));
    store.put_manifest(r, &m, Some(&tag("fresh")), false, 1000).await.expect("a new tag may be created");
    assert!(store.delete_tag(r, &tag("fresh")).await.expect("delete"));
    let all = store.list_tags(r, Page { last: None, limit: 10 }).await.expect("list");
    assert_eq!(all, ["a", "b", "c"]);
    let page = store.list_tags(r, Page { last: Some("a"), limit: 1 }).await.expect("list");
    assert_eq!(page, ["b"]);
    assert!(store.delete_tag(r, &tag("a")).await.expect("delete"));
    assert!(!store.delete_tag(r, &tag("a")).await.expect("delete"));
    assert!(store.get_manifest(r, &digest(20)).await.expect("get").is_some(), "manifest stays");
}

async fn referrers_and_manifest_deletion(store: &dyn MetaStore) {
    let r = repo(store, "refs/x").await;
    for n in [30, 31, 32] {
        store_blob(store, r, n).await;
    }
    let subject = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(30, None),
        blobs: vec![],
        manifests: vec![],
    };
    store.put_manifest(r, &subject, Some(&tag("v1")), true, 1000).await.expect("put");
    for n in [32, 31] {
        let m = NewManifest {
            content: blob_for_manifest(),
            content_written: true,
            record: manifest(n, Some(digest(30))),
            blobs: vec![],
            manifests: vec![],
        };
        store.put_manifest(r, &m, None, true, 1000).await.expect("referrer");
    }
    let refs = store.referrers(r, &digest(30)).await.expect("referrers");
    assert_eq!(refs.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(), vec![digest(31), digest(32)]);

    assert_eq!(store.delete_manifest(r, &digest(30)).await.expect("delete"), ManifestDeletion::Deleted);
    assert_eq!(store.delete_manifest(r, &digest(30)).await.expect("delete"), ManifestDeletion::NotFound);
    assert_eq!(store.resolve_tag(r, &tag("v1")).await.expect("get"), None, "its tags go with it");
    assert_eq!(store.repository_blob(r, &digest(30)).await.expect("get"), None, "its content unlinked");
}

async fn repositories_keep_their_settings_and_delete_only_when_asked(store: &dyn MetaStore) {
    let a: AccountId = "111111111111".parse().expect("account");
    let settings = RepositorySettings {
        tag_mutability: TagMutability::ImmutableWithExclusion,
        mutability_exclusions: vec!["latest".to_owned(), "dev-*".to_owned()],
        scan_on_push: true,
        encryption: EncryptionType::Kms,
        kms_key: Some("arn:aws:kms:us-east-1:111111111111:key/k".to_owned()),
    };
    let tags = [("team".to_owned(), "ml".to_owned())];
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#;
    let lifecycle = r#"{"rules":[]}"#;
    let new = NewRepository {
        settings: &settings,
        tags: &tags,
        policy: Some(policy),
        lifecycle_policy: Some(lifecycle),
    };
    let created = store.create_repository(&a, &name("settings/x"), &new).await.expect("create");
    assert_eq!(created.settings, settings);
    assert_eq!(
        store.repository_policy(&a, &name("settings/x")).await.expect("policy").as_deref(),
        Some(policy),
        "the policy is recorded with the repository"
    );
    let stored = store.lifecycle_policy(created.id).await.expect("lifecycle").expect("recorded");
    assert_eq!((stored.text.as_str(), stored.last_evaluated_at), (lifecycle, None));
    let plain = NewRepository {
        settings: &RepositorySettings::default(),
        tags: &[],
        policy: None,
        lifecycle_policy: None,
    };
    let again = store.create_repository(&a, &name("settings/x"), &plain).await;
    assert!(matches!(again, Err(MetaError::AlreadyExists(_))));
    let missing: AccountId = "444444444444".parse().expect("account");
    let without_tags = NewRepository { tags: &[], policy: None, lifecycle_policy: None, ..new };
    let orphan = store.create_repository(&missing, &name("x/y"), &without_tags).await;
    assert!(matches!(orphan, Err(MetaError::NotFound(_))));
    let read = store.get_repository(&a, &name("settings/x")).await.expect("get").expect("exists");
    assert_eq!(read.settings, settings, "settings survive a read back");
    assert_eq!(store.repository_by_id(created.id).await.expect("by id"), Some(read.clone()));
    assert_eq!(store.repository_by_id(-1).await.expect("by id"), None);
    assert_eq!(store.repository_tags(created.id).await.expect("tags"), tags);
    store
        .tag_repository(
            created.id,
            &[("team".to_owned(), "ops".to_owned()), ("env".to_owned(), "dev".to_owned())],
            3,
        )
        .await
        .expect("tag");
    assert_eq!(
        store.repository_tags(created.id).await.expect("tags"),
        [("env".to_owned(), "dev".to_owned()), ("team".to_owned(), "ops".to_owned())]
    );
    let over = [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())];
    assert!(matches!(store.tag_repository(created.id, &over, 3).await, Err(MetaError::LimitExceeded(_))));
    assert_eq!(store.repository_tags(created.id).await.expect("tags").len(), 2, "nothing half-written");
    store.tag_repository(created.id, &over[..1], 3).await.expect("exactly the most a repository may have");
    store.untag_repository(created.id, &["a".to_owned()]).await.expect("untag");
    store.untag_repository(created.id, &["env".to_owned(), "absent".to_owned()]).await.expect("untag");
    assert_eq!(
        store.repository_tags(created.id).await.expect("tags"),
        [("team".to_owned(), "ops".to_owned())]
    );
    let changed = RepositorySettings {
        tag_mutability: TagMutability::Mutable,
        mutability_exclusions: vec![],
        ..settings.clone()
    };
    store.update_repository_settings(created.id, &changed).await.expect("update");
    let read = store.get_repository(&a, &name("settings/x")).await.expect("get").expect("exists");
    assert_eq!(read.settings, changed);
    store.update_repository_settings(created.id, &settings).await.expect("restore");
    let pushed = store.ensure_repository(&a, &name("settings/x")).await.expect("ensure");
    assert_eq!(pushed.settings, settings, "create-on-push keeps an existing repository's settings");

    // A repository holding an image is deleted only with force; its uploads are reported.
    let r = created.id;
    store_blob(store, r, 40).await;
    let m = NewManifest {
        content: blob_for_manifest(),
        content_written: true,
        record: manifest(40, None),
        blobs: vec![],
        manifests: vec![],
    };
    store.put_manifest(r, &m, Some(&tag("v1")), true, 1000).await.expect("put");
    store.create_upload(&upload("u-del", r), u64::MAX).await.expect("upload");
    assert!(matches!(store.delete_repository(r, false).await, Err(MetaError::NotEmpty(_))));
    assert_eq!(store.delete_repository(r, true).await.expect("force delete"), ["u-del"]);
    assert_eq!(store.get_repository(&a, &name("settings/x")).await.expect("get"), None);
    assert!(store.get_blob(&digest(40)).await.expect("get").is_some(), "stored bytes outlive the repository");

    let empty = store.create_repository(&a, &name("settings/empty"), &without_tags).await.expect("create");
    assert_eq!(store.delete_repository(empty.id, false).await.expect("delete empty"), Vec::<String>::new());
}

async fn images_list_with_their_tags_in_pages(store: &dyn MetaStore) {
    let r = repo(store, "images/x").await;
    for n in [50, 51, 52] {
        store_blob(store, r, n).await;
    }
    let put = |n: u8, t: Option<&'static str>| {
        let m = NewManifest {
            content: blob_for_manifest(),
            content_written: true,
            record: manifest(n, None),
            blobs: vec![],
            manifests: vec![],
        };
        async move { store.put_manifest(r, &m, t.map(tag).as_ref(), true, 1000).await.expect("put") }
    };
    put(50, Some("b")).await;
    put(50, Some("a")).await;
    put(51, None).await;
    put(52, Some("c")).await;

    let all = store
        .describe_images(r, any(TagFilter::Any), Page { last: None, limit: 10 })
        .await
        .expect("describe");
    let shape: Vec<(Digest, Vec<String>)> =
        all.iter().map(|d: &ImageDetail| (d.record.digest.clone(), d.tags.clone())).collect();
    assert_eq!(
        shape,
        vec![
            (digest(50), vec!["a".to_owned(), "b".to_owned()]),
            (digest(51), vec![]),
            (digest(52), vec!["c".to_owned()]),
        ]
    );
    assert_eq!(all[0].record.image_size, 350);
    let untagged = store
        .describe_images(r, any(TagFilter::Untagged), Page { last: None, limit: 10 })
        .await
        .expect("describe");
    assert_eq!(untagged.iter().map(|d| d.record.digest.clone()).collect::<Vec<_>>(), vec![digest(51)]);
    let first = digest(50).to_string();
    let after = store
        .describe_images(r, any(TagFilter::Tagged), Page { last: Some(&first), limit: 10 })
        .await
        .expect("page");
    assert_eq!(after.iter().map(|d| d.record.digest.clone()).collect::<Vec<_>>(), vec![digest(52)]);

    let ids = store.list_images(r, any(TagFilter::Any), None, 10).await.expect("list");
    assert_eq!(
        ids,
        vec![
            (digest(50), Some("a".to_owned())),
            (digest(50), Some("b".to_owned())),
            (digest(51), None),
            (digest(52), Some("c".to_owned())),
        ]
    );
    let d50 = digest(50);
    let page = store.list_images(r, any(TagFilter::Any), Some((&d50, "a")), 2).await.expect("page");
    assert_eq!(page, vec![(digest(50), Some("b".to_owned())), (digest(51), None)]);
    let tagged = store.list_images(r, any(TagFilter::Tagged), None, 10).await.expect("tagged");
    assert_eq!(tagged.len(), 3);
    assert_eq!(store.manifest_tags(r, &digest(50)).await.expect("tags"), ["a", "b"]);

    store.record_pull(r, &digest(52), 12_345).await.expect("pull");
    assert_eq!(
        store.get_manifest(r, &digest(52)).await.expect("get").and_then(|m| m.last_pulled_at),
        Some(12_345)
    );
}
