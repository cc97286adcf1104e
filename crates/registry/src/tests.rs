//! Service-level tests of behaviour no HTTP request can reach directly.

use std::time::Duration;

use bytes::Bytes;

use crate::{
    BootstrapCredentials, ByteStream, Caller, ImageIdInput, Registry, RegistryError, RepoPath, Settings,
};

async fn registry() -> (Registry, Caller, tempfile::TempDir) {
    registry_with(Settings::default()).await
}

async fn registry_with(settings: Settings) -> (Registry, Caller, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open_embedded(dir.path(), settings).await.expect("open");
    let credentials = BootstrapCredentials {
        access_key_id: "AKIASERVICETEST00001".to_owned(),
        secret_access_key: "service-test-secret-00000000000000000000".to_owned(),
    };
    registry
        .bootstrap(&"000000000000".parse().expect("account"), Some(credentials))
        .await
        .expect("bootstrap");
    let token = registry.issue_token("AKIASERVICETEST00001").await.expect("token");
    let caller = registry.authenticate_basic("AWS", &token.password).await.expect("caller");
    (registry, caller, dir)
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(futures_util::stream::once(async move { Ok(Bytes::from_static(bytes)) }))
}

#[tokio::test]
async fn abandoned_uploads_expire_with_their_staged_bytes() {
    let (registry, caller, dir) = registry().await;
    let repo: RepoPath = "000000000000/expiry/test".parse().expect("repo");
    let upload = registry.start_upload(&caller, &repo).await.expect("start");
    registry.upload_chunk(&caller, &repo, &upload.id, None, body(b"some bytes")).await.expect("chunk");
    let staged = dir.path().join("uploads").join(&upload.id);
    assert!(staged.exists());

    assert_eq!(registry.expire_uploads(Duration::from_secs(3600)).await.expect("expire"), 0, "too young");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(registry.expire_uploads(Duration::from_millis(1)).await.expect("expire"), 1);
    assert!(!staged.exists(), "staged bytes left behind");
    let status = registry.upload_status(&caller, &repo, &upload.id).await;
    assert!(matches!(status, Err(RegistryError::UploadUnknown(_))), "{status:?}");
}

#[tokio::test]
async fn tokens_die_with_their_key() {
    let (registry, _, _dir) = registry().await;
    let token = registry.issue_token("AKIASERVICETEST00001").await.expect("token");
    assert!(registry.authenticate_basic("AWS", &token.password).await.is_ok());
    registry.meta.set_access_key_active("AKIASERVICETEST00001", false).await.expect("disable");
    assert!(matches!(
        registry.authenticate_basic("AWS", &token.password).await,
        Err(RegistryError::Unauthenticated(_))
    ));
    assert!(registry.issue_token("AKIASERVICETEST00001").await.is_err(), "a disabled key gets no token");
}

#[tokio::test]
async fn a_second_start_keeps_the_owner_and_the_token_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owner = "000000000000".parse().expect("account");
    let first = Registry::open_embedded(dir.path(), Settings::default()).await.expect("open");
    let created = first.bootstrap(&owner, None).await.expect("bootstrap").expect("created once");
    let token = first.issue_token(&created.access_key_id).await.expect("token");
    first.close().await;

    let second = Registry::open_embedded(dir.path(), Settings::default()).await.expect("reopen");
    assert!(second.bootstrap(&owner, None).await.expect("bootstrap").is_none(), "bootstrapped twice");
    assert!(second.authenticate_basic("AWS", &token.password).await.is_ok(), "token key changed on restart");
}

// ---------------------------------------------------------------------------------------------
// The ECR layer API and image rules.

use berth_core::{Digest, EncryptionType, RepositorySettings, Tag};

use crate::limits::{MAX_LAYER_PART_BYTES, MAX_TAGS_PER_IMAGE, MIN_LAYER_PART_BYTES};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha256(bytes: &[u8]) -> Digest {
    berth_blob::Hasher::digest_of(berth_core::DigestAlgorithm::Sha256, bytes)
}

pub(crate) async fn ecr_repository(registry: &Registry, caller: &Caller, name: &str) -> RepoPath {
    let repo: RepoPath = format!("000000000000/{name}").parse().expect("repo");
    registry.create_repository(caller, &repo, &RepositorySettings::default(), &[]).await.expect("create");
    repo
}

