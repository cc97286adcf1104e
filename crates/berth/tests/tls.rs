//! HTTPS on the listener: a certificate a client verifies against a CA made here, reloaded on
//! SIGHUP and when its files change, a mismatched key refused at start, and plain HTTP on an
//! address other machines reach refused unless allowed. Clients here are curl and openssl; the
//! registry clients (docker, podman, skopeo, the aws CLI, boto3) run in the interop suite.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("version").output().is_ok()
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program).args(args).current_dir(dir).output().expect("runs");
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A test CA in `dir` (ca.pem, ca.key).
fn make_ca(dir: &Path) {
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=berth test CA",
        ],
        dir,
    );
}

/// A server certificate for 127.0.0.1 and localhost with `serial`, signed by the CA, written
/// over `cert.pem` (chain: the certificate, then the CA) and `key.pem`, each file replaced
/// whole so that a reader never sees half of one.
fn issue(dir: &Path, serial: u32) {
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.new",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
        dir,
    );
    let serial = serial.to_string();
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            "leaf.pem",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
    let chain =
        [std::fs::read(dir.join("leaf.pem")).expect("leaf"), std::fs::read(dir.join("ca.pem")).expect("ca")]
            .concat();
    std::fs::write(dir.join("cert.new"), chain).expect("chain");
    std::fs::rename(dir.join("key.new"), dir.join("key.pem")).expect("key");
    std::fs::rename(dir.join("cert.new"), dir.join("cert.pem")).expect("cert");
}

/// A folder with a CA and a server certificate (serial 1), if the `tools` are installed.
fn pki_with_a_certificate(tools: &[&str]) -> Option<tempfile::TempDir> {
    if let Some(missing) = tools.iter().find(|t| !have(t)) {
        skip("tls", &format!("{missing} is not installed (the test command installs it)"));
        return None;
    }
    let temp = tempfile::tempdir().expect("tempdir");
    make_ca(temp.path());
    issue(temp.path(), 1);
    Some(temp)
}

