//! Cross-account sharing through repository and registry policies, end to end over both
//! surfaces: the shared account publishes, the accounts it names pull, nobody else learns
//! anything.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const CROSS_ACCOUNT_PULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Pull","Effect":"Allow",
    "Principal":{"AWS":["arn:aws:iam::111111111111:root","222222222222"]},
    "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}"#;

#[tokio::test]
async fn the_shared_account_publishes_and_only_named_accounts_pull() {
    let berth = Berth::start().await;
    let (dev_key, dev_secret) = berth.account_with_key("111111111111");
    let (other_key, other_secret) = berth.account_with_key("333333333333");
    berth.ecr("CreateRepository", json!({"repositoryName": "mlops/python-base"})).await;
    let r = repo("mlops/python-base");
    let digest = berth.push_image(&r, "v1", br#"{"os":"linux"}"#, b"base layer").await;
    let layer = sha256(b"base layer");

    let dev = berth.password_for(&dev_key, &dev_secret).await;
    let other = berth.password_for(&other_key, &other_secret).await;
    let pull = |password: &str, path: String| {
        berth.req_with(password, Method::GET, &path).header("accept", OCI_MANIFEST).send()
    };

    // Before the policy, the other account is refused, and cannot tell the repository exists.
    let denied = pull(&dev, format!("/v2/{r}/manifests/v1")).await.expect("send");
    assert_eq!(denied.status(), 403);
    let missing =
        pull(&dev, format!("/v2/{}/manifests/v1", repo("mlops/does-not-exist"))).await.expect("send");
    assert_eq!(missing.status(), 403, "a missing repository answers like a forbidden one");

    let (status, out) = berth
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "mlops/python-base", "policyText": CROSS_ACCOUNT_PULL}),
        )
        .await;
    assert_eq!(status, 200, "{out}");

    // The named account pulls: manifest and layer.
    let got = pull(&dev, format!("/v2/{r}/manifests/v1")).await.expect("send");
    assert_eq!(got.status(), 200);
    assert_eq!(sha256(&got.bytes().await.expect("body")), digest);
    let blob = pull(&dev, format!("/v2/{r}/blobs/{layer}")).await.expect("send");
    assert_eq!(blob.bytes().await.expect("body").as_ref(), b"base layer");
    // ...but cannot push, delete or list tags.
    let push =
        berth.req_with(&dev, Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(push.status(), 403);
    let delete = berth
        .req_with(&dev, Method::DELETE, &format!("/v2/{r}/manifests/{digest}"))
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status(), 403);
    // The ECR API agrees: the named account may batch-get, not describe or read the policy.
    let (status, out) = berth
        .ecr_as(&dev_key, &dev_secret, "BatchGetImage",
                json!({"registryId": ACCOUNT, "repositoryName": "mlops/python-base", "imageIds": [{"imageTag": "v1"}]}))
        .await;
    assert_eq!(
        (status, out["images"][0]["imageId"]["imageDigest"].as_str()),
        (200, Some(digest.as_str())),
        "{out}"
    );
    let (status, out) = berth
        .ecr_as(
            &dev_key,
            &dev_secret,
            "GetRepositoryPolicy",
            json!({"registryId": ACCOUNT, "repositoryName": "mlops/python-base"}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "{out}");

    // Everyone else still gets nothing.
    let refused = pull(&other, format!("/v2/{r}/manifests/v1")).await.expect("send");
    assert_eq!(refused.status(), 403);
    let anonymous = berth.anon(Method::GET, &format!("/v2/{r}/manifests/v1")).send().await.expect("send");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn public_read_explicit_deny_and_the_owner_keeps_its_policies() {
    let berth = Berth::start().await;
    berth.ecr("CreateRepository", json!({"repositoryName": "public/tools"})).await;
    let r = repo("public/tools");
    let digest = berth.push_image(&r, "v1", br#"{"os":"linux","p":1}"#, b"public layer").await;
    let public = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Public","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]},
        {"Sid":"NoDeletes","Effect":"Deny","Principal":"*","Action":"ecr:BatchDeleteImage"}]}"#;
    let (status, out) = berth
        .ecr("SetRepositoryPolicy", json!({"repositoryName": "public/tools", "policyText": public}))
        .await;
    assert_eq!(status, 200, "{out}");

    // Anonymous pulls work; anonymous pushes are challenged.
    let got = berth
        .anon(Method::GET, &format!("/v2/{r}/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(got.status(), 200);
    let push = berth.anon(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(push.status(), 401);
    // The explicit deny binds even the owner's root.
    let delete =
        berth.req(Method::DELETE, &format!("/v2/{r}/manifests/{digest}")).send().await.expect("send");
    assert_eq!(delete.status(), 403);
    let (status, out) = berth
        .ecr("BatchDeleteImage", json!({"repositoryName": "public/tools", "imageIds": [{"imageTag": "v1"}]}))
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "{out}");
    assert!(out["message"].as_str().is_some_and(|m| m.ends_with("with an explicit deny")), "{out}");

    // The owner's root can always read, replace and delete its repository's policy, whatever the
    // policy says: a policy that denies everything to everyone, or everything over plain HTTP
    // (which every request to this server is), binds the root's other actions but never its
    // hold on the policy itself.
    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#;
    let insecure = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*",
        "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    for lockout in [everything, insecure] {
        let (status, out) = berth
            .ecr("SetRepositoryPolicy", json!({"repositoryName": "public/tools", "policyText": lockout}))
            .await;
        assert_eq!(status, 200, "the owner may set it: {out}");
        let (status, out) =
            berth.ecr("DeleteRepository", json!({"repositoryName": "public/tools", "force": true})).await;
        assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "it binds: {out}");
        let pulled = berth.get_manifest(&r, "v1").await;
        assert_eq!(pulled.status(), 403, "it binds the owner's pulls too");
        let (status, out) = berth.ecr("GetRepositoryPolicy", json!({"repositoryName": "public/tools"})).await;
        assert_eq!(status, 200, "the owner still reads it: {out}");
        let (status, out) = berth
            .ecr("SetRepositoryPolicy", json!({"repositoryName": "public/tools", "policyText": lockout}))
            .await;
        assert_eq!(status, 200, "the owner still replaces it: {out}");
        let (status, out) =
            berth.ecr("DeleteRepositoryPolicy", json!({"repositoryName": "public/tools"})).await;
        assert_eq!(status, 200, "the owner still deletes it: {out}");
        assert_eq!(berth.get_manifest(&r, "v1").await.status(), 200, "and everything works again");
    }

    // `force` guards a caller against its own lock-out, judged with its own request: a user
    // who may manage the policy is told before it sets one that stops it from setting another.
    let (user_key, user_secret) = berth.user_with_policy(
        ACCOUNT,
        "admin",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}),
    );
    let no_set = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:SetRepositoryPolicy"}]}"#;
    let set = |force: bool| {
        berth.ecr_as(
            &user_key,
            &user_secret,
            "SetRepositoryPolicy",
            json!({"repositoryName": "public/tools", "policyText": no_set, "force": force}),
        )
    };
    let (status, out) = set(false).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")), "{out}");
    assert!(out["message"].as_str().is_some_and(|m| m.contains("force")), "{out}");
    let (status, out) = set(true).await;
    assert_eq!(status, 200, "accepted with force: {out}");
    let (status, out) = set(true).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "now it binds: {out}");
    let (status, _) = berth.ecr("DeleteRepositoryPolicy", json!({"repositoryName": "public/tools"})).await;
    assert_eq!(status, 200, "the owner's root can still delete it");
    let (status, out) = berth.ecr("GetRepositoryPolicy", json!({"repositoryName": "public/tools"})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("RepositoryPolicyNotFoundException")));

    // The same holds for the registry policy, which binds every repository of the account.
    let (status, out) = berth.ecr("PutRegistryPolicy", json!({"policyText": everything})).await;
    assert_eq!(status, 200, "{out}");
    let (status, out) = berth.ecr("DescribeRepositories", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "it binds: {out}");
    let (status, out) = berth.ecr("GetRegistryPolicy", json!({})).await;
    assert_eq!((status, out["policyText"].as_str()), (200, Some(everything)), "{out}");
    let (status, out) = berth.ecr("PutRegistryPolicy", json!({"policyText": everything})).await;
    assert_eq!(status, 200, "the owner still replaces it: {out}");
    let (status, out) = berth.ecr("DeleteRegistryPolicy", json!({})).await;
    assert_eq!(status, 200, "the owner still deletes it: {out}");
    let (status, out) = berth.ecr("DescribeRepositories", json!({})).await;
    assert_eq!(status, 200, "{out}");

    // And the operator, beside the running server, reads and deletes either kind.
    for (args, set_policy) in
        [(vec!["--repository", "public/tools"], "SetRepositoryPolicy"), (vec![], "PutRegistryPolicy")]
    {
        let mut input = json!({"policyText": everything});
        if !args.is_empty() {
            input["repositoryName"] = json!("public/tools");
        }
        let (status, out) = berth.ecr(set_policy, input).await;
        assert_eq!(status, 200, "{out}");
        let shown = berth.admin(&[&["policy", "get", "--account", ACCOUNT][..], &args].concat());
        assert_eq!(shown["policyText"].as_str(), Some(everything), "{shown}");
        let deleted = berth.admin(&[&["policy", "delete", "--account", ACCOUNT][..], &args].concat());
        assert_eq!(
            (deleted["deleted"].as_bool(), deleted["policyText"].as_str()),
            (Some(true), Some(everything))
        );
        let gone = berth.admin(&[&["policy", "get", "--account", ACCOUNT][..], &args].concat());
        assert!(gone["policyText"].is_null(), "{gone}");
    }
    assert_eq!(berth.get_manifest(&r, "v1").await.status(), 200);

    // Invalid policies say which statement is wrong.
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Ok","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},
        {"Sid":"Broken","Effect":"Allow","Principal":{"AWS":"not-an-account"},"Action":"ecr:BatchGetImage"}]}"#;
    let (status, out) =
        berth.ecr("SetRepositoryPolicy", json!({"repositoryName": "public/tools", "policyText": bad})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")));
    assert!(
        out["message"]
            .as_str()
            .is_some_and(|m| m.contains("statement 2 (Sid \"Broken\")") && m.contains("Principal not found")),
        "{out}"
    );
}

