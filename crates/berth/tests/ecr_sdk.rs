//! The ECR control plane through the official AWS SDK for Rust (`aws-sdk-ecr`), against the real
//! binary: every operation berth serves, with its successes and its failures as the SDK surfaces
//! them (the operation's modeled exception and its code), the SDK's paginators, and the protocol
//! errors every AWS client must understand.

mod common;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::config::{BehaviorVersion, Region};
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::operation::batch_check_layer_availability::BatchCheckLayerAvailabilityError;
use aws_sdk_ecr::operation::batch_delete_image::BatchDeleteImageError;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
use aws_sdk_ecr::operation::complete_layer_upload::CompleteLayerUploadError;
use aws_sdk_ecr::operation::create_repository::CreateRepositoryError;
use aws_sdk_ecr::operation::create_repository_creation_template::CreateRepositoryCreationTemplateError;
use aws_sdk_ecr::operation::delete_lifecycle_policy::DeleteLifecyclePolicyError;
use aws_sdk_ecr::operation::delete_repository::DeleteRepositoryError;
use aws_sdk_ecr::operation::delete_repository_creation_template::DeleteRepositoryCreationTemplateError;
use aws_sdk_ecr::operation::describe_images::DescribeImagesError;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesError;
use aws_sdk_ecr::operation::get_authorization_token::GetAuthorizationTokenError;
use aws_sdk_ecr::operation::get_download_url_for_layer::GetDownloadUrlForLayerError;
use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;
use aws_sdk_ecr::operation::initiate_layer_upload::InitiateLayerUploadError;
use aws_sdk_ecr::operation::list_image_referrers::ListImageReferrersError;
use aws_sdk_ecr::operation::list_images::ListImagesError;
use aws_sdk_ecr::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_ecr::operation::put_image::PutImageError;
use aws_sdk_ecr::operation::put_image_scanning_configuration::PutImageScanningConfigurationError;
use aws_sdk_ecr::operation::put_image_tag_mutability::PutImageTagMutabilityError;
use aws_sdk_ecr::operation::put_lifecycle_policy::PutLifecyclePolicyError;
use aws_sdk_ecr::operation::tag_resource::TagResourceError;
use aws_sdk_ecr::operation::untag_resource::UntagResourceError;
use aws_sdk_ecr::operation::update_repository_creation_template::UpdateRepositoryCreationTemplateError;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{
    ArtifactStatus, DescribeImagesFilter, EncryptionType, ImageFailureCode, ImageIdentifier,
    ImageScanningConfiguration, ImageTagMutability, ImageTagMutabilityExclusionFilter,
    ImageTagMutabilityExclusionFilterType, LayerAvailability, LayerFailureCode, ListImageReferrersFilter,
    ListImagesFilter, RctAppliedFor, SubjectIdentifier, Tag, TagStatus,
};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use common::*;
use reqwest::Method;

// ---------------------------------------------------------------------------------------------
// The client, and what a call's outcome must be.

/// An ECR client of the official SDK, pointed at berth, signing with the given key.
fn sdk_client(berth: &Berth, key: &str, secret: &str) -> Client {
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&berth.url)
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .http_client(http)
        .build();
    Client::from_conf(config)
}

/// The same client without retries, for the refusals the SDK would otherwise retry
/// (`LimitExceededException` counts as throttling, a 500 as transient).
fn without_retries(ecr: &Client) -> Client {
    let config = ecr.config().to_builder().retry_config(aws_sdk_ecr::config::retry::RetryConfig::disabled());
    Client::from_conf(config.build())
}

/// A fresh registry and an SDK client signing as its owner.
async fn start() -> (Berth, Client) {
    let berth = Berth::start().await;
    let (key, secret) = berth.owner_credentials();
    let ecr = sdk_client(&berth, &key, &secret);
    (berth, ecr)
}

/// The output of a call that must succeed.
#[track_caller]
fn ok<T, E>(result: Result<T, SdkError<E, HttpResponse>>, call: &str) -> T
where
    E: std::error::Error + 'static,
{
    match result {
        Ok(output) => output,
        Err(e) => panic!("{call} failed: {}", DisplayErrorContext(&e)),
    }
}

/// The service error of a call that must fail with an AWS error (a 4xx with an exception name).
#[track_caller]
fn service_error<T, E>(result: Result<T, SdkError<E, HttpResponse>>, expected: &str) -> E
where
    T: Debug,
    E: std::error::Error + 'static,
{
    match result {
        Ok(output) => panic!("expected {expected}, but the call succeeded: {output:?}"),
        Err(SdkError::ServiceError(e)) => {
            let status = e.raw().status().as_u16();
            assert!((400..500).contains(&status), "expected {expected} with a 4xx status, got {status}");
            e.into_err()
        }
        Err(other) => {
            panic!("expected {expected}, but the SDK saw no service error: {}", DisplayErrorContext(&other))
        }
    }
}

/// A call that must fail with `code`, whatever the SDK makes of it.
#[track_caller]
fn refused_with<T, E>(result: Result<T, SdkError<E, HttpResponse>>, code: &str) -> E
where
    T: Debug,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let e = service_error(result, code);
    assert_eq!(e.code(), Some(code), "the SDK surfaced {}", DisplayErrorContext(&e));
    assert!(e.message().is_some_and(|m| !m.is_empty()), "{code} carries no message: {e:?}");
    e
}

/// A call that must fail with `code`, surfaced as the operation's modeled exception `modeled`.
#[track_caller]
fn refused<T, E>(result: Result<T, SdkError<E, HttpResponse>>, code: &str, modeled: fn(&E) -> bool) -> E
where
    T: Debug,
    E: ProvideErrorMetadata + std::error::Error + Debug + 'static,
{
    let e = refused_with(result, code);
    assert!(modeled(&e), "the SDK did not surface {code} as the operation's modeled exception: {e:?}");
    e
}

// ---------------------------------------------------------------------------------------------
// Inputs and fixtures.

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("a tag has a key and a value")
}

fn by_tag(tag: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_tag(tag).build()
}

fn by_digest(digest: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(digest).build()
}

fn wildcard(filter: &str) -> ImageTagMutabilityExclusionFilter {
    ImageTagMutabilityExclusionFilter::builder()
        .filter_type(ImageTagMutabilityExclusionFilterType::Wildcard)
        .filter(filter)
        .build()
        .expect("a filter has a type and a pattern")
}

fn scan_on_push(on: bool) -> ImageScanningConfiguration {
    ImageScanningConfiguration::builder().scan_on_push(on).build()
}

fn arn(name: &str) -> String {
    format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}")
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_secs() as i64
}

/// A digest of the right shape that names nothing stored.
const ABSENT_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// An upload id of the right shape that names no upload.
const ABSENT_UPLOAD: &str = "00000000-0000-4000-8000-000000000000";
/// The smallest part of the layer API, except for the last (5 MiB).
const MIN_PART: usize = 5 * 1024 * 1024;
/// The largest part of the layer API (10 MiB).
const MAX_PART: usize = 10 * 1024 * 1024;

async fn create_repository(ecr: &Client, name: &str) -> aws_sdk_ecr::types::Repository {
    let out = ok(ecr.create_repository().repository_name(name).send().await, "CreateRepository");
    out.repository().cloned().expect("CreateRepository returns the repository")
}

/// Pushes a one-layer image through the OCI API; returns its manifest digest and size.
async fn push_sized(berth: &Berth, name: &str, tag: &str, config: &[u8], layer: &[u8]) -> (String, usize) {
    let path = repo(name);
    let (manifest, digest) = berth.image_manifest(&path, config, layer).await;
    let r = berth.put_manifest(&path, tag, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status(), 201, "manifest push: {}", r.text().await.unwrap_or_default());
    (digest, manifest.len())
}

/// Pushes, by digest, an artifact whose subject is the given manifest; returns its digest.
async fn push_referrer(
    berth: &Berth,
    name: &str,
    subject: (&str, usize),
    artifact_type: &str,
    n: usize,
) -> String {
    let path = repo(name);
    let config = br#"{"kind":"attestation"}"#;
    let layer = format!("attestation {n}").into_bytes();
    let config_digest = berth.push_blob(&path, config).await;
    let layer_digest = berth.push_blob(&path, &layer).await;
    let extra = format!(
        r#","artifactType":"{artifact_type}","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},"annotations":{{"org.example.n":"{n}"}}"#,
        subject.0, subject.1
    );
    let manifest = image_manifest_bytes(&config_digest, config.len(), &layer_digest, layer.len(), &extra);
    let digest = sha256(&manifest);
    let r = berth.put_manifest(&path, &digest, OCI_MANIFEST, &manifest).await;
    assert_eq!(r.status(), 201, "referrer push: {}", r.text().await.unwrap_or_default());
    digest
}

/// Uploads a layer with InitiateLayerUpload, one UploadLayerPart and CompleteLayerUpload.
async fn upload_layer(ecr: &Client, name: &str, layer: &[u8]) -> String {
    let started = ok(ecr.initiate_layer_upload().repository_name(name).send().await, "InitiateLayerUpload");
    let upload = started.upload_id().expect("uploadId").to_owned();
    ok(
        ecr.upload_layer_part()
            .repository_name(name)
            .upload_id(&upload)
            .part_first_byte(0)
            .part_last_byte(layer.len() as i64 - 1)
            .layer_part_blob(Blob::new(layer))
            .send()
            .await,
        "UploadLayerPart",
    );
    let digest = sha256(layer);
    let done = ok(
        ecr.complete_layer_upload()
            .repository_name(name)
            .upload_id(&upload)
            .layer_digests(&digest)
            .send()
            .await,
        "CompleteLayerUpload",
    );
    assert_eq!(done.layer_digest(), Some(digest.as_str()));
    digest
}

