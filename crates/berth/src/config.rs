//! Configuration: one TOML file, overridden by `BERTH_*` environment variables, overridden by
//! command-line flags. Every problem is collected and reported at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use berth_core::AccountId;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) listen: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) region: String,
    pub(crate) max_blob_bytes: u64,
    pub(crate) log: String,
    /// `text` (for a person) or `json` (one object per line, for a collector).
    pub(crate) log_format: String,
    /// Wildcard domain for host-style repository addresses (`<account>.<domain>/<name>`).
    pub(crate) host_domain: Option<String>,
    /// Where clients reach the registry (scheme, host, port), when not where requests arrive.
    pub(crate) public_url: Option<String>,
    /// Networks of reverse proxies whose `X-Forwarded-For` names the client (CIDR or address).
    pub(crate) trusted_proxies: Vec<String>,
    /// Serve plain HTTP on an address that is not loopback (behind a proxy that terminates TLS).
    pub(crate) allow_plain_http: bool,
    pub(crate) tls: Tls,
    pub(crate) metrics: Metrics,
    pub(crate) bootstrap: Bootstrap,
    pub(crate) limits: Limits,
    pub(crate) timeouts: Timeouts,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) gc: Gc,
    pub(crate) audit: Audit,
    pub(crate) events: Events,
    pub(crate) kms: Kms,
    pub(crate) vulndb: Vulndb,
}

/// Where the vulnerability database is updated from: OSV zips, checked by the server every
/// `update_interval_seconds` (0: only by `berth vulndb update`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Vulndb {
    pub(crate) feeds: Vec<String>,
    pub(crate) update_interval_seconds: u64,
    /// The largest download a feed may answer.
    pub(crate) max_download_bytes: u64,
}

impl Default for Vulndb {
    fn default() -> Self {
        Self {
            feeds: Vec::new(),
            update_interval_seconds: 86_400,
            max_download_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// Where customer keys (`KMS` repositories) live: `local` key files in the data directory,
/// `pkcs11`: the same records with the key material in an HSM reached through a PKCS#11 module,
/// or `aws-kms`: AWS KMS or any endpoint that speaks its API, with the credentials the AWS SDKs find.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Kms {
    pub(crate) provider: String,
    /// `aws-kms`: the endpoint (default: AWS KMS in `region`).
    pub(crate) endpoint: Option<String>,
    /// `aws-kms`: the region of the keys (default: the registry's).
    pub(crate) region: Option<String>,
    /// `aws-kms`: a profile of the shared AWS files for the registry's credentials.
    pub(crate) profile: Option<String>,
    /// `aws-kms` and `pkcs11`: the longest one call to the key service may take.
    pub(crate) timeout_ms: u64,
    /// `pkcs11`: the module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// `pkcs11`: the label of the token holding berth's keys.
    pub(crate) pkcs11_token: Option<String>,
    /// `pkcs11`: a file holding the token's user PIN (else BERTH_KMS_PKCS11_PIN).
    pub(crate) pkcs11_pin_file: Option<PathBuf>,
    /// `pkcs11`: the PIN, from the environment only, never from a configuration file.
    #[serde(skip)]
    pub(crate) pkcs11_pin: Option<Hidden>,
    /// How long an unwrapped data key is kept in memory.
    pub(crate) cache_seconds: u64,
    /// How many unwrapped data keys are kept at most (0: none).
    pub(crate) cache_entries: usize,
    /// How long a key's state is trusted: a key disabled at the service stops within this.
    pub(crate) state_cache_seconds: u64,
}

/// A secret setting: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Hidden(String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(hidden)")
    }
}

impl Default for Kms {
    fn default() -> Self {
        let cache = berth_kms::CacheSettings::default();
        Self {
            provider: "local".to_owned(),
            endpoint: None,
            region: None,
            profile: None,
            timeout_ms: 5_000,
            pkcs11_module: None,
            pkcs11_token: None,
            pkcs11_pin_file: None,
            pkcs11_pin: None,
            cache_seconds: cache.data_key_ttl.as_secs(),
            cache_entries: cache.max_data_keys,
            state_cache_seconds: cache.state_ttl.as_secs(),
        }
    }
}

/// Image events (pushes, deletions) and the webhooks they are delivered to.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Events {
    /// Days events are kept for a webhook that cannot be reached.
    pub(crate) retention_days: u64,
    pub(crate) webhooks: Vec<WebhookConfig>,
}

impl Default for Events {
    fn default() -> Self {
        Self { retention_days: 7, webhooks: Vec::new() }
    }
}

