//! The OCI Distribution Specification v1.1 against the real `berth` binary, by the spec's four
//! workflow categories (pull, push, content discovery, content management) plus errors and
//! authentication. Every test starts its own registry and speaks plain HTTP to it; the
//! expectations are those of the spec and of its v1.1.1 conformance suite, never weaker.

mod common;

use common::*;
use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde_json::{Value, json};

mod pull {
    use super::*;

    #[tokio::test]
    async fn unknown_blob_is_404_for_head_and_404_blob_unknown_for_get() {
        let berth = Berth::start().await;
        let r = repo("pull/blobs");
        berth.push_blob(&r, b"something so the repository exists").await;
        let unknown = sha256(b"hello world");

        let head = send(berth.req(Method::HEAD, &format!("/v2/{r}/blobs/{unknown}"))).await;
        assert_eq!(head.status(), 404, "HEAD /v2/{r}/blobs/{unknown}");

        let get = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{unknown}"))).await;
        expect_error(get, 404, "BLOB_UNKNOWN").await;
    }

    #[tokio::test]
    async fn head_blob_reports_length_and_digest_without_a_body() {
        let berth = Berth::start().await;
        let r = repo("pull/blobs");
        let bytes = random_bytes(1000, 1);
        let digest = berth.push_blob(&r, &bytes).await;

        let head = send(berth.req(Method::HEAD, &format!("/v2/{r}/blobs/{digest}"))).await;
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "content-length"), "1000");
        assert_eq!(header(&head, "docker-content-digest"), digest);
        assert!(head.bytes().await.expect("body").is_empty(), "HEAD must not carry a body");
    }

    #[tokio::test]
    async fn get_blob_returns_the_exact_bytes() {
        let berth = Berth::start().await;
        let r = repo("pull/blobs");
        let bytes = random_bytes(70_000, 2);
        let digest = berth.push_blob(&r, &bytes).await;

        let get = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}"))).await;
        assert_eq!(get.status(), 200);
        assert_eq!(header(&get, "docker-content-digest"), digest);
        assert_eq!(header(&get, "content-length"), bytes.len().to_string());
        let body = get.bytes().await.expect("body");
        assert_eq!(body.as_ref(), bytes.as_slice());
        assert_eq!(sha256(&body), digest);
    }

    #[tokio::test]
    async fn get_blob_with_a_range_returns_206_and_that_slice() {
        let berth = Berth::start().await;
        let r = repo("pull/ranges");
        let bytes = random_bytes(100, 3);
        let digest = berth.push_blob(&r, &bytes).await;

        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}")).header("range", "bytes=2-5"))
                .await;
        assert_eq!(get.status(), 206);
        assert_eq!(header(&get, "content-range"), "bytes 2-5/100");
        assert_eq!(header(&get, "content-length"), "4");
        assert_eq!(get.bytes().await.expect("body").as_ref(), &bytes[2..=5]);
    }

    #[tokio::test]
    async fn get_blob_with_a_suffix_range_returns_the_last_bytes() {
        let berth = Berth::start().await;
        let r = repo("pull/ranges");
        let bytes = random_bytes(100, 4);
        let digest = berth.push_blob(&r, &bytes).await;

        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}")).header("range", "bytes=-3"))
                .await;
        assert_eq!(get.status(), 206);
        assert_eq!(header(&get, "content-range"), "bytes 97-99/100");
        assert_eq!(get.bytes().await.expect("body").as_ref(), &bytes[97..]);
    }

    #[tokio::test]
    async fn get_blob_with_a_range_past_the_end_is_416() {
        let berth = Berth::start().await;
        let r = repo("pull/ranges");
        let bytes = random_bytes(100, 5);
        let digest = berth.push_blob(&r, &bytes).await;

        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}")).header("range", "bytes=100-120"))
                .await;
        assert_eq!(get.status(), 416);
        assert_eq!(header(&get, "content-range"), "bytes */100");
    }

    #[tokio::test]
    async fn unknown_manifest_name_is_404_for_head_and_get() {
        let berth = Berth::start().await;
        let r = repo("pull/manifests");
        let image = push_conformance_image(&berth, &r, 1).await;
        put_manifest_ok(&berth, &r, "latest", OCI_MANIFEST, &image.manifest).await;

        let head = send(berth.req(Method::HEAD, &format!("/v2/{r}/manifests/.INVALID_MANIFEST_NAME"))).await;
        assert_eq!(head.status(), 404);
        let get = send(berth.req(Method::GET, &format!("/v2/{r}/manifests/.INVALID_MANIFEST_NAME"))).await;
        expect_error(get, 404, "MANIFEST_UNKNOWN").await;
    }

    #[tokio::test]
    async fn manifest_by_digest_is_served_with_digest_type_and_identical_bytes() {
        let berth = Berth::start().await;
        let r = repo("pull/manifests");
        let image = push_conformance_image(&berth, &r, 2).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;
        let path = format!("/v2/{r}/manifests/{}", image.digest);

        let head = send(berth.req(Method::HEAD, &path).header("accept", OCI_MANIFEST)).await;
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(header(&head, "docker-content-digest"), image.digest);
        assert_eq!(header(&head, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&head, "content-length"), image.manifest.len().to_string());
        assert!(head.bytes().await.expect("body").is_empty());

        let get = send(berth.req(Method::GET, &path).header("accept", OCI_MANIFEST)).await;
        assert_eq!(get.status(), 200, "GET {path}");
        assert_eq!(header(&get, "docker-content-digest"), image.digest);
        assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
        assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    }

    #[tokio::test]
    async fn manifest_by_tag_is_served_with_digest_type_and_identical_bytes() {
        let berth = Berth::start().await;
        let r = repo("pull/manifests");
        let image = push_conformance_image(&berth, &r, 3).await;
        put_manifest_ok(&berth, &r, "tagged", OCI_MANIFEST, &image.manifest).await;
        let path = format!("/v2/{r}/manifests/tagged");

        let head = send(berth.req(Method::HEAD, &path).header("accept", OCI_MANIFEST)).await;
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(header(&head, "docker-content-digest"), image.digest);
        assert_eq!(header(&head, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&head, "content-length"), image.manifest.len().to_string());

        let get = send(berth.req(Method::GET, &path).header("accept", OCI_MANIFEST)).await;
        assert_eq!(get.status(), 200, "GET {path}");
        assert_eq!(header(&get, "docker-content-digest"), image.digest);
        assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
        assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    }

    #[tokio::test]
    async fn manifest_with_accept_listing_several_types_is_served() {
        let berth = Berth::start().await;
        let r = repo("pull/manifests");
        let image = push_conformance_image(&berth, &r, 4).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;

        let accept = format!("{DOCKER_MANIFEST}, {OCI_INDEX}, {OCI_MANIFEST}");
        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/v1")).header("accept", accept)).await;
        assert_eq!(get.status(), 200);
        assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
        assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    }

    #[tokio::test]
    async fn index_is_served_with_the_index_media_type() {
        let berth = Berth::start().await;
        let r = repo("pull/index");
        let image = push_conformance_image(&berth, &r, 5).await;
        put_manifest_ok(&berth, &r, image.digest.as_str(), OCI_MANIFEST, &image.manifest).await;
        let index = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": image.manifest.len(),
                "platform": {"architecture": "amd64", "os": "linux"},
            }],
        }));
        put_manifest_ok(&berth, &r, "multi", OCI_INDEX, &index).await;

        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/multi")).header("accept", OCI_INDEX))
                .await;
        assert_eq!(get.status(), 200);
        assert_eq!(header(&get, "content-type"), OCI_INDEX);
        assert_eq!(header(&get, "docker-content-digest"), sha256(&index));
        assert_eq!(get.bytes().await.expect("body").as_ref(), index.as_slice());
    }

    #[tokio::test]
    async fn malformed_manifest_digest_is_400_digest_invalid_or_404() {
        let berth = Berth::start().await;
        let r = repo("pull/manifests");
        let image = push_conformance_image(&berth, &r, 6).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;

        let get = send(
            berth
                .req(Method::GET, &format!("/v2/{r}/manifests/sha256:totallywrong"))
                .header("content-type", OCI_MANIFEST)
                .body("blablabla"),
        )
        .await;
        match get.status().as_u16() {
            400 => expect_error(get, 400, "DIGEST_INVALID").await,
            404 => expect_error(get, 404, "MANIFEST_UNKNOWN").await,
            other => panic!("GET /manifests/sha256:totallywrong answered {other}, want 400 or 404"),
        }
    }

    #[tokio::test]
    async fn manifest_pushed_by_digest_is_pullable_by_digest() {
        let berth = Berth::start().await;
        let r = repo("pull/by-digest");
        let image = push_conformance_image(&berth, &r, 7).await;

        let put = berth.put_manifest(&r, &image.digest, OCI_MANIFEST, &image.manifest).await;
        assert_eq!(put.status(), 201, "PUT /v2/{r}/manifests/{}", image.digest);
        assert_eq!(header(&put, "docker-content-digest"), image.digest);
        assert!(!header(&put, "location").is_empty(), "201 without Location");

        let get = send(
            berth
                .req(Method::GET, &format!("/v2/{r}/manifests/{}", image.digest))
                .header("accept", OCI_MANIFEST),
        )
        .await;
        assert_eq!(get.status(), 200);
        assert_eq!(header(&get, "docker-content-digest"), image.digest);
        assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    }

    #[tokio::test]
    async fn manifest_whose_type_the_accept_header_excludes_is_404_manifest_unknown() {
        let berth = Berth::start().await;
        let r = repo("pull/accept");
        let image = push_conformance_image(&berth, &r, 8).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;

        for reference in ["v1", image.digest.as_str()] {
            let path = format!("/v2/{r}/manifests/{reference}");
            let get = send(berth.req(Method::GET, &path).header("accept", DOCKER_MANIFEST)).await;
            expect_error(get, 404, "MANIFEST_UNKNOWN").await;
            let head = send(berth.req(Method::HEAD, &path).header("accept", DOCKER_MANIFEST)).await;
            assert_eq!(head.status(), 404, "HEAD {path} with Accept: {DOCKER_MANIFEST}");
        }
    }
}

