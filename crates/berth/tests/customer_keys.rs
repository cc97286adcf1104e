//! Repositories under customer keys (`encryptionType` `KMS`): each account's key guards its own
//! repositories, content shared across accounts is stored once, and a disabled key cuts off
//! exactly the repositories it guards. Each test runs against every key service: `local`,
//! `pkcs11` against a SoftHSM2 token, and `aws-kms` against moto's server, which speaks AWS
//! KMS's API.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const MARKER: &[u8] = b"BERTH-CUSTOMER-KEY-PLAINTEXT-41c7";

/// Where the customer keys of a test live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Local,
    Pkcs11,
    AwsKms,
}

/// What a test's key service needs kept alive while its registry runs.
enum KeyServer {
    Files,
    Hsm(SoftHsmToken),
    Moto(MotoServer),
}

/// A registry whose customer keys live in `service`, with the key server it needs kept running;
/// `None`, after saying why, when that service cannot run here.
async fn registry(service: Service, test: &str) -> Option<(Berth, KeyServer)> {
    let started = match service {
        Service::Local => return Some((Berth::start().await, KeyServer::Files)),
        Service::Pkcs11 => SoftHsmToken::create().map(|token| (token.berth_env(), KeyServer::Hsm(token))),
        Service::AwsKms => MotoServer::start().await.map(|moto| (moto.berth_env(), KeyServer::Moto(moto))),
    };
    match started {
        Ok((env, server)) => {
            let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Some((Berth::start_with(&pairs).await, server))
        }
        Err(why) => {
            skip(&format!("{test}::{service:?}"), &why);
            None
        }
    }
}

/// One test per key service, named after the test: `TEST::local`, `TEST::pkcs11`, `TEST::aws_kms`.
macro_rules! for_every_key_service {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn local() {
                super::$test(super::Service::Local).await;
            }
            #[tokio::test]
            async fn pkcs11() {
                super::$test(super::Service::Pkcs11).await;
            }
            #[tokio::test]
            async fn aws_kms() {
                super::$test(super::Service::AwsKms).await;
            }
        }
    )*};
}

for_every_key_service!(
    one_stored_copy_under_three_keys_and_a_disabled_key_cuts_off_only_its_repositories,
    a_repository_key_that_cannot_be_used_is_refused_before_anything_is_created,
    a_rotation_rewraps_every_data_key_online_while_clients_push_and_pull,
    a_repository_whose_key_is_off_lends_nothing_by_mount,
);

/// An account of the test with its key, registry password and customer key.
struct Tenant {
    account: &'static str,
    key: String,
    secret: String,
    password: String,
    key_arn: String,
}

async fn tenant(berth: &Berth, account: &'static str) -> Tenant {
    let (key, secret) = berth.account_with_key(account);
    let password = berth.password_for(&key, &secret).await;
    let made = berth.admin(&["kms", "create", "--account", account, "--alias", "alias/images"]);
    let key_arn = made["arn"].as_str().expect("arn").to_owned();
    Tenant { account, key, secret, password, key_arn }
}

impl Tenant {
    async fn ecr(&self, berth: &Berth, operation: &str, input: Value) -> (u16, Value) {
        berth.ecr_as(&self.key, &self.secret, operation, input).await
    }

    fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.account)
    }

    async fn push_blob(&self, berth: &Berth, name: &str, bytes: &[u8]) -> reqwest::Response {
        let digest = sha256(bytes);
        berth
            .req_with(
                &self.password,
                Method::POST,
                &format!("/v2/{}/blobs/uploads/?digest={digest}", self.repo(name)),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("send")
    }

    async fn get(&self, berth: &Berth, path: &str) -> reqwest::Response {
        berth
            .req_with(&self.password, Method::GET, &format!("/v2/{}/{path}", self.repo("shared/base")))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("send")
    }
}