/// One webhook: `[[events.webhooks]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookConfig {
    /// Names where its deliveries stand; a new name starts from the events after it is added.
    pub(crate) name: String,
    /// `http://` or `https://` address events are POSTed to.
    pub(crate) url: String,
    /// A file holding the HMAC key of the `X-Berth-Signature-256` header.
    #[serde(default)]
    pub(crate) secret_file: Option<PathBuf>,
    /// Only these accounts' events (default: all).
    #[serde(default)]
    pub(crate) accounts: Vec<String>,
    /// Only these repositories' events, `*` matching any run of characters (default: all).
    #[serde(default)]
    pub(crate) repositories: Vec<String>,
    /// Only these actions: `PUSH`, `DELETE`, `SCAN`, `UPDATE_STORAGE_CLASS` (default: all).
    #[serde(default)]
    pub(crate) actions: Vec<String>,
}

/// Where the audit log goes: a file (default `audit.log` in the data directory), `-` for
/// standard output, or `off`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Audit {
    pub(crate) file: Option<String>,
    /// A file is set aside as `<file>.1` once it would pass this size.
    pub(crate) max_file_bytes: u64,
    /// How many set-aside files are kept.
    pub(crate) keep_files: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Self { file: None, max_file_bytes: 100 * 1024 * 1024, keep_files: 5 }
    }
}

/// The listener's certificate chain and key (PEM); both or neither.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Tls {
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
}

/// Who may read the per-repository series of `/metrics`, and how many repositories they name.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Metrics {
    /// A file holding the bearer token a scraper shows for the per-repository series.
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) max_repositories: usize,
    /// Count pulls, pushes and bytes per repository (the tenant series); off, none are kept.
    pub(crate) per_repository: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            token_file: None,
            max_repositories: berth_registry::Settings::default().metrics_max_repositories,
            per_repository: true,
        }
    }
}

/// When lifecycle policies run, and what they spare beyond ECR's rules.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Lifecycle {
    pub(crate) interval_seconds: u64,
    /// 0: off (ECR's semantics).
    pub(crate) protect_pulled_within_days: u32,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self { interval_seconds: 3600, protect_pulled_within_days: 0 }
    }
}

/// When garbage is collected, and how long unreferenced content is kept first.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Gc {
    pub(crate) interval_seconds: u64,
    pub(crate) grace_seconds: u64,
}

impl Default for Gc {
    fn default() -> Self {
        Self { interval_seconds: 3600, grace_seconds: 3600 }
    }
}

/// Bounds on what clients can make the server hold.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) max_buffered_body_bytes: usize,
    pub(crate) max_manifest_references: usize,
    pub(crate) max_open_uploads_per_account: u64,
}

/// How long clients may take.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Timeouts {
    pub(crate) request_head_seconds: u64,
    pub(crate) body_idle_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        let http = berth_server::HttpSettings::default();
        let registry = berth_registry::Settings::default();
        Self {
            max_connections: berth_server::ListenerSettings::default().max_connections,
            max_buffered_body_bytes: http.max_buffered_body_bytes,
            max_manifest_references: registry.max_manifest_references,
            max_open_uploads_per_account: registry.max_open_uploads_per_account,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request_head_seconds: berth_server::ListenerSettings::default().request_head_timeout.as_secs(),
            body_idle_seconds: berth_server::HttpSettings::default().body_idle_timeout.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Bootstrap {
    pub(crate) account_id: String,
    /// Only from the environment; never read from the file.
    #[serde(skip)]
    pub(crate) access_key_id: Option<String>,
    #[serde(skip)]
    pub(crate) secret_access_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".to_owned(),
            data_dir: PathBuf::from("./berth-data"),
            region: "us-east-1".to_owned(),
            max_blob_bytes: 52_000 * 1024 * 1024,
            log: "info".to_owned(),
            log_format: "text".to_owned(),
            host_domain: None,
            public_url: None,
            trusted_proxies: Vec::new(),
            allow_plain_http: false,
            tls: Tls::default(),
            metrics: Metrics::default(),
            bootstrap: Bootstrap::default(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            lifecycle: Lifecycle::default(),
            gc: Gc::default(),
            audit: Audit::default(),
            events: Events::default(),
            kms: Kms::default(),
            vulndb: Vulndb::default(),
        }
    }
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self { account_id: "000000000000".to_owned(), access_key_id: None, secret_access_key: None }
    }
}

/// Where environment variables come from, so tests can pass a map instead of the process
/// environment.
pub(crate) trait Env {
    fn vars(&self) -> BTreeMap<String, String>;
}

pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn vars(&self) -> BTreeMap<String, String> {
        std::env::vars().filter(|(k, _)| k.starts_with("BERTH_")).collect()
    }
}

impl Env for BTreeMap<String, String> {
    fn vars(&self) -> BTreeMap<String, String> {
        self.clone()
    }
}

/// Flags that override everything else.
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    pub(crate) listen: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
}

