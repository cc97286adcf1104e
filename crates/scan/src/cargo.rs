//! Rust crates: every `Cargo.lock` in the image (a source tree, or shipped beside a binary),
//! keeping the packages that came from crates.io (path and git dependencies have no advisories
//! there).

use serde::Deserialize;

use crate::{ImageFiles, Package, PackageKind};

pub(crate) fn wanted(path: &str) -> bool {
    path == "Cargo.lock" || path.ends_with("/Cargo.lock")
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Locked>,
}

#[derive(Deserialize)]
struct Locked {
    name: String,
    version: String,
    source: Option<String>,
}

/// The crates.io packages of a lock file; nothing if it is not one.
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    let Ok(lock) = toml::from_str::<Lock>(text) else { return Vec::new() };
    lock.package
        .into_iter()
        .filter(|p| {
            p.source.as_deref().is_some_and(|s| {
                s == "registry+https://github.com/rust-lang/crates.io-index"
                    || s == "sparse+https://index.crates.io/"
            })
        })
        .map(|p| (p.name, p.version))
        .collect()
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    let mut found = Vec::new();
    for path in files.paths().filter(|p| wanted(p)) {
        let Some((bytes, origin)) = files.read(path) else { continue };
        for (name, version) in parse(&String::from_utf8_lossy(bytes)) {
            found.push(Package::of_language(PackageKind::Cargo, name.clone(), name, version, origin));
        }
    }
    found
}