mod push {
    use super::*;

    #[tokio::test]
    async fn post_starts_an_upload_with_location_and_upload_uuid() {
        let berth = Berth::start().await;
        let r = repo("push/start");

        let post = send(berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/"))).await;
        assert_eq!(post.status(), 202);
        assert!(!header(&post, "location").is_empty(), "202 without Location");
        assert!(!header(&post, "docker-upload-uuid").is_empty(), "202 without Docker-Upload-UUID");
    }

    #[tokio::test]
    async fn streamed_patch_then_put_with_empty_body_creates_the_blob() {
        let berth = Berth::start().await;
        let r = repo("push/streamed");
        let bytes = random_bytes(42, 10);
        let digest = sha256(&bytes);
        let location = begin_upload(&berth, &r).await;

        let patch = send(
            berth
                .req(Method::PATCH, &location)
                .header("content-type", "application/octet-stream")
                .body(bytes.clone()),
        )
        .await;
        assert_eq!(patch.status(), 202, "PATCH {location} (whole body, no Content-Range)");
        assert_eq!(header(&patch, "range"), "0-41");
        let location = relative(&berth, &header(&patch, "location"));
        assert!(!location.is_empty(), "202 without Location");

        let put = send(
            berth
                .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
                .header("content-type", "application/octet-stream")
                .header("content-length", "0"),
        )
        .await;
        assert_eq!(put.status(), 201, "PUT {location}?digest={digest} with an empty body");
        assert_eq!(relative(&berth, &header(&put, "location")), format!("/v2/{r}/blobs/{digest}"));
        assert_eq!(header(&put, "docker-content-digest"), digest);

        assert_blob(&berth, &r, &digest, &bytes).await;
    }

    #[tokio::test]
    async fn single_post_with_digest_creates_the_blob() {
        let berth = Berth::start().await;
        let r = repo("push/monolithic");
        let bytes = random_bytes(300, 11);
        let digest = sha256(&bytes);

        let post = send(
            berth
                .req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={digest}"))
                .header("content-type", "application/octet-stream")
                .body(bytes.clone()),
        )
        .await;
        assert_eq!(post.status(), 201);
        assert_eq!(relative(&berth, &header(&post, "location")), format!("/v2/{r}/blobs/{digest}"));
        assert_blob(&berth, &r, &digest, &bytes).await;
    }

    #[tokio::test]
    async fn post_then_put_with_body_creates_the_blob() {
        let berth = Berth::start().await;
        let r = repo("push/post-put");
        let bytes = random_bytes(5000, 12);
        let digest = sha256(&bytes);
        let location = begin_upload(&berth, &r).await;

        let put = send(
            berth
                .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
                .header("content-type", "application/octet-stream")
                .body(bytes.clone()),
        )
        .await;
        assert_eq!(put.status(), 201, "PUT {location}?digest={digest} with the blob");
        assert_eq!(relative(&berth, &header(&put, "location")), format!("/v2/{r}/blobs/{digest}"));
        assert_blob(&berth, &r, &digest, &bytes).await;
    }

    #[tokio::test]
    async fn out_of_order_chunk_on_a_fresh_upload_is_416() {
        let berth = Berth::start().await;
        let r = repo("push/chunked");
        let blob = random_bytes(42, 13);
        let location = begin_upload(&berth, &r).await;

        let patch = patch_chunk(&berth, &location, &blob[22..], "22-41").await;
        assert_eq!(patch.status(), 416, "PATCH {location} Content-Range: 22-41 on an empty upload");
    }

    #[tokio::test]
    async fn chunked_upload_in_order_with_a_stale_retry_and_status_check() {
        let berth = Berth::start().await;
        let r = repo("push/chunked");
        let blob = random_bytes(42, 14);
        let digest = sha256(&blob);
        let original = begin_upload(&berth, &r).await;

        let first = patch_chunk(&berth, &original, &blob[..22], "0-21").await;
        assert_eq!(first.status(), 202, "PATCH {original} Content-Range: 0-21");
        assert_eq!(header(&first, "range"), "0-21");
        assert!(!header(&first, "location").is_empty());

        let retry = patch_chunk(&berth, &original, &blob[..22], "0-21").await;
        assert_eq!(retry.status(), 416, "PATCH {original} Content-Range: 0-21 again");

        let status = send(berth.req(Method::GET, &original)).await;
        assert_eq!(status.status(), 204, "GET {original}");
        assert!(!header(&status, "location").is_empty(), "204 without Location");
        assert_eq!(header(&status, "range"), "0-21");
        let location = relative(&berth, &header(&status, "location"));

        let second = patch_chunk(&berth, &location, &blob[22..], "22-41").await;
        assert_eq!(second.status(), 202, "PATCH {location} Content-Range: 22-41");
        assert_eq!(header(&second, "range"), "0-41");
        let location = relative(&berth, &header(&second, "location"));
        assert!(!location.is_empty());

        let put = send(
            berth
                .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
                .header("content-type", "application/octet-stream")
                .header("content-length", "0"),
        )
        .await;
        assert_eq!(put.status(), 201, "PUT {location}?digest={digest}");
        assert_eq!(relative(&berth, &header(&put, "location")), format!("/v2/{r}/blobs/{digest}"));
        assert_blob(&berth, &r, &digest, &blob).await;
    }

    #[tokio::test]
    async fn one_byte_chunks_are_ranges_and_a_backwards_range_is_416() {
        let berth = Berth::start().await;
        let r = repo("push/one-byte");
        let blob = random_bytes(3, 17);
        let digest = sha256(&blob);
        let mut location = begin_upload(&berth, &r).await;
        for (n, range) in ["0-0", "1-1", "2-2"].into_iter().enumerate() {
            if n == 1 {
                let backwards = patch_chunk(&berth, &location, &blob[1..2], "1-0").await;
                assert_eq!(backwards.status(), 416, "PATCH Content-Range: 1-0 ends before it starts");
            }
            let chunk = patch_chunk(&berth, &location, &blob[n..=n], range).await;
            assert_eq!(chunk.status(), 202, "PATCH Content-Range: {range} (one byte)");
            assert_eq!(header(&chunk, "range"), format!("0-{n}"));
            location = relative(&berth, &header(&chunk, "location"));
        }
        let put = send(berth.req(Method::PUT, &with_query(&location, &format!("digest={digest}")))).await;
        assert_eq!(put.status(), 201);
        assert_blob(&berth, &r, &digest, &blob).await;
    }

    #[tokio::test]
    async fn final_chunk_may_arrive_with_the_closing_put() {
        let berth = Berth::start().await;
        let r = repo("push/chunked");
        let blob = random_bytes(42, 15);
        let digest = sha256(&blob);
        let location = begin_upload(&berth, &r).await;

        let first = patch_chunk(&berth, &location, &blob[..22], "0-21").await;
        assert_eq!(first.status(), 202);
        let location = relative(&berth, &header(&first, "location"));

        let put = send(
            berth
                .req(Method::PUT, &with_query(&location, &format!("digest={digest}")))
                .header("content-type", "application/octet-stream")
                .header("content-range", "22-41")
                .body(blob[22..].to_vec()),
        )
        .await;
        assert_eq!(put.status(), 201, "PUT {location}?digest= Content-Range: 22-41 with the last chunk");
        assert_blob(&berth, &r, &digest, &blob).await;
    }

    #[tokio::test]
    async fn put_with_the_wrong_digest_is_400_digest_invalid_and_stores_nothing() {
        let berth = Berth::start().await;
        let r = repo("push/mismatch");
        let bytes = random_bytes(64, 16);
        let actual = sha256(&bytes);
        let claimed = sha256(b"something else entirely");
        let location = begin_upload(&berth, &r).await;

        let patch = send(berth.req(Method::PATCH, &location).body(bytes.clone())).await;
        assert_eq!(patch.status(), 202);
        let location = relative(&berth, &header(&patch, "location"));

        let put = send(berth.req(Method::PUT, &with_query(&location, &format!("digest={claimed}")))).await;
        expect_error(put, 400, "DIGEST_INVALID").await;

        for digest in [&claimed, &actual] {
            let get = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}"))).await;
            assert_eq!(get.status(), 404, "GET /v2/{r}/blobs/{digest} after a rejected upload");
        }
    }

