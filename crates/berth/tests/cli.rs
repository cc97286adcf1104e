//! The command line as a newcomer meets it: one server per data directory, no data directory
//! made by mistake, credentials in the format the aws CLI reads, logs without colour codes in a
//! file, and passwords that show nothing of the key behind them.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn berth_command(args: &[&str]) -> std::process::Output {
    Command::new(berth_binary()).args(args).env("BERTH_LOG", "info").output().expect("berth runs")
}

#[tokio::test]
async fn a_second_server_on_a_busy_data_directory_refuses_to_start() {
    let berth = Berth::start().await;
    let dir = berth.data_dir().to_str().expect("path").to_owned();
    let second = berth_command(&["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second server started: {stderr}");
    assert!(stderr.contains("another berth serve") && stderr.contains(&dir), "{stderr}");
    let pid = berth.pid().expect("running").to_string();
    assert!(stderr.contains(&pid), "the message names the process that holds it: {stderr}");
    // The first one still serves, and the admin commands work beside it.
    assert_eq!(berth.anon(reqwest::Method::GET, "/healthz").send().await.expect("send").status(), 200);
    let accounts = berth.admin(&["account", "list"]);
    assert_eq!(accounts[0]["accountId"], ACCOUNT);
}

#[test]
fn commands_other_than_serve_never_create_a_data_directory() {
    let temp = tempfile::tempdir().expect("tempdir");
    let missing = temp.path().join("not-here");
    let path = missing.to_str().expect("path");
    for args in [
        vec!["login-password", "--data-dir", path],
        vec!["admin", "account", "list", "--data-dir", path],
        vec!["admin", "key", "create", "--account", ACCOUNT, "--data-dir", path],
    ] {
        let out = berth_command(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr.contains("no berth data directory") && stderr.contains("--data-dir"),
            "{args:?}: {stderr}"
        );
        assert!(!missing.exists(), "{args:?} created {}", missing.display());
    }
}

#[tokio::test]
async fn admin_commands_keep_the_owner_the_server_made_whatever_their_environment_says() {
    let berth = Berth::start_with(&[("BERTH_BOOTSTRAP_ACCOUNT_ID", "123456789012")]).await;
    let dir = berth.data_dir().to_str().expect("path").to_owned();
    // Run without the server's BERTH_BOOTSTRAP_ACCOUNT_ID: the default owner would be another account.
    let out = Command::new(berth_binary())
        .args(["admin", "account", "list", "--data-dir", &dir])
        .env_remove("BERTH_BOOTSTRAP_ACCOUNT_ID")
        .output()
        .expect("berth runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let accounts: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(accounts, json!([{"accountId": "123456789012", "name": "owner"}]), "a second owner was made");
}

#[tokio::test]
async fn a_new_key_can_be_printed_as_a_credentials_profile() {
    let berth = Berth::start().await;
    berth.admin(&["account", "create", "111111111111", "--name", "dev"]);
    let dir = berth.data_dir().to_str().expect("path").to_owned();
    let out = berth_command(&[
        "admin",
        "key",
        "create",
        "--account",
        "111111111111",
        "--output",
        "credentials",
        "--profile",
        "dev",
        "--data-dir",
        &dir,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"[dev]"), "{text}");
    let field = |name: &str| {
        lines.iter().find_map(|l| l.split_once(" = ").filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
    };
    let (key, secret) =
        (field("aws_access_key_id").expect("key id"), field("aws_secret_access_key").expect("secret"));
    let (status, result) = berth.ecr_as(&key, &secret, "DescribeRegistry", json!({})).await;
    assert_eq!(
        (status, result["registryId"].as_str()),
        (200, Some("111111111111")),
        "the profile works: {result}"
    );
}

#[tokio::test]
async fn a_log_written_to_a_file_has_no_colour_codes() {
    let temp = tempfile::tempdir().expect("tempdir");
    let log = temp.path().join("berth.log");
    let mut child = Command::new(berth_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path().join("data"))
        .env("BERTH_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("berth starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("berth is serving") {
        assert!(std::time::Instant::now() < deadline, "berth did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains('\u{1b}'), "escape codes in a log file: {text:?}");
}

#[tokio::test]
async fn a_registry_password_shows_nothing_of_its_key() {
    use base64::Engine;
    let berth = Berth::start().await;
    let (key, secret) = berth.owner_credentials();
    let (_, out) = berth.ecr_as(&key, &secret, "GetAuthorizationToken", json!({})).await;
    let token = out["authorizationData"][0]["authorizationToken"].as_str().expect("token");
    let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(token).expect("base64"))
        .expect("utf8");
    let (user, password) = decoded.split_once(':').expect("AWS:<password>");
    assert_eq!((user, decoded.matches(':').count()), ("AWS", 1), "the aws CLI needs exactly one colon");
    let inside = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(password).unwrap_or_default();
    let inside = String::from_utf8_lossy(&inside);
    assert!(!password.contains(&key) && !inside.contains(&key), "the password shows the key id");
    // And it works.
    let pinged = berth.req_with(password, reqwest::Method::GET, "/v2/").send().await.expect("send");
    assert_eq!(pinged.status(), 200);
}
