//! Python packages: the `METADATA` of each installed `*.dist-info` and the `PKG-INFO` of each
//! `*.egg-info`, wherever site-packages is.

use crate::{ImageFiles, Package, PackageKind};

pub(crate) fn wanted(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA") || path.ends_with(".egg-info/PKG-INFO")
}

/// A name as PyPI compares names (PEP 503): lower case, runs of `-`, `_` and `.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Name and version from the headers of a metadata file (they end at the first blank line).
pub(crate) fn parse(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines().take_while(|l| !l.trim().is_empty()) {
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_owned());
        }
    }
    Some((name.filter(|n| !n.is_empty())?, version.filter(|v| !v.is_empty())?))
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    crate::one_per_file(files, PackageKind::Python, wanted, |bytes| {
        let (name, version) = parse(&String::from_utf8_lossy(bytes))?;
        Some((name.clone(), normalize(&name), version))
    })
}