    #[tokio::test]
    async fn single_post_with_the_wrong_digest_is_400_digest_invalid() {
        let berth = Berth::start().await;
        let r = repo("push/mismatch");
        let bytes = random_bytes(64, 17);
        let claimed = sha256(b"not these bytes");

        let post = send(
            berth
                .req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={claimed}"))
                .header("content-type", "application/octet-stream")
                .body(bytes.clone()),
        )
        .await;
        expect_error(post, 400, "DIGEST_INVALID").await;
        let get = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{claimed}"))).await;
        assert_eq!(get.status(), 404);
    }

    #[tokio::test]
    async fn sha512_digests_are_verified_stored_and_served() {
        let berth = Berth::start().await;
        let r = repo("push/sha512");
        let bytes = random_bytes(777, 18);
        let digest = sha512(&bytes);

        let post = send(
            berth
                .req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={digest}"))
                .header("content-type", "application/octet-stream")
                .body(bytes.clone()),
        )
        .await;
        assert_eq!(post.status(), 201, "POST ?digest={digest}");
        assert_eq!(relative(&berth, &header(&post, "location")), format!("/v2/{r}/blobs/{digest}"));
        assert_blob(&berth, &r, &digest, &bytes).await;

        let head = send(berth.req(Method::HEAD, &format!("/v2/{r}/blobs/{digest}"))).await;
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "content-length"), "777");

        let chunked = random_bytes(500, 19);
        let chunked_digest = sha512(&chunked);
        let location = begin_upload(&berth, &r).await;
        let patch = send(berth.req(Method::PATCH, &location).body(chunked.clone())).await;
        assert_eq!(patch.status(), 202);
        let location = relative(&berth, &header(&patch, "location"));
        let put =
            send(berth.req(Method::PUT, &with_query(&location, &format!("digest={chunked_digest}")))).await;
        assert_eq!(put.status(), 201, "PUT {location}?digest={chunked_digest}");
        assert_blob(&berth, &r, &chunked_digest, &chunked).await;

        let wrong = sha512(b"other bytes");
        let post = send(
            berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={wrong}")).body(bytes.clone()),
        )
        .await;
        expect_error(post, 400, "DIGEST_INVALID").await;
    }

    #[tokio::test]
    async fn cancelled_upload_is_204_and_then_unknown() {
        let berth = Berth::start().await;
        let r = repo("push/cancel");
        let location = begin_upload(&berth, &r).await;
        let patch = send(berth.req(Method::PATCH, &location).body(random_bytes(10, 20))).await;
        assert_eq!(patch.status(), 202);

        let delete = send(berth.req(Method::DELETE, &location)).await;
        assert_eq!(delete.status(), 204, "DELETE {location}");

        let status = send(berth.req(Method::GET, &location)).await;
        expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let patch = send(berth.req(Method::PATCH, &location).body(random_bytes(10, 21))).await;
        expect_error(patch, 404, "BLOB_UPLOAD_UNKNOWN").await;
        let digest = sha256(b"x");
        let put = send(berth.req(Method::PUT, &with_query(&location, &format!("digest={digest}")))).await;
        expect_error(put, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }

    #[tokio::test]
    async fn unknown_upload_session_is_404_blob_upload_unknown() {
        let berth = Berth::start().await;
        let r = repo("push/cancel");
        berth.push_blob(&r, b"repository exists").await;

        let status = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/uploads/no-such-session"))).await;
        expect_error(status, 404, "BLOB_UPLOAD_UNKNOWN").await;
    }

    #[tokio::test]
    async fn malformed_digest_parameter_is_400_digest_invalid() {
        let berth = Berth::start().await;
        let r = repo("push/bad-digest");
        let bytes = b"some bytes".to_vec();

        for bad in
            ["sha256:nothex", "sha256:ABCDEF", "garbage", "sha256:", "md5:d41d8cd98f00b204e9800998ecf8427e"]
        {
            let location = begin_upload(&berth, &r).await;
            let put = send(
                berth.req(Method::PUT, &with_query(&location, &format!("digest={bad}"))).body(bytes.clone()),
            )
            .await;
            expect_error(put, 400, "DIGEST_INVALID").await;

            let post = send(
                berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/?digest={bad}")).body(bytes.clone()),
            )
            .await;
            expect_error(post, 400, "DIGEST_INVALID").await;
        }
    }

    #[tokio::test]
    async fn mount_without_from_starts_a_regular_upload() {
        let berth = Berth::start().await;
        let m = repo("push/mount-target");
        let unknown = sha256(b"hello world");

        let post = send(berth.req(Method::POST, &format!("/v2/{m}/blobs/uploads/?mount={unknown}"))).await;
        assert_eq!(post.status(), 202, "POST ?mount= without from");
        let location = relative(&berth, &header(&post, "location"));
        assert!(location.starts_with(&format!("/v2/{m}/blobs/uploads/")), "Location {location:?}");

        let status = send(berth.req(Method::GET, &location)).await;
        assert_eq!(status.status(), 204, "the mount fallback must be a usable upload");
    }

    #[tokio::test]
    async fn mount_from_a_repository_holding_the_blob_is_201_at_the_blob_url() {
        let berth = Berth::start().await;
        let source = repo("push/mount-source");
        let m = repo("push/mount-target");
        let bytes = random_bytes(42, 22);
        let digest = berth.push_blob(&source, &bytes).await;

        let post =
            send(berth.req(Method::POST, &format!("/v2/{m}/blobs/uploads/?mount={digest}&from={source}")))
                .await;
        assert_eq!(post.status(), 201, "POST /v2/{m}/blobs/uploads/?mount={digest}&from={source}");
        let location = relative(&berth, &header(&post, "location"));
        assert_eq!(location, format!("/v2/{m}/blobs/{digest}"));
        assert_eq!(header(&post, "docker-content-digest"), digest);

        let get = send(berth.req(Method::GET, &location)).await;
        assert_eq!(get.status(), 200, "GET {location}");
        assert_eq!(get.bytes().await.expect("body").as_ref(), bytes.as_slice());
    }

    #[tokio::test]
    async fn mount_from_a_repository_lacking_the_blob_starts_a_regular_upload() {
        let berth = Berth::start().await;
        let source = repo("push/mount-source");
        let other = repo("push/elsewhere");
        let m = repo("push/mount-target");
        berth.push_blob(&source, b"the source exists but lacks the blob").await;
        let digest = berth.push_blob(&other, b"only in another repository").await;

        let post =
            send(berth.req(Method::POST, &format!("/v2/{m}/blobs/uploads/?mount={digest}&from={source}")))
                .await;
        assert_eq!(post.status(), 202, "POST ?mount={digest}&from={source} (source lacks it)");
        let location = relative(&berth, &header(&post, "location"));
        assert!(location.starts_with(&format!("/v2/{m}/blobs/uploads/")), "Location {location:?}");
        let get = send(berth.req(Method::GET, &format!("/v2/{m}/blobs/{digest}"))).await;
        assert_eq!(get.status(), 404, "a failed mount must not link the blob");
    }

    #[tokio::test]
    async fn manifest_put_by_tag_is_201_with_location_and_digest() {
        let berth = Berth::start().await;
        let r = repo("push/manifest");
        let image = push_conformance_image(&berth, &r, 30).await;

        let put = berth.put_manifest(&r, "v1", OCI_MANIFEST, &image.manifest).await;
        assert_eq!(put.status(), 201);
        assert!(!header(&put, "location").is_empty(), "201 without Location");
        assert_eq!(header(&put, "docker-content-digest"), image.digest);
    }

    #[tokio::test]
    async fn the_same_manifest_under_four_tags_is_201_each_time() {
        let berth = Berth::start().await;
        let r = repo("push/four-tags");
        let image = push_conformance_image(&berth, &r, 31).await;

        for i in 0..4 {
            let put = berth.put_manifest(&r, &format!("test{i}"), OCI_MANIFEST, &image.manifest).await;
            assert_eq!(put.status(), 201, "PUT /v2/{r}/manifests/test{i}");
            assert!(!header(&put, "location").is_empty());
        }
        let tags = tag_list(&berth, &r, "").await;
        assert_eq!(tags, ["test0", "test1", "test2", "test3"]);
        for i in 0..4 {
            let get = send(
                berth.req(Method::GET, &format!("/v2/{r}/manifests/test{i}")).header("accept", OCI_MANIFEST),
            )
            .await;
            assert_eq!(get.status(), 200);
            assert_eq!(header(&get, "docker-content-digest"), image.digest);
        }
    }

    #[tokio::test]
    async fn manifest_with_no_layers_is_accepted() {
        let berth = Berth::start().await;
        let r = repo("push/no-layers");
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest = berth.push_blob(&r, config).await;
        let manifest = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [],
        }));

        let put = berth.put_manifest(&r, "empty", OCI_MANIFEST, &manifest).await;
        assert_eq!(put.status(), 201, "{}", String::from_utf8_lossy(&manifest));
        assert!(!header(&put, "location").is_empty());
        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/empty")).header("accept", OCI_MANIFEST))
                .await;
        assert_eq!(get.status(), 200);
        assert_eq!(get.bytes().await.expect("body").as_ref(), manifest.as_slice());
    }

    #[tokio::test]
    async fn manifest_referencing_an_unpushed_blob_is_400_manifest_blob_unknown() {
        let berth = Berth::start().await;
        let r = repo("push/missing-blob");
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = berth.push_blob(&r, config).await;
        let missing = sha256(b"a layer that was never pushed");
        let manifest = image_manifest_bytes(&config_digest, config.len(), &missing, 29, "");

        let put = berth.put_manifest(&r, "broken", OCI_MANIFEST, &manifest).await;
        expect_error(put, 400, "MANIFEST_BLOB_UNKNOWN").await;
        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/broken")).header("accept", OCI_MANIFEST))
                .await;
        assert_eq!(get.status(), 404, "the rejected tag must not exist");
        assert!(!tag_list(&berth, &r, "").await.contains(&"broken".to_owned()));
    }

    #[tokio::test]
    async fn index_referencing_an_unpushed_manifest_is_400_manifest_blob_unknown() {
        let berth = Berth::start().await;
        let r = repo("push/missing-child");
        berth.push_blob(&r, b"repository exists").await;
        let index = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"never pushed"), "size": 12}],
        }));

        let put = berth.put_manifest(&r, "broken-index", OCI_INDEX, &index).await;
        expect_error(put, 400, "MANIFEST_BLOB_UNKNOWN").await;
        let get = send(
            berth.req(Method::GET, &format!("/v2/{r}/manifests/broken-index")).header("accept", OCI_INDEX),
        )
        .await;
        assert_eq!(get.status(), 404);
    }

    #[tokio::test]
    async fn manifest_that_is_not_json_is_400_manifest_invalid() {
        let berth = Berth::start().await;
        let r = repo("push/invalid");
        berth.push_blob(&r, b"repository exists").await;

        let put = berth.put_manifest(&r, "v1", OCI_MANIFEST, b"blablabla").await;
        expect_error(put, 400, "MANIFEST_INVALID").await;
    }

    #[tokio::test]
    async fn manifest_put_under_a_digest_that_does_not_match_is_400_digest_invalid() {
        let berth = Berth::start().await;
        let r = repo("push/wrong-digest");
        let image = push_conformance_image(&berth, &r, 32).await;
        let wrong = sha256(b"not the manifest");

        let put = berth.put_manifest(&r, &wrong, OCI_MANIFEST, &image.manifest).await;
        expect_error(put, 400, "DIGEST_INVALID").await;
        for digest in [&wrong, &image.digest] {
            let get = send(
                berth.req(Method::GET, &format!("/v2/{r}/manifests/{digest}")).header("accept", OCI_MANIFEST),
            )
            .await;
            assert_eq!(get.status(), 404, "GET /v2/{r}/manifests/{digest} after the rejected PUT");
        }
    }

    #[tokio::test]
    async fn manifest_of_four_mebibytes_is_accepted() {
        let berth = Berth::start().await;
        let r = repo("push/large");
        let image = push_conformance_image(&berth, &r, 33).await;
        let manifest = padded_manifest(&image, 4 * 1024 * 1024);
        assert_eq!(manifest.len(), 4 * 1024 * 1024);

        let put = berth.put_manifest(&r, "big", OCI_MANIFEST, &manifest).await;
        assert_eq!(put.status(), 201, "PUT a manifest of exactly 4 MiB");
        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/big")).header("accept", OCI_MANIFEST))
                .await;
        assert_eq!(get.status(), 200);
        assert_eq!(get.bytes().await.expect("body").as_ref(), manifest.as_slice());
    }

    #[tokio::test]
    async fn manifest_over_four_mebibytes_is_refused_as_too_large() {
        let berth = Berth::start().await;
        let r = repo("push/large");
        let image = push_conformance_image(&berth, &r, 34).await;
        let manifest = padded_manifest(&image, 4 * 1024 * 1024 + 1);

        let put = berth.put_manifest(&r, "too-big", OCI_MANIFEST, &manifest).await;
        expect_error(put, 413, "SIZE_INVALID").await;
        let get = send(
            berth.req(Method::GET, &format!("/v2/{r}/manifests/too-big")).header("accept", OCI_MANIFEST),
        )
        .await;
        assert_eq!(get.status(), 404);
    }

    #[tokio::test]
    async fn invalid_tag_in_manifest_put_is_400_tag_invalid() {
        let berth = Berth::start().await;
        let r = repo("push/bad-tag");
        let image = push_conformance_image(&berth, &r, 35).await;

        let too_long = "a".repeat(129);
        for tag in ["-bad", ".bad", "bad!", too_long.as_str()] {
            let put = berth.put_manifest(&r, tag, OCI_MANIFEST, &image.manifest).await;
            expect_error(put, 400, "TAG_INVALID").await;
        }
        let longest = "a".repeat(128);
        let put = berth.put_manifest(&r, &longest, OCI_MANIFEST, &image.manifest).await;
        assert_eq!(put.status(), 201, "a 128-character tag is valid");
    }

    #[tokio::test]
    async fn unknown_fields_with_null_values_are_stored_and_served_byte_identical() {
        let berth = Berth::start().await;
        let r = repo("push/unknown-fields");
        let image = push_conformance_image(&berth, &r, 36).await;
        let text = String::from_utf8(image.manifest.clone()).expect("utf8");
        assert!(text.contains("\"newUnspecifiedField\": null"), "fixture carries null unknown fields");

        put_manifest_ok(&berth, &r, "odd", OCI_MANIFEST, &image.manifest).await;
        for reference in ["odd", image.digest.as_str()] {
            let get = send(
                berth
                    .req(Method::GET, &format!("/v2/{r}/manifests/{reference}"))
                    .header("accept", OCI_MANIFEST),
            )
            .await;
            assert_eq!(get.status(), 200);
            assert_eq!(header(&get, "docker-content-digest"), image.digest);
            assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
        }
    }
}

