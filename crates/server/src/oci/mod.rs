//! The OCI Distribution API under `/v2/`.

mod error;
pub(crate) mod route;

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_core::{Digest, MAX_MANIFEST_BYTES, Reference, media_types};
use berth_registry::{ByteStream, Caller, Registry, RegistryError, RepoPath};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use serde_json::json;

use crate::App;
pub(crate) use error::OciError;
use route::OciPath;

const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
const CONTENT_RANGE: HeaderName = header::CONTENT_RANGE;

/// Most entries one tag or catalog page returns, whatever `n` asks for.
const MAX_PAGE: u32 = 10_000;

type OciResult = Result<Response, OciError>;

pub(crate) fn service(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(dispatch).with_state(app)
}

/// Paths outside every surface.
pub(crate) async fn not_found(uri: http::Uri) -> Response {
    OciError::no_such_endpoint(uri.path()).into_response()
}

/// The `Range` header value for an upload holding `length` bytes (`0-0` when empty, as
/// clients expect).
pub(crate) fn upload_range(length: u64) -> String {
    format!("0-{}", length.saturating_sub(1))
}

fn header_value(s: &str) -> Result<HeaderValue, OciError> {
    HeaderValue::from_str(s)
        .map_err(|_| OciError::from(RegistryError::Internal(format!("unencodable header {s:?}"))))
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then_some(v)
    })
}

/// Percent-decodes a query value (digests and names contain `:` and `/`, which clients encode).
fn decoded(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn param(query: Option<&str>, key: &str) -> Result<Option<String>, OciError> {
    match query_param(query, key) {
        None => Ok(None),
        Some(raw) => decoded(raw).map(Some).ok_or_else(|| {
            RegistryError::Unsupported(format!("query parameter {key} is not valid percent-encoding")).into()
        }),
    }
}

fn parse_digest(s: &str) -> Result<Digest, OciError> {
    Digest::from_str(s).map_err(|e| RegistryError::DigestInvalid(e.to_string()).into())
}

fn parse_repo(
    name: &str,
    caller: &Caller,
    host_account: Option<&berth_core::AccountId>,
) -> Result<RepoPath, OciError> {
    let full;
    let name = match host_account {
        // Host style: `<account>.<domain>/v2/<name>/...` carries the account in the host.
        Some(account) => {
            full = format!("{account}/{name}");
            full.as_str()
        }
        None => name,
    };
    name.parse().map_err(|e| {
        // Without credentials nothing is allowed anyway: challenge first, explain after.
        if caller.principal == berth_iam::Principal::Anonymous {
            RegistryError::Unauthenticated("authentication required".to_owned()).into()
        } else {
            RegistryError::NameInvalid(e).into()
        }
    })
}

/// `Content-Range` of a chunk: `<start>-<end>`, also accepted with a `bytes ` prefix.
fn chunk_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, OciError> {
    let Some(value) = headers.get(CONTENT_RANGE) else { return Ok(None) };
    let bad = || OciError::from(RegistryError::Unsupported("Content-Range must be <start>-<end>".to_owned()));
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text.strip_prefix("bytes").map(str::trim_start).unwrap_or(text);
    let text = text.strip_prefix('=').unwrap_or(text).split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start = start.trim().parse().map_err(|_| bad())?;
    let end = end.trim().parse().map_err(|_| bad())?;
    Ok(Some((start, end)))
}

/// A single `Range: bytes=...` request against a blob of `size` bytes. Forms berth does not
/// serve (several ranges, other units, malformed) are ignored, as HTTP allows; a range that
/// starts past the end is unsatisfiable.
enum BlobRange {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn blob_range(headers: &HeaderMap, size: u64) -> BlobRange {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return BlobRange::Whole;
    };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return BlobRange::Whole };
    if spec.contains(',') {
        return BlobRange::Whole;
    }
    let Some((start, end)) = spec.split_once('-') else { return BlobRange::Whole };
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return BlobRange::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            Err(_) => return BlobRange::Whole,
        },
        (start, "") => match start.parse::<u64>() {
            Ok(s) => (s, size.saturating_sub(1)),
            Err(_) => return BlobRange::Whole,
        },
        (start, end) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
            _ => return BlobRange::Whole,
        },
    };
    if size == 0 || start >= size { BlobRange::Unsatisfiable } else { BlobRange::Part(start, end) }
}

