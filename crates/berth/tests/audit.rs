//! The audit log, as an auditor reads it: every change, every refused request and every failed
//! authentication, one JSON line each with who (principal, access key, address), what, on
//! which resource and how it ended, under the id the client was given; and no secret in it.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn records(berth: &Berth) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(berth.data_dir().join("audit.log"))
        .expect("the audit log is in the data directory");
    let records =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is one JSON record")).collect();
    (text, records)
}

fn find<'a>(records: &'a [Value], what: &str, test: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = records.iter().filter(|r| test(r)).collect();
    assert_eq!(found.len(), 1, "one record of {what} in {records:#?}");
    found[0]
}

#[tokio::test]
async fn changes_refusals_and_failed_authentications_are_recorded_without_secrets() {
    let berth = Berth::start().await;
    let (owner_key, owner_secret) = berth.owner_credentials();
    let name = "audit/private";
    let path = repo(name);
    berth.push_image(&path, "v1", br#"{"audit":1}"#, b"audited layer").await;
    assert_eq!(berth.get_manifest(&path, "v1").await.status(), 200, "a read, not recorded");

    // Another account, made by the operator, is refused a pull of the private repository.
    let (other_key, other_secret) = berth.account_with_key("111111111111");
    let other_password = berth.password_for(&other_key, &other_secret).await;
    let denied = berth
        .req_with(&other_password, Method::GET, &format!("/v2/{path}/manifests/v1"))
        .header("user-agent", "audit-test/1.0")
        .send()
        .await
        .expect("send");
    assert_eq!(denied.status(), 403);
    let denied_id = denied.headers()["x-amzn-requestid"].to_str().expect("id").to_owned();

    // The owner changes the repository's policy.
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "ecr:BatchGetImage"}]});
    let (status, out) = berth
        .ecr("SetRepositoryPolicy", json!({"repositoryName": name, "policyText": policy.to_string()}))
        .await;
    assert_eq!(status, 200, "{out}");

    // A signature made with the wrong secret, and a registry password that is not one.
    let wrong_secret = "wrong-secret-0000000000000000000000000000";
    let (status, out) = berth.ecr_as(&other_key, wrong_secret, "DescribeRepositories", json!({})).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidSignatureException")), "{out}");
    let bad_password = "not-a-registry-password";
    let refused = berth.req_with(bad_password, Method::GET, &format!("/v2/{path}/manifests/v1")).send().await;
    assert_eq!(refused.expect("send").status(), 401);

    // The anonymous first request many clients begin a pull with is a challenge, not a record.
    let anonymous = berth.anon(Method::HEAD, &format!("/v2/{path}/manifests/v1")).send().await.expect("send");
    assert_eq!(anonymous.status(), 401);

    let (text, records) = records(&berth);
    for record in &records {
        for field in ["eventTime", "eventName", "eventSource", "eventID", "userIdentity", "awsRegion"] {
            assert!(record.get(field).is_some(), "{field} in {record}");
        }
    }

    let pull = find(&records, "the refused pull", |r| r["errorCode"] == "DENIED");
    assert_eq!(pull["eventName"], "BatchGetImage");
    assert_eq!(pull["userIdentity"]["arn"], "arn:aws:iam::111111111111:root");
    assert_eq!(pull["userIdentity"]["accessKeyId"], other_key.as_str());
    assert_eq!(pull["sourceIPAddress"], "127.0.0.1");
    assert_eq!(pull["userAgent"], "audit-test/1.0");
    assert_eq!(pull["requestID"], denied_id.as_str(), "the id the client was given");
    assert_eq!(
        pull["requestParameters"],
        json!({"registryId": ACCOUNT, "repositoryName": name, "imageTag": "v1"})
    );
    assert_eq!(pull["readOnly"], true);

    let change = find(&records, "the policy change", |r| r["eventName"] == "SetRepositoryPolicy");
    assert_eq!(change["userIdentity"]["arn"], format!("arn:aws:iam::{ACCOUNT}:root"));
    assert_eq!(change["userIdentity"]["accessKeyId"], owner_key.as_str());
    assert_eq!(change["sourceIPAddress"], "127.0.0.1");
    assert_eq!(change["requestParameters"]["policyText"], policy.to_string());
    assert_eq!(change["resources"][0]["ARN"], format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"));
    assert_eq!((change["readOnly"].as_bool(), change.get("errorCode")), (Some(false), None));

    let push = find(&records, "the image push", |r| r["eventName"] == "PutImage");
    assert_eq!(push["requestParameters"]["repositoryName"], name);

    let forged = find(&records, "the bad signature", |r| r["errorCode"] == "InvalidSignatureException");
    assert_eq!(forged["userIdentity"]["accessKeyId"], other_key.as_str(), "the key it claimed");
    assert_eq!(forged["eventName"], "DescribeRepositories");
    let bad = find(&records, "the bad password", |r| r["errorCode"] == "UNAUTHORIZED");
    assert_eq!(bad["eventName"], "BatchGetImage");

    let operator = find(&records, "the operator's new account", |r| r["eventName"] == "admin account create");
    assert_eq!(operator["eventSource"], "berth.admin");
    assert!(
        records
            .iter()
            .any(|r| r["eventName"] == "admin key create" && r["recipientAccountId"] == "111111111111"),
        "the operator's new key"
    );

    assert_eq!(
        records.iter().filter(|r| r["eventName"] == "BatchGetImage").count(),
        2,
        "the refused pulls only: a successful read is not recorded"
    );

    use base64::Engine;
    let basic = |password: &str| base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    for secret in [
        owner_secret.clone(),
        other_secret.clone(),
        wrong_secret.to_owned(),
        other_password.clone(),
        berth.password.clone(),
        bad_password.to_owned(),
        basic(&other_password),
        basic(&berth.password),
    ] {
        assert!(!text.contains(&secret), "the audit log holds a secret: {secret}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(berth.data_dir().join("audit.log")).expect("audit.log").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");
    println!("audit log: {} records, none holding any of the 8 secrets and passwords used", records.len());
}

#[tokio::test]
async fn an_audit_log_turned_off_writes_nothing() {
    let berth = Berth::start_with(&[("BERTH_AUDIT_FILE", "off")]).await;
    let (status, _) = berth.ecr("CreateRepository", json!({"repositoryName": "audit/off"})).await;
    assert_eq!(status, 200);
    assert!(!berth.data_dir().join("audit.log").exists(), "off writes nothing");
}
