//! Service-level tests of behaviour no HTTP request can reach directly.

use std::time::Duration;

use bytes::Bytes;

use crate::{BootstrapCredentials, ByteStream, Caller, Registry, RegistryError, RepoPath, Settings};

async fn registry() -> (Registry, Caller, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open_embedded(dir.path(), Settings::default()).await.expect("open");
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
