//! The operating system, from `os-release` (and the older release files where it is missing).

use crate::ImageFiles;

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const ALPINE_RELEASE: &str = "etc/alpine-release";
const DEBIAN_VERSION: &str = "etc/debian_version";
const REDHAT_RELEASE: &str = "etc/redhat-release";

/// A distribution as `os-release` names it (`ID`, `VERSION_ID`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Distro {
    pub id: String,
    pub version_id: String,
    pub pretty_name: Option<String>,
}

pub(crate) fn wanted(path: &str) -> bool {
    OS_RELEASE.contains(&path) || [ALPINE_RELEASE, DEBIAN_VERSION, REDHAT_RELEASE].contains(&path)
}

pub(crate) fn detect(files: &ImageFiles) -> Option<Distro> {
    let text = |path: &str| files.read(path).map(|(bytes, _)| String::from_utf8_lossy(bytes).into_owned());
    if let Some(release) = OS_RELEASE.iter().find_map(|p| text(p)) {
        let field = |name: &str| {
            release.lines().find_map(|line| {
                let value = line.trim().strip_prefix(name)?.strip_prefix('=')?;
                Some(unquote(value))
            })
        };
        if let Some(id) = field("ID") {
            let version_id = field("VERSION_ID").unwrap_or_default();
            return Some(Distro { id, version_id, pretty_name: field("PRETTY_NAME") });
        }
    }
    let first_line = |path: &str| text(path).and_then(|t| t.lines().next().map(|l| l.trim().to_owned()));
    if let Some(version) = first_line(ALPINE_RELEASE) {
        return Some(Distro { id: "alpine".to_owned(), version_id: version, pretty_name: None });
    }
    if let Some(version) = first_line(DEBIAN_VERSION) {
        // "12.4" names a release; "bookworm/sid" names a development one, which has no number.
        let number = version.split('.').next().filter(|n| n.chars().all(|c| c.is_ascii_digit()));
        let version_id = number.unwrap_or_default().to_owned();
        return Some(Distro { id: "debian".to_owned(), version_id, pretty_name: None });
    }
    let redhat = first_line(REDHAT_RELEASE)?;
    let version_id = redhat.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let id = redhat.split_whitespace().next()?.to_ascii_lowercase();
    Some(Distro { id, version_id: version_id.to_owned(), pretty_name: Some(redhat.clone()) })
}

/// An `os-release` value without its shell quoting.
fn unquote(value: &str) -> String {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote).and_then(|v| v.strip_suffix(quote)) {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
    }
    value.to_owned()
}