mod discovery {
    use super::*;

    #[tokio::test]
    async fn tag_list_names_the_repository_and_is_sorted() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list"))).await;
        assert_eq!(list.status(), 200);
        assert!(header(&list, "content-type").starts_with("application/json"));
        let body = json_body(list).await;
        assert_eq!(body, json!({"name": r, "tags": SORTED}));
    }

    #[tokio::test]
    async fn tag_list_n_limits_the_page_and_links_the_next() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        let page = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list?n=2"))).await;
        assert_eq!(page.status(), 200);
        let link = header(&page, "link");
        let body = json_body(page).await;
        assert_eq!(body["tags"], json!(["1.0", "alpha"]));
        let next = next_link(&berth, &link);
        assert_eq!(next, format!("/v2/{r}/tags/list?n=2&last=alpha"), "Link: {link}");
    }

    #[tokio::test]
    async fn tag_list_last_starts_after_the_given_tag() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        let page = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list?n=2&last=alpha"))).await;
        assert_eq!(page.status(), 200);
        let body = json_body(page).await;
        assert_eq!(body["tags"], json!(["beta", "v10"]));

        let rest = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list?last=beta"))).await;
        assert_eq!(rest.status(), 200);
        assert_eq!(json_body(rest).await["tags"], json!(["v10", "v2"]));
    }

    #[tokio::test]
    async fn walking_the_link_chain_yields_every_tag_exactly_once() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        let mut seen = Vec::new();
        let mut path = format!("/v2/{r}/tags/list?n=2");
        for _ in 0..10 {
            let page = send(berth.req(Method::GET, &path)).await;
            assert_eq!(page.status(), 200, "GET {path}");
            let link = header(&page, "link");
            let body = json_body(page).await;
            let tags = body["tags"].as_array().expect("tags array");
            assert!(tags.len() <= 2, "GET {path} returned {} tags", tags.len());
            seen.extend(tags.iter().map(|t| t.as_str().expect("tag string").to_owned()));
            if link.is_empty() {
                break;
            }
            path = next_link(&berth, &link);
        }
        assert_eq!(seen, SORTED);
    }

    #[tokio::test]
    async fn tag_list_with_n_zero_is_empty() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        let page = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list?n=0"))).await;
        assert_eq!(page.status(), 200);
        assert_eq!(header(&page, "link"), "", "an empty page links nowhere");
        assert_eq!(json_body(page).await, json!({"name": r, "tags": []}));
    }

    #[tokio::test]
    async fn tag_list_with_an_invalid_n_is_a_client_error() {
        let berth = Berth::start().await;
        let r = repo("discovery/tags");
        push_five_tags(&berth, &r).await;

        for n in ["abc", "-1", "1.5"] {
            let page = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list?n={n}"))).await;
            let status = page.status().as_u16();
            let ct = header(&page, "content-type");
            let text = page.text().await.expect("body");
            assert!((400..500).contains(&status), "GET tags/list?n={n} answered {status}: {text}");
            assert_error_document(&ct, &text);
        }
    }

    #[tokio::test]
    async fn tag_list_of_an_unknown_repository_is_404_name_unknown() {
        let berth = Berth::start().await;
        let r = repo("discovery/nothing-here");

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list"))).await;
        expect_error(list, 404, "NAME_UNKNOWN").await;
    }

    #[tokio::test]
    async fn referrers_of_an_unknown_digest_is_an_empty_index() {
        let berth = Berth::start().await;
        let r = repo("discovery/referrers");
        let image = push_conformance_image(&berth, &r, 41).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;
        let unknown = sha256(b"hello world");

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/referrers/{unknown}"))).await;
        assert_eq!(list.status(), 200);
        assert_eq!(header(&list, "content-type"), OCI_INDEX);
        let index = json_body(list).await;
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["manifests"], json!([]));
    }

    #[tokio::test]
    async fn every_referrer_pushed_by_digest_carries_oci_subject() {
        let berth = Berth::start().await;
        let r = repo("discovery/referrers");
        let fx = push_referrers(&berth, &r).await;
        for (name, digest, subject) in &fx.subject_headers {
            assert_eq!(subject, &fx.subject, "OCI-Subject of {name} ({digest})");
        }
        assert_eq!(fx.subject_headers.len(), 5);
    }

    #[tokio::test]
    async fn referrers_lists_every_artifact_with_its_descriptor_fields() {
        let berth = Berth::start().await;
        let r = repo("discovery/referrers");
        let fx = push_referrers(&berth, &r).await;

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/referrers/{}", fx.subject))).await;
        assert_eq!(list.status(), 200);
        assert_eq!(header(&list, "content-type"), OCI_INDEX);
        assert_eq!(header(&list, "oci-filters-applied"), "", "no filter was asked for");
        let index = json_body(list).await;
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_referrers(&index, &fx.artifacts, None);
    }

    #[tokio::test]
    async fn referrers_filtered_by_artifact_type_says_so_and_lists_only_that_type() {
        let berth = Berth::start().await;
        let r = repo("discovery/referrers");
        let fx = push_referrers(&berth, &r).await;

        let path = format!("/v2/{r}/referrers/{}?artifactType={}", fx.subject, encode(TYPE_A));
        let list = send(berth.req(Method::GET, &path)).await;
        assert_eq!(list.status(), 200);
        assert_eq!(header(&list, "content-type"), OCI_INDEX);
        assert_eq!(header(&list, "oci-filters-applied"), "artifactType");
        let index = json_body(list).await;
        assert_referrers(&index, &fx.artifacts, Some(TYPE_A));
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2));
    }

    #[tokio::test]
    async fn referrer_to_a_subject_never_pushed_is_accepted_and_listed() {
        let berth = Berth::start().await;
        let r = repo("discovery/referrers");
        let fx = push_referrers(&berth, &r).await;
        let absent = image_manifest_bytes(&sha256(b"c"), 1, &sha256(b"l"), 1, "");
        let absent_digest = sha256(&absent);
        let artifact = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": TYPE_B,
            "config": empty_json_descriptor(),
            "layers": [descriptor(TYPE_B, REF_BLOB_B)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": absent_digest, "size": absent.len()},
        }));
        let digest = sha256(&artifact);

        let put = berth.put_manifest(&r, &digest, OCI_MANIFEST, &artifact).await;
        assert_eq!(put.status(), 201, "PUT a referrer whose subject is missing");
        assert_eq!(header(&put, "oci-subject"), absent_digest);

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/referrers/{absent_digest}"))).await;
        assert_eq!(list.status(), 200);
        assert_eq!(header(&list, "content-type"), OCI_INDEX);
        let index = json_body(list).await;
        assert_eq!(
            index["manifests"],
            json!([{"mediaType": OCI_MANIFEST, "digest": digest, "size": artifact.len(), "artifactType": TYPE_B}])
        );

        // The other subject's list is unaffected.
        let list = send(berth.req(Method::GET, &format!("/v2/{r}/referrers/{}", fx.subject))).await;
        assert_referrers(&json_body(list).await, &fx.artifacts, None);
    }

    #[tokio::test]
    async fn catalog_lists_pushed_repositories_sorted() {
        let berth = Berth::start().await;
        for name in ["cat/b", "cat/a", "cat/c"] {
            berth.push_image(&repo(name), "v1", name.as_bytes(), b"layer").await;
        }

        let list = send(berth.req(Method::GET, "/v2/_catalog")).await;
        assert_eq!(list.status(), 200);
        assert!(header(&list, "content-type").starts_with("application/json"));
        assert_eq!(
            json_body(list).await,
            json!({"repositories": [repo("cat/a"), repo("cat/b"), repo("cat/c")]})
        );
    }

    #[tokio::test]
    async fn catalog_paginates_with_n_last_and_link() {
        let berth = Berth::start().await;
        for name in ["cat/b", "cat/a", "cat/c"] {
            berth.push_image(&repo(name), "v1", name.as_bytes(), b"layer").await;
        }

        let page = send(berth.req(Method::GET, "/v2/_catalog?n=2")).await;
        assert_eq!(page.status(), 200);
        let link = header(&page, "link");
        assert_eq!(json_body(page).await["repositories"], json!([repo("cat/a"), repo("cat/b")]));
        let next = next_link(&berth, &link);
        assert!(next.starts_with("/v2/_catalog?"), "Link: {link}");

        let page = send(berth.req(Method::GET, &next)).await;
        assert_eq!(page.status(), 200, "GET {next}");
        assert_eq!(header(&page, "link"), "", "the last page links nowhere");
        assert_eq!(json_body(page).await["repositories"], json!([repo("cat/c")]));

        let last = encode(&repo("cat/a"));
        let page = send(berth.req(Method::GET, &format!("/v2/_catalog?last={last}"))).await;
        assert_eq!(page.status(), 200);
        assert_eq!(json_body(page).await["repositories"], json!([repo("cat/b"), repo("cat/c")]));
    }
}

