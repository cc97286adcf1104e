//! Starts the real `berth` binary on a free loopback port with a throwaway data directory, and
//! speaks HTTP to it like a client would.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response};

pub const ACCOUNT: &str = "000000000000";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The ECR operations berth serves; `ecr_api` proves it is exactly the served set.
pub const SERVED_OPERATIONS: [&str; 42] = [
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "BatchGetImage",
    "BatchGetRepositoryScanningConfiguration",
    "CompleteLayerUpload",
    "CreateRepository",
    "CreateRepositoryCreationTemplate",
    "DeleteRegistryPolicy",
    "DeleteRepository",
    "DeleteRepositoryCreationTemplate",
    "DeleteLifecyclePolicy",
    "DeleteRepositoryPolicy",
    "DescribeImageScanFindings",
    "DescribeImages",
    "DescribeRegistry",
    "DescribeRepositories",
    "DescribeRepositoryCreationTemplates",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "GetLifecyclePolicy",
    "GetLifecyclePolicyPreview",
    "GetRegistryPolicy",
    "GetRegistryScanningConfiguration",
    "GetRepositoryPolicy",
    "InitiateLayerUpload",
    "ListImageReferrers",
    "ListImages",
    "ListTagsForResource",
    "PutImage",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "PutLifecyclePolicy",
    "PutRegistryPolicy",
    "PutRegistryScanningConfiguration",
    "SetRepositoryPolicy",
    "StartImageScan",
    "StartLifecyclePolicyPreview",
    "TagResource",
    "UntagResource",
    "UpdateImageStorageClass",
    "UpdateRepositoryCreationTemplate",
    "UploadLayerPart",
];

/// How a test signs and sends an ECR API request.
pub struct Signing<'a> {
    pub region: &'static str,
    pub time: std::time::SystemTime,
    /// Headers sent but left out of the signature.
    pub unsigned: &'static [&'static str],
    /// The client to send it with (one bound to another address, say); the harness's own if none.
    pub client: Option<&'a reqwest::Client>,
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Self { region: "us-east-1", time: std::time::SystemTime::now(), unsigned: &[], client: None }
    }
}

pub struct Berth {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub password: String,
    pub client: reqwest::Client,
    /// The environment the server was started with; `berth admin` runs with it too.
    env: Vec<(String, String)>,
}

/// The binary under test: this build's, or another build named by `BINARY_UNDER_TEST` (to run
/// the same black-box tests against an older release).
pub fn berth_binary() -> PathBuf {
    std::env::var_os("BINARY_UNDER_TEST")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")), PathBuf::from)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

pub fn sha256(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("sha256:{}", hex::encode(digest.as_ref()))
}

impl Berth {
    /// A new registry in a new data directory.
    pub async fn start() -> Self {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        let mut berth = Self::spawn(&dir).await;
        berth._temp = Some(temp);
        berth
    }

    /// A new registry configured by `BERTH_*` environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        let mut berth = Self::spawn_with(&dir, env).await;
        berth._temp = Some(temp);
        berth
    }

    /// A registry over an existing data directory (for restarts).
    pub async fn spawn(dir: &Path) -> Self {
        Self::spawn_with(dir, &[]).await
    }

    /// A new registry started with a soft open-file limit of `soft_limit`, as a service
    /// manager's default (1,024) would start it; the hard limit stays what it is.
    pub async fn start_with_file_limit(soft_limit: u64) -> Self {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        let mut berth = Self::spawn_opts(&dir, &[], Some(soft_limit), None).await;
        berth._temp = Some(temp);
        berth
    }

    async fn spawn_with(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::spawn_opts(dir, env, None, None).await
    }

    /// A registry over `dir` (new or existing) configured by a TOML file.
    pub async fn spawn_with_config(dir: &Path, config: &Path) -> Self {
        Self::spawn_opts(dir, &[], None, Some(config)).await
    }

    async fn spawn_opts(
        dir: &Path,
        env: &[(&str, &str)],
        soft_file_limit: Option<u64>,
        config: Option<&Path>,
    ) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.with_extension(format!("{port}.log"))).expect("log file");
        let mut command = match soft_file_limit {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell.args(["-c", &format!("ulimit -Sn {limit} && exec \"$0\" \"$@\"")]).arg(berth_binary());
                shell
            }
            None => Command::new(berth_binary()),
        };
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("BERTH_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("berth starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.get(format!("{url}/healthz")).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "berth did not start; see {}", dir.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let password = login_password(dir);
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self { child: Some(child), url, port, dir: dir.to_owned(), _temp: None, password, client, env }
    }

    /// What the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.with_extension(format!("{}.log", self.port))).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server without warning, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the process to exit; returns whether it exited with success.
    /// Waits at most `limit` for the process to exit; returns whether it exited with success.
    /// A process still running after `limit` is killed, and counts as not exiting cleanly.
    pub fn wait_exit_success(&mut self, limit: Duration) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// Sends the server a signal (`TERM`, `HUP`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("the server is running");
        let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "kill -{name} {pid} failed: {status:?}");
    }

    /// Takes the data directory out of the harness so a restarted server can use it.
    pub fn take_temp(&mut self) -> Option<tempfile::TempDir> {
        self._temp.take()
    }

    /// An authenticated request to a path such as `/v2/...`.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).basic_auth("AWS", Some(&self.password))
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// Pushes a blob with `POST ?digest=` and returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self
            .req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 201, "blob push: {}", r.text().await.unwrap_or_default());
        digest
    }

    /// Pushes a manifest and returns the response.
    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("send")
    }

    /// Pulls a manifest as the owner, accepting an OCI image manifest.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        self.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .expect("send")
    }

    /// Pushes a one-layer image (config and layer as given) and returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str, config: &[u8], layer: &[u8]) -> String {
        let (manifest, digest) = self.image_manifest(repo, config, layer).await;
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(r.status(), 201, "manifest push: {}", r.text().await.unwrap_or_default());
        digest
    }

    /// Pushes the blobs of a one-layer image and returns its manifest bytes and digest.
    pub async fn image_manifest(&self, repo: &str, config: &[u8], layer: &[u8]) -> (Vec<u8>, String) {
        let config_digest = self.push_blob(repo, config).await;
        let layer_digest = self.push_blob(repo, layer).await;
        let manifest = image_manifest_bytes(&config_digest, config.len(), &layer_digest, layer.len(), "");
        let digest = sha256(&manifest);
        (manifest, digest)
    }
}

