//! In-process router tests: requests go through the whole router with `oneshot`, no sockets.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_registry::{BootstrapCredentials, Registry, Settings};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const KEY_ID: &str = "AKIAROUTERTEST000001";
const BLOB: &[u8] = b"router test blob";
/// sha256 of [`BLOB`], computed with `sha256sum`.
const BLOB_DIGEST: &str = "sha256:3ecb6ed1b696d79cfee601859c947ba26d9604e152e20aa54a13a5e4d4ffd19e";

struct Fixture {
    router: axum::Router,
    auth: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    fixture_with(Settings::default()).await
}

async fn fixture_with(settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open_embedded(dir.path(), settings).await.expect("registry");
    let credentials = BootstrapCredentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: "router-test-secret-0000000000000000000000".to_owned(),
    };
    registry
        .bootstrap(&"000000000000".parse().expect("account"), Some(credentials))
        .await
        .expect("bootstrap");
    let token = registry.issue_token(KEY_ID).await.expect("token");
    let auth = format!("Basic {}", STANDARD.encode(format!("AWS:{}", token.password)));
    Fixture {
        router: crate::router(
            Arc::new(registry),
            crate::HttpSettings::default(),
            Arc::new(crate::AuditLog::off()),
        ),
        auth,
        _dir: dir,
    }
}

async fn send(f: &Fixture, request: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = f.router.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, body)
}

fn get(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    builder.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn the_version_check_challenges_without_credentials() {
    let f = fixture().await;
    let (status, headers, body) = send(&f, get("/v2/", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Basic realm="berth",service="ecr.amazonaws.com""#);
    assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");

    let (status, headers, _) = send(&f, get("/v2/", Some(&f.auth))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");
}

#[tokio::test]
async fn malformed_credentials_are_401_never_500() {
    let f = fixture().await;
    let long = format!("Basic {}", "A".repeat(10_000));
    let cases = [
        "Basic".to_owned(),
        "Basic !!!notbase64".to_owned(),
        format!("Basic {}", STANDARD.encode("no-colon")),
        format!("Basic {}", STANDARD.encode("AWS:not-a-token")),
        format!("Basic {}", STANDARD.encode("admin:x")),
        format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', 0x80])),
        "Bearer abc".to_owned(),
        long,
    ];
    for auth in cases {
        let (status, headers, _) = send(&f, get("/v2/", Some(&auth))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:.40}");
        assert!(headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn blob_head_reports_size_without_a_body() {
    let f = fixture().await;
    let push = Request::post(format!("/v2/000000000000/router/test/blobs/uploads/?digest={BLOB_DIGEST}"))
        .header("authorization", &f.auth)
        .body(Body::from(BLOB))
        .expect("request");
    let (status, headers, _) = send(&f, push).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["location"], format!("/v2/000000000000/router/test/blobs/{BLOB_DIGEST}"));

    let head = Request::head(format!("/v2/000000000000/router/test/blobs/{BLOB_DIGEST}"))
        .header("authorization", &f.auth)
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = send(&f, head).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], BLOB.len().to_string());
    assert_eq!(headers["docker-content-digest"], BLOB_DIGEST);
    assert!(body.is_empty());
}

#[tokio::test]
async fn error_bodies_have_the_spec_shape() {
    let f = fixture().await;
    let missing = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let push = Request::post(format!("/v2/000000000000/router/test/blobs/uploads/?digest={BLOB_DIGEST}"))
        .header("authorization", &f.auth)
        .body(Body::from(BLOB))
        .expect("request");
    send(&f, push).await;
    let (status, _, body) =
        send(&f, get(&format!("/v2/000000000000/router/test/blobs/{missing}"), Some(&f.auth))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        String::from_utf8(body).expect("utf8"),
        format!(
            r#"{{"errors":[{{"code":"BLOB_UNKNOWN","detail":{{"digest":"{missing}"}},"message":"blob unknown to registry: {missing}"}}]}}"#
        )
    );
}

#[tokio::test]
async fn bad_names_and_paths_are_client_errors() {
    let f = fixture().await;
    let cases = [
        ("/v2/000000000000/UPPER/tags/list", Some(&f.auth), StatusCode::BAD_REQUEST, "NAME_INVALID"),
        ("/v2/notanaccount/x/tags/list", Some(&f.auth), StatusCode::BAD_REQUEST, "NAME_INVALID"),
        ("/v2/000000000000/a//b/tags/list", Some(&f.auth), StatusCode::BAD_REQUEST, "NAME_INVALID"),
        ("/v2/000000000000/UPPER/tags/list", None, StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        ("/v2/000000000000/x/y/nothing", Some(&f.auth), StatusCode::NOT_FOUND, "UNSUPPORTED"),
        ("/v2/111111111111/xy/tags/list", Some(&f.auth), StatusCode::FORBIDDEN, "DENIED"),
        ("/v2/000000000000/nothing-here/tags/list", Some(&f.auth), StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
    ];
    for (path, auth, expected_status, expected_code) in cases {
        let (status, _, body) = send(&f, get(path, auth.map(String::as_str))).await;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (expected_status, Some(expected_code)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn host_style_addresses_name_the_account_in_the_host() {
    let settings = Settings { host_domain: Some("registry.test".to_owned()), ..Settings::default() };
    let f = fixture_with(settings).await;
    let push = Request::post(format!("/v2/app/blobs/uploads/?digest={BLOB_DIGEST}"))
        .header("host", "000000000000.registry.test:5000")
        .header("authorization", &f.auth)
        .body(Body::from(BLOB))
        .expect("request");
    let (status, _, _) = send(&f, push).await;
    assert_eq!(status, StatusCode::CREATED);
    // The same blob, path style: host style is another address for the same repository.
    let head = Request::head(format!("/v2/000000000000/app/blobs/{BLOB_DIGEST}"))
        .header("authorization", &f.auth)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&f, head).await.0, StatusCode::OK);
    // Another account's host is another account's registry.
    let other = Request::head(format!("/v2/app/blobs/{BLOB_DIGEST}"))
        .header("host", "111111111111.registry.test")
        .header("authorization", &f.auth)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&f, other).await.0, StatusCode::FORBIDDEN);
}