mod management {
    use super::*;

    #[tokio::test]
    async fn deleting_a_tag_removes_only_the_tag() {
        let berth = Berth::start().await;
        let r = repo("manage/tags");
        let image = push_conformance_image(&berth, &r, 50).await;
        put_manifest_ok(&berth, &r, "gone", OCI_MANIFEST, &image.manifest).await;
        put_manifest_ok(&berth, &r, "kept", OCI_MANIFEST, &image.manifest).await;

        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/manifests/gone"))).await;
        assert_eq!(delete.status(), 202, "DELETE /v2/{r}/manifests/gone");

        assert_eq!(tag_list(&berth, &r, "").await, ["kept"]);
        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/gone")).header("accept", OCI_MANIFEST))
                .await;
        expect_error(get, 404, "MANIFEST_UNKNOWN").await;
        let get = send(
            berth
                .req(Method::GET, &format!("/v2/{r}/manifests/{}", image.digest))
                .header("accept", OCI_MANIFEST),
        )
        .await;
        assert_eq!(get.status(), 200, "the manifest outlives its tag");
        assert_eq!(get.bytes().await.expect("body").as_ref(), image.manifest.as_slice());
    }

    #[tokio::test]
    async fn deleting_the_last_tag_leaves_an_empty_tag_list_not_a_404() {
        let berth = Berth::start().await;
        let r = repo("manage/last-tag");
        let image = push_conformance_image(&berth, &r, 51).await;
        put_manifest_ok(&berth, &r, "only", OCI_MANIFEST, &image.manifest).await;

        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/manifests/only"))).await;
        assert_eq!(delete.status(), 202);

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list"))).await;
        assert_eq!(list.status(), 200, "tags/list of an existing repository without tags");
        assert_eq!(json_body(list).await, json!({"name": r, "tags": []}));
    }

    #[tokio::test]
    async fn deleting_a_manifest_by_digest_removes_it_and_its_tags() {
        let berth = Berth::start().await;
        let r = repo("manage/by-digest");
        let image = push_conformance_image(&berth, &r, 52).await;
        let other = push_conformance_image(&berth, &r, 53).await;
        put_manifest_ok(&berth, &r, "a", OCI_MANIFEST, &image.manifest).await;
        put_manifest_ok(&berth, &r, "b", OCI_MANIFEST, &image.manifest).await;
        put_manifest_ok(&berth, &r, "other", OCI_MANIFEST, &other.manifest).await;
        let path = format!("/v2/{r}/manifests/{}", image.digest);

        let delete = send(berth.req(Method::DELETE, &path)).await;
        assert_eq!(delete.status(), 202, "DELETE {path}");

        let get = send(berth.req(Method::GET, &path).header("accept", OCI_MANIFEST)).await;
        expect_error(get, 404, "MANIFEST_UNKNOWN").await;
        let head = send(berth.req(Method::HEAD, &path).header("accept", OCI_MANIFEST)).await;
        assert_eq!(head.status(), 404);
        for tag in ["a", "b"] {
            let get = send(
                berth.req(Method::GET, &format!("/v2/{r}/manifests/{tag}")).header("accept", OCI_MANIFEST),
            )
            .await;
            expect_error(get, 404, "MANIFEST_UNKNOWN").await;
        }
        assert_eq!(tag_list(&berth, &r, "").await, ["other"]);

        let again = send(berth.req(Method::DELETE, &path)).await;
        expect_error(again, 404, "MANIFEST_UNKNOWN").await;
    }

    #[tokio::test]
    async fn deleting_an_unknown_manifest_or_tag_is_404() {
        let berth = Berth::start().await;
        let r = repo("manage/unknown");
        let image = push_conformance_image(&berth, &r, 54).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;

        let unknown = sha256(b"never a manifest here");
        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/manifests/{unknown}"))).await;
        expect_error(delete, 404, "MANIFEST_UNKNOWN").await;
        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/manifests/no-such-tag"))).await;
        expect_error(delete, 404, "MANIFEST_UNKNOWN").await;
    }