impl Berth {
    /// The owner's root access key, as first start wrote it.
    pub fn owner_credentials(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.dir.join("bootstrap-credentials")).expect("credentials file");
        let field = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
                .expect("field")
        };
        (field("aws_access_key_id"), field("aws_secret_access_key"))
    }

    /// Calls an ECR API operation as the owner's root, signed with SigV4 as the AWS SDKs sign.
    pub async fn ecr(&self, operation: &str, input: serde_json::Value) -> (u16, serde_json::Value) {
        let (key, secret) = self.owner_credentials();
        self.ecr_as(&key, &secret, operation, input).await
    }

    /// Calls an ECR API operation signed with the given credentials.
    pub async fn ecr_as(
        &self,
        key: &str,
        secret: &str,
        operation: &str,
        input: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.ecr_signed_at(key, secret, operation, input, std::time::SystemTime::now()).await
    }

    /// Calls an ECR API operation signed at `time` (a caller whose clock is off).
    pub async fn ecr_signed_at(
        &self,
        key: &str,
        secret: &str,
        operation: &str,
        input: serde_json::Value,
        time: std::time::SystemTime,
    ) -> (u16, serde_json::Value) {
        let signing = Signing { time, ..Signing::default() };
        self.ecr_signed(key, secret, operation, input, &signing).await
    }

    /// Calls an ECR API operation signed as `signing` says.
    pub async fn ecr_signed(
        &self,
        key: &str,
        secret: &str,
        operation: &str,
        input: serde_json::Value,
        signing: &Signing<'_>,
    ) -> (u16, serde_json::Value) {
        let response = self.ecr_response(key, secret, operation, input, signing).await;
        let status = response.status().as_u16();
        (status, response.json_or_null().await)
    }

    /// Sends an ECR API request signed as `signing` says and returns the whole response.
    pub async fn ecr_response(
        &self,
        key: &str,
        secret: &str,
        operation: &str,
        input: serde_json::Value,
        signing: &Signing<'_>,
    ) -> Response {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let body = input.to_string();
        let host = format!("127.0.0.1:{}", self.port);
        let target = format!("AmazonEC2ContainerRegistry_V20150921.{operation}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", host.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        let identity = aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(signing.region)
            .name("ecr")
            .time(signing.time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let url = format!("{}/", self.url);
        let signed = headers.iter().copied().filter(|(n, _)| !signing.unsigned.contains(n));
        let signable = SignableRequest::new("POST", &url, signed, SignableBody::Bytes(body.as_bytes()))
            .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut request = signing.client.unwrap_or(&self.client).post(&url).body(body.clone());
        for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
            request = request.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        request.send().await.expect("send")
    }
}

impl Berth {
    /// Runs `berth ARGS` on this registry's data directory, in its environment; returns what it
    /// printed, once it has succeeded.
    pub fn command(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.try_command(args, &[]);
        assert!(ok, "berth {args:?} failed: {err}");
        out
    }

    /// Runs `berth ARGS` with `env` added, whether it succeeds or not: (success, stdout, stderr).
    pub fn try_command(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = Command::new(berth_binary())
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .env("BERTH_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .output()
            .expect("berth runs");
        let text = |b: Vec<u8>| String::from_utf8(b).expect("berth prints text");
        (out.status.success(), text(out.stdout), text(out.stderr))
    }

    /// Runs `berth admin ...` on this registry's data directory and returns its JSON output.
    pub fn admin(&self, args: &[&str]) -> serde_json::Value {
        let all: Vec<&str> = std::iter::once("admin").chain(args.iter().copied()).collect();
        serde_json::from_str(&self.command(&all)).expect("berth admin prints JSON")
    }

    /// Creates a user of `account` with one identity policy; returns (access key id, secret).
    pub fn user_with_policy(
        &self,
        account: &str,
        name: &str,
        policy: &serde_json::Value,
    ) -> (String, String) {
        self.admin(&["user", "create", "--account", account, name]);
        self.put_user_policy(account, name, policy);
        let key = self.admin(&["key", "create", "--account", account, "--user", name]);
        (
            key["accessKeyId"].as_str().expect("key id").to_owned(),
            key["secretAccessKey"].as_str().expect("secret").to_owned(),
        )
    }

    /// Replaces a user's identity policy (named `policy`).
    pub fn put_user_policy(&self, account: &str, name: &str, policy: &serde_json::Value) {
        let file = self.dir.with_extension(format!("{name}.policy.json"));
        std::fs::write(&file, policy.to_string()).expect("write policy");
        let file = file.to_str().expect("path");
        self.admin(&[
            "user",
            "policy",
            "put",
            "--account",
            account,
            "--user",
            name,
            "--name",
            "policy",
            "--file",
            file,
        ]);
    }

    /// Creates an account with a root key; returns (access key id, secret).
    pub fn account_with_key(&self, account: &str) -> (String, String) {
        self.admin(&["account", "create", account, "--name", "test"]);
        let key = self.admin(&["key", "create", "--account", account]);
        (
            key["accessKeyId"].as_str().expect("key id").to_owned(),
            key["secretAccessKey"].as_str().expect("secret").to_owned(),
        )
    }

    /// A registry password for a key, as `aws ecr get-login-password` gets it.
    pub async fn password_for(&self, key: &str, secret: &str) -> String {
        use base64::Engine;
        let (status, out) = self.ecr_as(key, secret, "GetAuthorizationToken", serde_json::json!({})).await;
        assert_eq!(status, 200, "{out}");
        let token = out["authorizationData"][0]["authorizationToken"].as_str().expect("token");
        let decoded = base64::engine::general_purpose::STANDARD.decode(token).expect("base64");
        String::from_utf8(decoded).expect("utf8").split_once(':').expect("AWS:password").1.to_owned()
    }

    /// A request with the given registry password.
    pub fn req_with(&self, password: &str, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url)).basic_auth("AWS", Some(password))
    }
}