/// Uploads `parts` through the ECR layer API; returns the upload id.
async fn upload_parts(registry: &Registry, caller: &Caller, repo: &RepoPath, parts: &[&[u8]]) -> String {
    let id = registry.initiate_layer_upload(caller, repo).await.expect("initiate").id;
    let mut first = 0u64;
    for part in parts {
        let last = first + part.len() as u64 - 1;
        registry
            .upload_layer_part(caller, repo, &id, first, last, Bytes::copy_from_slice(part))
            .await
            .expect("part");
        first = last + 1;
    }
    id
}

fn image_manifest(config: (&Digest, usize), layer: (&Digest, usize), n: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}],"annotations":{{"n":"{n}"}}}}"#,
        config.0, config.1, layer.0, layer.1
    ))
}

/// A repository holding a config and a layer, uploaded through the layer API; their digests.
async fn with_layers(registry: &Registry, caller: &Caller, name: &str) -> (RepoPath, Digest, Digest) {
    let repo = ecr_repository(registry, caller, name).await;
    let mut digests = Vec::new();
    for bytes in [&br#"{"os":"linux"}"#[..], &b"layer bytes"[..]] {
        let id = upload_parts(registry, caller, &repo, &[bytes]).await;
        let digest = sha256(bytes);
        registry.complete_layer_upload(caller, &repo, &id, &digest).await.expect("complete");
        digests.push(digest);
    }
    let layer = digests.pop().expect("layer");
    let config = digests.pop().expect("config");
    (repo, config, layer)
}

#[tokio::test]
async fn ecr_parts_other_than_the_last_must_be_at_least_the_minimum() {
    let (registry, caller, _dir) = registry().await;
    let repo = ecr_repository(&registry, &caller, "parts/app").await;
    let min = MIN_LAYER_PART_BYTES as usize;

    // A short part followed by another: refused when the upload completes.
    let id = upload_parts(&registry, &caller, &repo, &[b"short", b"more"]).await;
    let done = registry.complete_layer_upload(&caller, &repo, &id, &sha256(b"shortmore")).await;
    match done {
        Err(RegistryError::LayerPartTooSmall(m)) => {
            assert!(m.contains(&MIN_LAYER_PART_BYTES.to_string()) && m.contains("5-byte"), "{m}");
        }
        other => panic!("expected LayerPartTooSmall, got {other:?}"),
    }
    let check =
        registry.check_layers(&caller, &repo, &[sha256(b"shortmore").to_string()]).await.expect("check");
    assert!(matches!(check[0], crate::LayerCheck::Missing { .. }), "nothing was stored: {check:?}");

    // One short part alone, and a full part followed by a short last part, are fine.
    let id = upload_parts(&registry, &caller, &repo, &[b"only part"]).await;
    registry.complete_layer_upload(&caller, &repo, &id, &sha256(b"only part")).await.expect("one part");
    let big = vec![7u8; min];
    let id = upload_parts(&registry, &caller, &repo, &[&big, b"tail"]).await;
    let whole = [big.as_slice(), b"tail"].concat();
    registry.complete_layer_upload(&caller, &repo, &id, &sha256(&whole)).await.expect("full then short");

    // The rule survives a restart of the registry's memory: it is kept with the upload.
    let id = upload_parts(&registry, &caller, &repo, &[b"a", b"b"]).await;
    registry.uploads.forget(&id);
    let done = registry.complete_layer_upload(&caller, &repo, &id, &sha256(b"ab")).await;
    assert!(matches!(done, Err(RegistryError::LayerPartTooSmall(_))), "{done:?}");

    // OCI chunks are not held to it.
    let upload = registry.start_upload(&caller, &repo).await.expect("start");
    for chunk in [&b"small "[..], b"oci ", b"chunks"] {
        let body: ByteStream =
            Box::pin(futures_util::stream::once(async move { Ok(Bytes::from_static(chunk)) }));
        registry.upload_chunk(&caller, &repo, &upload.id, None, body).await.expect("chunk");
    }
    let digest = sha256(b"small oci chunks");
    registry.complete_upload(&caller, &repo, &upload.id, &digest, None, None).await.expect("OCI upload");
}