    #[tokio::test]
    async fn deleting_a_blob_makes_it_unknown() {
        let berth = Berth::start().await;
        let r = repo("manage/blobs");
        let bytes = random_bytes(128, 55);
        let digest = berth.push_blob(&r, &bytes).await;
        let path = format!("/v2/{r}/blobs/{digest}");

        let delete = send(berth.req(Method::DELETE, &path)).await;
        assert_eq!(delete.status(), 202, "DELETE {path}");
        let get = send(berth.req(Method::GET, &path)).await;
        expect_error(get, 404, "BLOB_UNKNOWN").await;
        let head = send(berth.req(Method::HEAD, &path)).await;
        assert_eq!(head.status(), 404);
        let again = send(berth.req(Method::DELETE, &path)).await;
        expect_error(again, 404, "BLOB_UNKNOWN").await;
    }

    #[tokio::test]
    async fn deleting_an_unknown_blob_is_404_blob_unknown() {
        let berth = Berth::start().await;
        let r = repo("manage/blobs");
        berth.push_blob(&r, b"repository exists").await;
        let unknown = sha256(b"hello world");

        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/blobs/{unknown}"))).await;
        expect_error(delete, 404, "BLOB_UNKNOWN").await;
    }

    #[tokio::test]
    async fn deleting_a_blob_in_one_repository_keeps_it_in_another() {
        let berth = Berth::start().await;
        let x = repo("manage/x");
        let y = repo("manage/y");
        let bytes = random_bytes(4096, 56);
        let digest = berth.push_blob(&x, &bytes).await;
        berth.push_blob(&y, &bytes).await;

        let delete = send(berth.req(Method::DELETE, &format!("/v2/{x}/blobs/{digest}"))).await;
        assert_eq!(delete.status(), 202);
        let get = send(berth.req(Method::GET, &format!("/v2/{x}/blobs/{digest}"))).await;
        assert_eq!(get.status(), 404);
        assert_blob(&berth, &y, &digest, &bytes).await;
    }

    #[tokio::test]
    async fn deleting_a_referrer_removes_it_from_the_referrers_list() {
        let berth = Berth::start().await;
        let r = repo("manage/referrers");
        let fx = push_referrers(&berth, &r).await;
        let (removed, _) =
            fx.artifacts.iter().find(|(_, a)| a.annotation == "test layer b").expect("B-layer");

        let delete = send(berth.req(Method::DELETE, &format!("/v2/{r}/manifests/{removed}"))).await;
        assert_eq!(delete.status(), 202);

        let list = send(berth.req(Method::GET, &format!("/v2/{r}/referrers/{}", fx.subject))).await;
        assert_eq!(list.status(), 200);
        let remaining: Vec<(String, Artifact)> =
            fx.artifacts.iter().filter(|(d, _)| d != removed).cloned().collect();
        assert_referrers(&json_body(list).await, &remaining, None);
    }
}

mod errors {
    use super::*;

    #[tokio::test]
    async fn every_error_body_is_an_oci_error_document() {
        let berth = Berth::start().await;
        let r = repo("errors/shape");
        berth.push_blob(&r, b"repository exists").await;
        let unknown = sha256(b"hello world");
        let requests = [
            berth.req(Method::GET, &format!("/v2/{r}/blobs/{unknown}")),
            berth.req(Method::GET, &format!("/v2/{r}/manifests/nope")),
            berth.req(Method::GET, &format!("/v2/{r}/blobs/uploads/nope")),
            berth.req(Method::GET, &format!("/v2/{r}/blobs/sha256:bad")),
            berth.req(Method::PUT, &format!("/v2/{r}/manifests/v1")).body("blablabla"),
            berth.req(Method::GET, &format!("/v2/{ACCOUNT}/UPPER/tags/list")),
            berth.req(Method::GET, &format!("/v2/{}/tags/list", other_account_repo("app"))),
            berth.req(Method::GET, &format!("/v2/{}/tags/list", repo("errors/absent"))),
            berth.anon(Method::GET, "/v2/"),
            berth.anon(Method::GET, &format!("/v2/{r}/tags/list")),
        ];
        for request in requests {
            let request = request.build().expect("request");
            let described = format!("{} {}", request.method(), request.url().path());
            let response = berth.client.execute(request).await.expect("send");
            let status = response.status().as_u16();
            let ct = header(&response, "content-type");
            let text = response.text().await.expect("body");
            assert!((400..500).contains(&status), "{described} answered {status}");
            let document = assert_error_document(&ct, &text);
            let code = document["errors"][0]["code"].as_str().unwrap_or_default().to_owned();
            assert!(
                ERROR_CODES.contains(&code.as_str()),
                "{described}: code {code} is not an OCI error code"
            );
        }
    }

    #[tokio::test]
    async fn base_endpoint_without_credentials_is_401_with_a_basic_challenge() {
        let berth = Berth::start().await;

        let get = send(berth.anon(Method::GET, "/v2/")).await;
        assert_eq!(get.status(), 401);
        let challenge = header(&get, "www-authenticate");
        assert!(challenge.to_ascii_lowercase().starts_with("basic "), "WWW-Authenticate: {challenge:?}");
        assert!(challenge.contains("realm="), "WWW-Authenticate without a realm: {challenge:?}");
        expect_error(get, 401, "UNAUTHORIZED").await;
    }

    #[tokio::test]
    async fn base_endpoint_with_credentials_is_200_with_the_api_version_header() {
        let berth = Berth::start().await;

        for method in [Method::GET, Method::HEAD] {
            let response = send(berth.req(method.clone(), "/v2/")).await;
            assert_eq!(response.status(), 200, "{method} /v2/");
            assert_eq!(header(&response, "docker-distribution-api-version"), "registry/2.0");
        }
    }

    #[tokio::test]
    async fn repository_endpoints_without_credentials_are_401_with_a_challenge() {
        let berth = Berth::start().await;
        let r = repo("errors/anon");
        berth.push_image(&r, "v1", b"config", b"layer").await;

        let requests = [
            berth.anon(Method::GET, &format!("/v2/{r}/manifests/v1")),
            berth.anon(Method::HEAD, &format!("/v2/{r}/manifests/v1")),
            berth.anon(Method::GET, &format!("/v2/{r}/tags/list")),
            berth.anon(Method::POST, &format!("/v2/{r}/blobs/uploads/")),
            berth.anon(Method::GET, "/v2/_catalog"),
        ];
        for request in requests {
            let request = request.build().expect("request");
            let described = format!("{} {}", request.method(), request.url().path());
            let response = berth.client.execute(request).await.expect("send");
            assert_eq!(response.status(), 401, "{described} without credentials");
            assert!(
                header(&response, "www-authenticate").to_ascii_lowercase().starts_with("basic "),
                "{described}: no Basic challenge"
            );
        }
    }

    #[tokio::test]
    async fn wrong_password_is_401() {
        let berth = Berth::start().await;

        let get = send(berth.anon(Method::GET, "/v2/").basic_auth("AWS", Some("not-the-password"))).await;
        assert_eq!(get.status(), 401);
        assert!(header(&get, "www-authenticate").to_ascii_lowercase().starts_with("basic "));
        expect_error(get, 401, "UNAUTHORIZED").await;

        let tampered = format!("{}x", berth.password);
        let get = send(berth.anon(Method::GET, "/v2/").basic_auth("AWS", Some(tampered))).await;
        assert_eq!(get.status(), 401);
    }

    #[tokio::test]
    async fn user_other_than_aws_is_401() {
        let berth = Berth::start().await;

        for user in ["admin", "aws", ""] {
            let get = send(berth.anon(Method::GET, "/v2/").basic_auth(user, Some(&berth.password))).await;
            assert_eq!(get.status(), 401, "user {user:?} with the right password");
        }
    }

    #[tokio::test]
    async fn non_basic_or_malformed_authorization_is_401() {
        let berth = Berth::start().await;

        for value in
            [format!("Bearer {}", berth.password), "Basic !!!notbase64".to_owned(), "Basic".to_owned()]
        {
            let get = send(berth.anon(Method::GET, "/v2/").header("authorization", value.as_str())).await;
            assert_eq!(get.status(), 401, "Authorization: {value}");
        }
    }

    #[tokio::test]
    async fn another_accounts_repository_is_403_denied_whether_or_not_it_exists() {
        let berth = Berth::start().await;
        let own = repo("errors/mine");
        let image = push_conformance_image(&berth, &own, 60).await;
        put_manifest_ok(&berth, &own, "v1", OCI_MANIFEST, &image.manifest).await;

        for name in [other_account_repo("app"), other_account_repo("errors/mine")] {
            let requests = [
                berth.req(Method::GET, &format!("/v2/{name}/manifests/v1")),
                berth.req(Method::GET, &format!("/v2/{name}/manifests/{}", image.digest)),
                berth.req(Method::GET, &format!("/v2/{name}/blobs/{}", sha256(b"x"))),
                berth.req(Method::GET, &format!("/v2/{name}/tags/list")),
                berth.req(Method::POST, &format!("/v2/{name}/blobs/uploads/")),
                berth.req(Method::PUT, &format!("/v2/{name}/manifests/v1")).body(image.manifest.clone()),
                berth.req(Method::DELETE, &format!("/v2/{name}/manifests/v1")),
            ];
            for request in requests {
                let request = request.build().expect("request");
                let described = format!("{} {}", request.method(), request.url().path());
                let response = berth.client.execute(request).await.expect("send");
                let status = response.status().as_u16();
                let text = response.text().await.expect("body");
                assert_eq!(status, 403, "{described}: {text}");
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                assert_eq!(body["errors"][0]["code"], "DENIED", "{described}: {text}");
            }
        }
    }

