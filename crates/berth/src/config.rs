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
    /// Wildcard domain for host-style repository addresses (`<account>.<domain>/<name>`).
    pub(crate) host_domain: Option<String>,
    pub(crate) bootstrap: Bootstrap,
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
            host_domain: None,
            bootstrap: Bootstrap::default(),
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
            "BERTH_HOST_DOMAIN" => config.host_domain = Some(value),
            "BERTH_MAX_BLOB_BYTES" => match value.parse() {
                Ok(n) => config.max_blob_bytes = n,
                Err(_) => problems.push(format!("BERTH_MAX_BLOB_BYTES: {value:?} is not a number of bytes")),
            },
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
    if let Some(domain) = &config.host_domain
        && (domain.is_empty()
            || domain.len() > 253
            || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            || domain.starts_with('.')
            || domain.ends_with('.'))
    {
        problems.push(format!("host_domain: {domain:?} is not a domain name like registry.example.com"));
    }
    if config.max_blob_bytes == 0 {
        problems.push("max_blob_bytes: must be positive".to_owned());
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
}