// ---------------------------------------------------------------------------------------------
// GetAuthorizationToken

#[tokio::test]
async fn get_authorization_token_logs_in_to_the_oci_api() {
    use base64::Engine;
    let (berth, ecr) = start().await;
    let out = ok(ecr.get_authorization_token().send().await, "GetAuthorizationToken");
    let [data] = out.authorization_data() else { panic!("one authorization entry expected: {out:?}") };
    let token = data.authorization_token().expect("authorizationToken");
    let decoded = base64::engine::general_purpose::STANDARD.decode(token).expect("the token is base64");
    let decoded = String::from_utf8(decoded).expect("the token is text");
    let (user, password) = decoded.split_once(':').expect("the token is user:password");
    assert_eq!(user, "AWS");
    assert_eq!(data.proxy_endpoint(), Some(berth.url.as_str()));
    let expires = data.expires_at().expect("expiresAt").secs();
    let now = now_secs();
    assert!(expires > now + 60 && expires <= now + 12 * 3600 + 60, "expiresAt {expires}, now {now}");

    // The token logs in to the OCI API as docker login would.
    let r = berth.anon(Method::GET, "/v2/").basic_auth(user, Some(password)).send().await.expect("send");
    assert_eq!(r.status(), 200);

    // The deprecated registryIds: one entry for the one registry asked for.
    #[allow(deprecated)]
    let out = ecr.get_authorization_token().registry_ids(ACCOUNT).send().await;
    assert_eq!(ok(out, "GetAuthorizationToken with registryIds").authorization_data().len(), 1);
    #[allow(deprecated)]
    let out = ecr.get_authorization_token().registry_ids("not-an-account").send().await;
    refused(out, "InvalidParameterException", GetAuthorizationTokenError::is_invalid_parameter_exception);
}

// ---------------------------------------------------------------------------------------------
// Repositories

#[tokio::test]
async fn create_repository_applies_its_settings_and_refuses_duplicates_and_bad_input() {
    let (berth, ecr) = start().await;
    let out = ok(
        ecr.create_repository()
            .repository_name("sdk/app")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(wildcard("latest"))
            .image_scanning_configuration(scan_on_push(true))
            .tags(tag("team", "ml"))
            .send()
            .await,
        "CreateRepository",
    );
    let created = out.repository().expect("repository");
    assert_eq!(created.repository_name(), Some("sdk/app"));
    assert_eq!(created.registry_id(), Some(ACCOUNT));
    assert_eq!(created.repository_arn(), Some(arn("sdk/app").as_str()));
    assert_eq!(
        created.repository_uri(),
        Some(format!("127.0.0.1:{}/{ACCOUNT}/sdk/app", berth.port).as_str())
    );
    let created_at = created.created_at().expect("createdAt").secs();
    assert!((created_at - now_secs()).abs() < 300, "createdAt {created_at}");
    assert_eq!(created.image_tag_mutability(), Some(&ImageTagMutability::ImmutableWithExclusion));
    assert_eq!(created.image_tag_mutability_exclusion_filters(), [wildcard("latest")]);
    assert_eq!(created.image_scanning_configuration(), Some(&scan_on_push(true)));
    let encryption = created.encryption_configuration().expect("encryptionConfiguration");
    assert_eq!(encryption.encryption_type(), &EncryptionType::Aes256);

    // The defaults: mutable tags, no scan on push.
    let plain = create_repository(&ecr, "sdk/plain").await;
    assert_eq!(plain.image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    assert_eq!(plain.image_scanning_configuration(), Some(&scan_on_push(false)));

    refused(
        ecr.create_repository().repository_name("sdk/app").send().await,
        "RepositoryAlreadyExistsException",
        CreateRepositoryError::is_repository_already_exists_exception,
    );
    refused(
        ecr.create_repository().repository_name("Not_A_Valid!Name").send().await,
        "InvalidParameterException",
        CreateRepositoryError::is_invalid_parameter_exception,
    );
    let too_many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    refused(
        ecr.create_repository().repository_name("sdk/tagged").set_tags(Some(too_many)).send().await,
        "TooManyTagsException",
        CreateRepositoryError::is_too_many_tags_exception,
    );
    refused(
        ecr.create_repository().repository_name("sdk/tagged").tags(tag("aws:reserved", "v")).send().await,
        "InvalidTagParameterException",
        CreateRepositoryError::is_invalid_tag_parameter_exception,
    );
}

#[tokio::test]
async fn describe_repositories_finds_by_name_and_refuses_unknown_names() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/one").await;
    create_repository(&ecr, "sdk/two").await;

    let out = ok(ecr.describe_repositories().send().await, "DescribeRepositories");
    let names: BTreeSet<_> = out.repositories().iter().filter_map(|r| r.repository_name()).collect();
    assert_eq!(names, BTreeSet::from(["sdk/one", "sdk/two"]));
    assert_eq!(out.next_token(), None);

    let out = ok(ecr.describe_repositories().repository_names("sdk/two").send().await, "by name");
    let [two] = out.repositories() else { panic!("one repository expected: {out:?}") };
    assert_eq!(two.repository_arn(), Some(arn("sdk/two").as_str()));

    refused(
        ecr.describe_repositories().repository_names("sdk/one").repository_names("sdk/none").send().await,
        "RepositoryNotFoundException",
        DescribeRepositoriesError::is_repository_not_found_exception,
    );
    refused(
        ecr.describe_repositories().registry_id("not-an-account").send().await,
        "InvalidParameterException",
        DescribeRepositoriesError::is_invalid_parameter_exception,
    );
}

#[tokio::test]
async fn delete_repository_refuses_a_non_empty_one_unless_forced() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/doomed").await;
    berth.push_image(&repo("sdk/doomed"), "v1", br#"{"os":"linux"}"#, b"layer").await;

    refused(
        ecr.delete_repository().repository_name("sdk/doomed").send().await,
        "RepositoryNotEmptyException",
        DeleteRepositoryError::is_repository_not_empty_exception,
    );
    let out = ok(
        ecr.delete_repository().repository_name("sdk/doomed").force(true).send().await,
        "DeleteRepository with force",
    );
    let deleted = out.repository().expect("the deleted repository");
    assert_eq!(deleted.repository_name(), Some("sdk/doomed"));
    assert_eq!(deleted.repository_arn(), Some(arn("sdk/doomed").as_str()));

    refused(
        ecr.describe_repositories().repository_names("sdk/doomed").send().await,
        "RepositoryNotFoundException",
        DescribeRepositoriesError::is_repository_not_found_exception,
    );
    refused(
        ecr.delete_repository().repository_name("sdk/doomed").send().await,
        "RepositoryNotFoundException",
        DeleteRepositoryError::is_repository_not_found_exception,
    );

    // An empty repository goes without force.
    create_repository(&ecr, "sdk/empty").await;
    ok(ecr.delete_repository().repository_name("sdk/empty").send().await, "DeleteRepository");
}

#[tokio::test]
async fn put_image_tag_mutability_changes_the_setting() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;

    let out = ok(
        ecr.put_image_tag_mutability()
            .repository_name("sdk/app")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await,
        "PutImageTagMutability",
    );
    assert_eq!(out.image_tag_mutability(), Some(&ImageTagMutability::Immutable));
    assert_eq!(out.repository_name(), Some("sdk/app"));
    assert_eq!(out.registry_id(), Some(ACCOUNT));

    let out = ok(
        ecr.put_image_tag_mutability()
            .repository_name("sdk/app")
            .image_tag_mutability(ImageTagMutability::MutableWithExclusion)
            .image_tag_mutability_exclusion_filters(wildcard("release-*"))
            .send()
            .await,
        "PutImageTagMutability with exclusions",
    );
    assert_eq!(out.image_tag_mutability(), Some(&ImageTagMutability::MutableWithExclusion));
    assert_eq!(out.image_tag_mutability_exclusion_filters(), [wildcard("release-*")]);
    let described = ok(ecr.describe_repositories().repository_names("sdk/app").send().await, "Describe");
    let repository = &described.repositories()[0];
    assert_eq!(repository.image_tag_mutability(), Some(&ImageTagMutability::MutableWithExclusion));
    assert_eq!(repository.image_tag_mutability_exclusion_filters(), [wildcard("release-*")]);

    refused(
        ecr.put_image_tag_mutability()
            .repository_name("sdk/app")
            .image_tag_mutability(ImageTagMutability::ImmutableWithExclusion)
            .send()
            .await,
        "InvalidParameterException",
        PutImageTagMutabilityError::is_invalid_parameter_exception,
    );
    refused(
        ecr.put_image_tag_mutability()
            .repository_name("sdk/none")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await,
        "RepositoryNotFoundException",
        PutImageTagMutabilityError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn put_image_scanning_configuration_changes_the_setting() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let out = ok(
        ecr.put_image_scanning_configuration()
            .repository_name("sdk/app")
            .image_scanning_configuration(scan_on_push(true))
            .send()
            .await,
        "PutImageScanningConfiguration",
    );
    assert_eq!(out.image_scanning_configuration(), Some(&scan_on_push(true)));
    assert_eq!(out.repository_name(), Some("sdk/app"));
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let described = ok(ecr.describe_repositories().repository_names("sdk/app").send().await, "Describe");
    assert_eq!(described.repositories()[0].image_scanning_configuration(), Some(&scan_on_push(true)));

    refused(
        ecr.put_image_scanning_configuration()
            .repository_name("sdk/none")
            .image_scanning_configuration(scan_on_push(true))
            .send()
            .await,
        "RepositoryNotFoundException",
        PutImageScanningConfigurationError::is_repository_not_found_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// Resource tags

#[tokio::test]
async fn tag_resource_adds_tags_within_the_limits() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let arn = arn("sdk/app");
    ok(
        ecr.tag_resource().resource_arn(&arn).tags(tag("team", "ml")).tags(tag("env", "dev")).send().await,
        "TagResource",
    );
    // Tagging an existing key replaces its value.
    ok(ecr.tag_resource().resource_arn(&arn).tags(tag("env", "prod")).send().await, "TagResource again");
    let out = ok(ecr.list_tags_for_resource().resource_arn(&arn).send().await, "ListTagsForResource");
    let tags: BTreeSet<_> = out.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, BTreeSet::from([("env", "prod"), ("team", "ml")]));

    // 50 tags at most on a repository, counting the ones it has.
    let fill: Vec<Tag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
    refused(
        ecr.tag_resource().resource_arn(&arn).set_tags(Some(fill)).send().await,
        "TooManyTagsException",
        TagResourceError::is_too_many_tags_exception,
    );
    refused(
        ecr.tag_resource().resource_arn(&arn).tags(tag("aws:reserved", "v")).send().await,
        "InvalidTagParameterException",
        TagResourceError::is_invalid_tag_parameter_exception,
    );
    refused(
        ecr.tag_resource().resource_arn(self::arn("sdk/none")).tags(tag("a", "b")).send().await,
        "RepositoryNotFoundException",
        TagResourceError::is_repository_not_found_exception,
    );
    refused(
        ecr.tag_resource().resource_arn("not-an-arn").tags(tag("a", "b")).send().await,
        "InvalidParameterException",
        TagResourceError::is_invalid_parameter_exception,
    );
}