    #[tokio::test]
    async fn cross_account_mount_source_is_not_a_way_around_authorization() {
        let berth = Berth::start().await;
        let (key, secret) = berth.account_with_key("111111111111");
        let other = berth.password_for(&key, &secret).await;
        let from = other_account_repo("app");
        let bytes = b"only the other account may read this";
        let digest = sha256(bytes);
        let pushed = send(
            berth
                .req_with(&other, Method::POST, &format!("/v2/{from}/blobs/uploads/?digest={digest}"))
                .body(bytes.to_vec()),
        )
        .await;
        assert_eq!(pushed.status(), 201, "the other account holds the blob");

        // The owner may push to its own repository but not read the other account's: the mount
        // must fall back to an upload and link nothing.
        let m = repo("errors/mount");
        let mount = format!("/v2/{m}/blobs/uploads/?mount={digest}&from={from}");
        let post = send(berth.req(Method::POST, &mount)).await;
        assert_eq!(post.status(), 202, "a mount without read on its source is a plain upload");
        let get = send(berth.req(Method::GET, &format!("/v2/{m}/blobs/{digest}"))).await;
        assert_eq!(get.status(), 404, "nothing was linked");

        // Once the other account lets the owner read it, the same mount completes.
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": ACCOUNT}, "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]}]});
        let (status, out) = berth
            .ecr_as(
                &key,
                &secret,
                "SetRepositoryPolicy",
                json!({"repositoryName": "app", "policyText": policy.to_string()}),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        let post = send(berth.req(Method::POST, &mount)).await;
        assert_eq!(post.status(), 201, "with read on the source the mount completes");
        let get = send(berth.req(Method::GET, &format!("/v2/{m}/blobs/{digest}"))).await;
        assert_eq!(get.status(), 200);
        assert_eq!(get.bytes().await.expect("body").as_ref(), bytes, "the target serves the source's bytes");
    }

    #[tokio::test]
    async fn missing_repository_in_the_callers_account_is_404_name_unknown() {
        let berth = Berth::start().await;
        let r = repo("errors/absent");

        let get =
            send(berth.req(Method::GET, &format!("/v2/{r}/manifests/latest")).header("accept", OCI_MANIFEST))
                .await;
        expect_error(get, 404, "NAME_UNKNOWN").await;
        let head = send(berth.req(Method::HEAD, &format!("/v2/{r}/manifests/latest"))).await;
        assert_eq!(head.status(), 404);
        let blob = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{}", sha256(b"x")))).await;
        assert_eq!(blob.status(), 404);
    }

    #[tokio::test]
    async fn malformed_repository_names_are_400_name_invalid() {
        let berth = Berth::start().await;

        for name in [format!("{ACCOUNT}/UPPER"), format!("{ACCOUNT}/a//b"), "notanaccount/x".to_owned()] {
            let requests = [
                berth.req(Method::GET, &format!("/v2/{name}/manifests/latest")),
                berth.req(Method::HEAD, &format!("/v2/{name}/manifests/latest")),
                berth.req(Method::GET, &format!("/v2/{name}/tags/list")),
                berth.req(Method::POST, &format!("/v2/{name}/blobs/uploads/")),
                berth.req(Method::GET, &format!("/v2/{name}/blobs/{}", sha256(b"x"))),
            ];
            for request in requests {
                let request = request.build().expect("request");
                let method = request.method().clone();
                let described = format!("{method} {}", request.url().path());
                let response = berth.client.execute(request).await.expect("send");
                if method == Method::HEAD {
                    assert_eq!(response.status(), 400, "{described}");
                } else {
                    expect_error(response, 400, "NAME_INVALID").await;
                }
            }
        }
    }

    #[tokio::test]
    async fn unknown_endpoints_are_404() {
        let berth = Berth::start().await;
        let r = repo("errors/routes");
        berth.push_blob(&r, b"repository exists").await;

        for path in [
            format!("/v2/{r}/nothing"),
            format!("/v2/{r}/manifests/"),
            format!("/v2/{r}/tags/all"),
            "/v2/_nothing".to_owned(),
            "/v3/".to_owned(),
            "/nothing".to_owned(),
        ] {
            let response = send(berth.req(Method::GET, &path)).await;
            assert_eq!(response.status(), 404, "GET {path}");
        }
    }

    #[tokio::test]
    async fn wrong_method_on_an_endpoint_is_a_client_error() {
        let berth = Berth::start().await;
        let r = repo("errors/methods");
        let image = push_conformance_image(&berth, &r, 61).await;
        put_manifest_ok(&berth, &r, "v1", OCI_MANIFEST, &image.manifest).await;
        let location = begin_upload(&berth, &r).await;

        let cases = [
            (Method::PATCH, format!("/v2/{r}/manifests/v1")),
            (Method::POST, format!("/v2/{r}/manifests/v1")),
            (Method::PUT, format!("/v2/{r}/blobs/{}", image.digest)),
            (Method::PATCH, format!("/v2/{r}/blobs/{}", image.digest)),
            (Method::POST, "/v2/".to_owned()),
            (Method::DELETE, "/v2/_catalog".to_owned()),
            (Method::PUT, format!("/v2/{r}/tags/list")),
            (Method::DELETE, format!("/v2/{r}/tags/list")),
            (Method::GET, format!("/v2/{r}/blobs/uploads/")),
            (Method::POST, location.clone()),
            (Method::PUT, format!("/v2/{r}/referrers/{}", image.digest)),
        ];
        for (method, path) in cases {
            let response = send(berth.req(method.clone(), &path)).await;
            let status = response.status().as_u16();
            assert!((400..500).contains(&status), "{method} {path} answered {status}, want 4xx");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers.

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const TYPE_A: &str = "application/vnd.nhl.peanut.butter.bagel";
const TYPE_B: &str = "application/vnd.nba.strawberry.jam.croissant";
const TYPE_INDEX: &str = "application/vnd.food.stand";
const REF_BLOB_A: &[u8] = b"NHL Peanut Butter on my NHL bagel";
const REF_BLOB_B: &[u8] = b"NBA Strawberry Jam on my NBA croissant";
const ANNOTATION: &str = "org.opencontainers.conformance.test";
/// Tags pushed for the tag-list tests, and the order the list must return them in.
const TAGS: [&str; 5] = ["v2", "alpha", "v10", "beta", "1.0"];
const SORTED: [&str; 5] = ["1.0", "alpha", "beta", "v10", "v2"];

/// The error codes of the distribution spec.
const ERROR_CODES: [&str; 15] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
];

/// An image whose blobs are pushed and whose manifest is not (yet).
struct Image {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
    digest: String,
}

/// A referrer as the referrers list must describe it.
#[derive(Clone, Debug)]
struct Artifact {
    media_type: &'static str,
    artifact_type: &'static str,
    size: usize,
    annotation: &'static str,
}

/// The conformance suite's referrers setup: subject S and five artifacts naming it.
struct Referrers {
    subject: String,
    /// (digest, expected descriptor)
    artifacts: Vec<(String, Artifact)>,
    /// (name, digest, OCI-Subject answered to its PUT)
    subject_headers: Vec<(&'static str, String, String)>,
}

async fn send(request: RequestBuilder) -> Response {
    request.send().await.expect("request sent")
}

/// A response header as text, empty when absent.
fn header(response: &Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn json_body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// Checks that a body is `{"errors":[{"code":..,"message":..},..]}` served as JSON.
fn assert_error_document(content_type: &str, text: &str) -> Value {
    assert!(content_type.starts_with("application/json"), "error Content-Type {content_type:?}: {text}");
    let body: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors array: {text}"));
    assert!(!errors.is_empty(), "empty errors array: {text}");
    for error in errors {
        assert!(error["code"].is_string(), "error without a code: {text}");
        assert!(error["message"].is_string(), "error without a message: {text}");
    }
    body
}

/// Checks status, error document shape and first error code.
async fn expect_error(response: Response, status: u16, code: &str) {
    let got = response.status().as_u16();
    let url = response.url().path().to_owned();
    let ct = header(&response, "content-type");
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{url}: {text}");
    let body = assert_error_document(&ct, &text);
    assert_eq!(body["errors"][0]["code"], code, "{url}: {text}");
}

/// Starts an upload and returns its location as a path.
async fn begin_upload(berth: &Berth, r: &str) -> String {
    let post =
        send(berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).header("content-length", "0")).await;
    assert_eq!(post.status(), 202, "POST /v2/{r}/blobs/uploads/");
    let location = relative(berth, &header(&post, "location"));
    assert!(!location.is_empty(), "POST /v2/{r}/blobs/uploads/ without Location");
    location
}

async fn patch_chunk(berth: &Berth, location: &str, chunk: &[u8], range: &str) -> Response {
    send(
        berth
            .req(Method::PATCH, location)
            .header("content-type", "application/octet-stream")
            .header("content-range", range)
            .body(chunk.to_vec()),
    )
    .await
}

/// An absolute `Location` turned into a path on this registry; relative ones unchanged.
fn relative(berth: &Berth, location: &str) -> String {
    location.strip_prefix(&berth.url).unwrap_or(location).to_owned()
}

fn with_query(location: &str, pair: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{pair}")
}

/// The target of `Link: <url>; rel="next"`, as a path.
fn next_link(berth: &Berth, link: &str) -> String {
    let rest = link.trim().strip_prefix('<').unwrap_or_else(|| panic!("malformed Link {link:?}"));
    let (target, params) = rest.split_once('>').unwrap_or_else(|| panic!("malformed Link {link:?}"));
    let params: Vec<&str> = params.split(';').map(str::trim).filter(|p| !p.is_empty()).collect();
    assert_eq!(params, [r#"rel="next""#], "Link parameters of {link:?}");
    relative(berth, target)
}

async fn assert_blob(berth: &Berth, r: &str, digest: &str, bytes: &[u8]) {
    let get = send(berth.req(Method::GET, &format!("/v2/{r}/blobs/{digest}"))).await;
    assert_eq!(get.status(), 200, "GET /v2/{r}/blobs/{digest}");
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().await.expect("body").as_ref(), bytes, "bytes of {digest}");
}

async fn put_manifest_ok(berth: &Berth, r: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
    let put = berth.put_manifest(r, reference, media_type, body).await;
    assert_eq!(put.status(), 201, "PUT /v2/{r}/manifests/{reference}: {}", String::from_utf8_lossy(body));
    put
}

async fn tag_list(berth: &Berth, r: &str, query: &str) -> Vec<String> {
    let list = send(berth.req(Method::GET, &format!("/v2/{r}/tags/list{query}"))).await;
    assert_eq!(list.status(), 200, "GET /v2/{r}/tags/list{query}");
    let body = json_body(list).await;
    assert_eq!(body["name"], r);
    body["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("tags is not an array: {body}"))
        .iter()
        .map(|t| t.as_str().expect("tag string").to_owned())
        .collect()
}

/// Pushes one image under every tag of [`TAGS`].
async fn push_five_tags(berth: &Berth, r: &str) {
    let image = push_conformance_image(berth, r, 40).await;
    for tag in TAGS {
        put_manifest_ok(berth, r, tag, OCI_MANIFEST, &image.manifest).await;
    }
}

/// Pushes the config and layer of an image shaped like the conformance suite's (tab-indented,
/// config carrying `data` and an unknown field, layers carrying unknown fields set to null)
/// and returns its manifest, not yet pushed.
async fn push_conformance_image(berth: &Berth, r: &str, seed: u8) -> Image {
    let config = pretty(&json!({
        "author": format!("conformance {seed}"),
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }));
    let layer = random_bytes(200 + usize::from(seed), seed);
    let config_digest = berth.push_blob(r, &config).await;
    let layer_digest = berth.push_blob(r, &layer).await;
    let manifest = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config_digest,
            "size": config.len(),
            "data": base64(&config),
            "newUnspecifiedField": base64(b"hello world"),
        },
        "layers": [{
            "mediaType": OCI_LAYER,
            "digest": layer_digest,
            "size": layer.len(),
            "data": null,
            "newUnspecifiedField": null,
        }],
    }));
    let digest = sha256(&manifest);
    Image { config, layer, manifest, digest }
}