fn accept_list(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every `/v2/` request: authenticate, route, run one registry operation, render.
async fn dispatch(State(app): State<Arc<App>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = handle(&app, &parts, body).await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    response
}

async fn handle(app: &App, parts: &http::request::Parts, body: Body) -> OciResult {
    let registry = app.registry.as_ref();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let caller = crate::auth::caller(registry, headers).await?.with_origin(&app.origin(parts));
    crate::audit::note_caller(parts, &caller);
    let body_stream = |body: Body| crate::body::idle_bounded(body, app.settings.body_idle_timeout);
    let query = uri.query();
    let host_account = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| registry.settings().account_of_host(h));
    let Some(path) = route::parse(uri.path()) else {
        registry.require_authenticated(&caller)?;
        return Err(OciError::no_such_endpoint(uri.path()));
    };
    match (path, method) {
        (OciPath::Base, &Method::GET | &Method::HEAD) => {
            registry.require_authenticated(&caller)?;
            Ok(axum::Json(json!({})).into_response())
        }
        (OciPath::Catalog, &Method::GET) => catalog(registry, &caller, query).await,
        (OciPath::Manifest { name, reference }, m) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            match *m {
                Method::GET => get_manifest(registry, &caller, &repo, reference, headers, true).await,
                Method::HEAD => get_manifest(registry, &caller, &repo, reference, headers, false).await,
                Method::PUT => put_manifest(app, &caller, &repo, name, reference, headers, body).await,
                Method::DELETE => delete_manifest(registry, &caller, &repo, reference).await,
                _ => Err(OciError::method_not_allowed(method)),
            }
        }
        (OciPath::Blob { name, digest }, m) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            // A URL from GetDownloadUrlForLayer carries its own, blob-bound authorization.
            let caller = match (param(query, crate::DOWNLOAD_TOKEN_PARAM)?, m) {
                (Some(token), &Method::GET | &Method::HEAD) => {
                    registry.caller_from_download_token(&token, &repo, &parse_digest(digest)?).await?
                }
                _ => caller,
            };
            match *m {
                Method::GET => get_blob(registry, &caller, &repo, digest, headers, true).await,
                Method::HEAD => get_blob(registry, &caller, &repo, digest, headers, false).await,
                Method::DELETE => {
                    let digest = parse_digest(digest)?;
                    registry.delete_blob(&caller, &repo, &digest).await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                _ => Err(OciError::method_not_allowed(method)),
            }
        }
        (OciPath::Uploads { name }, &Method::POST) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            start_upload(registry, &caller, &repo, name, host_account.as_ref(), query, body_stream(body))
                .await
        }
        (OciPath::Upload { name, id }, m) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            // Locations name the repository as the client did (host style leaves the account out).
            let location = format!("/v2/{name}/blobs/uploads/{id}");
            let with_location = |e: RegistryError| OciError {
                error: e,
                upload_location: Some(location.clone()),
                status: None,
            };
            match *m {
                Method::PATCH => {
                    let range = chunk_range(headers)?;
                    let status = registry
                        .upload_chunk(&caller, &repo, id, range, body_stream(body))
                        .await
                        .map_err(with_location)?;
                    upload_response(StatusCode::ACCEPTED, &location, status.length, &status.id)
                }
                Method::PUT => {
                    complete_upload(registry, &caller, &repo, name, id, query, headers, body_stream(body))
                        .await
                        .map_err(|e| {
                            if matches!(e.error, RegistryError::RangeInvalid { .. }) {
                                with_location(e.error)
                            } else {
                                e
                            }
                        })
                }
                Method::GET => {
                    let status = registry.upload_status(&caller, &repo, id).await?;
                    upload_response(StatusCode::NO_CONTENT, &location, status.length, &status.id)
                }
                Method::DELETE => {
                    registry.cancel_upload(&caller, &repo, id).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(OciError::method_not_allowed(method)),
            }
        }
        (OciPath::Tags { name }, &Method::GET) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            list_tags(registry, &caller, &repo, name, query).await
        }
        (OciPath::Referrers { name, digest }, &Method::GET) => {
            let repo = parse_repo(name, &caller, host_account.as_ref())?;
            referrers(registry, &caller, &repo, digest, query).await
        }
        _ => {
            registry.require_authenticated(&caller)?;
            Err(OciError::method_not_allowed(method))
        }
    }
}