/// The settings that serve `cert.pem` with the key file `key` of `pki`.
fn tls_env(pki: &Path, key: &str) -> [(&'static str, String); 2] {
    [
        ("BERTH_TLS_CERT_FILE", pki.join("cert.pem").display().to_string()),
        ("BERTH_TLS_KEY_FILE", pki.join(key).display().to_string()),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `berth serve` on `listen` with `env`, its stderr in `log`.
fn serve(data: &Path, listen: &str, env: &[(&str, String)], log: &Path) -> Child {
    Command::new(berth_binary())
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data)
        .env("BERTH_LOG", "info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("berth starts")
}

/// The HTTP status curl gets for `url`, verifying the server against `ca`; `None` if no answer.
fn curl_status(url: &str, ca: &Path) -> Option<u16> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|code| *code != 0)
}

/// The serial number of the certificate served on `port`, as openssl prints it (`serial=03`).
fn served_serial(port: u16) -> String {
    let handshake = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let mut parse = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    use std::io::Write;
    parse.stdin.take().expect("stdin").write_all(&handshake.stdout).expect("write");
    let out = parse.wait_with_output().expect("serial");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn https_is_served_with_a_verified_certificate_reloaded_on_sighup_and_on_change() {
    let Some(temp) = pki_with_a_certificate(&["openssl", "curl"]) else { return };
    let pki = temp.path();
    let port = free_port();
    let env = tls_env(pki, "key.pem");
    let log = pki.join("berth.log");
    let mut berth = serve(&pki.join("data"), &format!("127.0.0.1:{port}"), &env, &log);
    let ca = pki.join("ca.pem");
    let base = format!("https://127.0.0.1:{port}");
    wait_for("an HTTPS answer", Duration::from_secs(30), || {
        curl_status(&format!("{base}/healthz"), &ca) == Some(200)
    });
    // Verified against the CA; the registry API asks for credentials as over HTTP.
    assert_eq!(curl_status(&format!("{base}/v2/"), &ca), Some(401));
    assert_eq!(curl_status(&format!("https://localhost:{port}/healthz"), &ca), Some(200), "by name too");
    assert_eq!(
        curl_status(&format!("http://127.0.0.1:{port}/healthz"), &ca),
        None,
        "plain HTTP is not served"
    );
    assert_eq!(served_serial(port), "serial=01");

    // A long pull in progress: 8 MiB read at 1 MB/s.
    let layer = random_bytes(8 * 1024 * 1024, 3);
    std::fs::write(pki.join("layer"), &layer).expect("layer");
    let digest = sha256(&layer);
    let password = login_password(&pki.join("data"));
    let blob = format!("{base}/v2/{ACCOUNT}/tls/app/blobs/{digest}");
    let pushed = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&ca)
        .args(["-u", &format!("AWS:{password}"), "-X", "POST", "--data-binary"])
        .arg(format!("@{}", pki.join("layer").display()))
        .arg(format!("{base}/v2/{ACCOUNT}/tls/app/blobs/uploads/?digest={digest}"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&pushed.stdout), "201");
    let mut pull = Command::new("curl")
        .args(["-s", "--limit-rate", "1M", "-o"])
        .arg(pki.join("pulled"))
        .arg("--cacert")
        .arg(&ca)
        .args(["-u", &format!("AWS:{password}"), &blob])
        .spawn()
        .expect("curl");
    std::thread::sleep(Duration::from_millis(1500));

    // A new certificate and SIGHUP: the next handshake presents it.
    issue(pki, 2);
    let pid = berth.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    wait_for("the reload on SIGHUP", Duration::from_secs(10), || served_serial(port) == "serial=02");
    assert!(pull.try_wait().expect("status").is_none(), "the pull ended before the reload; make it longer");
    // ... while the pull that began under the old certificate goes on to the end, intact.
    assert!(pull.wait().expect("curl").success());
    assert_eq!(sha256(&std::fs::read(pki.join("pulled")).expect("pulled")), digest, "the pulled layer");
    // Files replaced with no signal: picked up by the watch.
    std::thread::sleep(Duration::from_millis(1100));
    issue(pki, 3);
    wait_for("the reload on change", Duration::from_secs(20), || served_serial(port) == "serial=03");
    // A broken certificate is refused and the one in use stays.
    std::fs::write(pki.join("cert.pem"), b"not a certificate").expect("write");
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("was not reloaded"))
    });
    assert_eq!(served_serial(port), "serial=03");
    assert_eq!(curl_status(&format!("{base}/healthz"), &ca), Some(200));
    berth.kill().expect("kill");
    berth.wait().expect("wait");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_start() {
    let Some(temp) = pki_with_a_certificate(&["openssl"]) else { return };
    let pki = temp.path();
    // The CA's key, not the server certificate's.
    let env = tls_env(pki, "ca.key");
    let log = pki.join("berth.log");
    let mut berth = serve(&pki.join("data"), &format!("127.0.0.1:{}", free_port()), &env, &log);
    let status = berth.wait().expect("exits");
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(!status.success());
    assert!(stderr.contains("is not the key of the first certificate"), "{stderr}");
    assert!(!pki.join("data").exists(), "nothing was created");
}

#[test]
fn plain_http_on_an_address_others_reach_is_refused_unless_allowed() {
    let temp = tempfile::tempdir().expect("tempdir");
    let listen = format!("0.0.0.0:{}", free_port());
    let log = temp.path().join("refused.log");
    let mut refused = serve(&temp.path().join("data"), &listen, &[], &log);
    assert!(!refused.wait().expect("exits").success());
    let stderr = std::fs::read_to_string(&log).expect("log");
    assert!(stderr.contains("not a loopback address") && stderr.contains("tls.cert_file"), "{stderr}");
    assert!(stderr.contains("allow_plain_http"), "{stderr}");

    let log = temp.path().join("allowed.log");
    let mut allowed =
        serve(&temp.path().join("data"), &listen, &[("BERTH_ALLOW_PLAIN_HTTP", "true".to_owned())], &log);
    wait_for("berth serving", Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("berth is serving"))
    });
    assert!(allowed.try_wait().expect("status").is_none(), "it kept running");
    allowed.kill().expect("kill");
    allowed.wait().expect("wait");
}