/// Reads a number from an environment variable into `target`, or records why it cannot.
fn number<T: std::str::FromStr>(problems: &mut Vec<String>, key: &str, value: &str, target: &mut T) {
    match value.trim().parse() {
        Ok(n) => *target = n,
        Err(_) => problems.push(format!("{key}: {value:?} is not a whole number")),
    }
}

impl Config {
    /// What the registry services need of the configuration.
    pub(crate) fn registry_settings(&self) -> berth_registry::Settings {
        berth_registry::Settings {
            region: self.region.clone(),
            max_blob_bytes: self.max_blob_bytes,
            host_domain: self.host_domain.clone(),
            // Checked by `load`.
            public_url: self.public_url.as_deref().and_then(|u| u.parse().ok()),
            tls: self.tls_files().is_some(),
            metrics_max_repositories: self.metrics.max_repositories,
            max_manifest_references: self.limits.max_manifest_references,
            max_open_uploads_per_account: self.limits.max_open_uploads_per_account,
            lifecycle_protect_pulled_days: Some(self.lifecycle.protect_pulled_within_days).filter(|d| *d > 0),
            event_retention: std::time::Duration::from_secs(
                self.events.retention_days.saturating_mul(86_400),
            ),
            per_repository_metrics: self.metrics.per_repository,
        }
    }

    /// The customer-key service's settings, when it is not the local one.
    pub(crate) fn aws_kms(&self) -> Option<(berth_kms::AwsKmsSettings, berth_kms::CacheSettings)> {
        (self.kms.provider == "aws-kms").then(|| {
            (
                berth_kms::AwsKmsSettings {
                    endpoint: self.kms.endpoint.clone(),
                    region: self.kms.region.clone().unwrap_or_else(|| self.region.clone()),
                    profile: self.kms.profile.clone(),
                    timeout: std::time::Duration::from_millis(self.kms.timeout_ms),
                },
                self.kms_cache(),
            )
        })
    }

    /// The HSM's settings when customer keys are under the `pkcs11` provider; reads the PIN file.
    pub(crate) fn pkcs11(
        &self,
    ) -> Result<Option<(berth_kms::Pkcs11Settings, berth_kms::CacheSettings)>, String> {
        if self.kms.provider != "pkcs11" {
            return Ok(None);
        }
        let (Some(module), Some(token_label)) = (&self.kms.pkcs11_module, &self.kms.pkcs11_token) else {
            return Err(
                "kms.provider is pkcs11 but kms.pkcs11_module or kms.pkcs11_token is missing".to_owned()
            );
        };
        let pin = match (&self.kms.pkcs11_pin, &self.kms.pkcs11_pin_file) {
            (Some(Hidden(pin)), _) => pin.clone(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| format!("cannot read kms.pkcs11_pin_file {}: {e}", file.display()))?,
            (None, None) => {
                return Err("kms.provider is pkcs11 but no PIN is given (kms.pkcs11_pin_file or \
                            BERTH_KMS_PKCS11_PIN)"
                    .to_owned());
            }
        };
        Ok(Some((
            berth_kms::Pkcs11Settings {
                module: module.clone(),
                token_label: token_label.clone(),
                pin,
                timeout: std::time::Duration::from_millis(self.kms.timeout_ms),
            },
            self.kms_cache(),
        )))
    }

    fn kms_cache(&self) -> berth_kms::CacheSettings {
        berth_kms::CacheSettings {
            data_key_ttl: std::time::Duration::from_secs(self.kms.cache_seconds),
            state_ttl: std::time::Duration::from_secs(self.kms.state_cache_seconds),
            max_data_keys: self.kms.cache_entries,
        }
    }