fn upload_response(status: StatusCode, location: &str, length: u64, id: &str) -> OciResult {
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(location)?);
    headers.insert(header::RANGE, header_value(&upload_range(length))?);
    headers.insert(UPLOAD_UUID, header_value(id)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(response)
}

/// `201 Created` for a blob of the repository the client named `name`.
fn created_blob(name: &str, digest: &Digest) -> OciResult {
    let mut response = StatusCode::CREATED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(&format!("/v2/{name}/blobs/{digest}"))?);
    headers.insert(CONTENT_DIGEST, header_value(&digest.to_string())?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(response)
}

/// `POST .../blobs/uploads/`: a new upload, a monolithic upload (`?digest=`) or a mount.
#[allow(clippy::too_many_arguments)]
async fn start_upload(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    name: &str,
    host_account: Option<&berth_core::AccountId>,
    query: Option<&str>,
    body: ByteStream,
) -> OciResult {
    if let Some(mount) = param(query, "mount")? {
        let digest = parse_digest(&mount)?;
        // In host style, `from` names a repository of the same account, as the target does.
        let from = match param(query, "from")? {
            Some(from) => Some(parse_repo(&from, caller, host_account)?),
            None => None,
        };
        return match registry.mount_blob(caller, repo, &digest, from.as_ref()).await? {
            Ok(digest) => created_blob(name, &digest),
            Err(status) => {
                let location = format!("/v2/{name}/blobs/uploads/{}", status.id);
                upload_response(StatusCode::ACCEPTED, &location, status.length, &status.id)
            }
        };
    }
    if let Some(digest) = param(query, "digest")? {
        let digest = parse_digest(&digest)?;
        let digest = registry.upload_monolithic(caller, repo, &digest, body).await?;
        return created_blob(name, &digest);
    }
    let status = registry.start_upload(caller, repo).await?;
    let location = format!("/v2/{name}/blobs/uploads/{}", status.id);
    upload_response(StatusCode::ACCEPTED, &location, status.length, &status.id)
}

#[allow(clippy::too_many_arguments)]
async fn complete_upload(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    name: &str,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: ByteStream,
) -> OciResult {
    let digest = param(query, "digest")?.ok_or_else(|| {
        OciError::from(RegistryError::DigestInvalid("the digest query parameter is required".to_owned()))
    })?;
    let digest = parse_digest(&digest)?;
    let range = chunk_range(headers)?;
    let digest = registry.complete_upload(caller, repo, id, &digest, range, Some(body)).await?;
    created_blob(name, &digest)
}

