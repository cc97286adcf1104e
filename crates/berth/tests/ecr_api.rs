//! The ECR control plane over real HTTP with SigV4, and how its settings act on the OCI surface.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn immutable_tags_cannot_be_moved_or_repushed() {
    let berth = Berth::start().await;
    let (status, out) = berth
        .ecr(
            "CreateRepository",
            json!({"repositoryName": "mlops/python-base", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                   "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}]}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["repository"]["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION");

    let r = repo("mlops/python-base");
    berth.push_image(&r, "v1.0.0", br#"{"os":"linux","n":1}"#, b"layer one").await;
    berth.push_image(&r, "latest", br#"{"os":"linux","n":1}"#, b"layer one").await;
    let (second, _) = berth.image_manifest(&r, br#"{"os":"linux","n":2}"#, b"layer two").await;

    let refused = berth.put_manifest(&r, "v1.0.0", OCI_MANIFEST, &second).await;
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json_or_null().await;
    assert_eq!(body["errors"][0]["code"], "TAG_INVALID");
    assert_eq!(
        body["errors"][0]["message"],
        "The image tag 'v1.0.0' already exists in the 'mlops/python-base' repository and cannot be overwritten \
         because the repository is immutable."
    );
    // ECR refuses even a push of the same manifest under an immutable tag.
    let (first, _) = berth.image_manifest(&r, br#"{"os":"linux","n":1}"#, b"layer one").await;
    assert_eq!(berth.put_manifest(&r, "v1.0.0", OCI_MANIFEST, &first).await.status(), 400);
    // The excluded tag moves freely.
    assert_eq!(berth.put_manifest(&r, "latest", OCI_MANIFEST, &second).await.status(), 201);
    let tags: serde_json::Value = berth
        .req(Method::GET, &format!("/v2/{r}/tags/list"))
        .send()
        .await
        .expect("send")
        .json_or_null()
        .await;
    assert_eq!(tags["tags"], json!(["latest", "v1.0.0"]));
}

#[tokio::test]
async fn protocol_errors_name_the_problem() {
    let berth = Berth::start().await;
    let (status, out) = berth.ecr("MakeCoffee", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("UnknownOperationException")));
    let (status, out) = berth.ecr("StartReplicationBackfill", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("UnsupportedOperationException")));
    assert!(out["message"].as_str().is_some_and(|m| m.contains("StartReplicationBackfill")), "{out}");
    let (status, out) = berth.ecr("CreateRepository", json!({"repositoryName": 5})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("SerializationException")));
    let (status, out) = berth.ecr("CreateRepository", json!({"repositoryName": "a".repeat(257)})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")));
    let (status, out) = berth.ecr_as("AKIANOSUCHKEY0000001", "x", "DescribeRepositories", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("UnrecognizedClientException")));
    let (key, _) = berth.owner_credentials();
    let (status, out) = berth.ecr_as(&key, "not-the-secret", "DescribeRepositories", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidSignatureException")));

    // Unsigned: the header carries the exception name too.
    let unsigned = berth
        .anon(Method::POST, "/")
        .header("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(unsigned.status(), 403);
    assert_eq!(unsigned.headers()["x-amzn-errortype"], "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn describe_pages_are_complete_and_tokens_stay_in_their_account() {
    let berth = Berth::start().await;
    for i in 0..9 {
        let (status, out) =
            berth.ecr("CreateRepository", json!({"repositoryName": format!("page/r{i}")})).await;
        assert_eq!(status, 200, "{out}");
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let mut input = json!({"maxResults": 4});
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let (status, out) = berth.ecr("DescribeRepositories", input).await;
        assert_eq!(status, 200, "{out}");
        seen.extend(
            out["repositories"].as_array().expect("list").iter().map(|r| r["repositoryName"].clone()),
        );
        match out["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let expected: Vec<_> = (0..9).map(|i| json!(format!("page/r{i}"))).collect();
    assert_eq!(seen, expected);

    // Tampering with the token is noticed.
    let (_, first) = berth.ecr("DescribeRepositories", json!({"maxResults": 2})).await;
    let token = first["nextToken"].as_str().expect("token");
    let swapped = if &token[4..5] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &token[..4], &token[5..]);
    let (status, out) = berth.ecr("DescribeRepositories", json!({"nextToken": tampered})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")), "{out}");
}

#[tokio::test]
async fn one_image_model_behind_both_surfaces() {
    let berth = Berth::start().await;
    let r = repo("both/app");
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = vec![5u8; 3000];
    let digest = berth.push_image(&r, "v1", config, &layer).await;

    // Pushed with the OCI API, described by the ECR API with its true size and tags.
    let (status, out) = berth.ecr("DescribeImages", json!({"repositoryName": "both/app"})).await;
    assert_eq!(status, 200, "{out}");
    let detail = &out["imageDetails"][0];
    assert_eq!(detail["imageDigest"], digest.as_str());
    assert_eq!(detail["imageTags"], json!(["v1"]));
    assert_eq!(detail["imageSizeInBytes"], (config.len() + layer.len()) as u64);
    assert_eq!(detail["imageManifestMediaType"], OCI_MANIFEST);
    assert_eq!(detail["artifactMediaType"], OCI_CONFIG);
    assert!(detail["imagePushedAt"].as_f64().is_some_and(|t| t > 1.7e9), "{detail}");
    assert!(detail.get("lastRecordedPullTime").is_none(), "never pulled yet");

    // A pull through the OCI API is recorded.
    let pulled = berth
        .req(Method::GET, &format!("/v2/{r}/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    let manifest = pulled.bytes().await.expect("body");
    let (_, out) = berth
        .ecr("DescribeImages", json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v1"}]}))
        .await;
    assert!(out["imageDetails"][0]["lastRecordedPullTime"].as_f64().is_some(), "{out}");

    // BatchGetImage returns the very bytes; failures are per image.
    let (status, out) = berth
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v1"}, {"imageTag": "nope"}, {"imageDigest": "sha256:zz"}]}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["images"][0]["imageManifest"].as_str().map(str::as_bytes), Some(manifest.as_ref()));
    assert_eq!(out["images"][0]["imageId"], json!({"imageDigest": digest, "imageTag": "v1"}));
    let codes: Vec<_> =
        out["failures"].as_array().expect("failures").iter().map(|f| f["failureCode"].clone()).collect();
    assert_eq!(codes, vec![json!("ImageNotFound"), json!("InvalidImageDigest")]);
    let (_, out) = berth
        .ecr(
            "BatchGetImage",
            json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v1"}],
                   "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json"]}),
        )
        .await;
    assert_eq!(out["failures"][0]["failureCode"], "ImageNotFound");
    assert!(
        out["failures"][0]["failureReason"].as_str().is_some_and(|r| r.contains("acceptedMediaTypes")),
        "{out}"
    );
    assert!(out["images"].as_array().is_some_and(Vec::is_empty));

    // PutImage under a new tag; docker-style clients pull it at once.
    let (status, out) = berth
        .ecr(
            "PutImage",
            json!({"repositoryName": "both/app", "imageTag": "v2", "imageManifest": String::from_utf8_lossy(&manifest)}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["image"]["imageId"], json!({"imageDigest": digest, "imageTag": "v2"}));
    let (status, out) = berth
        .ecr(
            "PutImage",
            json!({"repositoryName": "both/app", "imageTag": "v2", "imageManifest": String::from_utf8_lossy(&manifest)}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("ImageAlreadyExistsException")), "{out}");
    let via_oci = berth
        .req(Method::GET, &format!("/v2/{r}/manifests/v2"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(via_oci.status(), 200);

    // ListImages: one entry per tag.
    let (_, out) = berth.ecr("ListImages", json!({"repositoryName": "both/app"})).await;
    assert_eq!(
        out["imageIds"],
        json!([{"imageDigest": digest, "imageTag": "v1"}, {"imageDigest": digest, "imageTag": "v2"}])
    );

    // BatchDeleteImage of a tag removes it from the OCI tag list at once; the last tag takes
    // the image with it.
    let (_, out) = berth
        .ecr("BatchDeleteImage", json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v1"}]}))
        .await;
    assert_eq!(out["imageIds"], json!([{"imageDigest": digest, "imageTag": "v1"}]), "{out}");
    let tags: serde_json::Value = berth
        .req(Method::GET, &format!("/v2/{r}/tags/list"))
        .send()
        .await
        .expect("send")
        .json_or_null()
        .await;
    assert_eq!(tags["tags"], json!(["v2"]));
    berth
        .ecr("BatchDeleteImage", json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v2"}]}))
        .await;
    let gone = berth
        .req(Method::GET, &format!("/v2/{r}/manifests/{digest}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(gone.status(), 404);
    let (_, out) = berth
        .ecr("BatchDeleteImage", json!({"repositoryName": "both/app", "imageIds": [{"imageTag": "v2"}]}))
        .await;
    assert_eq!(out["failures"][0]["failureCode"], "ImageNotFound");
}

/// A page token belongs to the listing it came from: reused on another listing the caller may
/// read (another account's registry, another repository, another subject), it is refused as
/// not valid there, not taken as a place to resume.
#[tokio::test]
async fn page_tokens_are_bound_to_their_listing() {
    let berth = Berth::start().await;
    let (other_key, other_secret) = berth.account_with_key("111111111111");
    for n in 0..3 {
        let name = format!("bound/r{n}");
        for (key, secret) in [berth.owner_credentials(), (other_key.clone(), other_secret.clone())] {
            let (status, out) =
                berth.ecr_as(&key, &secret, "CreateRepository", json!({"repositoryName": name})).await;
            assert_eq!(status, 200, "{out}");
            let (status, out) = berth
                .ecr_as(
                    &key,
                    &secret,
                    "CreateRepositoryCreationTemplate",
                    json!({"prefix": format!("bound{n}"), "appliedFor": ["CREATE_ON_PUSH"]}),
                )
                .await;
            assert_eq!(status, 200, "{out}");
        }
    }
    let refused_as_invalid = |out: &serde_json::Value, what: &str| {
        assert_eq!(out["__type"].as_str(), Some("InvalidParameterException"), "{what}: {out}");
        assert!(out["message"].as_str().is_some_and(|m| m.contains("nextToken")), "{what}: {out}");
    };

    // Account-wide listings: the owner's token, presented by the other account in its own registry.
    for operation in ["DescribeRepositories", "DescribeRepositoryCreationTemplates"] {
        let (status, out) = berth.ecr(operation, json!({"maxResults": 1})).await;
        assert_eq!(status, 200, "{out}");
        let token = out["nextToken"].as_str().expect("a next page").to_owned();
        let (status, out) =
            berth.ecr_as(&other_key, &other_secret, operation, json!({"nextToken": token.clone()})).await;
        assert_eq!(status, 400, "{operation}: {out}");
        refused_as_invalid(&out, operation);
        let (status, out) = berth.ecr(operation, json!({"nextToken": token})).await;
        assert_eq!(status, 200, "{operation} resumes its own listing: {out}");
    }

    // Repository listings: a token of one repository, presented for another the owner reads too.
    let first = repo("bound/r0");
    let mut subject = String::new();
    for n in 0..3 {
        let digest =
            berth.push_image(&first, &format!("t{n}"), format!(r#"{{"n":{n}}}"#).as_bytes(), b"bound").await;
        berth
            .push_image(&repo("bound/r1"), &format!("t{n}"), format!(r#"{{"n":{n}}}"#).as_bytes(), b"bound")
            .await;
        subject = digest;
    }
    for operation in ["ListImages", "DescribeImages"] {
        let (status, out) =
            berth.ecr(operation, json!({"repositoryName": "bound/r0", "maxResults": 1})).await;
        assert_eq!(status, 200, "{out}");
        let token = out["nextToken"].as_str().expect("a next page").to_owned();
        let (status, out) =
            berth.ecr(operation, json!({"repositoryName": "bound/r1", "nextToken": token})).await;
        assert_eq!(status, 400, "{operation}: {out}");
        refused_as_invalid(&out, operation);
    }
    // Referrer listings: a token of one subject, presented for another subject and another repository.
    let referrer = |n: u8, subject: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":1}},"annotations":{{"n":"{n}"}}}}"#
        )
    };
    for r in [&first, &repo("bound/r1")] {
        berth.push_blob(r, b"{}").await;
    }
    for n in 0..3 {
        for r in [&first, &repo("bound/r1")] {
            let bytes = referrer(n, &subject).into_bytes();
            let pushed = berth.put_manifest(r, &sha256(&bytes), OCI_MANIFEST, &bytes).await;
            assert_eq!(pushed.status(), 201, "referrer {n}");
        }
    }
    let (status, out) = berth
        .ecr(
            "ListImageReferrers",
            json!({"repositoryName": "bound/r0", "subjectId": {"imageDigest": subject}, "maxResults": 1}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let token = out["nextToken"].as_str().expect("a next page").to_owned();
    let other_subject = berth.push_image(&first, "other", br#"{"other":1}"#, b"bound").await;
    for (name, digest) in [("bound/r1", subject.as_str()), ("bound/r0", other_subject.as_str())] {
        let input = json!({"repositoryName": name, "subjectId": {"imageDigest": digest}, "nextToken": token});
        let (status, out) = berth.ecr("ListImageReferrers", input).await;
        assert_eq!(status, 400, "ListImageReferrers on {name} for {digest}: {out}");
        refused_as_invalid(&out, "ListImageReferrers");
    }
}

#[tokio::test]
async fn image_listings_page_completely() {
    let berth = Berth::start().await;
    let r = repo("pages/app");
    let mut pushed = Vec::new();
    for i in 0..23 {
        let digest = berth
            .push_image(&r, &format!("t{i:02}"), format!(r#"{{"n":{i}}}"#).as_bytes(), b"shared layer")
            .await;
        pushed.push(json!(digest));
    }
    pushed.sort_by_key(ToString::to_string);
    for (operation, key) in [("ListImages", "imageIds"), ("DescribeImages", "imageDetails")] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"repositoryName": "pages/app", "maxResults": 7});
            if let Some(t) = &token {
                input["nextToken"] = json!(t);
            }
            let (status, out) = berth.ecr(operation, input).await;
            assert_eq!(status, 200, "{out}");
            let page = out[key].as_array().expect("page");
            assert!(page.len() <= 7);
            seen.extend(page.iter().map(|i| i["imageDigest"].clone()));
            match out["nextToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 23, "{operation} returned each of the 23 images once");
        seen.sort_by_key(ToString::to_string);
        assert_eq!(seen, pushed, "{operation} returned exactly the images pushed");
    }
}

/// The operations berth serves from ECR's model.
#[tokio::test]
async fn every_operation_of_the_model_is_served_or_named_as_unsupported() {
    // The shared reference lives beside the repository: look in each folder above it.
    let wanted = std::path::Path::new("shared/reference/ecr-operations.json");
    let manifest_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest_dir
        .ancestors()
        .map(|dir| dir.join(wanted))
        .find(|p| p.is_file())
        .unwrap_or_else(|| manifest_dir.join("../../../shared/reference/ecr-operations.json"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        skip(
            "every_operation_of_the_model_is_served_or_named_as_unsupported",
            &format!("ECR's service model is not at {} (it lives beside the repository)", path.display()),
        );
        return;
    };
    let model: serde_json::Value = serde_json::from_str(&text).expect("the model is JSON");
    let operations = model["operations"].as_object().expect("operations");
    assert!(operations.len() >= 60, "the model lists {} operations", operations.len());
    let berth = Berth::start().await;
    for name in SERVED_OPERATIONS {
        assert!(operations.contains_key(name), "{name} is not in ECR's model");
    }
    for name in operations.keys() {
        let (status, out) = berth.ecr(name, json!({})).await;
        let kind = out["__type"].as_str().unwrap_or("");
        if SERVED_OPERATIONS.contains(&name.as_str()) {
            assert!(
                !["UnsupportedOperationException", "UnknownOperationException"].contains(&kind)
                    && status != 500,
                "{name} is not served: {status} {out}"
            );
        } else {
            assert_eq!((status, kind), (400, "UnsupportedOperationException"), "{name}: {out}");
            assert!(out["message"].as_str().is_some_and(|m| m.contains(name.as_str())), "{name}: {out}");
        }
    }
    println!(
        "{} operations in the model: {} served, the rest refused by name",
        operations.len(),
        SERVED_OPERATIONS.len()
    );
}

#[tokio::test]
async fn layers_upload_in_parts_and_download_by_url() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let berth = Berth::start().await;
    berth.ecr("CreateRepository", json!({"repositoryName": "layers/app"})).await;
    // Every part but the last must be at least 5 MiB.
    const MIN_PART: usize = 5 * 1024 * 1024;
    let layer: Vec<u8> = (0..MIN_PART as u32 + 40_000).map(|i| (i % 253) as u8).collect();
    let end = layer.len() - 1;
    let digest = sha256(&layer);

    let (status, out) = berth.ecr("InitiateLayerUpload", json!({"repositoryName": "layers/app"})).await;
    assert_eq!(status, 200, "{out}");
    let upload = out["uploadId"].as_str().expect("upload id").to_owned();
    let part = |first: usize, last: usize| {
        json!({"repositoryName": "layers/app", "uploadId": upload, "partFirstByte": first, "partLastByte": last,
               "layerPartBlob": b64(&layer[first..=last])})
    };
    let (status, out) = berth.ecr("UploadLayerPart", part(MIN_PART, end)).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidLayerPartException")), "{out}");
    assert_eq!(
        (&out["lastValidByteReceived"], &out["uploadId"], &out["repositoryName"], &out["registryId"]),
        (&json!(-1), &json!(upload), &json!("layers/app"), &json!(ACCOUNT)),
        "the modeled members of InvalidLayerPartException: {out}"
    );
    let (status, out) = berth.ecr("UploadLayerPart", part(0, MIN_PART - 1)).await;
    assert_eq!((status, &out["lastByteReceived"]), (200, &json!(MIN_PART - 1)), "{out}");
    let (status, out) = berth.ecr("UploadLayerPart", part(10, 20)).await;
    assert_eq!(
        (status, out["__type"].as_str(), &out["lastValidByteReceived"]),
        (400, Some("InvalidLayerPartException"), &json!(MIN_PART - 1)),
        "an overlap: {out}"
    );
    let (_, out) = berth.ecr("UploadLayerPart", part(MIN_PART, end)).await;
    assert_eq!(out["lastByteReceived"], end);
    let wrong = sha256(b"something else");
    let (status, out) = berth
        .ecr(
            "CompleteLayerUpload",
            json!({"repositoryName": "layers/app", "uploadId": upload, "layerDigests": [wrong]}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidLayerException")), "{out}");
    let (status, out) = berth
        .ecr(
            "CompleteLayerUpload",
            json!({"repositoryName": "layers/app", "uploadId": upload, "layerDigests": [digest]}),
        )
        .await;
    assert_eq!((status, &out["layerDigest"]), (200, &json!(digest)), "{out}");

    let (_, out) = berth
        .ecr(
            "BatchCheckLayerAvailability",
            json!({"repositoryName": "layers/app", "layerDigests": [digest, wrong]}),
        )
        .await;
    assert_eq!(out["layers"][0]["layerAvailability"], "AVAILABLE");
    assert_eq!(out["layers"][0]["layerSize"], layer.len());
    assert_eq!(out["failures"][0]["failureCode"], "MissingLayerDigest");

    // A layer no image references cannot be downloaded through the API yet.
    let (status, out) = berth
        .ecr("GetDownloadUrlForLayer", json!({"repositoryName": "layers/app", "layerDigest": digest}))
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("LayerInaccessibleException")), "{out}");
    let config = br#"{"os":"linux"}"#;
    let config_digest = berth.push_blob(&repo("layers/app"), config).await;
    let manifest = image_manifest_bytes(&config_digest, config.len(), &digest, layer.len(), "");
    let (status, out) = berth
        .ecr(
            "PutImage",
            json!({"repositoryName": "layers/app", "imageTag": "v1",
                   "imageManifest": String::from_utf8(manifest).expect("utf8")}),
        )
        .await;
    assert_eq!(status, 200, "{out}");

    // The download URL works without other credentials, for this blob only.
    let (_, out) = berth
        .ecr("GetDownloadUrlForLayer", json!({"repositoryName": "layers/app", "layerDigest": digest}))
        .await;
    let url = out["downloadUrl"].as_str().expect("url").to_owned();
    let fetched = berth.client.get(&url).send().await.expect("send");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.expect("body").as_ref(), layer.as_slice());
    let other_blob = url.replace(&digest, &wrong);
    assert_eq!(berth.client.get(&other_blob).send().await.expect("send").status(), 401);
    let (status, out) = berth
        .ecr("GetDownloadUrlForLayer", json!({"repositoryName": "layers/app", "layerDigest": wrong}))
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("LayersNotFoundException")), "{out}");
}

#[tokio::test]
async fn repository_settings_and_resource_tags_change_through_the_api() {
    let berth = Berth::start().await;
    let (_, created) = berth.ecr("CreateRepository", json!({"repositoryName": "tags/app"})).await;
    let arn = created["repository"]["repositoryArn"].as_str().expect("arn").to_owned();
    let (status, out) = berth
        .ecr("TagResource", json!({"resourceArn": arn, "tags": [{"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "dev"}]}))
        .await;
    assert_eq!(status, 200, "{out}");
    berth.ecr("UntagResource", json!({"resourceArn": arn, "tagKeys": ["env"]})).await;
    let (_, out) = berth.ecr("ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(out["tags"], json!([{"Key": "team", "Value": "ml"}]));
    let too_many: Vec<_> = (0..51).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    let (status, out) = berth.ecr("TagResource", json!({"resourceArn": arn, "tags": too_many})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("TooManyTagsException")), "{out}");
    let (status, out) = berth
        .ecr(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/tags/none"}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("RepositoryNotFoundException")), "{out}");

    let (status, out) = berth
        .ecr(
            "PutImageTagMutability",
            json!({"repositoryName": "tags/app", "imageTagMutability": "IMMUTABLE"}),
        )
        .await;
    assert_eq!((status, &out["imageTagMutability"]), (200, &json!("IMMUTABLE")), "{out}");
    let (status, out) = berth
        .ecr(
            "PutImageTagMutability",
            json!({"repositoryName": "tags/app", "imageTagMutability": "MUTABLE_WITH_EXCLUSION"}),
        )
        .await;
    assert_eq!(
        (status, out["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "needs filters: {out}"
    );
    berth
        .ecr(
            "PutImageScanningConfiguration",
            json!({"repositoryName": "tags/app", "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await;
    let (_, out) = berth.ecr("DescribeRepositories", json!({"repositoryNames": ["tags/app"]})).await;
    assert_eq!(out["repositories"][0]["imageTagMutability"], "IMMUTABLE");
    assert_eq!(out["repositories"][0]["imageScanningConfiguration"]["scanOnPush"], true);
    let (_, out) = berth.ecr("DescribeRegistry", json!({})).await;
    assert_eq!(out, json!({"registryId": ACCOUNT, "replicationConfiguration": {"rules": []}}));
}

#[tokio::test]
async fn creation_templates_shape_repositories_created_on_push() {
    let berth = Berth::start().await;
    let (status, out) = berth
        .ecr(
            "CreateRepositoryCreationTemplate",
            json!({"prefix": "mlops/", "appliedFor": ["CREATE_ON_PUSH"], "imageTagMutability": "IMMUTABLE",
                   "resourceTags": [{"Key": "team", "Value": "ml"}], "description": "ML base images"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["repositoryCreationTemplate"]["prefix"], "mlops/");
    let (status, out) = berth
        .ecr("CreateRepositoryCreationTemplate", json!({"prefix": "ROOT", "appliedFor": ["CREATE_ON_PUSH"],
                                                        "resourceTags": [{"Key": "owner", "Value": "platform"}]}))
        .await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = berth
        .ecr("CreateRepositoryCreationTemplate", json!({"prefix": "ROOT", "appliedFor": ["CREATE_ON_PUSH"]}))
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("TemplateAlreadyExistsException")));
    let (status, out) = berth
        .ecr(
            "CreateRepositoryCreationTemplate",
            json!({"prefix": "Bad Prefix", "appliedFor": ["CREATE_ON_PUSH"]}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("ValidationException")));

    // Pushing creates the repository with the most specific template.
    let digest = berth.push_image(&repo("mlops/python-base"), "v1", br#"{"os":"linux"}"#, b"l").await;
    let (_, out) = berth.ecr("DescribeRepositories", json!({"repositoryNames": ["mlops/python-base"]})).await;
    assert_eq!(out["repositories"][0]["imageTagMutability"], "IMMUTABLE", "{out}");
    let arn = out["repositories"][0]["repositoryArn"].as_str().expect("arn").to_owned();
    let (_, tags) = berth.ecr("ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(tags["tags"], json!([{"Key": "team", "Value": "ml"}]));
    let (second, _) =
        berth.image_manifest(&repo("mlops/python-base"), br#"{"os":"linux","v":2}"#, b"l").await;
    assert_eq!(
        berth.put_manifest(&repo("mlops/python-base"), "v1", OCI_MANIFEST, &second).await.status(),
        400
    );
    let (_, images) = berth
        .ecr(
            "DescribeImages",
            json!({"repositoryName": "mlops/python-base", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await;
    assert_eq!(
        images["imageDetails"][0]["imageDigest"].as_str(),
        Some(digest.as_str()),
        "v1 is the first push"
    );
    berth.push_image(&repo("other/app"), "v1", br#"{"os":"linux"}"#, b"l").await;
    let (_, out) = berth.ecr("DescribeRepositories", json!({"repositoryNames": ["other/app"]})).await;
    assert_eq!(out["repositories"][0]["imageTagMutability"], "MUTABLE");
    let arn = out["repositories"][0]["repositoryArn"].as_str().expect("arn").to_owned();
    let (_, tags) = berth.ecr("ListTagsForResource", json!({"resourceArn": arn})).await;
    assert_eq!(
        tags["tags"],
        json!([{"Key": "owner", "Value": "platform"}]),
        "ROOT applies when nothing else does"
    );

    let (status, out) = berth
        .ecr("UpdateRepositoryCreationTemplate", json!({"prefix": "mlops/", "imageTagMutability": "MUTABLE"}))
        .await;
    assert_eq!(
        (status, &out["repositoryCreationTemplate"]["imageTagMutability"]),
        (200, &json!("MUTABLE")),
        "{out}"
    );
    assert_eq!(out["repositoryCreationTemplate"]["description"], "ML base images", "untouched fields stay");
    let (_, out) = berth.ecr("DescribeRepositoryCreationTemplates", json!({})).await;
    let prefixes: Vec<_> = out["repositoryCreationTemplates"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["prefix"].clone())
        .collect();
    assert_eq!(prefixes, vec![json!("ROOT"), json!("mlops/")]);
    let (status, _) = berth.ecr("DeleteRepositoryCreationTemplate", json!({"prefix": "mlops/"})).await;
    assert_eq!(status, 200);
    let (status, out) = berth.ecr("DeleteRepositoryCreationTemplate", json!({"prefix": "mlops/"})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("TemplateNotFoundException")));
}
