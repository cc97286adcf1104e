//! Attacks on the authorization path, each replayed against the real binary: conditions that
//! must apply (`aws:SourceIp`, resource tags, request tags and tag keys), an explicit Deny that
//! create-on-push must not bypass, creation templates whose policy must bind, signatures that
//! must name this registry's region and sign the operation, descriptor sizes that must be true,
//! and a data directory no other user may read.

mod common;

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn policy(statements: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

fn allow_all_but(denials: Value) -> Value {
    let mut statements = vec![json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})];
    statements.extend(denials.as_array().cloned().unwrap_or_default());
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<IpAddr>().expect("ip")).build().expect("client")
}

/// Pulls `v1` of `repo` from `client`, with a registry password or anonymously; the status.
async fn pull_status(berth: &Berth, client: &reqwest::Client, password: Option<&str>, repo: &str) -> u16 {
    pull_via(berth, client, password, repo, None).await
}

async fn pull_via(
    berth: &Berth,
    client: &reqwest::Client,
    password: Option<&str>,
    repo: &str,
    forwarded_for: Option<&str>,
) -> u16 {
    let mut request =
        client.get(format!("{}/v2/{repo}/manifests/v1", berth.url)).header("accept", OCI_MANIFEST);
    if let Some(password) = password {
        request = request.basic_auth("AWS", Some(password));
    }
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.expect("send").status().as_u16()
}

async fn set_policy(berth: &Berth, name: &str, text: &str) {
    let (status, out) =
        berth.ecr("SetRepositoryPolicy", json!({"repositoryName": name, "policyText": text})).await;
    assert_eq!(status, 200, "{out}");
}