async fn get_blob(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    digest: &str,
    headers: &HeaderMap,
    with_body: bool,
) -> OciResult {
    let digest = parse_digest(digest)?;
    if !with_body {
        let size = registry.blob_size(caller, repo, &digest).await?;
        let mut response = StatusCode::OK.into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_LENGTH, header_value(&size.to_string())?);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        h.insert(CONTENT_DIGEST, header_value(&digest.to_string())?);
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        return Ok(response);
    }
    let size = registry.blob_size(caller, repo, &digest).await;
    // Reading is authorized as a download; the size probe above may be refused for a caller
    // who can still download, so its error is not final.
    let range = match size {
        Ok(size) => blob_range(headers, size),
        Err(_) => BlobRange::Whole,
    };
    let (status, range) = match range {
        BlobRange::Whole => (StatusCode::OK, None),
        BlobRange::Part(s, e) => (StatusCode::PARTIAL_CONTENT, Some((s, e))),
        BlobRange::Unsatisfiable => {
            let size = size.unwrap_or(0);
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(CONTENT_RANGE, header_value(&format!("bytes */{size}"))?);
            return Ok(response);
        }
    };
    let content = registry.read_blob(caller, repo, &digest, range).await?;
    let length = range.map_or(content.size, |(s, e)| e - s + 1);
    let mut response = Response::new(Body::from_stream(content.body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, header_value(&length.to_string())?);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(CONTENT_DIGEST, header_value(&content.digest.to_string())?);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some((s, e)) = range {
        h.insert(CONTENT_RANGE, header_value(&format!("bytes {s}-{e}/{}", content.size))?);
    }
    Ok(response)
}

/// A reference in a manifest URL. On reads an invalid tag cannot name anything, so it is
/// "unknown"; a malformed digest is a bad request.
fn read_reference(reference: &str) -> Result<Reference, OciError> {
    reference.parse().map_err(|e: berth_core::InvalidInput| {
        if reference.contains(':') {
            RegistryError::DigestInvalid(e.to_string()).into()
        } else {
            RegistryError::ManifestUnknown(e.to_string()).into()
        }
    })
}

async fn get_manifest(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    reference: &str,
    headers: &HeaderMap,
    with_body: bool,
) -> OciResult {
    let reference = read_reference(reference)?;
    let accept = accept_list(headers);
    let (record, body) = if with_body {
        let content = registry.get_manifest(caller, repo, &reference, &accept).await?;
        (content.record, Body::from(content.bytes))
    } else {
        (registry.head_manifest(caller, repo, &reference, &accept).await?, Body::empty())
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&record.media_type)?);
    h.insert(header::CONTENT_LENGTH, header_value(&record.size.to_string())?);
    h.insert(CONTENT_DIGEST, header_value(&record.digest.to_string())?);
    h.insert(header::ETAG, header_value(&format!("\"{}\"", record.digest))?);
    Ok(response)
}