#[tokio::test]
async fn a_registry_policy_shares_every_repository_of_a_prefix() {
    let berth = Berth::start().await;
    let (key, secret) = berth.account_with_key("222222222222");
    berth.push_image(&repo("prod/api"), "v1", br#"{"os":"linux","a":1}"#, b"api").await;
    berth.push_image(&repo("dev/api"), "v1", br#"{"os":"linux","a":2}"#, b"dev api").await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},
        "Action":["ecr:BatchGetImage"],"Resource":"arn:aws:ecr:us-east-1:000000000000:repository/prod/*"}]}"#;
    let (status, out) = berth.ecr("PutRegistryPolicy", json!({"policyText": policy})).await;
    assert_eq!(status, 200, "{out}");
    let password = berth.password_for(&key, &secret).await;
    let get =
        |path: String| berth.req_with(&password, Method::GET, &path).header("accept", OCI_MANIFEST).send();
    assert_eq!(get(format!("/v2/{}/manifests/v1", repo("prod/api"))).await.expect("send").status(), 200);
    assert_eq!(get(format!("/v2/{}/manifests/v1", repo("dev/api"))).await.expect("send").status(), 403);
    let (_, out) = berth.ecr("GetRegistryPolicy", json!({})).await;
    assert_eq!(out["policyText"], policy);
    berth.ecr("DeleteRegistryPolicy", json!({})).await;
    assert_eq!(get(format!("/v2/{}/manifests/v1", repo("prod/api"))).await.expect("send").status(), 403);
}