/// The image's manifest with an annotation padding it to exactly `size` bytes.
fn padded_manifest(image: &Image, size: usize) -> Vec<u8> {
    let build = |pad: usize| {
        image_manifest_bytes(
            &sha256(&image.config),
            image.config.len(),
            &sha256(&image.layer),
            image.layer.len(),
            &format!(r#","annotations":{{"pad":"{}"}}"#, "x".repeat(pad)),
        )
    };
    let base = build(0).len();
    build(size - base)
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

fn empty_json_descriptor() -> Value {
    json!({"mediaType": EMPTY_JSON, "digest": EMPTY_JSON_DIGEST, "size": 2})
}

/// Pushes the conformance suite's referrers: A-config, A-layer and the index before their
/// subject exists, then the subject, then B-config and B-layer; all by digest.
async fn push_referrers(berth: &Berth, r: &str) -> Referrers {
    assert_eq!(berth.push_blob(r, b"{}").await, EMPTY_JSON_DIGEST);
    berth.push_blob(r, REF_BLOB_A).await;
    let subject = push_conformance_image(berth, r, 99).await;
    let subject_descriptor =
        json!({"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.manifest.len()});

    let config_artifact = |artifact_type: &str, blob: &[u8], note: &str| {
        pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(artifact_type, blob),
            "layers": [empty_json_descriptor()],
            "subject": subject_descriptor,
            "annotations": {ANNOTATION: note},
        }))
    };
    let layer_artifact = |artifact_type: &str, blob: &[u8], note: &str| {
        pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": empty_json_descriptor(),
            "layers": [descriptor(artifact_type, blob)],
            "subject": subject_descriptor,
            "annotations": {ANNOTATION: note},
        }))
    };
    let a_config = config_artifact(TYPE_A, REF_BLOB_A, "test config a");
    let a_layer = layer_artifact(TYPE_A, REF_BLOB_A, "test layer a");
    let index = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": TYPE_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &a_config), descriptor(OCI_MANIFEST, &a_layer)],
        "subject": subject_descriptor,
        "annotations": {ANNOTATION: "test index"},
    }));
    let b_config = config_artifact(TYPE_B, REF_BLOB_B, "test config b");
    let b_layer = layer_artifact(TYPE_B, REF_BLOB_B, "test layer b");

    let mut subject_headers = Vec::new();
    let mut push = async |name: &'static str, media_type: &str, body: &[u8]| {
        let digest = sha256(body);
        let put = put_manifest_ok(berth, r, &digest, media_type, body).await;
        subject_headers.push((name, digest, header(&put, "oci-subject")));
    };
    push("A-config", OCI_MANIFEST, &a_config).await;
    push("A-layer", OCI_MANIFEST, &a_layer).await;
    push("index", OCI_INDEX, &index).await;
    put_manifest_ok(berth, r, "subject", OCI_MANIFEST, &subject.manifest).await;
    berth.push_blob(r, REF_BLOB_B).await;
    push("B-config", OCI_MANIFEST, &b_config).await;
    push("B-layer", OCI_MANIFEST, &b_layer).await;

    let artifact = |media_type, artifact_type, bytes: &[u8], annotation| {
        (sha256(bytes), Artifact { media_type, artifact_type, size: bytes.len(), annotation })
    };
    let artifacts = vec![
        artifact(OCI_MANIFEST, TYPE_A, &a_config, "test config a"),
        artifact(OCI_MANIFEST, TYPE_A, &a_layer, "test layer a"),
        artifact(OCI_INDEX, TYPE_INDEX, &index, "test index"),
        artifact(OCI_MANIFEST, TYPE_B, &b_config, "test config b"),
        artifact(OCI_MANIFEST, TYPE_B, &b_layer, "test layer b"),
    ];
    Referrers { subject: subject.digest, artifacts, subject_headers }
}

/// Checks that a referrers index lists exactly the expected artifacts (of one type, if given),
/// each once, with exact descriptor fields and exactly its one annotation.
fn assert_referrers(index: &Value, artifacts: &[(String, Artifact)], only: Option<&str>) {
    let listed =
        index["manifests"].as_array().unwrap_or_else(|| panic!("manifests is not an array: {index}"));
    let expected: Vec<&(String, Artifact)> =
        artifacts.iter().filter(|(_, a)| only.is_none_or(|t| a.artifact_type == t)).collect();
    assert_eq!(listed.len(), expected.len(), "referrers: {index}");
    for (digest, artifact) in expected {
        let found: Vec<&Value> = listed.iter().filter(|d| d["digest"] == digest.as_str()).collect();
        assert_eq!(
            found.len(),
            1,
            "{} ({digest}) listed {} times: {index}",
            artifact.annotation,
            found.len()
        );
        let descriptor = found[0];
        assert_eq!(descriptor["mediaType"], artifact.media_type, "{}: {descriptor}", artifact.annotation);
        assert_eq!(
            descriptor["artifactType"], artifact.artifact_type,
            "{}: {descriptor}",
            artifact.annotation
        );
        assert_eq!(descriptor["size"], artifact.size, "{}: {descriptor}", artifact.annotation);
        assert_eq!(descriptor["annotations"], json!({ANNOTATION: artifact.annotation}), "{descriptor}");
    }
}

/// A repository path in an account other than the owner's.
fn other_account_repo(name: &str) -> String {
    format!("111111111111/{name}")
}

/// JSON indented with tabs, as the conformance suite writes its manifests.
fn pretty(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer).expect("serialize");
    out
}

fn sha512(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA512, bytes);
    format!("sha512:{}", hex::encode(digest.as_ref()))
}

/// Deterministic bytes that do not compress: a SHA-256 chain from the seed.
fn random_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = ring::digest::digest(&ring::digest::SHA256, &[seed]);
    while out.len() < len {
        out.extend_from_slice(block.as_ref());
        block = ring::digest::digest(&ring::digest::SHA256, block.as_ref());
    }
    out.truncate(len);
    out
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Standard base64 with padding, for the `data` field of descriptors.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