/// An OCI image manifest; `extra` is spliced in as further top-level fields (`,"k":v`).
pub fn image_manifest_bytes(
    config: &str,
    config_size: usize,
    layer: &str,
    layer_size: usize,
    extra: &str,
) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{layer}","size":{layer_size}}}]{extra}}}"#
    )
    .into_bytes()
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            // The server's own account of a failed test, before its folder is removed.
            let log = self.dir.with_extension(format!("{}.log", self.port));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // Backtraces are long: show each message and the first frames of any panic.
            let shown: Vec<&str> =
                text.lines().filter(|l| !l.starts_with("  ") && !l.starts_with("             at")).collect();
            eprintln!("--- server log ({}), {} lines without backtrace frames:", log.display(), shown.len());
            for line in shown.iter().rev().take(40).rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs `berth login-password` on a data directory.
pub fn login_password(dir: &Path) -> String {
    run_login_password(dir, &[])
}

/// Runs `berth login-password` for an access key with a lifetime in seconds.
pub fn short_lived_password(dir: &Path, access_key_id: &str, seconds: u64) -> String {
    run_login_password(dir, &["--access-key-id", access_key_id, "--valid-for", &seconds.to_string()])
}

fn run_login_password(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(berth_binary())
        .arg("login-password")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("login-password runs");
    assert!(out.status.success(), "login-password failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

/// Reports a test that cannot run here, and why, so that the test command counts it as
/// skipped rather than passed: a line in the file `TESTS_SKIP_LOG` names (when the test command
/// set it), and on standard error.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("TESTS_SKIP_LOG") {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        assert!(appended.is_ok(), "cannot record the skip in {}", std::path::Path::new(&path).display());
    }
}