#[tokio::test]
async fn users_pull_across_accounts_only_with_an_identity_policy() {
    let berth = Berth::start().await;
    berth.account_with_key("111111111111");
    berth.admin(&["user", "create", "--account", "111111111111", "dev", "--path", "/team/"]);
    berth.admin(&["user", "create", "--account", "111111111111", "nobody"]);
    let dev_key = berth.admin(&["key", "create", "--account", "111111111111", "--user", "dev"]);
    let nobody_key = berth.admin(&["key", "create", "--account", "111111111111", "--user", "nobody"]);
    let policy_file = berth.data_dir().with_extension("dev-policy.json");
    std::fs::write(
        &policy_file,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
            "Resource":"arn:aws:ecr:*:000000000000:repository/mlops/*"},
           {"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}"#,
    )
    .expect("write policy");
    let path = policy_file.to_str().expect("utf8 path");
    berth.admin(&[
        "user",
        "policy",
        "put",
        "--account",
        "111111111111",
        "--user",
        "dev",
        "--name",
        "pull",
        "--file",
        path,
    ]);

    berth.ecr("CreateRepository", json!({"repositoryName": "mlops/python-base"})).await;
    let r = repo("mlops/python-base");
    berth.push_image(&r, "v1", br#"{"os":"linux","u":1}"#, b"user layer").await;
    berth
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "mlops/python-base", "policyText": CROSS_ACCOUNT_PULL}),
        )
        .await;

    let key = |v: &serde_json::Value, f: &str| v[f].as_str().expect("field").to_owned();
    let dev = berth.password_for(&key(&dev_key, "accessKeyId"), &key(&dev_key, "secretAccessKey")).await;
    let get = |password: &str| {
        berth
            .req_with(password, Method::GET, &format!("/v2/{r}/manifests/v1"))
            .header("accept", OCI_MANIFEST)
            .send()
    };
    assert_eq!(get(&dev).await.expect("send").status(), 200, "identity policy + repository policy: pull");
    let push =
        berth.req_with(&dev, Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    assert_eq!(push.status(), 403, "pull-only identity policy: no push");

    // Without an identity policy, the user's own account cannot grant it a token at all.
    let (status, out) = berth
        .ecr_as(
            &key(&nobody_key, "accessKeyId"),
            &key(&nobody_key, "secretAccessKey"),
            "GetAuthorizationToken",
            json!({}),
        )
        .await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "{out}");

    // Disabling the key ends every token issued to it.
    berth.admin(&["key", "disable", &key(&dev_key, "accessKeyId")]);
    assert_eq!(get(&dev).await.expect("send").status(), 401);
}