    /// The ECR endpoint of the server this configuration runs, as a client on this machine
    /// reaches it (an unspecified listen address means this machine).
    pub(crate) fn local_endpoint(&self) -> String {
        let scheme = if self.tls_files().is_some() { "https" } else { "http" };
        let address = match self.listen.parse::<std::net::SocketAddr>() {
            Ok(address) if address.ip().is_unspecified() => {
                std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port()).to_string()
            }
            _ => self.listen.clone(),
        };
        format!("{scheme}://{address}")
    }

    /// The listener's certificate and key, when it serves HTTPS (checked by [`load`]).
    pub(crate) fn tls_files(&self) -> Option<berth_server::TlsFiles> {
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(cert_file), Some(key_file)) => {
                Some(berth_server::TlsFiles { cert_file: cert_file.clone(), key_file: key_file.clone() })
            }
            _ => None,
        }
    }

    /// The metrics token from `metrics.token_file`, if one is configured.
    pub(crate) fn metrics_token(&self) -> Result<Option<String>, String> {
        let Some(path) = &self.metrics.token_file else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("metrics.token_file: cannot read {}: {e}", path.display()))?;
        let token = text.trim();
        if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "metrics.token_file: {} must hold one token of at least 16 printable characters, such as the \
                 output of `openssl rand -hex 32`",
                path.display()
            ));
        }
        Ok(Some(token.to_owned()))
    }

    /// Why `serve` must not listen where it is configured to, if it must not: plain HTTP on an
    /// address other machines reach would carry tokens and signed requests in clear.
    pub(crate) fn plain_http_refusal(&self) -> Option<String> {
        let address: SocketAddr = self.listen.parse().ok()?;
        if address.ip().is_loopback() || self.tls_files().is_some() || self.allow_plain_http {
            return None;
        }
        Some(format!(
            "{} is not a loopback address and no TLS certificate is configured: registry passwords and \
             signed requests would cross the network in clear, and docker refuses a plain-HTTP registry \
             that is not on loopback. Set tls.cert_file and tls.key_file (BERTH_TLS_CERT_FILE, \
             BERTH_TLS_KEY_FILE), or allow_plain_http = true (BERTH_ALLOW_PLAIN_HTTP) if a proxy in front \
             terminates TLS",
            self.listen
        ))
    }

    /// The vulnerability feeds, and where their downloads are written while in progress.
    pub(crate) fn feed_settings(&self) -> berth_server::feeds::FeedSettings {
        berth_server::feeds::FeedSettings {
            urls: self.vulndb.feeds.clone(),
            interval: std::time::Duration::from_secs(self.vulndb.update_interval_seconds),
            max_bytes: self.vulndb.max_download_bytes,
            scratch_dir: self.data_dir.join("vulndb-downloads"),
        }
    }

    /// When the background jobs run.
    pub(crate) fn job_schedule(&self) -> berth_registry::jobs::JobSchedule {
        berth_registry::jobs::JobSchedule {
            lifecycle_interval: std::time::Duration::from_secs(self.lifecycle.interval_seconds),
            gc_interval: std::time::Duration::from_secs(self.gc.interval_seconds),
            gc_grace: std::time::Duration::from_secs(self.gc.grace_seconds),
        }
    }

    /// How the HTTP surfaces treat bodies and proxies. The proxies were checked by [`load`].
    pub(crate) fn http_settings(&self) -> berth_server::HttpSettings {
        berth_server::HttpSettings {
            body_idle_timeout: std::time::Duration::from_secs(self.timeouts.body_idle_seconds),
            max_buffered_body_bytes: self.limits.max_buffered_body_bytes,
            trusted_proxies: self.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect(),
            metrics_token: None,
        }
    }

    /// The webhooks, with their signing keys read from their files.
    pub(crate) fn webhooks(&self) -> Result<Vec<berth_server::webhooks::Webhook>, String> {
        self.events
            .webhooks
            .iter()
            .map(|w| {
                let secret = match &w.secret_file {
                    None => None,
                    Some(path) => {
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            format!(
                                "events.webhooks {:?}: cannot read secret_file {}: {e}",
                                w.name,
                                path.display()
                            )
                        })?;
                        let key = text.trim();
                        if key.is_empty() {
                            return Err(format!(
                                "events.webhooks {:?}: secret_file {} is empty; put a key in it, such as the output of `openssl rand -hex 32`",
                                w.name,
                                path.display()
                            ));
                        }
                        Some(key.as_bytes().to_vec())
                    }
                };
                Ok(berth_server::webhooks::Webhook {
                    name: w.name.clone(),
                    url: w.url.clone(),
                    secret,
                    accounts: w.accounts.clone(),
                    repositories: w.repositories.clone(),
                    actions: w.actions.iter().map(|a| a.to_ascii_uppercase()).collect(),
                })
            })
            .collect()
    }

    /// Where the audit log goes.
    pub(crate) fn audit_destination(&self) -> berth_server::AuditDestination {
        match self.audit.file.as_deref() {
            Some("off") => berth_server::AuditDestination::Off,
            Some("-") => berth_server::AuditDestination::Stdout,
            file => berth_server::AuditDestination::File {
                path: file.map_or_else(|| self.data_dir.join("audit.log"), PathBuf::from),
                max_bytes: self.audit.max_file_bytes,
                keep: self.audit.keep_files,
            },
        }
    }

    /// Opens the audit log, saying where it could not be opened. A command other than `serve`
    /// writes to standard error what would go to standard output, which carries its result.
    pub(crate) fn audit_log(&self) -> Result<berth_server::AuditLog, String> {
        self.open_audit_log(self.audit_destination())
    }

    pub(crate) fn command_audit_log(&self) -> Result<berth_server::AuditLog, String> {
        match self.audit_destination() {
            berth_server::AuditDestination::Stdout => {
                self.open_audit_log(berth_server::AuditDestination::Stderr)
            }
            other => self.open_audit_log(other),
        }
    }

    fn open_audit_log(
        &self,
        destination: berth_server::AuditDestination,
    ) -> Result<berth_server::AuditLog, String> {
        berth_server::AuditLog::open(&destination, &self.region).map_err(|e| {
            format!("cannot open the audit log ({destination:?}): {e}; set audit.file (BERTH_AUDIT_FILE) to a writable path, - for standard output, or off")
        })
    }

    /// How the listener treats connections, capped at `max_connections` (which may be lower
    /// than configured when the process may not open that many files).
    pub(crate) fn listener_settings(&self, max_connections: usize) -> berth_server::ListenerSettings {
        berth_server::ListenerSettings {
            max_connections,
            request_head_timeout: std::time::Duration::from_secs(self.timeouts.request_head_seconds),
        }
    }
}