fn exception(out: &Value) -> &str {
    out["__type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn policies_see_the_client_address() {
    let berth = Berth::start().await;
    let r = repo("ip/app");
    berth.push_image(&r, "v1", br#"{"ip":1}"#, b"ip layer").await;
    let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let owner = berth.password.clone();

    // A Deny of every address binds the owner.
    let everywhere = policy(json!([{"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage",
        "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}]));
    set_policy(&berth, "ip/app", &everywhere).await;
    assert_eq!(pull_status(&berth, &one, Some(&owner), &r).await, 403, "denied from every address");

    // A Deny outside loopback does not bind a client on loopback.
    let outside = policy(json!([{"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]));
    set_policy(&berth, "ip/app", &outside).await;
    assert_eq!(pull_status(&berth, &one, Some(&owner), &r).await, 200, "127.0.0.1 is inside 127.0.0.0/8");

    // Anonymous pulls allowed from one address only.
    let one_address = policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
        "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}}]));
    set_policy(&berth, "ip/app", &one_address).await;
    assert_eq!(pull_status(&berth, &one, None, &r).await, 200, "anonymous from 127.0.0.1");
    assert_eq!(pull_status(&berth, &two, None, &r).await, 401, "anonymous from 127.0.0.2");
    assert_eq!(
        pull_via(&berth, &two, None, &r, Some("127.0.0.1")).await,
        401,
        "no proxy is trusted by default"
    );
}

#[tokio::test]
async fn only_trusted_proxies_may_restate_the_client_address() {
    let berth = Berth::start_with(&[("BERTH_TRUSTED_PROXIES", "127.0.0.3")]).await;
    let r = repo("ip/app");
    berth.push_image(&r, "v1", br#"{"ip":1}"#, b"ip layer").await;
    let (two, proxy) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let one_address = policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage",
        "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}}]));
    set_policy(&berth, "ip/app", &one_address).await;

    // A trusted proxy's X-Forwarded-For names the client; nobody else's does.
    assert_eq!(pull_via(&berth, &proxy, None, &r, Some("127.0.0.1")).await, 200, "via the proxy for .1");
    assert_eq!(pull_via(&berth, &proxy, None, &r, Some("127.0.0.2")).await, 401, "via the proxy for .2");
    assert_eq!(
        pull_via(&berth, &proxy, None, &r, Some("127.0.0.1, 127.0.0.2")).await,
        401,
        "what a client writes left of the proxy's entry is not believed"
    );
    assert_eq!(
        pull_via(&berth, &two, None, &r, Some("127.0.0.1")).await,
        401,
        "an untrusted peer's header is ignored"
    );
}

#[tokio::test]
async fn an_identity_deny_on_a_resource_tag_binds_without_any_resource_or_registry_policy() {
    let berth = Berth::start().await;
    let tags = json!([{"Key": "env", "Value": "prod"}]);
    let (status, out) =
        berth.ecr("CreateRepository", json!({"repositoryName": "tagged/prod", "tags": tags})).await;
    assert_eq!(status, 200, "{out}");
    berth.push_image(&repo("tagged/prod"), "v1", br#"{"t":1}"#, b"prod layer").await;
    berth.push_image(&repo("tagged/dev"), "v1", br#"{"t":2}"#, b"dev layer").await;
    let (status, out) = berth.ecr("GetRegistryPolicy", json!({})).await;
    assert_eq!((status, exception(&out)), (400, "RegistryPolicyNotFoundException"), "no registry policy");

    let identity = allow_all_but(json!([{"Effect": "Deny", "Action": "ecr:*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}]));
    let (key, secret) = berth.user_with_policy(ACCOUNT, "dev", &identity);
    let password = berth.password_for(&key, &secret).await;
    let client = reqwest::Client::new();

    assert_eq!(pull_status(&berth, &client, Some(&password), &repo("tagged/prod")).await, 403);
    assert_eq!(pull_status(&berth, &client, Some(&password), &repo("tagged/dev")).await, 200);
    let push = |name: &str| {
        berth.req_with(&password, Method::POST, &format!("/v2/{}/blobs/uploads/", repo(name))).send()
    };
    assert_eq!(push("tagged/prod").await.expect("send").status(), 403);
    assert_eq!(push("tagged/dev").await.expect("send").status(), 202);
    for operation in ["ListImages", "DescribeImages", "GetRepositoryPolicy"] {
        let (status, out) =
            berth.ecr_as(&key, &secret, operation, json!({"repositoryName": "tagged/prod"})).await;
        assert_eq!((status, exception(&out)), (400, "AccessDeniedException"), "{operation}: {out}");
        let (_, out) = berth.ecr_as(&key, &secret, operation, json!({"repositoryName": "tagged/dev"})).await;
        assert_ne!(exception(&out), "AccessDeniedException", "{operation} on the untagged repository: {out}");
    }
}

#[tokio::test]
async fn tag_keys_and_request_tags_reach_the_conditions_that_name_them() {
    let berth = Berth::start().await;
    berth.push_image(&repo("tags/app"), "v1", br#"{"k":1}"#, b"tags layer").await;
    let arn = format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/tags/app");
    let identity = allow_all_but(json!([
        {"Effect": "Deny", "Action": "ecr:UntagResource", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}},
        {"Effect": "Deny", "Action": ["ecr:TagResource", "ecr:CreateRepository"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/env": "prod"}}}
    ]));
    let (key, secret) = berth.user_with_policy(ACCOUNT, "tagger", &identity);
    let call = |operation: &'static str, input: Value| {
        let (key, secret) = (key.clone(), secret.clone());
        let berth = &berth;
        async move { berth.ecr_as(&key, &secret, operation, input).await }
    };

    let tag = |value: &str| json!({"resourceArn": arn, "tags": [{"Key": "env", "Value": value}]});
    let (status, out) = call("TagResource", tag("prod")).await;
    assert_eq!((status, exception(&out)), (400, "AccessDeniedException"), "{out}");
    let (status, out) = call("TagResource", tag("dev")).await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = call("UntagResource", json!({"resourceArn": arn, "tagKeys": ["env"]})).await;
    assert_eq!((status, exception(&out)), (400, "AccessDeniedException"), "{out}");
    let (status, out) = call("UntagResource", json!({"resourceArn": arn, "tagKeys": ["team"]})).await;
    assert_eq!(status, 200, "{out}");
    let create =
        |name: &str, value: &str| json!({"repositoryName": name, "tags": [{"Key": "env", "Value": value}]});
    let (status, out) = call("CreateRepository", create("tags/prod", "prod")).await;
    assert_eq!((status, exception(&out)), (400, "AccessDeniedException"), "{out}");
    let (status, out) = call("CreateRepository", create("tags/dev", "dev")).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn condition_keys_that_would_never_apply_are_refused_when_set() {
    let berth = Berth::start().await;
    berth.push_image(&repo("keys/app"), "v1", br#"{"k":2}"#, b"keys layer").await;
    let with_condition = |condition: Value| {
        policy(json!([{"Effect": "Deny", "Principal": "*", "Action": "ecr:*", "Condition": condition}]))
    };
    for (condition, named) in [
        (json!({"StringEquals": {"aws:PrincipalOrgID": "o-123"}}), "aws:PrincipalOrgID"),
        (json!({"StringEquals": {"ecr:Nothing": "x"}}), "ecr:Nothing"),
        (json!({"StringEquals": {"aws:PrincipalTag/team": "x"}}), "aws:PrincipalTag/team"),
        (json!({"IpAddress": {"aws:SourceIp": "not-an-address"}}), "not-an-address"),
    ] {
        let text = with_condition(condition);
        let (status, out) =
            berth.ecr("SetRepositoryPolicy", json!({"repositoryName": "keys/app", "policyText": text})).await;
        assert_eq!((status, exception(&out)), (400, "InvalidParameterException"), "{out}");
        let message = out["message"].as_str().unwrap_or("");
        assert!(message.contains(named), "the refusal names {named}: {message}");
        let (status, out) = berth.ecr("PutRegistryPolicy", json!({"policyText": text})).await;
        assert_eq!((status, exception(&out)), (400, "InvalidParameterException"), "{out}");
    }
    let (status, out) = berth.ecr("GetRepositoryPolicy", json!({"repositoryName": "keys/app"})).await;
    assert_eq!((status, exception(&out)), (400, "RepositoryPolicyNotFoundException"), "nothing was stored");
}

#[tokio::test]
async fn create_on_push_needs_create_repository_with_the_templates_tags() {
    let berth = Berth::start().await;
    let identity =
        allow_all_but(json!([{"Effect": "Deny", "Action": "ecr:CreateRepository", "Resource": "*"}]));
    let (key, secret) = berth.user_with_policy(ACCOUNT, "pusher", &identity);
    let password = berth.password_for(&key, &secret).await;
    let (manifest, _) = berth.image_manifest(&repo("seed/app"), br#"{"c":1}"#, b"create layer").await;

    let upload = berth.req_with(&password, Method::POST, &format!("/v2/{}/blobs/uploads/", repo("new/app")));
    assert_eq!(upload.send().await.expect("send").status(), 403, "an upload would create the repository");
    let put = berth
        .req_with(&password, Method::PUT, &format!("/v2/{}/manifests/v1", repo("new/app")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone());
    assert_eq!(put.send().await.expect("send").status(), 403, "a manifest push would create it");
    let (status, out) = berth.ecr("DescribeRepositories", json!({"repositoryNames": ["new/app"]})).await;
    assert_eq!((status, exception(&out)), (400, "RepositoryNotFoundException"), "nothing was created: {out}");
    // Into a repository that exists, the same user pushes.
    let (status, out) = berth.ecr("CreateRepository", json!({"repositoryName": "new/app"})).await;
    assert_eq!(status, 200, "{out}");
    let upload = berth.req_with(&password, Method::POST, &format!("/v2/{}/blobs/uploads/", repo("new/app")));
    assert_eq!(upload.send().await.expect("send").status(), 202);

    // The tags a creation template would give are the request's tags.
    let template = json!({"prefix": "blocked", "appliedFor": ["CREATE_ON_PUSH"],
        "resourceTags": [{"Key": "team", "Value": "blocked"}]});
    let (status, out) = berth.ecr("CreateRepositoryCreationTemplate", template).await;
    assert_eq!(status, 200, "{out}");
    let identity =
        allow_all_but(json!([{"Effect": "Deny", "Action": "ecr:CreateRepository", "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestTag/team": "blocked"}}}]));
    let (key, secret) = berth.user_with_policy(ACCOUNT, "teams", &identity);
    let password = berth.password_for(&key, &secret).await;
    let start = |name: &str| {
        berth.req_with(&password, Method::POST, &format!("/v2/{}/blobs/uploads/", repo(name))).send()
    };
    assert_eq!(
        start("blocked/app").await.expect("send").status(),
        403,
        "the template would tag it team=blocked"
    );
    assert_eq!(start("open/app").await.expect("send").status(), 202, "no template, no such tag");
}

#[tokio::test]
async fn a_creation_templates_policy_is_validated_and_binds_what_it_creates() {
    let berth = Berth::start().await;
    let bad = json!({"prefix": "guarded", "appliedFor": ["CREATE_ON_PUSH"], "repositoryPolicy": "this is not a policy"});
    let (status, out) = berth.ecr("CreateRepositoryCreationTemplate", bad).await;
    assert_eq!((status, exception(&out)), (400, "ValidationException"), "{out}");
    let (_, out) = berth.ecr("DescribeRepositoryCreationTemplates", json!({})).await;
    assert_eq!(out["repositoryCreationTemplates"].as_array().map(Vec::len), Some(0), "nothing stored: {out}");

    let no_deletes = policy(
        json!([{"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "ecr:BatchDeleteImage"}]),
    );
    let good = json!({"prefix": "guarded", "appliedFor": ["CREATE_ON_PUSH"], "repositoryPolicy": no_deletes});
    let (status, out) = berth.ecr("CreateRepositoryCreationTemplate", good).await;
    assert_eq!(status, 200, "{out}");
    let digest = berth.push_image(&repo("guarded/app"), "v1", br#"{"g":1}"#, b"guarded layer").await;
    let (status, out) = berth.ecr("GetRepositoryPolicy", json!({"repositoryName": "guarded/app"})).await;
    assert_eq!((status, out["policyText"].as_str()), (200, Some(no_deletes.as_str())), "{out}");
    let delete = berth.req(Method::DELETE, &format!("/v2/{}/manifests/{digest}", repo("guarded/app")));
    assert_eq!(delete.send().await.expect("send").status(), 403, "the template's Deny binds the owner");
}

#[tokio::test]
async fn signatures_name_this_registrys_region_and_sign_the_operation() {
    let berth = Berth::start().await;
    let (key, secret) = berth.owner_credentials();
    for region in ["eu-west-1", "x"] {
        let signing = Signing { region, ..Signing::default() };
        let (status, out) =
            berth.ecr_signed(&key, &secret, "DescribeRepositories", json!({}), &signing).await;
        assert_eq!((status, exception(&out)), (400, "InvalidSignatureException"), "{region}: {out}");
        assert!(out["message"].as_str().is_some_and(|m| m.contains("us-east-1")), "{out}");
    }
    for unsigned in [&["x-amz-target"][..], &["content-type"][..]] {
        let signing = Signing { unsigned, ..Signing::default() };
        let (status, out) =
            berth.ecr_signed(&key, &secret, "DescribeRepositories", json!({}), &signing).await;
        assert_eq!((status, exception(&out)), (400, "InvalidSignatureException"), "{unsigned:?}: {out}");
    }
    let (status, out) =
        berth.ecr_signed(&key, &secret, "DescribeRepositories", json!({}), &Signing::default()).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn descriptor_sizes_must_be_the_stored_sizes() {
    let berth = Berth::start().await;
    let r = repo("sizes/app");
    let config = berth.push_blob(&r, b"{}").await;
    let layer = berth.push_blob(&r, b"four").await;
    let lying = image_manifest_bytes(&config, usize::MAX, &layer, 4, "");
    let refused = berth.put_manifest(&r, "v1", OCI_MANIFEST, &lying).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(error_code(refused).await, "MANIFEST_INVALID");
    let short = image_manifest_bytes(&config, 2, &layer, 3, "");
    assert_eq!(
        error_code(berth.put_manifest(&r, "v1", OCI_MANIFEST, &short).await).await,
        "MANIFEST_INVALID"
    );
    let honest = image_manifest_bytes(&config, 2, &layer, 4, "");
    assert_eq!(berth.put_manifest(&r, "v1", OCI_MANIFEST, &honest).await.status(), 201);
    let (_, out) = berth.ecr("DescribeImages", json!({"repositoryName": "sizes/app"})).await;
    assert_eq!(out["imageDetails"][0]["imageSizeInBytes"], 6, "{out}");
}

/// Every file and folder under `dir` that others could read, with its mode.
fn readable_by_others(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("stat");
        if metadata.permissions().mode() & 0o077 != 0 {
            found.push(format!("{} {:o}", path.display(), metadata.permissions().mode() & 0o777));
        }
        if metadata.is_dir() {
            stack.extend(std::fs::read_dir(&path).expect("list").map(|e| e.expect("entry").path()));
        }
    }
    found
}

#[tokio::test]
async fn nothing_in_the_data_directory_is_readable_by_others() {
    let mut berth = Berth::start().await;
    berth.push_image(&repo("modes/app"), "v1", br#"{"m":1}"#, b"modes layer").await;
    let begun = berth.req(Method::POST, &format!("/v2/{}/blobs/uploads/", repo("modes/app"))).send().await;
    assert_eq!(begun.expect("send").status(), 202, "an upload in progress is staged too");
    let dir = berth.data_dir().to_owned();
    assert_eq!(readable_by_others(&dir), Vec::<String>::new(), "a new data directory");

    // A data directory an older version left open is tightened at start.
    berth.kill9();
    let temp = berth.take_temp();
    for path in [dir.clone(), dir.join("blobs"), dir.join("uploads"), dir.join("meta.db")] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    assert!(!readable_by_others(&dir).is_empty());
    let restarted = Berth::spawn(&dir).await;
    assert_eq!(restarted.get_manifest(&repo("modes/app"), "v1").await.status(), 200);
    assert_eq!(readable_by_others(&dir), Vec::<String>::new(), "an older data directory, after start");
    drop(restarted);
    drop(temp);
}

#[tokio::test]
async fn server_errors_tell_the_client_nothing_of_their_cause() {
    let berth = Berth::start().await;
    let r = repo("faults/app");
    berth.push_image(&r, "v1", br#"{"f":1}"#, b"faults layer").await;
    // A storage fault: the uploads folder replaced by a file.
    let uploads = berth.data_dir().join("uploads");
    let aside = berth.data_dir().join("uploads.aside");
    std::fs::rename(&uploads, &aside).expect("move uploads aside");
    std::fs::write(&uploads, b"not a folder").expect("a file in its place");
    let response = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    std::fs::remove_file(&uploads).expect("remove the file");
    std::fs::rename(&aside, &uploads).expect("restore uploads");

    assert_eq!(status, 500, "{text}");
    let body: Value = serde_json::from_str(&text).expect("an OCI error body");
    assert_eq!(body["errors"][0]["code"], "UNKNOWN", "{text}");
    assert_eq!(body["errors"][0]["message"], "internal server error", "{text}");
    let data_dir = berth.data_dir().to_str().expect("path");
    for secret in [data_dir, "uploads", "No such file", "Not a directory", "os error"] {
        assert!(!text.contains(secret), "the answer names {secret:?}: {text}");
    }
    // Restored, the same request succeeds.
    let again = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(again.status(), 202);
}