#[tokio::test]
async fn a_user_with_a_path_is_the_same_principal_on_both_surfaces() {
    let berth = Berth::start().await;
    berth.admin(&["user", "create", "--account", ACCOUNT, "ci", "--path", "/build/"]);
    let ci = berth.admin(&["key", "create", "--account", ACCOUNT, "--user", "ci"]);
    let token_only = berth.data_dir().with_extension("token-only.json");
    std::fs::write(
        &token_only,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}"#,
    )
    .expect("write policy");
    let file = token_only.to_str().expect("utf8 path");
    berth.admin(&[
        "user",
        "policy",
        "put",
        "--account",
        ACCOUNT,
        "--user",
        "ci",
        "--name",
        "t",
        "--file",
        file,
    ]);
    let r = repo("build/tools");
    berth.push_image(&r, "v1", br#"{"os":"linux","u":2}"#, b"tools layer").await;
    // The repository policy names the user by its full ARN, path included.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/build/ci")},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]});
    let (status, out) = berth
        .ecr(
            "SetRepositoryPolicy",
            json!({"repositoryName": "build/tools", "policyText": policy.to_string()}),
        )
        .await;
    assert_eq!(status, 200, "{out}");

    let text = |f: &str| ci[f].as_str().expect("field").to_owned();
    let (key, secret) = (text("accessKeyId"), text("secretAccessKey"));
    let (status, out) = berth
        .ecr_as(
            &key,
            &secret,
            "BatchGetImage",
            json!({"repositoryName": "build/tools", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await;
    assert_eq!((status, out["images"].as_array().map(Vec::len)), (200, Some(1)), "ECR API: {out}");
    let password = berth.password_for(&key, &secret).await;
    let pulled = berth
        .req_with(&password, Method::GET, &format!("/v2/{r}/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("send");
    assert_eq!(pulled.status(), 200, "OCI API: the token stands for user/build/ci as well");
}
