//! The isolation matrix: every OCI route and ECR operation, for every kind of caller, against
//! repositories under every kind of policy. Each cell's expectation comes from the policy's
//! plain meaning; the test counts unexpected allows and unexpected denials.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::json;

const PULL: [&str; 3] =
    ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"];

/// The repositories under test and the actions each policy grants (to whom) or denies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    NoPolicy,
    CrossAccountPull,
    PublicRead,
    ExplicitDeny,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::NoPolicy => "matrix/none",
            Shape::CrossAccountPull => "matrix/shared",
            Shape::PublicRead => "matrix/public",
            Shape::ExplicitDeny => "matrix/deny",
        }
    }

    fn policy(self) -> Option<String> {
        let statement = |effect: &str, principal: &str, actions: &[&str]| json!({"Effect": effect, "Principal": serde_json::from_str::<serde_json::Value>(principal).expect("json"), "Action": actions});
        let statements = match self {
            Shape::NoPolicy => return None,
            Shape::CrossAccountPull => vec![statement("Allow", r#"{"AWS":"111111111111"}"#, &PULL)],
            Shape::PublicRead => {
                vec![statement("Allow", r#""*""#, &["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"])]
            }
            Shape::ExplicitDeny => {
                vec![statement("Deny", r#""*""#, &["ecr:BatchDeleteImage", "ecr:PutImage"])]
            }
        };
        Some(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    OwnerRoot,
    OwnerUserWithPolicy,
    OwnerUserWithout,
    AllowedRoot,
    AllowedUserWithPolicy,
    OtherRoot,
    OtherUserWithout,
    Anonymous,
    DisabledKey,
    BadSignature,
}

const CALLERS: [Who; 10] = [
    Who::OwnerRoot,
    Who::OwnerUserWithPolicy,
    Who::OwnerUserWithout,
    Who::AllowedRoot,
    Who::AllowedUserWithPolicy,
    Who::OtherRoot,
    Who::OtherUserWithout,
    Who::Anonymous,
    Who::DisabledKey,
    Who::BadSignature,
];

/// Whether `who` may perform `action` on a repository of `shape`, by the rules of DESIGN.
fn expected(who: Who, shape: Shape, action: &str) -> bool {
    let denied = shape == Shape::ExplicitDeny && ["ecr:BatchDeleteImage", "ecr:PutImage"].contains(&action);
    let public =
        shape == Shape::PublicRead && ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"].contains(&action);
    let shared = shape == Shape::CrossAccountPull && PULL.contains(&action);
    if denied {
        return false;
    }
    match who {
        // The owner's identity side (root, or a user with ecr:* on *) allows everything.
        Who::OwnerRoot | Who::OwnerUserWithPolicy => true,
        // A user without policies gets only what a resource policy grants it by name ("*").
        Who::OwnerUserWithout => public,
        // Across accounts both sides must allow; roots and the policied user have the identity side.
        Who::AllowedRoot | Who::AllowedUserWithPolicy => shared || public,
        Who::OtherRoot => public,
        Who::OtherUserWithout => false,
        Who::Anonymous => public,
        Who::DisabledKey | Who::BadSignature => false,
    }
}

struct Credentials {
    password: String,
    key: String,
    secret: String,
}

#[tokio::test]
async fn zero_unexpected_allows_across_the_matrix() {
    let berth = Berth::start().await;
    let (owner_key, owner_secret) = berth.owner_credentials();
    berth.account_with_key("111111111111");
    berth.account_with_key("333333333333");
    let policy_file = berth.data_dir().with_extension("all.json");
    std::fs::write(
        &policy_file,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#,
    )
    .expect("write");
    let user = |account: &str, name: &str, with_policy: bool| {
        berth.admin(&["user", "create", "--account", account, name]);
        if with_policy {
            let file = policy_file.to_str().expect("path");
            berth.admin(&[
                "user",
                "policy",
                "put",
                "--account",
                account,
                "--user",
                name,
                "--name",
                "all",
                "--file",
                file,
            ]);
        }
        let key = berth.admin(&["key", "create", "--account", account, "--user", name]);
        (
            key["accessKeyId"].as_str().expect("id").to_owned(),
            key["secretAccessKey"].as_str().expect("secret").to_owned(),
        )
    };
    let keys = [
        (Who::OwnerUserWithPolicy, user(ACCOUNT, "ci", true)),
        (Who::OwnerUserWithout, user(ACCOUNT, "intern", false)),
        (Who::AllowedUserWithPolicy, user("111111111111", "dev", true)),
        (Who::OtherUserWithout, user("333333333333", "x", false)),
    ];
    let allowed_root = berth.admin(&["key", "create", "--account", "111111111111"]);
    let other_root = berth.admin(&["key", "create", "--account", "333333333333"]);
    let disabled = berth.admin(&["key", "create", "--account", ACCOUNT]);

    // Every repository holds one image; the policies go on last.
    let mut images = Vec::new();
    for shape in [Shape::NoPolicy, Shape::CrossAccountPull, Shape::PublicRead, Shape::ExplicitDeny] {
        let r = repo(shape.name());
        let layer = format!("layer of {}", shape.name());
        let digest = berth
            .push_image(&r, "v1", format!(r#"{{"n":"{}"}}"#, shape.name()).as_bytes(), layer.as_bytes())
            .await;
        images.push((shape, digest, sha256(layer.as_bytes())));
    }
    for (shape, _, _) in &images {
        if let Some(policy) = shape.policy() {
            let (status, out) = berth
                .ecr("SetRepositoryPolicy", json!({"repositoryName": shape.name(), "policyText": policy}))
                .await;
            assert_eq!(status, 200, "{out}");
        }
    }

    let text = |v: &serde_json::Value, f: &str| v[f].as_str().expect("field").to_owned();
    let mut creds = Vec::new();
    for who in CALLERS {
        let (key, secret) = match who {
            Who::OwnerRoot => (owner_key.clone(), owner_secret.clone()),
            Who::AllowedRoot => (text(&allowed_root, "accessKeyId"), text(&allowed_root, "secretAccessKey")),
            Who::OtherRoot => (text(&other_root, "accessKeyId"), text(&other_root, "secretAccessKey")),
            Who::DisabledKey => (text(&disabled, "accessKeyId"), text(&disabled, "secretAccessKey")),
            Who::BadSignature => (owner_key.clone(), "not-the-secret".to_owned()),
            Who::Anonymous => (String::new(), String::new()),
            other => keys.iter().find(|(w, _)| *w == other).map(|(_, k)| k.clone()).expect("user key"),
        };
        // Users without GetAuthorizationToken permission get no token: they present garbage.
        let password = match who {
            Who::Anonymous | Who::BadSignature => "not-a-token".to_owned(),
            Who::OwnerUserWithout | Who::OtherUserWithout => "no-token-for-this-user".to_owned(),
            _ => berth.password_for(&key, &secret).await,
        };
        creds.push((who, Credentials { password, key, secret }));
    }
    berth.admin(&["key", "disable", &text(&disabled, "accessKeyId")]);

    let mut unexpected_allows = BTreeSet::new();
    let mut unexpected_denials = BTreeSet::new();
    let mut cells = 0;
    for (who, c) in &creds {
        for (shape, digest, layer) in &images {
            let r = repo(shape.name());
            // OCI routes, each with the ECR action it maps to.
            let oci: [(&str, Method, String); 8] = [
                ("ecr:BatchGetImage", Method::GET, format!("/v2/{r}/manifests/v1")),
                ("ecr:BatchGetImage", Method::HEAD, format!("/v2/{r}/manifests/{digest}")),
                ("ecr:GetDownloadUrlForLayer", Method::GET, format!("/v2/{r}/blobs/{layer}")),
                ("ecr:BatchCheckLayerAvailability", Method::HEAD, format!("/v2/{r}/blobs/{layer}")),
                ("ecr:InitiateLayerUpload", Method::POST, format!("/v2/{r}/blobs/uploads/")),
                ("ecr:ListImages", Method::GET, format!("/v2/{r}/tags/list")),
                ("ecr:BatchGetImage", Method::GET, format!("/v2/{r}/referrers/{digest}")),
                (
                    "ecr:BatchDeleteImage",
                    Method::DELETE,
                    format!("/v2/{r}/manifests/{}", sha256(b"not there")),
                ),
            ];
            for (action, method, path) in oci {
                let request = berth
                    .client
                    .request(method.clone(), format!("{}{path}", berth.url))
                    .header("accept", OCI_MANIFEST);
                let request = if *who == Who::Anonymous {
                    request
                } else {
                    request.basic_auth("AWS", Some(&c.password))
                };
                let status = request.send().await.expect("send").status().as_u16();
                let allowed = status != 401 && status != 403;
                // A user without GetAuthorizationToken holds no registry token: it cannot sign in.
                let has_token = !matches!(who, Who::OwnerUserWithout | Who::OtherUserWithout);
                let expect = expected(*who, *shape, action) && has_token;
                record(
                    &mut unexpected_allows,
                    &mut unexpected_denials,
                    allowed,
                    expect,
                    format!("{who:?} {shape:?} {method} {path} -> {status}"),
                );
                cells += 1;
            }
            // ECR operations, each named by its own action.
            let name = shape.name();
            let ecr: [(&str, &str, serde_json::Value); 7] = [
                (
                    "ecr:BatchGetImage",
                    "BatchGetImage",
                    json!({"repositoryName": name, "imageIds": [{"imageTag": "v1"}]}),
                ),
                ("ecr:DescribeImages", "DescribeImages", json!({"repositoryName": name})),
                ("ecr:ListImages", "ListImages", json!({"repositoryName": name})),
                (
                    "ecr:BatchCheckLayerAvailability",
                    "BatchCheckLayerAvailability",
                    json!({"repositoryName": name, "layerDigests": [layer]}),
                ),
                (
                    "ecr:GetDownloadUrlForLayer",
                    "GetDownloadUrlForLayer",
                    json!({"repositoryName": name, "layerDigest": layer}),
                ),
                ("ecr:GetRepositoryPolicy", "GetRepositoryPolicy", json!({"repositoryName": name})),
                (
                    "ecr:BatchDeleteImage",
                    "BatchDeleteImage",
                    json!({"repositoryName": name, "imageIds": [{"imageTag": "nope"}]}),
                ),
            ];
            for (action, operation, mut input) in ecr {
                input["registryId"] = json!(ACCOUNT);
                let (status, out) = if *who == Who::Anonymous {
                    let r = berth
                        .anon(Method::POST, "/")
                        .header("x-amz-target", format!("AmazonEC2ContainerRegistry_V20150921.{operation}"))
                        .header("content-type", "application/x-amz-json-1.1")
                        .body(input.to_string())
                        .send()
                        .await
                        .expect("send");
                    let status = r.status().as_u16();
                    (status, r.json_or_null().await)
                } else {
                    berth.ecr_as(&c.key, &c.secret, operation, input).await
                };
                let kind = out["__type"].as_str().unwrap_or("");
                let refusals = [
                    "AccessDeniedException",
                    "UnrecognizedClientException",
                    "InvalidSignatureException",
                    "MissingAuthenticationTokenException",
                ];
                let allowed = !refusals.contains(&kind);
                // GetRepositoryPolicy on a repository without one is an allowed call that finds nothing.
                let expect = expected(*who, *shape, action) && !(*who == Who::Anonymous);
                record(
                    &mut unexpected_allows,
                    &mut unexpected_denials,
                    allowed,
                    expect,
                    format!("{who:?} {shape:?} {operation} -> {status} {kind}"),
                );
                cells += 1;
            }
        }
    }
    println!(
        "isolation matrix: {cells} cells, {} unexpected allows, {} unexpected denials",
        unexpected_allows.len(),
        unexpected_denials.len()
    );
    assert!(
        unexpected_allows.is_empty(),
        "unexpected allows:\n{}",
        unexpected_allows.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        unexpected_denials.is_empty(),
        "unexpected denials:\n{}",
        unexpected_denials.iter().cloned().collect::<Vec<_>>().join("\n")
    );
}

fn record(
    allows: &mut BTreeSet<String>,
    denials: &mut BTreeSet<String>,
    allowed: bool,
    expected: bool,
    cell: String,
) {
    match (allowed, expected) {
        (true, false) => {
            allows.insert(cell);
        }
        (false, true) => {
            denials.insert(cell);
        }
        _ => {}
    }
}