#[tokio::test]
async fn ecr_parts_are_at_most_the_maximum_and_continue_the_upload() {
    let (registry, caller, _dir) = registry().await;
    let repo = ecr_repository(&registry, &caller, "parts/app").await;
    let id = registry.initiate_layer_upload(&caller, &repo).await.expect("initiate").id;

    let too_big = Bytes::from(vec![1u8; MAX_LAYER_PART_BYTES as usize + 1]);
    let last = too_big.len() as u64 - 1;
    match registry.upload_layer_part(&caller, &repo, &id, 0, last, too_big).await {
        Err(RegistryError::LimitExceeded(m)) => assert!(m.contains(&MAX_LAYER_PART_BYTES.to_string()), "{m}"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(registry.upload_status(&caller, &repo, &id).await.expect("status").length, 0, "unchanged");

    let at_most = Bytes::from(vec![2u8; MAX_LAYER_PART_BYTES as usize]);
    let last = at_most.len() as u64 - 1;
    registry.upload_layer_part(&caller, &repo, &id, 0, last, at_most).await.expect("the largest part");

    let gap =
        registry.upload_layer_part(&caller, &repo, &id, last + 2, last + 4, Bytes::from_static(b"abc")).await;
    match gap {
        Err(RegistryError::InvalidLayerPart(part)) => {
            assert_eq!(part.last_valid_byte, last as i64);
            assert_eq!((part.upload_id.as_str(), part.repository_name.as_str()), (id.as_str(), "parts/app"));
            assert_eq!(part.registry_id, "000000000000");
        }
        other => panic!("expected InvalidLayerPart, got {other:?}"),
    }
    let span =
        registry.upload_layer_part(&caller, &repo, &id, last + 1, last + 9, Bytes::from_static(b"abc")).await;
    assert!(matches!(span, Err(RegistryError::InvalidLayerPart(_))), "{span:?}");
    let fresh = registry.initiate_layer_upload(&caller, &repo).await.expect("initiate").id;
    let overlap = registry.upload_layer_part(&caller, &repo, &fresh, 1, 3, Bytes::from_static(b"abc")).await;
    assert!(
        matches!(&overlap, Err(RegistryError::InvalidLayerPart(part)) if part.last_valid_byte == -1),
        "{overlap:?}"
    );
}

#[tokio::test]
async fn a_wrong_layer_digest_is_an_invalid_layer_on_the_ecr_api_only() {
    let (registry, caller, _dir) = registry().await;
    let repo = ecr_repository(&registry, &caller, "digests/app").await;
    let id = upload_parts(&registry, &caller, &repo, &[b"layer"]).await;
    let wrong = registry.complete_layer_upload(&caller, &repo, &id, &sha256(b"other")).await;
    assert!(matches!(wrong, Err(RegistryError::InvalidLayer(_))), "{wrong:?}");
    registry.complete_layer_upload(&caller, &repo, &id, &sha256(b"layer")).await.expect("the upload stays");

    let upload = registry.start_upload(&caller, &repo).await.expect("start");
    let wrong =
        registry.complete_upload(&caller, &repo, &upload.id, &sha256(b"x"), None, Some(body(b"y"))).await;
    assert!(matches!(wrong, Err(RegistryError::DigestInvalid(_))), "OCI keeps DIGEST_INVALID: {wrong:?}");
}

#[tokio::test]
async fn only_layers_an_image_references_can_be_downloaded() {
    let (registry, caller, _dir) = registry().await;
    let (repo, config, layer) = with_layers(&registry, &caller, "download/app").await;
    let refused = registry.download_token(&caller, &repo, &layer).await;
    assert!(matches!(refused, Err(RegistryError::LayerInaccessible(_))), "{refused:?}");
    let unknown = registry.download_token(&caller, &repo, &sha256(b"never uploaded")).await;
    assert!(matches!(unknown, Err(RegistryError::LayersNotFound(_))), "{unknown:?}");

    let manifest = image_manifest((&config, 14), (&layer, 11), 0);
    registry.put_image(&caller, &repo, manifest, None, None, None).await.expect("put image");
    registry.download_token(&caller, &repo, &layer).await.expect("referenced now");
    registry.download_token(&caller, &repo, &config).await.expect("the config too");
    // The OCI read of the blob never depended on it.
    registry.read_blob(&caller, &repo, &layer, None).await.expect("read");
}

#[tokio::test]
async fn an_index_naming_missing_images_is_told_apart_from_missing_layers() {
    let (registry, caller, _dir) = registry().await;
    let (repo, config, layer) = with_layers(&registry, &caller, "index/app").await;
    let image = image_manifest((&config, 14), (&layer, 11), 0);
    let image_digest = sha256(&image);
    let absent = sha256(b"no such image");
    let index = |children: &[&Digest]| {
        let manifests: Vec<String> = children
            .iter()
            .map(|d| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{}}}"#, image.len()))
            .collect();
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            manifests.join(",")
        ))
    };
    let tag: Tag = "multi".parse().expect("tag");
    let missing =
        registry.put_image(&caller, &repo, index(&[&image_digest, &absent]), None, Some(&tag), None).await;
    match missing {
        Err(RegistryError::ManifestBlobUnknown { blobs, manifests }) => {
            assert!(blobs.is_empty(), "{blobs:?}");
            let mut expected = vec![image_digest.clone(), absent.clone()];
            expected.sort();
            assert_eq!(manifests, expected);
        }
        other => panic!("expected missing images, got {other:?}"),
    }
    let dangling = image_manifest((&config, 14), (&absent, 11), 1);
    let missing = registry.put_image(&caller, &repo, dangling, None, None, None).await;
    match missing {
        Err(RegistryError::ManifestBlobUnknown { blobs, manifests }) => {
            assert_eq!((blobs, manifests), (vec![absent.clone()], vec![]));
        }
        other => panic!("expected missing layers, got {other:?}"),
    }
    registry.put_image(&caller, &repo, image.clone(), None, None, None).await.expect("the child");
    registry
        .put_image(&caller, &repo, index(&[&image_digest]), None, Some(&tag), None)
        .await
        .expect("the index");
}