async fn one_stored_copy_under_three_keys_and_a_disabled_key_cuts_off_only_its_repositories(
    service: Service,
) {
    let Some((berth, keys)) = registry(
        service,
        "one_stored_copy_under_three_keys_and_a_disabled_key_cuts_off_only_its_repositories",
    )
    .await
    else {
        return;
    };
    let mut tenants = Vec::new();
    for account in ["111111111111", "222222222222", "333333333333"] {
        tenants.push(tenant(&berth, account).await);
    }
    // The same 100 MiB layer (plaintext marked, to look for on disk), config and manifest in all three.
    let mut layer = random_bytes(100 * 1024 * 1024, 7);
    layer[..MARKER.len()].copy_from_slice(MARKER);
    let config = [br#"{"os":"linux","architecture":"amd64","marker":""#, MARKER, br#""}"#].concat();
    let (layer_digest, config_digest) = (sha256(&layer), sha256(&config));
    let manifest = image_manifest_bytes(&config_digest, config.len(), &layer_digest, layer.len(), "");
    for t in &tenants {
        let input = json!({"repositoryName": "shared/base",
                           "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/images"}});
        let (status, out) = t.ecr(&berth, "CreateRepository", input).await;
        assert_eq!(status, 200, "{out}");
        // ECR shows the key a repository was created under as its ARN, whatever named it.
        assert_eq!(
            out["repository"]["encryptionConfiguration"],
            json!({"encryptionType": "KMS", "kmsKey": t.key_arn})
        );
        for blob in [&config, &layer] {
            let r = t.push_blob(&berth, "shared/base", blob).await;
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        }
        let r = berth
            .req_with(&t.password, Method::PUT, &format!("/v2/{}/manifests/v1", t.repo("shared/base")))
            .header("content-type", OCI_MANIFEST)
            .body(manifest.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }

    let (bytes, files) = stored_blobs(berth.data_dir());
    let content = (layer.len() + config.len() + manifest.len()) as u64;
    println!(
        "3 accounts under 3 keys: {} bytes of content pushed 3 times ({} in all) occupy {bytes} bytes in {files} files \
         ({:.3}% over one copy)",
        content,
        3 * content,
        (bytes as f64 / content as f64 - 1.0) * 100.0
    );
    assert_eq!(files, 3, "one file each for the layer, the config and the manifest");
    assert!(bytes >= content && bytes <= content + content / 100, "{bytes} bytes stored for {content}");
    assert_eq!(files_containing(berth.data_dir(), MARKER), Vec::<String>::new(), "plaintext on disk");
    if let KeyServer::Hsm(token) = &keys {
        // Under an HSM, a key's record names the token's key object and holds no material.
        for t in &tenants {
            let key_id = t.key_arn.rsplit('/').next().expect("key id");
            let path = berth.data_dir().join("kms").join(t.account).join("keys").join(key_id);
            let record = std::fs::read_to_string(&path).expect("the key's record");
            let expected = format!("version 1 pkcs11:berth/{}/{key_id}/v1", t.account);
            assert!(record.lines().any(|l| l == expected), "{}: {record}", path.display());
        }
        assert_eq!(
            files_containing(&token.token_dir(), MARKER),
            Vec::<String>::new(),
            "plaintext in the HSM"
        );
    }

    // The middle account's key is disabled: its repository can be neither read nor written.
    let (cut, kept) = (&tenants[1], [&tenants[0], &tenants[2]]);
    berth.admin(&["kms", "disable", "--account", cut.account, "alias/images"]);
    for path in ["manifests/v1".to_owned(), format!("blobs/{layer_digest}"), format!("blobs/{config_digest}")]
    {
        let r = cut.get(&berth, &path).await;
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(error_code(r).await, "KEY_UNAVAILABLE", "{path}");
    }
    let (status, out) = cut
        .ecr(
            &berth,
            "BatchGetImage",
            json!({"repositoryName": "shared/base", "imageIds": [{"imageTag": "v1"}]}),
        )
        .await;
    // As ECR reports it: the image fails with KmsError; a call that must use the key is KmsException.
    assert_eq!((status, out["images"].as_array().map(Vec::len)), (200, Some(0)), "{out}");
    assert_eq!(out["failures"][0]["failureCode"], "KmsError", "{out}");
    let (status, out) =
        cut.ecr(&berth, "InitiateLayerUpload", json!({"repositoryName": "shared/base"})).await;
    assert_eq!(
        (status, out["__type"].as_str(), out["kmsError"].as_str()),
        (400, Some("KmsException"), Some("DisabledException")),
        "{out}"
    );
    let r = cut.push_blob(&berth, "shared/base", b"new content under a disabled key").await;
    assert_eq!(r.status(), 503, "a push under a disabled key");
    // The bytes the other two hold are the same stored copy, and they keep serving.
    for t in kept {
        let r = t.get(&berth, "manifests/v1").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.expect("body").as_ref(), manifest.as_slice());
        let r = t.get(&berth, &format!("blobs/{layer_digest}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(sha256(&r.bytes().await.expect("body")), layer_digest, "{}'s layer", t.account);
    }

    // Enabled again, it serves again: nothing was lost while it was off.
    berth.admin(&["kms", "enable", "--account", cut.account, "alias/images"]);
    let r = cut.get(&berth, &format!("blobs/{layer_digest}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(sha256(&r.bytes().await.expect("body")), layer_digest);

    // An operator makes a key, the server then makes one of its own (the account's default)
    // before it first uses the operator's: it uses both.
    let owner = &tenants[0];
    berth.admin(&["kms", "create", "--account", owner.account, "--alias", "alias/later"]);
    for (name, key) in [("defaulted/app", None), ("later/app", Some("alias/later"))] {
        let mut encryption = json!({"encryptionType": "KMS"});
        if let Some(alias) = key {
            encryption["kmsKey"] = json!(alias);
        }
        let input = json!({"repositoryName": name, "encryptionConfiguration": encryption});
        let (status, out) = owner.ecr(&berth, "CreateRepository", input).await;
        assert_eq!(status, 200, "{out}");
        let bytes = random_bytes(2048, name.len() as u64);
        let r = owner.push_blob(&berth, name, &bytes).await;
        assert_eq!(r.status(), 201, "{name}: {}", r.text().await.unwrap_or_default());
    }
}

async fn a_repository_key_that_cannot_be_used_is_refused_before_anything_is_created(service: Service) {
    let Some((berth, _keys)) =
        registry(service, "a_repository_key_that_cannot_be_used_is_refused_before_anything_is_created").await
    else {
        return;
    };
    let a = tenant(&berth, "111111111111").await;
    let b = tenant(&berth, "222222222222").await;
    let create = |name: &str, encryption: Value| json!({"repositoryName": name, "encryptionConfiguration": encryption});
    let cases = [
        ("missing", json!({"encryptionType": "KMS", "kmsKey": "alias/none"}), "NotFoundException"),
        ("other-account", json!({"encryptionType": "KMS", "kmsKey": b.key_arn}), "AccessDeniedException"),
        ("not-a-key", json!({"encryptionType": "KMS", "kmsKey": "just words"}), "NotFoundException"),
        ("dual-layer", json!({"encryptionType": "KMS_DSSE"}), "UnsupportedOperationException"),
    ];
    for (name, encryption, kms_error) in cases {
        let (status, out) = a.ecr(&berth, "CreateRepository", create(name, encryption)).await;
        assert_eq!(
            (status, out["__type"].as_str(), out["kmsError"].as_str()),
            (400, Some("KmsException"), Some(kms_error)),
            "{name}: {out}"
        );
        let (_, out) = a.ecr(&berth, "DescribeRepositories", json!({"repositoryNames": [name]})).await;
        assert_eq!(out["__type"], "RepositoryNotFoundException", "{name} was created: {out}");
    }
    berth.admin(&["kms", "disable", "--account", a.account, &a.key_arn]);
    let (status, out) = a
        .ecr(
            &berth,
            "CreateRepository",
            create("disabled", json!({"encryptionType": "KMS", "kmsKey": a.key_arn})),
        )
        .await;
    assert_eq!((status, out["kmsError"].as_str()), (400, Some("DisabledException")), "{out}");

    // No key named: the account's default key, made once and listed with the others.
    let mut defaults = Vec::new();
    for name in ["default/one", "default/two"] {
        let (status, out) =
            a.ecr(&berth, "CreateRepository", create(name, json!({"encryptionType": "KMS"}))).await;
        assert_eq!(status, 200, "{out}");
        defaults.push(
            out["repository"]["encryptionConfiguration"]["kmsKey"].as_str().expect("kmsKey").to_owned(),
        );
    }
    assert_eq!(defaults[0], defaults[1]);
    let keys = berth.admin(&["kms", "list", "--account", a.account]);
    let default =
        keys.as_array().expect("list").iter().find(|k| k["arn"] == defaults[0].as_str()).expect("listed");
    assert_eq!(default["aliases"], json!(["alias/aws/ecr"]));
    assert_ne!(defaults[0], a.key_arn);
}

async fn a_rotation_rewraps_every_data_key_online_while_clients_push_and_pull(service: Service) {
    let Some((berth, _keys)) =
        registry(service, "a_rotation_rewraps_every_data_key_online_while_clients_push_and_pull").await
    else {
        return;
    };
    let berth = std::sync::Arc::new(berth);
    let owner = std::sync::Arc::new(tenant(&berth, "111111111111").await);
    let input = json!({"repositoryName": "shared/base", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/images"}});
    let (status, out) = owner.ecr(&berth, "CreateRepository", input).await;
    assert_eq!(status, 200, "{out}");
    // More blobs than one step of the re-wrap renews.
    let mut seeded = Vec::new();
    for n in 0..300u64 {
        let bytes = random_bytes(2048, 1000 + n);
        let r = owner.push_blob(&berth, "shared/base", &bytes).await;
        assert_eq!(r.status(), 201);
        seeded.push((sha256(&bytes), bytes));
    }
    let seeded = std::sync::Arc::new(seeded);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // moto answers KMS calls one at a time: fewer clients leave the re-wrap its share of them.
    let client_count = if service == Service::AwsKms { 2 } else { 8u64 };
    let mut clients = Vec::new();
    for client in 0..client_count {
        let (berth, owner, seeded, stop) = (berth.clone(), owner.clone(), seeded.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut requests, mut failures) = (0u64, Vec::new());
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let fresh = random_bytes(4096, client * 1_000_000 + n);
                let pushed = owner.push_blob(&berth, "shared/base", &fresh).await.status();
                let (digest, bytes) = &seeded[((client * 37 + n) % seeded.len() as u64) as usize];
                let pulled = owner.get(&berth, &format!("blobs/{digest}")).await;
                let status = pulled.status();
                let same = pulled.bytes().await.is_ok_and(|b| b.as_ref() == bytes.as_slice());
                requests += 2;
                if pushed != 201 || status != 200 || !same {
                    failures.push(format!("push {pushed}, pull {status} (bytes intact: {same})"));
                }
            }
            (requests, failures)
        }));
    }

    let (berth_cli, account) = (berth.clone(), owner.account);
    let rotated = tokio::task::spawn_blocking(move || {
        berth_cli.admin(&["kms", "rotate", "--account", account, "alias/images"])
    })
    .await
    .expect("rotate");
    assert_eq!(rotated["versions"], 2, "{rotated}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        let (berth_cli, account) = (berth.clone(), owner.account);
        let status =
            tokio::task::spawn_blocking(move || berth_cli.admin(&["kms", "status", "--account", account]))
                .await
                .expect("status");
        let key = status
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["arn"] == owner.key_arn.as_str())
            .expect("key")
            .clone();
        if key["rewrap"]["status"] == "COMPLETE" {
            break key;
        }
        assert!(std::time::Instant::now() < deadline, "the re-wrap did not finish: {key}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut requests, mut failures) = (0, Vec::new());
    for client in clients {
        let (r, f) = client.await.expect("client");
        requests += r;
        failures.extend(f);
    }
    println!(
        "rotation under load: {requests} requests by {client_count} clients, {} failed; status {status}",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(requests >= 16, "the clients made too few requests to overlap the rotation: {requests}");
    assert!(status["rewrap"]["rewrapped"].as_u64() >= Some(300), "{status}");

    // Every wrap now uses the new version: with version 1 destroyed, everything still reads.
    // (Only the local service's key material can be reached to destroy.)
    if service != Service::Local {
        return;
    }
    let key_file = berth
        .data_dir()
        .join("kms")
        .join(owner.account)
        .join("keys")
        .join(status["keyId"].as_str().expect("id"));
    let text = std::fs::read_to_string(&key_file).expect("key file");
    let destroyed: String = text
        .lines()
        .map(|line| {
            if line.starts_with("version 1 ") {
                format!("version 1 {}", "00".repeat(32))
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect();
    assert_ne!(destroyed, text, "the key file has no version 1 line");
    std::fs::write(&key_file, destroyed).expect("write");
    for (digest, bytes) in seeded.iter() {
        let r = owner.get(&berth, &format!("blobs/{digest}")).await;
        assert_eq!(r.status(), 200, "{digest} still needs version 1");
        assert_eq!(r.bytes().await.expect("body").as_ref(), bytes.as_slice());
    }
}

#[tokio::test]
async fn the_registrys_own_key_rotates_online_and_what_it_wrapped_still_reads() {
    let berth = std::sync::Arc::new(Berth::start().await);
    let r = repo("plain/rotated");
    let mut blobs = Vec::new();
    for n in 0..250u64 {
        let bytes = random_bytes(1024, 5000 + n);
        blobs.push((berth.push_blob(&r, &bytes).await, bytes));
    }
    let berth_cli = berth.clone();
    let rotated =
        tokio::task::spawn_blocking(move || berth_cli.admin(&["kms", "rotate"])).await.expect("rotate");
    assert_eq!(
        (rotated["keyService"].as_str(), rotated["versions"].as_u64()),
        (Some("registry"), Some(2)),
        "{rotated}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let berth_cli = berth.clone();
        let status =
            tokio::task::spawn_blocking(move || berth_cli.admin(&["kms", "status"])).await.expect("status");
        if status["rewrap"]["status"] == "COMPLETE" {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the re-wrap did not finish: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(status["rewrap"]["rewrapped"].as_u64() >= Some(250), "{status}");
    assert_eq!(status["dataKeys"].as_u64(), Some(250), "{status}");
    for (digest, bytes) in &blobs {
        let read =
            berth.req(reqwest::Method::GET, &format!("/v2/{r}/blobs/{digest}")).send().await.expect("send");
        assert_eq!(read.status(), 200);
        assert_eq!(read.bytes().await.expect("body").as_ref(), bytes.as_slice());
    }
    // Logins (secrets sealed by the first version) and new pushes go on.
    let (key, secret) = berth.owner_credentials();
    assert!(!berth.password_for(&key, &secret).await.is_empty());
    berth.push_blob(&r, b"after the rotation").await;
}

async fn a_repository_whose_key_is_off_lends_nothing_by_mount(service: Service) {
    let Some((berth, _keys)) =
        registry(service, "a_repository_whose_key_is_off_lends_nothing_by_mount").await
    else {
        return;
    };
    berth.admin(&["kms", "create", "--account", ACCOUNT, "--alias", "alias/src"]);
    let input = json!({"repositoryName": "keyed/src", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/src"}});
    assert_eq!(berth.ecr("CreateRepository", input).await.0, 200);
    // The same layer is also held under the registry's own key, by another repository.
    let layer = random_bytes(4096, 77);
    let digest = berth.push_blob(&repo("keyed/src"), &layer).await;
    berth.push_blob(&repo("plain/holder"), &layer).await;
    let mount = |target: &str| {
        berth
            .req(
                Method::POST,
                &format!("/v2/{}/blobs/uploads/?mount={digest}&from={}", repo(target), repo("keyed/src")),
            )
            .send()
    };
    assert_eq!(mount("plain/before").await.expect("send").status(), 201, "mounted while the key is on");
    berth.admin(&["kms", "disable", "--account", ACCOUNT, "alias/src"]);
    // Off: the mount is refused (the client is told to upload), though the bytes open elsewhere.
    assert_eq!(mount("plain/after").await.expect("send").status(), 202);
    let read = berth
        .req(Method::GET, &format!("/v2/{}/blobs/{digest}", repo("plain/after")))
        .send()
        .await
        .expect("send");
    assert_eq!(read.status(), 404, "nothing was mounted");
}

/// A key service that stops answering fails closed, quickly, and only where it is needed: the
/// repositories under its keys answer 503 within the configured timeout, the others carry on, and
/// everything returns when the service does.
#[tokio::test]
async fn a_key_service_that_stops_answering_fails_closed_only_for_its_repositories() {
    let Some((berth, KeyServer::Moto(moto))) = registry(
        Service::AwsKms,
        "a_key_service_that_stops_answering_fails_closed_only_for_its_repositories",
    )
    .await
    else {
        return;
    };
    berth.admin(&["kms", "create", "--account", ACCOUNT, "--alias", "alias/images"]);
    let input = json!({"repositoryName": "keyed/app", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/images"}});
    assert_eq!(berth.ecr("CreateRepository", input).await.0, 200);
    let keyed = random_bytes(4096, 91);
    let plain = random_bytes(4096, 92);
    let keyed_digest = berth.push_blob(&repo("keyed/app"), &keyed).await;
    let plain_digest = berth.push_blob(&repo("plain/app"), &plain).await;
    let get = |name: &str, digest: &str| {
        berth.req(Method::GET, &format!("/v2/{}/blobs/{digest}", repo(name))).send()
    };

    moto.answer(false);
    let started = std::time::Instant::now();
    let refused = get("keyed/app", &keyed_digest).await.expect("an answer, not a hung request");
    let waited = started.elapsed();
    let status = refused.status();
    let body = refused.text().await.expect("body");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("KEY_UNAVAILABLE"), "{body}");
    println!("with the key service paused, a keyed pull was refused after {waited:?} (timeout 2 s)");
    let pushed = berth
        .req(Method::POST, &format!("/v2/{}/blobs/uploads/?digest={}", repo("keyed/app"), sha256(b"new")))
        .body(b"new".to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(pushed.status(), 503, "a push under the unreachable key is refused");
    let other = get("plain/app", &plain_digest).await.expect("send");
    assert_eq!(other.status(), 200, "a repository under the registry's key does not need the key service");
    assert_eq!(other.bytes().await.expect("body").as_ref(), plain.as_slice());
    berth.push_blob(&repo("plain/app"), b"still writable").await;

    moto.answer(true);
    let back = get("keyed/app", &keyed_digest).await.expect("send");
    assert_eq!(back.status(), 200, "the keyed repository reads again once the service answers");
    assert_eq!(back.bytes().await.expect("body").as_ref(), keyed.as_slice());
}

/// When the last repository under a key lets go of a blob, that key's wrap of its data key goes
/// at the next garbage collection: content only customer-keyed repositories hold opens only
/// with their keys, not with a leftover wrap under the registry's own key.
#[tokio::test]
async fn a_keys_wrap_goes_when_its_last_repository_lets_go() {
    let berth = Berth::start().await;
    keyed_repository(&berth).await;
    // The same image in both (an image, so that garbage collection keeps the content held);
    // the AES256 repository's key, the registry's, gets a wrap of its own.
    let content = random_bytes(8192, 77);
    let config = br#"{"os":"linux","architecture":"amd64"}"#;
    let manifest = image_manifest_bytes(&sha256(config), config.len(), &sha256(&content), content.len(), "");
    let mut digest = String::new();
    for name in ["keyed/k", "plain/a"] {
        berth.push_blob(&repo(name), config).await;
        digest = berth.push_blob(&repo(name), &content).await;
        assert_eq!(berth.put_manifest(&repo(name), "v1", OCI_MANIFEST, &manifest).await.status(), 201);
    }
    let gc = |args: &[&str]| -> Value {
        let all: Vec<&str> =
            ["gc", "--grace-seconds", "0", "--output", "json"].iter().chain(args).copied().collect();
        serde_json::from_str(&berth.command(&all)).expect("JSON")
    };
    assert_eq!(gc(&[])["droppedWraps"], 0, "both wraps are needed while both repositories hold the blob");

    let (status, out) =
        berth.ecr("DeleteRepository", json!({"repositoryName": "plain/a", "force": true})).await;
    assert_eq!(status, 200, "{out}");
    // The layer's, the config's and the manifest's: each is a stored blob with its own data key.
    assert_eq!(gc(&["--dry-run"])["droppedWraps"], 3, "the dry run counts the wraps");
    assert_eq!(gc(&[])["droppedWraps"], 3, "the registry key's wraps go with its last repository");
    assert_eq!(gc(&[])["droppedWraps"], 0);

    // With the customer key off, nothing opens the content: a push of the same bytes into a
    // repository under the registry's key cannot take it over.
    berth.admin(&["kms", "disable", "--account", ACCOUNT, "alias/k"]);
    let push = |name: &'static str| {
        berth
            .req(Method::POST, &format!("/v2/{}/blobs/uploads/?digest={digest}", repo(name)))
            .body(content.clone())
            .send()
    };
    assert_eq!(push("plain/b").await.expect("send").status(), 503, "the content is only the customer key's");
    berth.admin(&["kms", "enable", "--account", ACCOUNT, "alias/k"]);
    assert_eq!(push("plain/b").await.expect("send").status(), 201, "with the key on, it is shared again");
    let read = berth
        .req(Method::GET, &format!("/v2/{}/blobs/{digest}", repo("keyed/k")))
        .send()
        .await
        .expect("send");
    assert_eq!(
        read.bytes().await.expect("body").as_ref(),
        content.as_slice(),
        "the keyed repository reads on"
    );
}

/// A key `alias/k` of the owner account, and a repository `keyed/k` under it.
async fn keyed_repository(berth: &Berth) {
    berth.admin(&["kms", "create", "--account", ACCOUNT, "--alias", "alias/k"]);
    let input = json!({"repositoryName": "keyed/k", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/k"}});
    assert_eq!(berth.ecr("CreateRepository", input).await.0, 200);
}

/// A key service that does not hold the keys of the existing KMS repositories is refused when
/// the data directory is opened, saying what to do, rather than leaving those repositories
/// unreadable: local and pkcs11 keep key records in the data directory, aws-kms keeps them in KMS.
#[tokio::test]
async fn a_key_service_without_the_repositories_keys_is_refused_at_start() {
    let with = |berth: &Berth, env: &[(&str, &str)]| {
        let out = std::process::Command::new(berth_binary())
            .args(["admin", "kms", "list", "--account", ACCOUNT, "--data-dir"])
            .arg(berth.data_dir())
            .env("BERTH_LOG", "warn")
            .envs(env.iter().copied())
            .output()
            .expect("berth runs");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };

    let local = Berth::start().await;
    assert!(with(&local, &[]).0, "no KMS repository yet: any service may open it");
    keyed_repository(&local).await;
    let aws = [
        ("BERTH_KMS_PROVIDER", "aws-kms"),
        ("BERTH_KMS_ENDPOINT", "http://127.0.0.1:9"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let (opened, stderr) = with(&local, &aws);
    assert!(!opened, "local keys under aws-kms");
    assert!(
        stderr.contains("1 customer keys that guard KMS repositories are not in the aws-kms key service")
            && stderr.contains("made under the local or pkcs11 provider"),
        "{stderr}"
    );
    match SoftHsmToken::create() {
        Ok(token) => {
            let env = token.berth_env();
            let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (opened, stderr) = with(&local, &pairs);
            assert!(opened, "pkcs11 keeps the same records, and reads local key material: {stderr}");
        }
        Err(why) => skip("a_key_service_without_the_repositories_keys_is_refused_at_start::pkcs11", &why),
    }

    match MotoServer::start().await {
        Ok(moto) => {
            let env = moto.berth_env();
            let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let in_kms = Berth::start_with(&pairs).await;
            keyed_repository(&in_kms).await;
            let (opened, stderr) = with(&in_kms, &[]);
            assert!(!opened, "keys in KMS under the local service");
            assert!(stderr.contains("made under the aws-kms provider"), "{stderr}");
        }
        Err(why) => skip("a_key_service_without_the_repositories_keys_is_refused_at_start::aws_kms", &why),
    }
}