async fn put_manifest(
    app: &App,
    caller: &Caller,
    repo: &RepoPath,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> OciResult {
    let reference: Reference = reference.parse().map_err(|e: berth_core::InvalidInput| {
        OciError::from(if reference.contains(':') {
            RegistryError::DigestInvalid(e.to_string())
        } else {
            RegistryError::TagInvalid(e.to_string())
        })
    })?;
    // Authorized before the body is read: an anonymous or refused push buffers nothing.
    let push = app.registry.authorize_manifest_push(caller, repo).await?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let idle = app.settings.body_idle_timeout;
    let body = crate::body::read_bounded(body, idle, MAX_MANIFEST_BYTES, "manifest", &app.budget).await?;
    let outcome = app.registry.put_manifest(push, &reference, content_type, body.bytes.clone()).await?;
    drop(body);
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, header_value(&format!("/v2/{name}/manifests/{}", outcome.digest))?);
    h.insert(CONTENT_DIGEST, header_value(&outcome.digest.to_string())?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    if let Some(subject) = outcome.subject {
        h.insert(OCI_SUBJECT, header_value(&subject.to_string())?);
    }
    Ok(response)
}

async fn delete_manifest(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    reference: &str,
) -> OciResult {
    match read_reference(reference)? {
        Reference::Digest(digest) => registry.delete_manifest(caller, repo, &digest).await?,
        Reference::Tag(tag) => registry.delete_tag(caller, repo, &tag).await?,
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Reads `n` and `last` of a paginated listing.
fn page_params(query: Option<&str>) -> Result<(u32, Option<String>), OciError> {
    let n = match param(query, "n")? {
        None => MAX_PAGE,
        Some(n) => n.parse::<u32>().map_err(|_| {
            OciError::from(RegistryError::Unsupported(format!("n must be a non-negative integer, got {n:?}")))
        })?,
    };
    Ok((n.min(MAX_PAGE), param(query, "last")?))
}

/// Adds `Link: <...?n=N&last=X>; rel="next"` when a page came back full.
fn with_next_link(mut response: Response, path: &str, n: u32, items: &[String]) -> OciResult {
    if let (Some(last), true) = (items.last(), n > 0 && items.len() == n as usize) {
        let encoded: String = last
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let link = format!("<{path}?n={n}&last={encoded}>; rel=\"next\"");
        response.headers_mut().insert(header::LINK, header_value(&link)?);
    }
    Ok(response)
}

async fn list_tags(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    name: &str,
    query: Option<&str>,
) -> OciResult {
    let (n, last) = page_params(query)?;
    let tags = registry.list_tags(caller, repo, last.as_deref(), n).await?;
    let response = axum::Json(json!({ "name": name, "tags": tags })).into_response();
    with_next_link(response, &format!("/v2/{name}/tags/list"), n, &tags)
}

async fn catalog(registry: &Registry, caller: &Caller, query: Option<&str>) -> OciResult {
    registry.require_authenticated(caller)?;
    let (n, last) = page_params(query)?;
    let repositories = registry.catalog(caller, last.as_deref(), n).await?;
    let response = axum::Json(json!({ "repositories": repositories })).into_response();
    with_next_link(response, "/v2/_catalog", n, &repositories)
}

async fn referrers(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoPath,
    digest: &str,
    query: Option<&str>,
) -> OciResult {
    let digest = parse_digest(digest)?;
    let artifact_type = param(query, "artifactType")?;
    let found = registry.referrers(caller, repo, &digest, artifact_type.as_deref()).await?;
    let manifests: Vec<serde_json::Value> = found
        .iter()
        .map(|r| {
            let mut descriptor = json!({
                "mediaType": r.record.media_type,
                "digest": r.record.digest.to_string(),
                "size": r.record.size,
            });
            if let Some(t) = &r.record.artifact_type {
                descriptor["artifactType"] = json!(t);
            }
            if !r.annotations.is_empty() {
                descriptor["annotations"] = json!(r.annotations);
            }
            descriptor
        })
        .collect();
    let body = json!({ "schemaVersion": 2, "mediaType": media_types::OCI_INDEX, "manifests": manifests });
    let mut response = Response::new(Body::from(body.to_string()));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_types::OCI_INDEX));
    if artifact_type.is_some() {
        h.insert(OCI_FILTERS_APPLIED, HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn headers(name: HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(name, v);
        }
        map
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn request_parsers_never_panic(s in "\\PC{0,200}", size in any::<u64>()) {
            let _ = route::parse(&s);
            let _ = chunk_range(&headers(CONTENT_RANGE, &s));
            let _ = blob_range(&headers(header::RANGE, &s), size);
            let _ = accept_list(&headers(header::ACCEPT, &s));
            let _ = decoded(&s);
            let _ = page_params(Some(&s));
        }

        #[test]
        fn ranges_are_served_inside_the_blob_or_refused(start in 0u64..2000, len in 0u64..2000, size in 1u64..1000) {
            let spec = format!("bytes={start}-{}", start + len);
            // Both outcomes are asserted exactly, so neither can hold by never happening.
            match blob_range(&headers(header::RANGE, &spec), size) {
                BlobRange::Part(s, e) => {
                    prop_assert!(start < size, "a range starting at {start} of a {size}-byte blob was served");
                    prop_assert_eq!((s, e), (start, (start + len).min(size - 1)));
                }
                BlobRange::Unsatisfiable => prop_assert!(start >= size, "{spec} of a {size}-byte blob was refused"),
                BlobRange::Whole => prop_assert!(false, "{spec} was ignored"),
            }
        }
    }
}