/// A repository path in the owner account.
pub fn repo(name: &str) -> String {
    format!("{ACCOUNT}/{name}")
}

/// Reads the first OCI error code of a response body.
pub async fn error_code(response: Response) -> String {
    let body: serde_json::Value = response.json_or_null().await;
    body["errors"][0]["code"].as_str().unwrap_or("<no error code>").to_owned()
}

pub trait JsonOrNull {
    fn json_or_null(self) -> impl std::future::Future<Output = serde_json::Value>;
}

impl JsonOrNull for Response {
    async fn json_or_null(self) -> serde_json::Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

/// `len` bytes of xorshift output: incompressible enough, different per seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Bytes of stored blob files in a data directory, and how many there are.
pub fn stored_blobs(dir: &Path) -> (u64, usize) {
    let mut total = (0, 0);
    for shard in std::fs::read_dir(dir.join("blobs")).expect("blobs").flatten() {
        for file in std::fs::read_dir(shard.path()).expect("shard").flatten() {
            total.0 += file.metadata().expect("metadata").len();
            total.1 += 1;
        }
    }
    total
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    let mut scanned = 0;
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                scanned += 1;
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    assert!(scanned >= 3, "the scan found almost no files under {}: is this the data dir?", dir.display());
    found
}

/// moto's server mode on a free loopback port: an endpoint that speaks AWS KMS's API, for the
/// `aws-kms` key service. Stopped when dropped.
pub struct MotoServer {
    child: Child,
    pub url: String,
}

impl MotoServer {
    /// Starts one, or says why it cannot (moto is installed by the test command).
    pub async fn start() -> Result<Self, String> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return Err("moto's server (pip install 'moto[server]') is not installed".to_owned());
        }
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("moto's server would not start: {e}"))?;
        let server = Self { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{}/moto-api/", server.url)).send().await.is_err() {
            if Instant::now() > deadline {
                return Err("moto's server did not answer within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    /// The environment of a berth whose customer keys live in this server.
    pub fn berth_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BERTH_KMS_PROVIDER", "aws-kms".to_owned()),
            ("BERTH_KMS_ENDPOINT", self.url.clone()),
            // Every use checks the key's state, so that a disabled key stops at once here.
            ("BERTH_KMS_STATE_CACHE_SECONDS", "0".to_owned()),
            ("BERTH_KMS_TIMEOUT_MS", "2000".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }

    /// Stops (`false`) or resumes (`true`) the server's process: a key service that does not answer.
    pub fn answer(&self, answering: bool) {
        let signal = if answering { "-CONT" } else { "-STOP" };
        let sent = Command::new("kill").args([signal, &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill {signal}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where SoftHSM2's PKCS#11 module is on Debian and Ubuntu.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token in a temporary directory: an HSM reached through its PKCS#11 module,
/// for the `pkcs11` key service. Its files go when it is dropped.
pub struct SoftHsmToken {
    dir: tempfile::TempDir,
    pub label: String,
    pin: String,
}

impl SoftHsmToken {
    /// Makes one, or says why it cannot (SoftHSM2 is installed by the test command).
    pub fn create() -> Result<Self, String> {
        if !Path::new(SOFTHSM_MODULE).exists() {
            return Err(format!("SoftHSM2 (apt-get install softhsm2) is not installed: no {SOFTHSM_MODULE}"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()),
        )
        .map_err(|e| e.to_string())?;
        let token = Self { dir, label: "berth-test".to_owned(), pin: "4711-berth".to_owned() };
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                &token.label,
                "--pin",
                &token.pin,
                "--so-pin",
                "so-4711",
            ])
            .env("SOFTHSM2_CONF", token.conf())
            .output()
            .map_err(|e| format!("softhsm2-util would not run: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::write(token.pin_file(), format!("{}\n", token.pin)).map_err(|e| e.to_string())?;
        Ok(token)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// The token's object files: where key material would show if it ever left the HSM in clear.
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// The environment of a berth whose customer keys have their material on this token.
    pub fn berth_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BERTH_KMS_PROVIDER", "pkcs11".to_owned()),
            ("BERTH_KMS_PKCS11_MODULE", SOFTHSM_MODULE.to_owned()),
            ("BERTH_KMS_PKCS11_TOKEN", self.label.clone()),
            ("BERTH_KMS_PKCS11_PIN_FILE", self.pin_file().display().to_string()),
            // A key disabled by `berth admin kms disable` stops at once here.
            ("BERTH_KMS_STATE_CACHE_SECONDS", "0".to_owned()),
            ("SOFTHSM2_CONF", self.conf().display().to_string()),
        ]
    }
}