#[tokio::test]
async fn an_image_has_at_most_max_tags() {
    let (registry, caller, _dir) = registry().await;
    let (repo, config, layer) = with_layers(&registry, &caller, "tags/app").await;
    let manifest = image_manifest((&config, 14), (&layer, 11), 0);
    for i in 0..MAX_TAGS_PER_IMAGE {
        let tag: Tag = format!("t{i}").parse().expect("tag");
        registry.put_image(&caller, &repo, manifest.clone(), None, Some(&tag), None).await.expect("tag");
    }
    let one_more: Tag = "one-more".parse().expect("tag");
    match registry.put_image(&caller, &repo, manifest.clone(), None, Some(&one_more), None).await {
        Err(RegistryError::LimitExceeded(m)) => assert!(m.contains(&MAX_TAGS_PER_IMAGE.to_string()), "{m}"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    let digest = sha256(&manifest);
    let tags = registry.meta.manifest_tags(
        registry.meta.get_repository(&repo.account, &repo.name).await.expect("get").expect("repo").id,
        &digest,
    );
    assert_eq!(tags.await.expect("tags").len(), MAX_TAGS_PER_IMAGE, "nothing half-written");
}

/// A create-on-push template for `prefix` with default settings.
fn push_template(prefix: &str) -> berth_meta::CreationTemplate {
    berth_meta::CreationTemplate {
        prefix: prefix.to_owned(),
        description: None,
        settings: RepositorySettings::default(),
        resource_tags: vec![],
        repository_policy: None,
        lifecycle_policy: None,
        applied_for: vec!["CREATE_ON_PUSH".to_owned()],
        custom_role_arn: None,
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn dual_layer_encryption_and_unusable_keys_create_no_repository() {
    let (registry, caller, _dir) = registry().await;
    let repo: RepoPath = "000000000000/kms/app".parse().expect("repo");
    let account = repo.account.clone();
    let dsse = RepositorySettings { encryption: EncryptionType::KmsDsse, ..RepositorySettings::default() };
    match registry.create_repository(&caller, &repo, &dsse, &[]).await {
        Err(RegistryError::Kms { message, kms_error }) => {
            assert!(message.contains("KMS_DSSE") && message.contains("AES256"), "{message}");
            assert_eq!(kms_error, "UnsupportedOperationException");
        }
        other => panic!("expected Kms, got {other:?}"),
    }
    let template = berth_meta::CreationTemplate { settings: dsse.clone(), ..push_template("kms/") };
    let refused = registry.create_creation_template(&caller, &account, template.clone()).await;
    assert!(matches!(refused, Err(RegistryError::Validation { .. })), "{refused:?}");
    // A template stored before berth refused it does not create a repository on push.
    registry.meta.put_creation_template(&account, &template, false).await.expect("store");
    let pushed = registry.start_upload(&caller, &repo).await;
    assert!(matches!(pushed, Err(RegistryError::Kms { .. })), "{pushed:?}");
    assert!(registry.meta.get_repository(&account, &repo.name).await.expect("get").is_none());
    registry.meta.delete_creation_template(&account, "kms/").await.expect("delete");

    // A template naming a customer key that is disabled: a push creates nothing either.
    let key = registry.admin_create_customer_key(&account, "", Some("alias/t")).await.expect("key");
    registry
        .admin_set_customer_key_state(&account, "alias/t", berth_kms::KeyState::Disabled)
        .await
        .expect("disable");
    let settings = RepositorySettings {
        encryption: EncryptionType::Kms,
        kms_key: Some(key.arn),
        ..RepositorySettings::default()
    };
    let template = berth_meta::CreationTemplate { settings, ..push_template("kms/") };
    registry.create_creation_template(&caller, &account, template).await.expect("a KMS template is stored");
    match registry.start_upload(&caller, &repo).await {
        Err(RegistryError::Kms { kms_error, .. }) => assert_eq!(kms_error, "DisabledException"),
        other => panic!("expected Kms, got {other:?}"),
    }
    assert!(registry.meta.get_repository(&account, &repo.name).await.expect("get").is_none());
}

#[tokio::test]
async fn creation_template_constraints_are_validation_errors() {
    let (registry, caller, _dir) = registry().await;
    let account: berth_core::AccountId = "000000000000".parse().expect("account");
    let template = push_template;
    let bad = registry.create_creation_template(&caller, &account, template("Bad Prefix")).await;
    assert!(matches!(bad, Err(RegistryError::Validation { .. })), "{bad:?}");
    let bad = registry
        .create_creation_template(
            &caller,
            &account,
            berth_meta::CreationTemplate { applied_for: vec!["SOMETIMES".to_owned()], ..template("a/") },
        )
        .await;
    assert!(matches!(bad, Err(RegistryError::Validation { .. })), "{bad:?}");
    let bad = registry
        .create_creation_template(
            &caller,
            &account,
            berth_meta::CreationTemplate { description: Some("d".repeat(257)), ..template("a/") },
        )
        .await;
    assert!(matches!(bad, Err(RegistryError::Validation { .. })), "{bad:?}");

    for i in 0..crate::limits::MAX_CREATION_TEMPLATES {
        registry
            .create_creation_template(&caller, &account, template(&format!("t{i}/")))
            .await
            .expect("create");
    }
    match registry.create_creation_template(&caller, &account, template("one-more/")).await {
        Err(RegistryError::LimitExceeded(m)) => assert!(m.contains("50"), "{m}"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Download URLs: bound to one blob, dead when they expire or when their key stops working.

/// A clock the test moves by hand.
pub(crate) struct TestClock(std::sync::Mutex<std::time::SystemTime>);

impl TestClock {
    pub(crate) fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock");
        *now += by;
    }
}

impl crate::Clock for TestClock {
    fn now(&self) -> std::time::SystemTime {
        *self.0.lock().expect("clock")
    }
}

/// A registry reading the time from a clock the test moves, with an owner key and its caller.
pub(crate) async fn clocked_registry(
    start: std::time::SystemTime,
) -> (Registry, std::sync::Arc<TestClock>, crate::admin::NewAccessKey, Caller, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = std::sync::Arc::new(TestClock(std::sync::Mutex::new(start)));
    let registry = Registry::open_embedded(dir.path(), Settings::default())
        .await
        .expect("open")
        .with_clock(clock.clone());
    let owner: berth_core::AccountId = "000000000000".parse().expect("account");
    registry.bootstrap(&owner, None).await.expect("bootstrap");
    let key = registry.admin_create_key(&owner, None).await.expect("key");
    let caller = registry.caller_for_key(&key.access_key_id).await.expect("caller");
    (registry, clock, key, caller, dir)
}

#[tokio::test]
async fn download_urls_expire_and_die_with_their_key() {
    let (registry, clock, key, caller, _dir) = clocked_registry(std::time::SystemTime::now()).await;
    let (repo, config, layer) = with_layers(&registry, &caller, "download/urls").await;
    let manifest = image_manifest((&config, 14), (&layer, 11), 0);
    registry.put_image(&caller, &repo, manifest, None, None, None).await.expect("image");

    let token = registry.download_token(&caller, &repo, &layer).await.expect("a download URL");
    let valid = || registry.caller_from_download_token(&token, &repo, &layer);
    assert!(valid().await.is_ok(), "fresh");
    let other: RepoPath = "000000000000/download/other".parse().expect("repo");
    assert!(
        registry.caller_from_download_token(&token, &other, &layer).await.is_err(),
        "bound to its repository"
    );
    assert!(registry.caller_from_download_token(&token, &repo, &config).await.is_err(), "bound to its blob");

    clock.advance(crate::DOWNLOAD_URL_LIFETIME - Duration::from_secs(1));
    assert!(valid().await.is_ok(), "a second before it expires");
    clock.advance(Duration::from_secs(1));
    assert!(matches!(valid().await, Err(RegistryError::Unauthenticated(_))), "expired");

    // A URL dies with the key that asked for it: disabled, then deleted.
    let fresh = registry.download_token(&caller, &repo, &layer).await.expect("a new URL");
    assert!(registry.caller_from_download_token(&fresh, &repo, &layer).await.is_ok());
    registry.admin_set_key_active(&key.access_key_id, false).await.expect("disable");
    assert!(registry.caller_from_download_token(&fresh, &repo, &layer).await.is_err(), "key disabled");
    registry.admin_set_key_active(&key.access_key_id, true).await.expect("enable");
    assert!(registry.caller_from_download_token(&fresh, &repo, &layer).await.is_ok(), "key enabled again");
    registry.admin_delete_key(&key.access_key_id).await.expect("delete");
    assert!(registry.caller_from_download_token(&fresh, &repo, &layer).await.is_err(), "key deleted");
}

#[tokio::test]
async fn one_lifecycle_preview_at_a_time_per_repository() {
    let (registry, caller, _dir) = registry().await;
    let repo = ecr_repository(&registry, &caller, "preview/once").await;
    let policy = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;
    let query = crate::PreviewQuery { max_results: 10, ..Default::default() };

    let none = registry.lifecycle_preview(&caller, &repo, &query).await;
    assert!(matches!(none, Err(RegistryError::LifecyclePolicyPreviewNotFound(_))), "{none:?}");
    registry.start_lifecycle_preview(&caller, &repo, Some(policy)).await.expect("first preview");
    let second = registry.start_lifecycle_preview(&caller, &repo, Some(policy)).await;
    assert!(matches!(second, Err(RegistryError::LifecyclePolicyPreviewInProgress(_))), "{second:?}");
    let pending = registry.lifecycle_preview(&caller, &repo, &query).await.expect("pending");
    assert_eq!(pending.status, "IN_PROGRESS");

    let schedule = crate::jobs::JobSchedule::default();
    let job = registry.claim_job("test", Duration::from_secs(60)).await.expect("claim").expect("a job");
    let done = registry.perform_job(&job, &schedule).await.expect("performed");
    registry.finish_job(&job, "test", done).await.expect("finished");
    let complete = registry.lifecycle_preview(&caller, &repo, &query).await.expect("complete");
    assert_eq!((complete.status, complete.results.len()), ("COMPLETE", 0));
    registry.start_lifecycle_preview(&caller, &repo, Some(policy)).await.expect("a new preview once done");
}

// ---------------------------------------------------------------------------------------------
// Secrets: sealed to their key, and never in debug output.

/// The headers of a SigV4 request from `key` at 2026-01-01T00:00:00Z (the signature itself is
/// checked later, against the body).
fn signed_by(key: &str) -> Vec<(String, String)> {
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={key}/20260101/us-east-1/ecr/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
        "0".repeat(64)
    );
    [
        ("authorization", header.as_str()),
        ("content-type", "application/x-amz-json-1.1"),
        ("host", "localhost"),
        ("x-amz-date", "20260101T000000Z"),
        ("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.ListImages"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

#[tokio::test]
async fn a_sealed_secret_opens_only_for_its_own_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new_year = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let clock = std::sync::Arc::new(TestClock(std::sync::Mutex::new(new_year)));
    let registry =
        Registry::open_embedded(dir.path(), Settings::default()).await.expect("open").with_clock(clock);
    let owner: berth_core::AccountId = "000000000000".parse().expect("account");
    registry.bootstrap(&owner, None).await.expect("bootstrap");
    let key = registry.admin_create_key(&owner, None).await.expect("key");
    let pending = registry.begin_sigv4(&signed_by(&key.access_key_id)).await.expect("its own key opens");
    let shown = format!("{pending:?}");
    assert!(shown.contains(&key.access_key_id) && !shown.contains(&key.secret_access_key), "{shown}");

    // Someone who can write the metadata store copies the sealed secret to a key of their own:
    // it does not open there, so the copy authenticates nothing.
    let stored = registry.meta.get_access_key(&key.access_key_id).await.expect("read").expect("stored");
    let copy = berth_meta::AccessKey { access_key_id: "AKIACOPIEDSECRET0001".to_owned(), ..stored };
    registry.meta.create_access_key(&copy).await.expect("planted");
    let refused = registry.begin_sigv4(&signed_by("AKIACOPIEDSECRET0001")).await;
    assert!(refused.is_err(), "a secret sealed for another key opened: {refused:?}");
}

#[test]
fn bootstrap_credentials_show_their_key_and_not_their_secret() {
    let credentials = BootstrapCredentials {
        access_key_id: "AKIASHOWNINLOGS00001".to_owned(),
        secret_access_key: "never-in-any-log-0000000000000000000000".to_owned(),
    };
    let shown = format!("{credentials:?}");
    assert!(shown.contains("AKIASHOWNINLOGS00001") && !shown.contains("never-in-any-log"), "{shown}");
}

#[tokio::test]
async fn an_image_an_index_lists_is_not_deleted_before_the_index() {
    let (registry, caller, _dir) = registry().await;
    let (repo, config, layer) = with_layers(&registry, &caller, "index/children").await;
    let child_bytes = image_manifest((&config, 14), (&layer, 11), 0);
    let child = sha256(&child_bytes);
    let child_tag: Tag = "linux-amd64".parse().expect("tag");
    registry
        .put_image(&caller, &repo, child_bytes.clone(), None, Some(&child_tag), None)
        .await
        .expect("child");
    let index_bytes = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        child_bytes.len()
    ));
    let index = sha256(&index_bytes);
    let multi: Tag = "multi".parse().expect("tag");
    registry.put_image(&caller, &repo, index_bytes, None, Some(&multi), None).await.expect("index");
    let by_digest = |d: &Digest| ImageIdInput { digest: Some(d.to_string()), tag: None };
    let present = |d: Digest| {
        let (registry, caller, repo) = (&registry, &caller, &repo);
        async move { registry.get_manifest(caller, repo, &berth_core::Reference::Digest(d), &[]).await.is_ok() }
    };

    // BatchDeleteImage by digest: refused for that image, as ECR refuses it.
    let (deleted, failures) =
        registry.batch_delete_image(&caller, &repo, &[by_digest(&child)]).await.expect("batch");
    assert!(deleted.is_empty());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].code, "ImageReferencedByManifestList");
    assert!(failures[0].reason.contains(&index.to_string()), "{}", failures[0].reason);
    // The OCI API's DELETE likewise, naming the index.
    match registry.delete_manifest(&caller, &repo, &child).await {
        Err(RegistryError::ListedByIndex { digest, index: by }) => {
            assert_eq!((digest, by), (child.clone(), index.clone()))
        }
        other => panic!("expected a refusal naming the index, got {other:?}"),
    }
    // Its last tag can go; the image stays, untagged, for the index.
    let by_tag = ImageIdInput { digest: None, tag: Some(child_tag.to_string()) };
    let (deleted, failures) = registry.batch_delete_image(&caller, &repo, &[by_tag]).await.expect("batch");
    assert_eq!((deleted.len(), failures.len()), (1, 0));
    assert!(present(child.clone()).await, "the index's child is still there");

    // Once the index is gone, so can the child be.
    let (deleted, _) =
        registry.batch_delete_image(&caller, &repo, &[by_digest(&index)]).await.expect("batch");
    assert_eq!(deleted.len(), 1);
    registry.delete_manifest(&caller, &repo, &child).await.expect("the child, now no index lists it");
    assert!(!present(child).await);
}

#[tokio::test]
async fn a_manifest_naming_more_than_the_configured_references_is_refused_before_any_lookup() {
    let (registry, caller, _dir) =
        registry_with(Settings { max_manifest_references: 2, ..Settings::default() }).await;
    let (repo, config, layer) = with_layers(&registry, &caller, "caps/references").await;
    registry
        .put_image(&caller, &repo, image_manifest((&config, 14), (&layer, 11), 0), None, None, None)
        .await
        .expect("a config and a layer are two references, within the cap");
    // Three references, one of them a layer the registry does not have: the cap answers first,
    // before any reference is looked up.
    let missing = sha256(b"never uploaded");
    let three = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":14}},"layers":[{{"mediaType":"l","digest":"{layer}","size":11}},{{"mediaType":"l","digest":"{missing}","size":5}}]}}"#
    );
    match registry.put_image(&caller, &repo, Bytes::from(three), None, None, None).await {
        Err(RegistryError::ManifestInvalid(e)) => {
            let message = e.to_string();
            assert!(message.contains("at most 2 (limits.max_manifest_references)"), "{message}");
        }
        other => panic!("expected the reference cap's refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_put_in_place_without_its_commit_yet_outlives_a_zero_grace() {
    let (registry, clock, _key, _caller, _dir) = clocked_registry(std::time::SystemTime::now()).await;
    // What an upload's commit does before its metadata transaction: the bytes are in place, and
    // no metadata names them yet.
    registry.blobs.begin_upload("in-flight").await.expect("upload");
    let location = registry.blobs.commit_upload("in-flight").await.expect("in place");
    let orphans = || {
        let registry = &registry;
        async move { registry.collect_garbage(Duration::ZERO, false).await.expect("gc").orphan_files }
    };
    assert_eq!(orphans().await, 0, "a file written moments ago may be a commit on its way");
    clock.advance(crate::gc::ORPHAN_FILE_FLOOR - Duration::from_secs(60));
    assert_eq!(orphans().await, 0, "still within the floor");
    clock.advance(Duration::from_secs(120));
    assert_eq!(orphans().await, 1, "past the floor, a file no metadata names is a crash's leftover");
    assert!(registry.blobs.list_blobs().await.expect("list").iter().all(|f| f.location != location));
}

#[tokio::test]
async fn garbage_collection_counts_then_ends_uploads_abandoned_for_a_day() {
    let (registry, clock, _key, caller, _dir) = clocked_registry(std::time::SystemTime::now()).await;
    let repo = ecr_repository(&registry, &caller, "gc/uploads").await;
    registry.initiate_layer_upload(&caller, &repo).await.expect("upload");
    let grace = Duration::from_secs(3600);
    let uploads = |dry_run| {
        let registry = &registry;
        async move { registry.collect_garbage(grace, dry_run).await.expect("gc").uploads }
    };
    assert_eq!(uploads(true).await, 0, "an upload started now is not abandoned");
    clock.advance(Duration::from_secs(25 * 3600));
    assert_eq!(uploads(true).await, 1, "a dry run counts the upload abandoned for a day");
    assert_eq!(uploads(true).await, 1, "and leaves it");
    assert_eq!(uploads(false).await, 1, "a real pass ends it");
    assert_eq!(uploads(true).await, 0);
}