/// Loads the configuration, or every reason it is wrong.
pub(crate) fn load(file: Option<&Path>, env: &dyn Env, flags: &Overrides) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();
    let mut config = match file {
        None => Config::default(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<Config>(&text) {
                Ok(config) => config,
                Err(e) => return Err(vec![format!("{}: {}", path.display(), e.message())]),
            },
            Err(e) => return Err(vec![format!("{}: {e}", path.display())]),
        },
    };
    for (key, value) in env.vars() {
        match key.as_str() {
            "BERTH_LISTEN" => config.listen = value,
            "BERTH_DATA_DIR" => config.data_dir = PathBuf::from(value),
            "BERTH_REGION" => config.region = value,
            "BERTH_LOG" => config.log = value,
            "BERTH_LOG_FORMAT" => config.log_format = value,
            "BERTH_HOST_DOMAIN" => config.host_domain = Some(value),
            "BERTH_PUBLIC_URL" => config.public_url = Some(value),
            "BERTH_TLS_CERT_FILE" => config.tls.cert_file = Some(PathBuf::from(value)),
            "BERTH_TLS_KEY_FILE" => config.tls.key_file = Some(PathBuf::from(value)),
            "BERTH_METRICS_TOKEN_FILE" => config.metrics.token_file = Some(PathBuf::from(value)),
            "BERTH_METRICS_MAX_REPOSITORIES" => {
                number(&mut problems, &key, &value, &mut config.metrics.max_repositories);
            }
            "BERTH_ALLOW_PLAIN_HTTP" => match value.as_str() {
                "true" | "1" => config.allow_plain_http = true,
                "false" | "0" => config.allow_plain_http = false,
                other => problems.push(format!("{key}: {other:?} is not true or false")),
            },
            "BERTH_METRICS_PER_REPOSITORY" => match value.as_str() {
                "true" | "1" => config.metrics.per_repository = true,
                "false" | "0" => config.metrics.per_repository = false,
                other => problems.push(format!("{key}: {other:?} is not true or false")),
            },
            "BERTH_MAX_BLOB_BYTES" => number(&mut problems, &key, &value, &mut config.max_blob_bytes),
            "BERTH_TRUSTED_PROXIES" => {
                config.trusted_proxies =
                    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
            }
            "BERTH_LIMITS_MAX_CONNECTIONS" => {
                number(&mut problems, &key, &value, &mut config.limits.max_connections)
            }
            "BERTH_LIMITS_MAX_BUFFERED_BODY_BYTES" => {
                number(&mut problems, &key, &value, &mut config.limits.max_buffered_body_bytes);
            }
            "BERTH_LIMITS_MAX_MANIFEST_REFERENCES" => {
                number(&mut problems, &key, &value, &mut config.limits.max_manifest_references);
            }
            "BERTH_LIMITS_MAX_OPEN_UPLOADS_PER_ACCOUNT" => {
                number(&mut problems, &key, &value, &mut config.limits.max_open_uploads_per_account);
            }
            "BERTH_TIMEOUTS_REQUEST_HEAD_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.timeouts.request_head_seconds);
            }
            "BERTH_TIMEOUTS_BODY_IDLE_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.timeouts.body_idle_seconds);
            }
            "BERTH_LIFECYCLE_INTERVAL_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.lifecycle.interval_seconds);
            }
            "BERTH_LIFECYCLE_PROTECT_PULLED_WITHIN_DAYS" => {
                number(&mut problems, &key, &value, &mut config.lifecycle.protect_pulled_within_days);
            }
            "BERTH_GC_INTERVAL_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.gc.interval_seconds)
            }
            "BERTH_GC_GRACE_SECONDS" => number(&mut problems, &key, &value, &mut config.gc.grace_seconds),
            "BERTH_AUDIT_FILE" => config.audit.file = Some(value),
            "BERTH_EVENTS_RETENTION_DAYS" => {
                number(&mut problems, &key, &value, &mut config.events.retention_days);
            }
            "BERTH_AUDIT_MAX_FILE_BYTES" => {
                number(&mut problems, &key, &value, &mut config.audit.max_file_bytes);
            }
            "BERTH_AUDIT_KEEP_FILES" => number(&mut problems, &key, &value, &mut config.audit.keep_files),
            "BERTH_VULNDB_FEEDS" => {
                config.vulndb.feeds =
                    value.split([',', ' ', '\n']).filter(|u| !u.is_empty()).map(str::to_owned).collect();
            }
            "BERTH_VULNDB_UPDATE_INTERVAL_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.vulndb.update_interval_seconds);
            }
            "BERTH_VULNDB_MAX_DOWNLOAD_BYTES" => {
                number(&mut problems, &key, &value, &mut config.vulndb.max_download_bytes);
            }
            "BERTH_KMS_PROVIDER" => config.kms.provider = value,
            "BERTH_KMS_ENDPOINT" => config.kms.endpoint = Some(value),
            "BERTH_KMS_REGION" => config.kms.region = Some(value),
            "BERTH_KMS_PROFILE" => config.kms.profile = Some(value),
            "BERTH_KMS_PKCS11_MODULE" => config.kms.pkcs11_module = Some(PathBuf::from(value)),
            "BERTH_KMS_PKCS11_TOKEN" => config.kms.pkcs11_token = Some(value),
            "BERTH_KMS_PKCS11_PIN_FILE" => config.kms.pkcs11_pin_file = Some(PathBuf::from(value)),
            "BERTH_KMS_PKCS11_PIN" => config.kms.pkcs11_pin = Some(Hidden(value)),
            "BERTH_KMS_TIMEOUT_MS" => number(&mut problems, &key, &value, &mut config.kms.timeout_ms),
            "BERTH_KMS_CACHE_SECONDS" => number(&mut problems, &key, &value, &mut config.kms.cache_seconds),
            "BERTH_KMS_CACHE_ENTRIES" => number(&mut problems, &key, &value, &mut config.kms.cache_entries),
            "BERTH_KMS_STATE_CACHE_SECONDS" => {
                number(&mut problems, &key, &value, &mut config.kms.state_cache_seconds);
            }
            "BERTH_BOOTSTRAP_ACCOUNT_ID" => config.bootstrap.account_id = value,
            "BERTH_BOOTSTRAP_ACCESS_KEY_ID" => config.bootstrap.access_key_id = Some(value),
            "BERTH_BOOTSTRAP_SECRET_ACCESS_KEY" => config.bootstrap.secret_access_key = Some(value),
            other => problems.push(format!("{other}: unknown setting")),
        }
    }
    if let Some(listen) = &flags.listen {
        config.listen.clone_from(listen);
    }
    if let Some(dir) = &flags.data_dir {
        config.data_dir.clone_from(dir);
    }
    if config.listen.parse::<SocketAddr>().is_err() {
        problems.push(format!("listen: {:?} is not an address like 127.0.0.1:5000", config.listen));
    }
    match config.kms.provider.as_str() {
        "local" | "aws-kms" => {}
        "pkcs11" => {
            if config.kms.pkcs11_module.is_none() {
                problems.push(
                    "kms.pkcs11_module: the pkcs11 provider needs the path of a PKCS#11 module".to_owned(),
                );
            }
            if config.kms.pkcs11_token.is_none() {
                problems
                    .push("kms.pkcs11_token: the pkcs11 provider needs the label of its token".to_owned());
            }
            if config.kms.pkcs11_pin_file.is_none() && config.kms.pkcs11_pin.is_none() {
                problems.push(
                    "kms.pkcs11_pin_file: the pkcs11 provider needs the token's PIN, in a file named here \
                     or in BERTH_KMS_PKCS11_PIN"
                        .to_owned(),
                );
            }
        }
        other => problems.push(format!("kms.provider: {other:?} is not local, pkcs11 or aws-kms")),
    }
    if let Some(endpoint) = &config.kms.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        problems.push(format!("kms.endpoint: {endpoint:?} is not an http:// or https:// address"));
    }
    if !(1..=600_000).contains(&config.kms.timeout_ms) {
        problems.push(format!("kms.timeout_ms: {} is not between 1 and 600000", config.kms.timeout_ms));
    }
    if config.bootstrap.account_id.parse::<AccountId>().is_err() {
        problems.push(format!(
            "bootstrap.account_id: {:?} is not a 12-digit account id",
            config.bootstrap.account_id
        ));
    }
    if !(2..=25).contains(&config.region.len())
        || !config.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push(format!("region: {:?} must be 2-25 characters of [0-9a-z-]", config.region));
    }
    match (&config.bootstrap.access_key_id, &config.bootstrap.secret_access_key) {
        (Some(id), Some(secret)) => {
            if !berth_iam::is_access_key_id(id) {
                problems.push(
                    "BERTH_BOOTSTRAP_ACCESS_KEY_ID: must be 16-128 upper-case letters and digits".to_owned(),
                );
            }
            if secret.len() < 16 {
                problems.push("BERTH_BOOTSTRAP_SECRET_ACCESS_KEY: must be at least 16 characters".to_owned());
            }
        }
        (None, None) => {}
        _ => problems.push(
            "BERTH_BOOTSTRAP_ACCESS_KEY_ID and BERTH_BOOTSTRAP_SECRET_ACCESS_KEY must be set together"
                .to_owned(),
        ),
    }
    if !["text", "json"].contains(&config.log_format.as_str()) {
        problems.push(format!("log_format: {:?} must be text or json", config.log_format));
    }
    if config.tls.cert_file.is_some() != config.tls.key_file.is_some() {
        problems.push("tls.cert_file and tls.key_file must be set together".to_owned());
    }
    if let Some(domain) = &config.host_domain
        && (domain.is_empty()
            || domain.len() > 253
            || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || domain.starts_with('.')
            || domain.ends_with('.'))
    {
        problems.push(format!("host_domain: {domain:?} is not a domain name like registry.example.com"));
    }
    for (name, value) in [
        ("max_blob_bytes", config.max_blob_bytes),
        ("limits.max_connections", config.limits.max_connections as u64),
        ("limits.max_buffered_body_bytes", config.limits.max_buffered_body_bytes as u64),
        ("limits.max_manifest_references", config.limits.max_manifest_references as u64),
        ("limits.max_open_uploads_per_account", config.limits.max_open_uploads_per_account),
        ("timeouts.request_head_seconds", config.timeouts.request_head_seconds),
        ("timeouts.body_idle_seconds", config.timeouts.body_idle_seconds),
        ("lifecycle.interval_seconds", config.lifecycle.interval_seconds),
        ("gc.interval_seconds", config.gc.interval_seconds),
        ("metrics.max_repositories", config.metrics.max_repositories as u64),
        ("events.retention_days", config.events.retention_days),
    ] {
        if value == 0 {
            problems.push(format!("{name}: must be positive"));
        }
    }
    for feed in &config.vulndb.feeds {
        if let Err(why) = berth_server::feeds::check_url(feed) {
            problems.push(format!("vulndb.feeds: {why}"));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for hook in &config.events.webhooks {
        let what = format!("events.webhooks {:?}", hook.name);
        if hook.name.is_empty() || !names.insert(hook.name.as_str()) {
            problems.push(format!("{what}: every webhook needs a name of its own"));
        }
        if let Err(why) = berth_server::webhooks::check_url(&hook.url) {
            problems.push(format!("{what}: url {:?} {why}", hook.url));
        }
        let known = ["PUSH", "DELETE", "SCAN", "UPDATE_STORAGE_CLASS"];
        if let Some(action) = hook.actions.iter().find(|a| !known.contains(&a.to_ascii_uppercase().as_str()))
        {
            problems
                .push(format!("{what}: action {action:?} is not PUSH, DELETE, SCAN or UPDATE_STORAGE_CLASS"));
        }
        if let Some(account) = hook.accounts.iter().find(|a| a.parse::<AccountId>().is_err()) {
            problems.push(format!("{what}: account {account:?} is not a 12-digit account id"));
        }
    }
    if config.limits.max_buffered_body_bytes < berth_core::MAX_MANIFEST_BYTES {
        problems.push(format!(
            "limits.max_buffered_body_bytes: must be at least {} (one manifest of the largest size)",
            berth_core::MAX_MANIFEST_BYTES
        ));
    }
    if let Some(url) = &config.public_url
        && let Err(e) = url.parse::<berth_registry::PublicUrl>()
    {
        problems.push(format!("public_url: {}", e.reason));
    }
    for proxy in &config.trusted_proxies {
        if let Err(e) = proxy.parse::<berth_core::Cidr>() {
            problems.push(format!("trusted_proxies: {}", e.reason));
        }
    }
    if problems.is_empty() { Ok(config) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_example_file_parses_and_matches_the_defaults() {
        let example: Config = toml::from_str(include_str!("../config.example.toml")).expect("example parses");
        assert_eq!(example, Config::default());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_port = 5\n").expect("write");
        let problems = load(Some(&path), &env(&[]), &Overrides::default()).expect_err("unknown key");
        assert!(problems[0].contains("listen_port"), "{problems:?}");
        std::fs::write(&path, "[bootstrap]\nsecret_access_key = \"x\"\n").expect("write");
        assert!(
            load(Some(&path), &env(&[]), &Overrides::default()).is_err(),
            "secrets are not file settings"
        );
    }

    #[test]
    fn environment_overrides_file_and_flags_override_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("berth.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nregion = \"eu-west-1\"\n").expect("write");
        let vars = env(&[("BERTH_LISTEN", "127.0.0.1:2"), ("BERTH_DATA_DIR", "/env")]);
        let flags = Overrides { listen: None, data_dir: Some(PathBuf::from("/flag")) };
        let config = load(Some(&path), &vars, &flags).expect("valid");
        assert_eq!(config.listen, "127.0.0.1:2");
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.data_dir, PathBuf::from("/flag"));
    }

    #[test]
    fn public_urls_and_trusted_proxies_are_checked() {
        let ok =
            load(None, &env(&[("BERTH_PUBLIC_URL", "https://registry.example.com")]), &Overrides::default());
        assert!(ok.expect("valid").registry_settings().public_url.is_some());
        let problems = load(
            None,
            &env(&[
                ("BERTH_PUBLIC_URL", "registry.example.com/path"),
                ("BERTH_TRUSTED_PROXIES", "10.0.0.0/8,nonsense"),
            ]),
            &Overrides::default(),
        )
        .expect_err("invalid");
        assert!(problems.iter().any(|p| p.starts_with("public_url:")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with("trusted_proxies:") && p.contains("nonsense")),
            "{problems:?}"
        );
        let zero = load(None, &env(&[("BERTH_LIMITS_MAX_CONNECTIONS", "0")]), &Overrides::default());
        assert!(zero.expect_err("zero").iter().any(|p| p.contains("limits.max_connections")));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let vars = env(&[
            ("BERTH_LISTEN", "nowhere"),
            ("BERTH_BOOTSTRAP_ACCOUNT_ID", "12"),
            ("BERTH_BOOTSTRAP_ACCESS_KEY_ID", "AKIAEXAMPLE0000001"),
            ("BERTH_TYPO", "1"),
        ]);
        let problems = load(None, &vars, &Overrides::default()).expect_err("invalid");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn vulnerability_feeds_come_from_the_environment_and_must_be_http_addresses() {
        let vars = env(&[
            ("BERTH_VULNDB_FEEDS", "https://a.example/Debian/all.zip, https://b.example/Alpine/all.zip"),
            ("BERTH_VULNDB_UPDATE_INTERVAL_SECONDS", "0"),
        ]);
        let config = load(None, &vars, &Overrides::default()).expect("valid");
        assert_eq!(
            config.vulndb.feeds,
            ["https://a.example/Debian/all.zip", "https://b.example/Alpine/all.zip"]
        );
        assert!(config.feed_settings().interval.is_zero());
        for bad in ["file:///etc/passwd", "https://user:pw@a.example/all.zip", "not a url"] {
            let problems =
                load(None, &env(&[("BERTH_VULNDB_FEEDS", bad)]), &Overrides::default()).expect_err("refused");
            assert!(problems.iter().any(|p| p.starts_with("vulndb.feeds:")), "{bad}: {problems:?}");
        }
    }

    #[test]
    fn the_pkcs11_provider_needs_module_token_and_a_pin_kept_out_of_the_file() {
        let problems = load(None, &env(&[("BERTH_KMS_PROVIDER", "pkcs11")]), &Overrides::default())
            .expect_err("invalid");
        let named: Vec<&str> = problems.iter().filter_map(|p| p.split(':').next()).collect();
        assert_eq!(named, ["kms.pkcs11_module", "kms.pkcs11_token", "kms.pkcs11_pin_file"], "{problems:?}");

        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, "[kms]\nprovider = \"pkcs11\"\npkcs11_pin = \"1234\"\n").expect("write");
        let problems = load(Some(&file), &env(&[]), &Overrides::default()).expect_err("a PIN in the file");
        assert!(problems.iter().any(|p| p.contains("pkcs11_pin")), "{problems:?}");

        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "2468\n").expect("write");
        let vars = env(&[
            ("BERTH_KMS_PROVIDER", "pkcs11"),
            ("BERTH_KMS_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
            ("BERTH_KMS_PKCS11_TOKEN", "berth"),
            ("BERTH_KMS_PKCS11_PIN_FILE", pin_file.to_str().expect("utf-8")),
        ]);
        let config = load(None, &vars, &Overrides::default()).expect("valid");
        let (settings, _) = config.pkcs11().expect("reads the PIN file").expect("pkcs11");
        assert_eq!((settings.token_label.as_str(), settings.pin.as_str()), ("berth", "2468"));
        assert!(!format!("{config:?}{settings:?}").contains("2468"), "the PIN is never printed");
        let mut vars = vars;
        vars.insert("BERTH_KMS_PKCS11_PIN".to_owned(), "9753".to_owned());
        let config = load(None, &vars, &Overrides::default()).expect("valid");
        let (settings, _) = config.pkcs11().expect("pin").expect("pkcs11");
        assert_eq!(settings.pin, "9753", "the environment's PIN comes first");
        assert!(!format!("{config:?}").contains("9753"), "the PIN is never printed");
    }
}