#[tokio::test]
async fn untag_resource_removes_tags() {
    let (_berth, ecr) = start().await;
    ok(
        ecr.create_repository()
            .repository_name("sdk/app")
            .tags(tag("team", "ml"))
            .tags(tag("env", "dev"))
            .send()
            .await,
        "CreateRepository",
    );
    let arn = arn("sdk/app");
    ok(ecr.untag_resource().resource_arn(&arn).tag_keys("env").send().await, "UntagResource");
    // A key the repository does not have is no error.
    ok(ecr.untag_resource().resource_arn(&arn).tag_keys("absent").send().await, "UntagResource absent");
    let out = ok(ecr.list_tags_for_resource().resource_arn(&arn).send().await, "ListTagsForResource");
    assert_eq!(out.tags(), [tag("team", "ml")]);

    refused(
        ecr.untag_resource().resource_arn(self::arn("sdk/none")).tag_keys("team").send().await,
        "RepositoryNotFoundException",
        UntagResourceError::is_repository_not_found_exception,
    );
    refused(
        ecr.untag_resource().resource_arn("arn:aws:s3:::bucket").tag_keys("team").send().await,
        "InvalidParameterException",
        UntagResourceError::is_invalid_parameter_exception,
    );
}

#[tokio::test]
async fn list_tags_for_resource_lists_the_tags_given_at_creation() {
    let (_berth, ecr) = start().await;
    ok(
        ecr.create_repository().repository_name("sdk/app").tags(tag("team", "ml")).send().await,
        "CreateRepository",
    );
    create_repository(&ecr, "sdk/bare").await;
    let out = ok(ecr.list_tags_for_resource().resource_arn(arn("sdk/app")).send().await, "ListTags");
    assert_eq!(out.tags(), [tag("team", "ml")]);
    let out = ok(ecr.list_tags_for_resource().resource_arn(arn("sdk/bare")).send().await, "ListTags bare");
    assert!(out.tags().is_empty(), "{out:?}");

    refused(
        ecr.list_tags_for_resource().resource_arn(arn("sdk/none")).send().await,
        "RepositoryNotFoundException",
        ListTagsForResourceError::is_repository_not_found_exception,
    );
    refused(
        ecr.list_tags_for_resource().resource_arn("not-an-arn").send().await,
        "InvalidParameterException",
        ListTagsForResourceError::is_invalid_parameter_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// Images

#[tokio::test]
async fn describe_images_reports_pushed_images() {
    let (berth, ecr) = start().await;
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = vec![7u8; 2048];
    let (digest, _) = push_sized(&berth, "sdk/app", "v1", config, &layer).await;

    let out = ok(ecr.describe_images().repository_name("sdk/app").send().await, "DescribeImages");
    let [detail] = out.image_details() else { panic!("one image expected: {out:?}") };
    assert_eq!(detail.registry_id(), Some(ACCOUNT));
    assert_eq!(detail.repository_name(), Some("sdk/app"));
    assert_eq!(detail.image_digest(), Some(digest.as_str()));
    assert_eq!(detail.image_tags(), ["v1"]);
    assert_eq!(detail.image_size_in_bytes(), Some((config.len() + layer.len()) as i64));
    assert_eq!(detail.image_manifest_media_type(), Some(OCI_MANIFEST));
    assert_eq!(detail.artifact_media_type(), Some(OCI_CONFIG));
    let pushed = detail.image_pushed_at().expect("imagePushedAt").secs();
    assert!((pushed - now_secs()).abs() < 300, "imagePushedAt {pushed}");
    assert_eq!(detail.last_recorded_pull_time(), None);

    let out = ok(
        ecr.describe_images().repository_name("sdk/app").image_ids(by_tag("v1")).send().await,
        "DescribeImages by tag",
    );
    assert_eq!(out.image_details().len(), 1);
    assert_eq!(out.image_details()[0].image_digest(), Some(digest.as_str()));
    let out = ok(
        ecr.describe_images().repository_name("sdk/app").image_ids(by_digest(&digest)).send().await,
        "DescribeImages by digest",
    );
    assert_eq!(out.image_details()[0].image_tags(), ["v1"]);
    let untagged = DescribeImagesFilter::builder().tag_status(TagStatus::Untagged).build();
    let out = ok(
        ecr.describe_images().repository_name("sdk/app").filter(untagged).send().await,
        "DescribeImages untagged",
    );
    assert!(out.image_details().is_empty(), "{out:?}");

    refused(
        ecr.describe_images().repository_name("sdk/app").image_ids(by_tag("nope")).send().await,
        "ImageNotFoundException",
        DescribeImagesError::is_image_not_found_exception,
    );
    refused(
        ecr.describe_images().repository_name("sdk/none").send().await,
        "RepositoryNotFoundException",
        DescribeImagesError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn list_images_filters_by_tag_status() {
    let (berth, ecr) = start().await;
    let (first, _) = push_sized(&berth, "sdk/app", "latest", br#"{"n":1}"#, b"layer").await;
    // Moving the tag leaves the first image untagged.
    let (second, _) = push_sized(&berth, "sdk/app", "latest", br#"{"n":2}"#, b"layer").await;

    let out = ok(ecr.list_images().repository_name("sdk/app").send().await, "ListImages");
    let all: BTreeSet<_> = out.image_ids().iter().cloned().map(|i| (i.image_digest, i.image_tag)).collect();
    assert_eq!(
        all,
        BTreeSet::from([(Some(first.clone()), None), (Some(second.clone()), Some("latest".to_owned()))])
    );
    let tagged = ListImagesFilter::builder().tag_status(TagStatus::Tagged).build();
    let out =
        ok(ecr.list_images().repository_name("sdk/app").filter(tagged).send().await, "ListImages tagged");
    assert_eq!(
        out.image_ids(),
        [ImageIdentifier::builder().image_digest(&second).image_tag("latest").build()]
    );
    let untagged = ListImagesFilter::builder().tag_status(TagStatus::Untagged).build();
    let out =
        ok(ecr.list_images().repository_name("sdk/app").filter(untagged).send().await, "ListImages untagged");
    assert_eq!(out.image_ids(), [by_digest(&first)]);

    refused(
        ecr.list_images().repository_name("sdk/none").send().await,
        "RepositoryNotFoundException",
        ListImagesError::is_repository_not_found_exception,
    );
    refused(
        ecr.list_images().repository_name("sdk/app").registry_id("12345").send().await,
        "InvalidParameterException",
        ListImagesError::is_invalid_parameter_exception,
    );
}

#[tokio::test]
async fn batch_get_image_returns_manifests_and_per_image_failures() {
    let (berth, ecr) = start().await;
    let (digest, _) = push_sized(&berth, "sdk/app", "v1", br#"{"os":"linux"}"#, b"layer").await;
    let pulled = berth
        .req(Method::GET, &format!("/v2/{}/manifests/v1", repo("sdk/app")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("manifest");

    let out = ok(
        ecr.batch_get_image()
            .repository_name("sdk/app")
            .image_ids(by_tag("v1"))
            .image_ids(by_tag("nope"))
            .image_ids(by_digest("sha256:zz"))
            .send()
            .await,
        "BatchGetImage",
    );
    let [image] = out.images() else { panic!("one image expected: {out:?}") };
    assert_eq!(image.registry_id(), Some(ACCOUNT));
    assert_eq!(image.repository_name(), Some("sdk/app"));
    assert_eq!(
        image.image_id(),
        Some(&ImageIdentifier::builder().image_digest(&digest).image_tag("v1").build())
    );
    assert_eq!(image.image_manifest().map(str::as_bytes), Some(pulled.as_ref()));
    assert_eq!(image.image_manifest_media_type(), Some(OCI_MANIFEST));
    let codes: Vec<_> = out.failures().iter().map(|f| f.failure_code().cloned()).collect();
    assert_eq!(codes, [Some(ImageFailureCode::ImageNotFound), Some(ImageFailureCode::InvalidImageDigest)]);
    assert_eq!(out.failures()[0].image_id(), Some(&by_tag("nope")));
    assert!(out.failures().iter().all(|f| f.failure_reason().is_some()), "{out:?}");

    // By digest too.
    let out = ok(
        ecr.batch_get_image().repository_name("sdk/app").image_ids(by_digest(&digest)).send().await,
        "by digest",
    );
    assert_eq!(out.images().len(), 1, "{out:?}");
    // A media type the image is not in is a per-image failure.
    let out = ok(
        ecr.batch_get_image()
            .repository_name("sdk/app")
            .image_ids(by_tag("v1"))
            .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
            .send()
            .await,
        "BatchGetImage docker only",
    );
    assert!(out.images().is_empty(), "{out:?}");
    assert_eq!(out.failures().len(), 1, "{out:?}");

    refused(
        ecr.batch_get_image().repository_name("sdk/none").image_ids(by_tag("v1")).send().await,
        "RepositoryNotFoundException",
        BatchGetImageError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn batch_delete_image_deletes_tags_and_digests() {
    let (berth, ecr) = start().await;
    let (first, _) = push_sized(&berth, "sdk/app", "one", br#"{"n":1}"#, b"layer").await;
    let (second, _) = push_sized(&berth, "sdk/app", "two", br#"{"n":2}"#, b"layer").await;

    let out = ok(
        ecr.batch_delete_image()
            .repository_name("sdk/app")
            .image_ids(by_tag("one"))
            .image_ids(by_digest(&second))
            .image_ids(by_tag("nope"))
            .image_ids(ImageIdentifier::builder().build())
            .send()
            .await,
        "BatchDeleteImage",
    );
    let deleted: BTreeSet<_> =
        out.image_ids().iter().cloned().map(|i| (i.image_digest, i.image_tag)).collect();
    assert!(deleted.contains(&(Some(first.clone()), Some("one".to_owned()))), "{out:?}");
    assert!(deleted.iter().any(|(d, _)| d.as_deref() == Some(second.as_str())), "{out:?}");
    let codes: Vec<_> = out.failures().iter().map(|f| f.failure_code().cloned()).collect();
    assert_eq!(codes, [Some(ImageFailureCode::ImageNotFound), Some(ImageFailureCode::MissingDigestAndTag)]);

    let out = ok(ecr.list_images().repository_name("sdk/app").send().await, "ListImages");
    assert!(out.image_ids().is_empty(), "nothing is left: {out:?}");
    let out = ok(
        ecr.batch_delete_image().repository_name("sdk/app").image_ids(by_digest(&second)).send().await,
        "BatchDeleteImage again",
    );
    assert!(out.image_ids().is_empty());
    assert_eq!(out.failures()[0].failure_code(), Some(&ImageFailureCode::ImageNotFound));

    refused(
        ecr.batch_delete_image().repository_name("sdk/none").image_ids(by_tag("one")).send().await,
        "RepositoryNotFoundException",
        BatchDeleteImageError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn put_image_pushes_a_manifest_over_uploaded_layers() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let config = br#"{"architecture":"arm64","os":"linux"}"#;
    let layer = b"a layer uploaded through the ECR API";
    let config_digest = upload_layer(&ecr, "sdk/app", config).await;
    let layer_digest = upload_layer(&ecr, "sdk/app", layer).await;
    let manifest =
        String::from_utf8(image_manifest_bytes(&config_digest, config.len(), &layer_digest, layer.len(), ""))
            .expect("utf8");
    let digest = sha256(manifest.as_bytes());

    let out = ok(
        ecr.put_image().repository_name("sdk/app").image_manifest(&manifest).image_tag("v1").send().await,
        "PutImage",
    );
    let image = out.image().expect("image");
    assert_eq!(
        image.image_id(),
        Some(&ImageIdentifier::builder().image_digest(&digest).image_tag("v1").build())
    );
    assert_eq!(image.image_manifest(), Some(manifest.as_str()));
    assert_eq!(image.image_manifest_media_type(), Some(OCI_MANIFEST));
    assert_eq!(image.repository_name(), Some("sdk/app"));
    assert_eq!(image.registry_id(), Some(ACCOUNT));
    // The OCI API serves it at once.
    let pulled = berth
        .req(Method::GET, &format!("/v2/{}/manifests/v1", repo("sdk/app")))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.expect("body").as_ref(), manifest.as_bytes());
    // A second tag, with the digest and media type given.
    ok(
        ecr.put_image()
            .repository_name("sdk/app")
            .image_manifest(&manifest)
            .image_manifest_media_type(OCI_MANIFEST)
            .image_digest(&digest)
            .image_tag("v2")
            .send()
            .await,
        "PutImage with digest",
    );

    refused(
        ecr.put_image().repository_name("sdk/app").image_manifest(&manifest).image_tag("v1").send().await,
        "ImageAlreadyExistsException",
        PutImageError::is_image_already_exists_exception,
    );
    refused(
        ecr.put_image()
            .repository_name("sdk/app")
            .image_manifest(&manifest)
            .image_digest(ABSENT_DIGEST)
            .image_tag("v3")
            .send()
            .await,
        "ImageDigestDoesNotMatchException",
        PutImageError::is_image_digest_does_not_match_exception,
    );
    let dangling =
        String::from_utf8(image_manifest_bytes(&config_digest, config.len(), ABSENT_DIGEST, 10, ""))
            .expect("utf8");
    refused(
        ecr.put_image().repository_name("sdk/app").image_manifest(&dangling).image_tag("v4").send().await,
        "LayersNotFoundException",
        PutImageError::is_layers_not_found_exception,
    );
    refused(
        ecr.put_image()
            .repository_name("sdk/app")
            .image_manifest("not a manifest")
            .image_tag("v5")
            .send()
            .await,
        "InvalidParameterException",
        PutImageError::is_invalid_parameter_exception,
    );

    // An immutable repository refuses to move a tag.
    ok(
        ecr.put_image_tag_mutability()
            .repository_name("sdk/app")
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await,
        "PutImageTagMutability",
    );
    let other = String::from_utf8(image_manifest_bytes(
        &config_digest,
        config.len(),
        &layer_digest,
        layer.len(),
        r#","annotations":{"v":"2"}"#,
    ))
    .expect("utf8");
    refused(
        ecr.put_image().repository_name("sdk/app").image_manifest(&other).image_tag("v1").send().await,
        "ImageTagAlreadyExistsException",
        PutImageError::is_image_tag_already_exists_exception,
    );

    // No repository, no image; and the failed call leaves no repository behind.
    refused(
        ecr.put_image().repository_name("sdk/none").image_manifest(&manifest).image_tag("v1").send().await,
        "RepositoryNotFoundException",
        PutImageError::is_repository_not_found_exception,
    );
    refused(
        ecr.describe_repositories().repository_names("sdk/none").send().await,
        "RepositoryNotFoundException",
        DescribeRepositoriesError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn list_image_referrers_lists_the_artifacts_of_a_subject() {
    let (berth, ecr) = start().await;
    let subject = push_sized(&berth, "sdk/app", "v1", br#"{"os":"linux"}"#, b"layer").await;
    let sbom = "application/vnd.example.sbom+json";
    let signature = "application/vnd.example.signature";
    let mut expected = BTreeSet::new();
    for n in 0..3 {
        expected.insert(push_referrer(&berth, "sdk/app", (&subject.0, subject.1), sbom, n).await);
    }
    let signed = push_referrer(&berth, "sdk/app", (&subject.0, subject.1), signature, 9).await;
    let subject_id = SubjectIdentifier::builder().image_digest(&subject.0).build().expect("subject");

    let out = ok(
        ecr.list_image_referrers().repository_name("sdk/app").subject_id(subject_id.clone()).send().await,
        "ListImageReferrers",
    );
    assert_eq!(out.referrers().len(), 4, "{out:?}");
    let referrer = out.referrers().iter().find(|r| r.digest() == signed).expect("the signature is listed");
    assert_eq!(referrer.artifact_type(), Some(signature));
    assert_eq!(referrer.media_type(), OCI_MANIFEST);
    assert!(referrer.size() > 0);
    assert_eq!(referrer.artifact_status(), Some(&ArtifactStatus::Active));
    assert_eq!(
        referrer.annotations().and_then(|a| a.get("org.example.n")).map(String::as_str),
        Some("9"),
        "{referrer:?}"
    );

    // Filtered by artifact type, one at a time: every page is complete and nothing repeats.
    let filter = ListImageReferrersFilter::builder().artifact_types(sbom).build();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = ok(
            ecr.list_image_referrers()
                .repository_name("sdk/app")
                .subject_id(subject_id.clone())
                .filter(filter.clone())
                .max_results(1)
                .set_next_token(token.clone())
                .send()
                .await,
            "ListImageReferrers page",
        );
        pages += 1;
        assert!(out.referrers().len() <= 1, "{out:?}");
        seen.extend(out.referrers().iter().map(|r| r.digest().to_owned()));
        match out.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);

    refused(
        ecr.list_image_referrers().repository_name("sdk/none").subject_id(subject_id.clone()).send().await,
        "RepositoryNotFoundException",
        ListImageReferrersError::is_repository_not_found_exception,
    );
    refused(
        ecr.list_image_referrers()
            .repository_name("sdk/app")
            .subject_id(SubjectIdentifier::builder().image_digest("sha256:zz").build().expect("subject"))
            .send()
            .await,
        "InvalidParameterException",
        ListImageReferrersError::is_invalid_parameter_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// Layers

#[tokio::test]
async fn batch_check_layer_availability_reports_each_layer() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let layer = vec![3u8; 5000];
    let digest = upload_layer(&ecr, "sdk/app", &layer).await;

    let out = ok(
        ecr.batch_check_layer_availability()
            .repository_name("sdk/app")
            .layer_digests(&digest)
            .layer_digests(ABSENT_DIGEST)
            .layer_digests("sha256:zz")
            .send()
            .await,
        "BatchCheckLayerAvailability",
    );
    let [available] = out.layers() else { panic!("one layer expected: {out:?}") };
    assert_eq!(available.layer_digest(), Some(digest.as_str()));
    assert_eq!(available.layer_availability(), Some(&LayerAvailability::Available));
    assert_eq!(available.layer_size(), Some(layer.len() as i64));
    let failures: Vec<_> =
        out.failures().iter().map(|f| (f.layer_digest(), f.failure_code().cloned())).collect();
    assert_eq!(
        failures,
        [
            (Some(ABSENT_DIGEST), Some(LayerFailureCode::MissingLayerDigest)),
            (Some("sha256:zz"), Some(LayerFailureCode::InvalidLayerDigest)),
        ]
    );

    refused(
        ecr.batch_check_layer_availability().repository_name("sdk/none").layer_digests(&digest).send().await,
        "RepositoryNotFoundException",
        BatchCheckLayerAvailabilityError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn get_download_url_for_layer_gives_a_working_url() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let layer: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let digest = upload_layer(&ecr, "sdk/app", &layer).await;

    // Only a layer some image references can be downloaded through the API.
    refused(
        ecr.get_download_url_for_layer().repository_name("sdk/app").layer_digest(&digest).send().await,
        "LayerInaccessibleException",
        GetDownloadUrlForLayerError::is_layer_inaccessible_exception,
    );
    let config = br#"{"os":"linux"}"#;
    let config_digest = upload_layer(&ecr, "sdk/app", config).await;
    let manifest = image_manifest_bytes(&config_digest, config.len(), &digest, layer.len(), "");
    let manifest = String::from_utf8(manifest).expect("utf8");
    ok(ecr.put_image().repository_name("sdk/app").image_manifest(manifest).send().await, "PutImage");

    let out = ok(
        ecr.get_download_url_for_layer().repository_name("sdk/app").layer_digest(&digest).send().await,
        "GetDownloadUrlForLayer",
    );
    assert_eq!(out.layer_digest(), Some(digest.as_str()));
    let url = out.download_url().expect("downloadUrl");
    let fetched = berth.client.get(url).send().await.expect("send");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.expect("body").as_ref(), layer.as_slice());

    refused(
        ecr.get_download_url_for_layer().repository_name("sdk/app").layer_digest(ABSENT_DIGEST).send().await,
        "LayersNotFoundException",
        GetDownloadUrlForLayerError::is_layers_not_found_exception,
    );
    refused(
        ecr.get_download_url_for_layer().repository_name("sdk/app").layer_digest("sha256:zz").send().await,
        "InvalidParameterException",
        GetDownloadUrlForLayerError::is_invalid_parameter_exception,
    );
    refused(
        ecr.get_download_url_for_layer().repository_name("sdk/none").layer_digest(&digest).send().await,
        "RepositoryNotFoundException",
        GetDownloadUrlForLayerError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn initiate_layer_upload_starts_an_upload() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let out = ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "InitiateLayerUpload");
    let upload = out.upload_id().expect("uploadId");
    assert_eq!(upload.len(), 36, "a UUID: {upload}");
    assert!(out.part_size().is_some_and(|size| size > 0), "{out:?}");
    let second = ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "again");
    assert_ne!(second.upload_id(), Some(upload), "every upload has its own id");

    refused(
        ecr.initiate_layer_upload().repository_name("sdk/none").send().await,
        "RepositoryNotFoundException",
        InitiateLayerUploadError::is_repository_not_found_exception,
    );
    refused(
        ecr.initiate_layer_upload().repository_name("Bad Name").send().await,
        "InvalidParameterException",
        InitiateLayerUploadError::is_invalid_parameter_exception,
    );
}

#[tokio::test]
async fn upload_layer_part_accepts_contiguous_parts_only() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    // Every part but the last is at least 5 MiB.
    let layer: Vec<u8> = (0..MIN_PART as u32 + 20_000).map(|i| (i % 241) as u8).collect();
    let end = layer.len() - 1;
    let started =
        ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "InitiateLayerUpload");
    let upload = started.upload_id().expect("uploadId").to_owned();
    let part = |first: usize, last: usize| {
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .part_first_byte(first as i64)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(&layer[first..=last]))
    };

    let gap = refused(
        part(MIN_PART, end).send().await,
        "InvalidLayerPartException",
        UploadLayerPartError::is_invalid_layer_part_exception,
    );
    let UploadLayerPartError::InvalidLayerPartException(gap) = gap else { unreachable!("checked above") };
    assert_eq!(gap.last_valid_byte_received(), Some(-1), "{gap:?}");
    assert_eq!(gap.upload_id(), Some(upload.as_str()));
    assert_eq!(gap.repository_name(), Some("sdk/app"));
    assert_eq!(gap.registry_id(), Some(ACCOUNT));
    let out = ok(part(0, MIN_PART - 1).send().await, "UploadLayerPart first");
    assert_eq!(out.last_byte_received(), Some(MIN_PART as i64 - 1));
    assert_eq!(out.upload_id(), Some(upload.as_str()));
    assert_eq!(out.repository_name(), Some("sdk/app"));
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let overlap = refused(
        part(100, 199).send().await,
        "InvalidLayerPartException",
        UploadLayerPartError::is_invalid_layer_part_exception,
    );
    let UploadLayerPartError::InvalidLayerPartException(overlap) = overlap else {
        unreachable!("checked above")
    };
    assert_eq!(overlap.last_valid_byte_received(), Some(MIN_PART as i64 - 1), "{overlap:?}");
    let out = ok(part(MIN_PART, end).send().await, "UploadLayerPart second");
    assert_eq!(out.last_byte_received(), Some(end as i64));
    let digest = sha256(&layer);
    ok(
        ecr.complete_layer_upload()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .layer_digests(&digest)
            .send()
            .await,
        "CompleteLayerUpload",
    );

    refused(
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id(ABSENT_UPLOAD)
            .part_first_byte(0)
            .part_last_byte(2)
            .layer_part_blob(Blob::new(&b"abc"[..]))
            .send()
            .await,
        "UploadNotFoundException",
        UploadLayerPartError::is_upload_not_found_exception,
    );
    refused(
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id("not-an-upload-id")
            .part_first_byte(0)
            .part_last_byte(2)
            .layer_part_blob(Blob::new(&b"abc"[..]))
            .send()
            .await,
        "InvalidParameterException",
        UploadLayerPartError::is_invalid_parameter_exception,
    );
    refused(
        ecr.upload_layer_part()
            .repository_name("sdk/none")
            .upload_id(ABSENT_UPLOAD)
            .part_first_byte(0)
            .part_last_byte(2)
            .layer_part_blob(Blob::new(&b"abc"[..]))
            .send()
            .await,
        "RepositoryNotFoundException",
        UploadLayerPartError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn complete_layer_upload_verifies_the_digest_and_refuses_what_it_cannot_store() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let complete = |upload: &str, digest: &str| {
        ecr.complete_layer_upload().repository_name("sdk/app").upload_id(upload).layer_digests(digest)
    };

    // Nothing uploaded yet.
    let empty = ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "Initiate");
    let empty = empty.upload_id().expect("uploadId").to_owned();
    refused(
        complete(&empty, ABSENT_DIGEST).send().await,
        "EmptyUploadException",
        CompleteLayerUploadError::is_empty_upload_exception,
    );

    let layer = b"the bytes of a layer".to_vec();
    let digest = sha256(&layer);
    let started = ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "Initiate");
    let upload = started.upload_id().expect("uploadId").to_owned();
    ok(
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .part_first_byte(0)
            .part_last_byte(layer.len() as i64 - 1)
            .layer_part_blob(Blob::new(layer.clone()))
            .send()
            .await,
        "UploadLayerPart",
    );
    refused(
        complete(&upload, &sha256(b"other bytes")).send().await,
        "InvalidLayerException",
        CompleteLayerUploadError::is_invalid_layer_exception,
    );
    let out = ok(complete(&upload, &digest).send().await, "CompleteLayerUpload");
    assert_eq!(out.layer_digest(), Some(digest.as_str()));
    assert_eq!(out.upload_id(), Some(upload.as_str()));
    assert_eq!(out.repository_name(), Some("sdk/app"));
    assert_eq!(out.registry_id(), Some(ACCOUNT));

    // The same layer again: the repository has it already.
    let again = ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "Initiate");
    let again = again.upload_id().expect("uploadId").to_owned();
    ok(
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id(&again)
            .part_first_byte(0)
            .part_last_byte(layer.len() as i64 - 1)
            .layer_part_blob(Blob::new(layer.clone()))
            .send()
            .await,
        "UploadLayerPart again",
    );
    refused(
        complete(&again, &digest).send().await,
        "LayerAlreadyExistsException",
        CompleteLayerUploadError::is_layer_already_exists_exception,
    );

    refused(
        complete(ABSENT_UPLOAD, &digest).send().await,
        "UploadNotFoundException",
        CompleteLayerUploadError::is_upload_not_found_exception,
    );
    refused(
        ecr.complete_layer_upload()
            .repository_name("sdk/none")
            .upload_id(ABSENT_UPLOAD)
            .layer_digests(&digest)
            .send()
            .await,
        "RepositoryNotFoundException",
        CompleteLayerUploadError::is_repository_not_found_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// The registry

#[tokio::test]
async fn describe_registry_names_the_callers_registry() {
    let (berth, ecr) = start().await;
    let out = ok(ecr.describe_registry().send().await, "DescribeRegistry");
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let replication = out.replication_configuration().expect("replicationConfiguration");
    assert!(replication.rules().is_empty(), "{out:?}");

    // Failure: a caller the registry does not know.
    let stranger = sdk_client(&berth, "AKIANOSUCHKEY0000001", "secret");
    refused_with(stranger.describe_registry().send().await, "UnrecognizedClientException");
}

// ---------------------------------------------------------------------------------------------
// Repository creation templates

#[tokio::test]
async fn create_repository_creation_template_shapes_repositories_created_on_push() {
    let (berth, ecr) = start().await;
    let out = ok(
        ecr.create_repository_creation_template()
            .prefix("team/")
            .description("team images")
            .applied_for(RctAppliedFor::CreateOnPush)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .resource_tags(tag("team", "ml"))
            .send()
            .await,
        "CreateRepositoryCreationTemplate",
    );
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let template = out.repository_creation_template().expect("repositoryCreationTemplate");
    assert_eq!(template.prefix(), Some("team/"));
    assert_eq!(template.description(), Some("team images"));
    assert_eq!(template.applied_for(), [RctAppliedFor::CreateOnPush]);
    assert_eq!(template.image_tag_mutability(), Some(&ImageTagMutability::Immutable));
    assert_eq!(template.resource_tags(), [tag("team", "ml")]);
    assert!(template.created_at().is_some() && template.updated_at().is_some(), "{template:?}");
    let encryption = template.encryption_configuration().expect("encryptionConfiguration");
    assert_eq!(encryption.encryption_type(), &EncryptionType::Aes256);

    // A push creates the repository the template describes.
    berth.push_image(&repo("team/app"), "v1", br#"{"os":"linux"}"#, b"layer").await;
    let out = ok(ecr.describe_repositories().repository_names("team/app").send().await, "Describe");
    assert_eq!(out.repositories()[0].image_tag_mutability(), Some(&ImageTagMutability::Immutable));
    let tags = ok(ecr.list_tags_for_resource().resource_arn(arn("team/app")).send().await, "ListTags");
    assert_eq!(tags.tags(), [tag("team", "ml")]);
    refused(
        ecr.get_lifecycle_policy().repository_name("team/app").send().await,
        "LifecyclePolicyNotFoundException",
        GetLifecyclePolicyError::is_lifecycle_policy_not_found_exception,
    );

    // A template's lifecycle policy comes with the repositories it creates; a policy ECR would
    // refuse is refused in the template too.
    ok(
        ecr.create_repository_creation_template()
            .prefix("ci/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .lifecycle_policy(EXPIRE_UNTAGGED_AFTER_14_DAYS)
            .send()
            .await,
        "CreateRepositoryCreationTemplate",
    );
    berth.push_image(&repo("ci/app"), "v1", br#"{"os":"linux"}"#, b"layer").await;
    let policy = ok(ecr.get_lifecycle_policy().repository_name("ci/app").send().await, "GetLifecyclePolicy");
    assert_eq!(policy.lifecycle_policy_text(), Some(EXPIRE_UNTAGGED_AFTER_14_DAYS));
    let e = refused(
        ecr.create_repository_creation_template()
            .prefix("bad/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .lifecycle_policy(EXPIRE_UNTAGGED_AFTER_14_DAYS.replace("untagged", "sometimes"))
            .send()
            .await,
        "ValidationException",
        CreateRepositoryCreationTemplateError::is_validation_exception,
    );
    assert!(e.message().is_some_and(|m| m.contains("lifecyclePolicy")), "{e:?}");

    refused(
        ecr.create_repository_creation_template()
            .prefix("team/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await,
        "TemplateAlreadyExistsException",
        CreateRepositoryCreationTemplateError::is_template_already_exists_exception,
    );
    refused(
        ecr.create_repository_creation_template()
            .prefix("Bad Prefix")
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await,
        "ValidationException",
        CreateRepositoryCreationTemplateError::is_validation_exception,
    );
    refused(
        ecr.create_repository_creation_template()
            .prefix("long/")
            .description("d".repeat(257))
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await,
        "ValidationException",
        CreateRepositoryCreationTemplateError::is_validation_exception,
    );
}

#[tokio::test]
async fn describe_repository_creation_templates_lists_and_filters() {
    let (_berth, ecr) = start().await;
    for prefix in ["ROOT", "a/", "b/"] {
        ok(
            ecr.create_repository_creation_template()
                .prefix(prefix)
                .applied_for(RctAppliedFor::CreateOnPush)
                .send()
                .await,
            "CreateRepositoryCreationTemplate",
        );
    }
    let out =
        ok(ecr.describe_repository_creation_templates().send().await, "DescribeRepositoryCreationTemplates");
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let prefixes: BTreeSet<_> =
        out.repository_creation_templates().iter().filter_map(|t| t.prefix()).collect();
    assert_eq!(prefixes, BTreeSet::from(["ROOT", "a/", "b/"]));
    let out = ok(
        ecr.describe_repository_creation_templates().prefixes("b/").send().await,
        "DescribeRepositoryCreationTemplates by prefix",
    );
    let prefixes: Vec<_> = out.repository_creation_templates().iter().filter_map(|t| t.prefix()).collect();
    assert_eq!(prefixes, ["b/"]);

    refused_with(
        ecr.describe_repository_creation_templates().max_results(0).send().await,
        "ValidationException",
    );
}

#[tokio::test]
async fn describe_repository_creation_templates_pages_hold_at_most_max_results() {
    let (_berth, ecr) = start().await;
    for prefix in ["a/", "b/", "c/"] {
        ok(
            ecr.create_repository_creation_template()
                .prefix(prefix)
                .applied_for(RctAppliedFor::CreateOnPush)
                .send()
                .await,
            "CreateRepositoryCreationTemplate",
        );
    }
    let pages: Vec<_> =
        ecr.describe_repository_creation_templates().into_paginator().page_size(2).send().collect().await;
    let mut seen = Vec::new();
    for page in pages {
        let page = ok(page, "DescribeRepositoryCreationTemplates page");
        let size = page.repository_creation_templates().len();
        assert!(size <= 2, "a page of maxResults 2 held {size} templates");
        seen.extend(
            page.repository_creation_templates().iter().filter_map(|t| t.prefix().map(str::to_owned)),
        );
    }
    seen.sort();
    assert_eq!(seen, ["a/", "b/", "c/"]);
}

#[tokio::test]
async fn update_repository_creation_template_changes_only_the_fields_given() {
    let (_berth, ecr) = start().await;
    ok(
        ecr.create_repository_creation_template()
            .prefix("team/")
            .description("team images")
            .applied_for(RctAppliedFor::CreateOnPush)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .send()
            .await,
        "CreateRepositoryCreationTemplate",
    );
    let out = ok(
        ecr.update_repository_creation_template()
            .prefix("team/")
            .image_tag_mutability(ImageTagMutability::Mutable)
            .resource_tags(tag("owner", "platform"))
            .send()
            .await,
        "UpdateRepositoryCreationTemplate",
    );
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    let template = out.repository_creation_template().expect("repositoryCreationTemplate");
    assert_eq!(template.image_tag_mutability(), Some(&ImageTagMutability::Mutable));
    assert_eq!(template.resource_tags(), [tag("owner", "platform")]);
    assert_eq!(template.description(), Some("team images"), "untouched fields stay");
    assert_eq!(template.applied_for(), [RctAppliedFor::CreateOnPush]);
    let described = ok(
        ecr.describe_repository_creation_templates().prefixes("team/").send().await,
        "Describe after update",
    );
    assert_eq!(
        described.repository_creation_templates()[0].image_tag_mutability(),
        Some(&ImageTagMutability::Mutable)
    );

    refused(
        ecr.update_repository_creation_template().prefix("none/").description("x").send().await,
        "TemplateNotFoundException",
        UpdateRepositoryCreationTemplateError::is_template_not_found_exception,
    );
}

#[tokio::test]
async fn delete_repository_creation_template_removes_it_once() {
    let (_berth, ecr) = start().await;
    ok(
        ecr.create_repository_creation_template()
            .prefix("team/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await,
        "CreateRepositoryCreationTemplate",
    );
    let out = ok(ecr.delete_repository_creation_template().prefix("team/").send().await, "Delete");
    assert_eq!(out.registry_id(), Some(ACCOUNT));
    assert_eq!(out.repository_creation_template().and_then(|t| t.prefix()), Some("team/"));
    let out = ok(ecr.describe_repository_creation_templates().send().await, "Describe after delete");
    assert!(out.repository_creation_templates().is_empty(), "{out:?}");

    refused(
        ecr.delete_repository_creation_template().prefix("team/").send().await,
        "TemplateNotFoundException",
        DeleteRepositoryCreationTemplateError::is_template_not_found_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// The SDK's paginators

#[tokio::test]
async fn describe_repositories_paginator_visits_every_repository_once() {
    let (_berth, ecr) = start().await;
    let expected: BTreeSet<String> = (0..11).map(|i| format!("page/r{i:02}")).collect();
    for name in &expected {
        create_repository(&ecr, name).await;
    }
    let mut pages = ecr.describe_repositories().into_paginator().page_size(3).send();
    let (mut seen, mut count) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        let page = ok(page, "DescribeRepositories page");
        count += 1;
        assert!(page.repositories().len() <= 3, "{page:?}");
        seen.extend(page.repositories().iter().filter_map(|r| r.repository_name().map(str::to_owned)));
    }
    assert!(count >= 4, "11 repositories in pages of 3 took {count} pages");
    assert_eq!(seen.len(), 11, "skipped or repeated: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);

    // The items view of the same paginator.
    let items: Vec<_> =
        ecr.describe_repositories().into_paginator().page_size(4).items().send().collect().await;
    let names: Vec<_> =
        items.into_iter().map(|r| ok(r, "item").repository_name.expect("repositoryName")).collect();
    assert_eq!(names.len(), 11);
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expected);
}

/// Pushes 13 images, each under its own tag, and returns their digests.
async fn push_thirteen(berth: &Berth) -> BTreeSet<String> {
    let mut digests = BTreeSet::new();
    for i in 0..13 {
        let config = format!(r#"{{"n":{i}}}"#);
        let (digest, _) =
            push_sized(berth, "sdk/pages", &format!("t{i:02}"), config.as_bytes(), b"shared").await;
        digests.insert(digest);
    }
    assert_eq!(digests.len(), 13);
    digests
}

/// The 13 images of `push_thirteen`, each seen once, over at least 4 pages of 4.
fn assert_every_image_once(pages: usize, seen: Vec<String>, expected: &BTreeSet<String>) {
    assert!(pages >= 4, "13 images in pages of 4 took {pages} pages");
    assert_eq!(seen.len(), 13, "skipped or repeated: {seen:?}");
    assert_eq!(&seen.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn list_images_paginator_visits_every_image_once() {
    let (berth, ecr) = start().await;
    let expected = push_thirteen(&berth).await;
    let mut pages = ecr.list_images().repository_name("sdk/pages").into_paginator().page_size(4).send();
    let (mut seen, mut count) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        let page = ok(page, "ListImages page");
        count += 1;
        assert!(page.image_ids().len() <= 4, "{page:?}");
        seen.extend(page.image_ids().iter().filter_map(|i| i.image_digest().map(str::to_owned)));
    }
    assert_every_image_once(count, seen, &expected);
}

#[tokio::test]
async fn describe_images_paginator_visits_every_image_once() {
    let (berth, ecr) = start().await;
    let expected = push_thirteen(&berth).await;
    let mut pages = ecr.describe_images().repository_name("sdk/pages").into_paginator().page_size(4).send();
    let (mut seen, mut count) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        let page = ok(page, "DescribeImages page");
        count += 1;
        assert!(page.image_details().len() <= 4, "{page:?}");
        seen.extend(page.image_details().iter().filter_map(|d| d.image_digest().map(str::to_owned)));
    }
    assert_every_image_once(count, seen, &expected);
}

// ---------------------------------------------------------------------------------------------
// Lifecycle policies

const EXPIRE_UNTAGGED_AFTER_14_DAYS: &str = r#"{"rules":[{"rulePriority":1,"description":"expire untagged images after 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

#[tokio::test]
async fn lifecycle_policies_are_validated_stored_and_deleted() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    refused(
        ecr.get_lifecycle_policy().repository_name("sdk/app").send().await,
        "LifecyclePolicyNotFoundException",
        GetLifecyclePolicyError::is_lifecycle_policy_not_found_exception,
    );
    let out = ok(
        ecr.put_lifecycle_policy()
            .repository_name("sdk/app")
            .lifecycle_policy_text(EXPIRE_UNTAGGED_AFTER_14_DAYS)
            .send()
            .await,
        "PutLifecyclePolicy",
    );
    assert_eq!(
        (out.registry_id(), out.repository_name(), out.lifecycle_policy_text()),
        (Some(ACCOUNT), Some("sdk/app"), Some(EXPIRE_UNTAGGED_AFTER_14_DAYS))
    );
    let got = ok(ecr.get_lifecycle_policy().repository_name("sdk/app").send().await, "GetLifecyclePolicy");
    assert_eq!(got.lifecycle_policy_text(), Some(EXPIRE_UNTAGGED_AFTER_14_DAYS));
    assert_eq!(got.last_evaluated_at(), None, "a policy that has not run has no evaluation time");

    // A policy ECR refuses is refused with ECR's words, and the stored one stays.
    let count_unit_on_a_count =
        EXPIRE_UNTAGGED_AFTER_14_DAYS.replace("sinceImagePushed", "imageCountMoreThan");
    let e = refused(
        ecr.put_lifecycle_policy()
            .repository_name("sdk/app")
            .lifecycle_policy_text(count_unit_on_a_count)
            .send()
            .await,
        "InvalidParameterException",
        PutLifecyclePolicyError::is_invalid_parameter_exception,
    );
    let message = e.message().unwrap_or_default();
    assert!(
        message.starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: ")
            && message.contains("instance failed to match exactly one schema (matched 0 out of 2)"),
        "{message}"
    );
    let too_long = format!("{}{}", EXPIRE_UNTAGGED_AFTER_14_DAYS, " ".repeat(30_720));
    refused(
        ecr.put_lifecycle_policy().repository_name("sdk/app").lifecycle_policy_text(too_long).send().await,
        "InvalidParameterException",
        PutLifecyclePolicyError::is_invalid_parameter_exception,
    );
    let got = ok(ecr.get_lifecycle_policy().repository_name("sdk/app").send().await, "GetLifecyclePolicy");
    assert_eq!(got.lifecycle_policy_text(), Some(EXPIRE_UNTAGGED_AFTER_14_DAYS), "unchanged by refusals");

    refused(
        ecr.put_lifecycle_policy()
            .repository_name("sdk/absent")
            .lifecycle_policy_text(EXPIRE_UNTAGGED_AFTER_14_DAYS)
            .send()
            .await,
        "RepositoryNotFoundException",
        PutLifecyclePolicyError::is_repository_not_found_exception,
    );
    let deleted =
        ok(ecr.delete_lifecycle_policy().repository_name("sdk/app").send().await, "DeleteLifecyclePolicy");
    assert_eq!(deleted.lifecycle_policy_text(), Some(EXPIRE_UNTAGGED_AFTER_14_DAYS));
    refused(
        ecr.delete_lifecycle_policy().repository_name("sdk/app").send().await,
        "LifecyclePolicyNotFoundException",
        DeleteLifecyclePolicyError::is_lifecycle_policy_not_found_exception,
    );
}

// ---------------------------------------------------------------------------------------------
// Protocol errors

#[tokio::test]
async fn an_unsupported_operation_is_named_in_the_error() {
    let (_berth, ecr) = start().await;
    let e =
        refused_with(ecr.describe_pull_through_cache_rules().send().await, "UnsupportedOperationException");
    assert!(e.message().is_some_and(|m| m.contains("DescribePullThroughCacheRules")), "{e:?}");
    let e = refused_with(
        ecr.get_account_setting().name("BASIC_SCAN_TYPE_VERSION").send().await,
        "UnsupportedOperationException",
    );
    assert!(e.message().is_some_and(|m| m.contains("GetAccountSetting")), "{e:?}");
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_signature() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let (key, _) = berth.owner_credentials();
    let forger = sdk_client(&berth, &key, "not-the-secret");
    refused_with(forger.describe_repositories().send().await, "InvalidSignatureException");
    refused_with(
        forger.create_repository().repository_name("sdk/x").send().await,
        "InvalidSignatureException",
    );
    refused_with(forger.get_authorization_token().send().await, "InvalidSignatureException");
    refused_with(
        forger.batch_delete_image().repository_name("sdk/app").image_ids(by_tag("v1")).send().await,
        "InvalidSignatureException",
    );
    // Nothing happened.
    refused(
        ecr.describe_repositories().repository_names("sdk/x").send().await,
        "RepositoryNotFoundException",
        DescribeRepositoriesError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn an_unknown_key_is_an_unrecognized_client() {
    let berth = Berth::start().await;
    let stranger = sdk_client(&berth, "AKIANOSUCHKEY0000001", "secret");
    refused_with(stranger.describe_repositories().send().await, "UnrecognizedClientException");
    refused_with(stranger.get_authorization_token().send().await, "UnrecognizedClientException");
    refused_with(
        stranger.create_repository().repository_name("sdk/x").send().await,
        "UnrecognizedClientException",
    );
}

// ---------------------------------------------------------------------------------------------
// ECR's quotas and the refusals only some inputs reach

/// Starts an upload and sends `parts` of `layer` through UploadLayerPart, as (first, last).
async fn upload_parts(ecr: &Client, name: &str, layer: &[u8], parts: &[(usize, usize)]) -> String {
    let started = ok(ecr.initiate_layer_upload().repository_name(name).send().await, "InitiateLayerUpload");
    let upload = started.upload_id().expect("uploadId").to_owned();
    for &(first, last) in parts {
        ok(
            ecr.upload_layer_part()
                .repository_name(name)
                .upload_id(&upload)
                .part_first_byte(first as i64)
                .part_last_byte(last as i64)
                .layer_part_blob(Blob::new(&layer[first..=last]))
                .send()
                .await,
            "UploadLayerPart",
        );
    }
    upload
}

#[tokio::test]
async fn complete_layer_upload_refuses_a_short_part_before_the_last() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let layer: Vec<u8> = (0..30_000u32).map(|i| (i % 239) as u8).collect();
    let upload = upload_parts(&ecr, "sdk/app", &layer, &[(0, 9_999), (10_000, 29_999)]).await;
    let e = refused(
        ecr.complete_layer_upload()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .layer_digests(sha256(&layer))
            .send()
            .await,
        "LayerPartTooSmallException",
        CompleteLayerUploadError::is_layer_part_too_small_exception,
    );
    let message = e.message().unwrap_or_default();
    assert!(message.contains("5242880") && message.contains("10000-byte"), "{message}");
    let out = ok(
        ecr.batch_check_layer_availability()
            .repository_name("sdk/app")
            .layer_digests(sha256(&layer))
            .send()
            .await,
        "BatchCheckLayerAvailability",
    );
    assert!(out.layers().is_empty(), "nothing was stored: {out:?}");

    // One part, however small, is the last part.
    let upload = upload_parts(&ecr, "sdk/app", &layer, &[(0, 29_999)]).await;
    ok(
        ecr.complete_layer_upload()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .layer_digests(sha256(&layer))
            .send()
            .await,
        "CompleteLayerUpload of one part",
    );
}

#[tokio::test]
async fn upload_layer_part_refuses_a_part_above_the_quota() {
    let (_berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let ecr = without_retries(&ecr);
    let layer = vec![9u8; MAX_PART + 1];
    let started =
        ok(ecr.initiate_layer_upload().repository_name("sdk/app").send().await, "InitiateLayerUpload");
    let upload = started.upload_id().expect("uploadId").to_owned();
    let part = |last: usize| {
        ecr.upload_layer_part()
            .repository_name("sdk/app")
            .upload_id(&upload)
            .part_first_byte(0)
            .part_last_byte(last as i64)
            .layer_part_blob(Blob::new(&layer[..=last]))
    };
    let e = refused(
        part(MAX_PART).send().await,
        "LimitExceededException",
        UploadLayerPartError::is_limit_exceeded_exception,
    );
    assert!(e.message().unwrap_or_default().contains("10485760"), "{e:?}");
    let out = ok(part(MAX_PART - 1).send().await, "UploadLayerPart of the largest part");
    assert_eq!(out.last_byte_received(), Some(MAX_PART as i64 - 1), "the refused part left no trace");
}

#[tokio::test]
async fn put_image_refuses_an_index_of_missing_images() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let (child, size) = push_sized(&berth, "sdk/app", "child", br#"{"os":"linux"}"#, b"layer").await;
    let index = |children: &[(&str, usize)]| {
        let manifests: Vec<String> = children
            .iter()
            .map(|(d, s)| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":{s}}}"#))
            .collect();
        format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#, manifests.join(","))
    };
    let e = refused(
        ecr.put_image()
            .repository_name("sdk/app")
            .image_manifest(index(&[(&child, size), (ABSENT_DIGEST, 10)]))
            .image_tag("multi")
            .send()
            .await,
        "ReferencedImagesNotFoundException",
        PutImageError::is_referenced_images_not_found_exception,
    );
    assert!(e.message().unwrap_or_default().contains(ABSENT_DIGEST), "{e:?}");
    refused(
        ecr.describe_images().repository_name("sdk/app").image_ids(by_tag("multi")).send().await,
        "ImageNotFoundException",
        DescribeImagesError::is_image_not_found_exception,
    );
    ok(
        ecr.put_image()
            .repository_name("sdk/app")
            .image_manifest(index(&[(&child, size)]))
            .image_tag("multi")
            .send()
            .await,
        "PutImage of a complete index",
    );
}

#[tokio::test]
async fn put_image_refuses_a_tag_beyond_the_images_quota() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    push_sized(&berth, "sdk/app", "t0", br#"{"os":"linux"}"#, b"layer").await;
    let got =
        ok(ecr.batch_get_image().repository_name("sdk/app").image_ids(by_tag("t0")).send().await, "Get");
    let manifest = got.images()[0].image_manifest().expect("imageManifest").to_owned();
    for i in 1..1000 {
        ok(
            ecr.put_image()
                .repository_name("sdk/app")
                .image_manifest(&manifest)
                .image_tag(format!("t{i}"))
                .send()
                .await,
            "PutImage",
        );
    }
    let ecr = without_retries(&ecr);
    let e = refused(
        ecr.put_image().repository_name("sdk/app").image_manifest(&manifest).image_tag("t1000").send().await,
        "LimitExceededException",
        PutImageError::is_limit_exceeded_exception,
    );
    assert!(e.message().unwrap_or_default().contains("1000"), "{e:?}");
    refused(
        ecr.describe_images().repository_name("sdk/app").image_ids(by_tag("t1000")).send().await,
        "ImageNotFoundException",
        DescribeImagesError::is_image_not_found_exception,
    );
}

#[tokio::test]
async fn kms_encryption_through_the_sdk_and_creation_templates() {
    let (berth, ecr) = start().await;
    // No key named: the account's default key, shown as its ARN.
    let kms = aws_sdk_ecr::types::EncryptionConfiguration::builder()
        .encryption_type(EncryptionType::Kms)
        .build()
        .expect("encryption configuration");
    let made = ok(
        ecr.create_repository().repository_name("sdk/kms").encryption_configuration(kms).send().await,
        "CreateRepository",
    );
    let encryption = made.repository().and_then(|r| r.encryption_configuration()).expect("encryption");
    assert_eq!(encryption.encryption_type(), &EncryptionType::Kms);
    let key_arn = encryption.kms_key().expect("kmsKey").to_owned();
    assert!(key_arn.starts_with("arn:aws:kms:us-east-1:") && key_arn.contains(":key/"), "{key_arn}");

    // A template names the key by ARN; a repository created on push gets it.
    let template_encryption = |kind: EncryptionType, key: Option<&str>| {
        aws_sdk_ecr::types::EncryptionConfigurationForRepositoryCreationTemplate::builder()
            .encryption_type(kind)
            .set_kms_key(key.map(str::to_owned))
            .build()
            .expect("encryption configuration")
    };
    ok(
        ecr.create_repository_creation_template()
            .prefix("kms/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .encryption_configuration(template_encryption(EncryptionType::Kms, Some(&key_arn)))
            .send()
            .await,
        "CreateRepositoryCreationTemplate",
    );
    berth.push_image(&repo("kms/app"), "v1", b"{}", b"layer under a customer key").await;
    let described =
        ok(ecr.describe_repositories().repository_names("kms/app").send().await, "DescribeRepositories");
    let encryption = described.repositories()[0].encryption_configuration().expect("encryption");
    assert_eq!(
        (encryption.encryption_type(), encryption.kms_key()),
        (&EncryptionType::Kms, Some(key_arn.as_str()))
    );

    // Dual-layer encryption is not built: refused, as a repository and as a template.
    let dsse = aws_sdk_ecr::types::EncryptionConfiguration::builder()
        .encryption_type(EncryptionType::KmsDsse)
        .build()
        .expect("encryption configuration");
    let e = refused(
        ecr.create_repository().repository_name("sdk/dsse").encryption_configuration(dsse).send().await,
        "KmsException",
        CreateRepositoryError::is_kms_exception,
    );
    let CreateRepositoryError::KmsException(e) = e else { unreachable!("checked above") };
    assert!(e.kms_error().is_some_and(|k| !k.is_empty()), "{e:?}");
    assert!(e.message().is_some_and(|m| m.contains("KMS_DSSE")), "{e:?}");
    refused(
        ecr.create_repository_creation_template()
            .prefix("dsse/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .encryption_configuration(template_encryption(EncryptionType::KmsDsse, None))
            .send()
            .await,
        "ValidationException",
        CreateRepositoryCreationTemplateError::is_validation_exception,
    );
    refused(
        ecr.describe_repositories().repository_names("sdk/dsse").send().await,
        "RepositoryNotFoundException",
        DescribeRepositoriesError::is_repository_not_found_exception,
    );
}

#[tokio::test]
async fn a_registry_holds_at_most_fifty_creation_templates() {
    let (_berth, ecr) = start().await;
    for i in 0..50 {
        ok(
            ecr.create_repository_creation_template()
                .prefix(format!("t{i}/"))
                .applied_for(RctAppliedFor::CreateOnPush)
                .send()
                .await,
            "CreateRepositoryCreationTemplate",
        );
    }
    let ecr = without_retries(&ecr);
    refused(
        ecr.create_repository_creation_template()
            .prefix("one-more/")
            .applied_for(RctAppliedFor::CreateOnPush)
            .send()
            .await,
        "LimitExceededException",
        CreateRepositoryCreationTemplateError::is_limit_exceeded_exception,
    );
}

#[tokio::test]
async fn list_image_referrers_takes_at_most_five_artifact_types() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let (subject, _) = push_sized(&berth, "sdk/app", "v1", br#"{"os":"linux"}"#, b"layer").await;
    let subject_id = SubjectIdentifier::builder().image_digest(&subject).build().expect("subject");
    let filter = |n: usize| {
        let mut filter = ListImageReferrersFilter::builder();
        for i in 0..n {
            filter = filter.artifact_types(format!("application/vnd.example.{i}"));
        }
        filter.build()
    };
    ok(
        ecr.list_image_referrers()
            .repository_name("sdk/app")
            .subject_id(subject_id.clone())
            .filter(filter(5))
            .send()
            .await,
        "ListImageReferrers with five types",
    );
    refused(
        ecr.list_image_referrers()
            .repository_name("sdk/app")
            .subject_id(subject_id)
            .filter(filter(6))
            .send()
            .await,
        "ValidationException",
        ListImageReferrersError::is_validation_exception,
    );
}

#[tokio::test]
async fn a_storage_fault_is_a_server_exception_that_names_no_path() {
    let (berth, ecr) = start().await;
    create_repository(&ecr, "sdk/app").await;
    let ecr = without_retries(&ecr);
    // The upload staging directory stops being one.
    let uploads = berth.data_dir().join("uploads");
    let aside = berth.data_dir().join("uploads.aside");
    std::fs::rename(&uploads, &aside).expect("move uploads aside");
    std::fs::write(&uploads, b"not a directory").expect("a file in its place");
    let result = ecr.initiate_layer_upload().repository_name("sdk/app").send().await;
    std::fs::remove_file(&uploads).expect("remove the file");
    std::fs::rename(&aside, &uploads).expect("restore uploads");
    match result {
        Err(SdkError::ServiceError(e)) => {
            assert_eq!(e.raw().status().as_u16(), 500);
            let e = e.into_err();
            assert!(e.is_server_exception(), "{e:?}");
            let message = e.message().unwrap_or_default();
            assert!(!message.contains('/') && !message.contains("uploads"), "the message leaks: {message}");
        }
        other => panic!("expected ServerException, got {other:?}"),
    }
    ok(
        ecr.initiate_layer_upload().repository_name("sdk/app").send().await,
        "InitiateLayerUpload once restored",
    );
}
