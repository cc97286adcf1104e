//! npm packages: the `package.json` of each package installed under a `node_modules` folder
//! (`node_modules/<name>/` or `node_modules/@scope/<name>/`), and the packages a project's lock
//! file (`package-lock.json`, `npm-shrinkwrap.json`; every lockfileVersion) pins but that are
//! not installed beside it, such as an image that ships a project before `npm ci` runs.
//! Development dependencies in a lock file are left out: a production install has none.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;

use crate::{ImageFiles, Package, PackageKind};

const LOCK_FILES: [&str; 2] = ["package-lock.json", "npm-shrinkwrap.json"];
/// Packages read from one lock file.
const MAX_LOCKED: usize = 100_000;
/// How deep a lockfileVersion 1 file's nested `dependencies` are followed.
const MAX_NESTING: usize = 64;

pub(crate) fn wanted(path: &str) -> bool {
    installed_manifest(path) || is_lock_file(path)
}

/// `node_modules/<name>/package.json` or `node_modules/@scope/<name>/package.json`.
fn installed_manifest(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/package.json") else { return false };
    let Some((_, package)) = rest.rsplit_once("node_modules/") else { return false };
    match package.split_once('/') {
        None => !package.is_empty(),
        Some((scope, name)) => scope.starts_with('@') && !name.is_empty() && !name.contains('/'),
    }
}

/// A project's lock file (not one of a package under `node_modules`).
fn is_lock_file(path: &str) -> bool {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    LOCK_FILES.contains(&name) && !dir.split('/').any(|part| part == "node_modules")
}

/// The project folder a path belongs to: what comes before its first `node_modules`, or the
/// lock file's folder.
fn project_of(path: &str) -> &str {
    match path.find("node_modules/") {
        Some(at) => path.get(..at).unwrap_or("").trim_end_matches('/'),
        None => path.rsplit_once('/').map_or("", |(dir, _)| dir),
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    let installed = crate::one_per_file(files, PackageKind::Npm, installed_manifest, |bytes| {
        let manifest: Manifest = serde_json::from_slice(bytes).ok()?;
        let (name, version) = (manifest.name?, manifest.version?);
        Some((name.clone(), name, version))
    });
    let present: BTreeSet<(&str, &str, &str)> =
        installed.iter().map(|p| (project_of(&p.path), p.name.as_str(), p.version.as_str())).collect();
    let mut locked = Vec::new();
    for path in files.paths().filter(|p| is_lock_file(p)) {
        let Some((bytes, origin)) = files.read(path) else { continue };
        let project = project_of(path);
        for (name, version) in parse_lock(bytes) {
            if !present.contains(&(project, name.as_str(), version.as_str())) {
                locked.push(Package::of_language(PackageKind::Npm, name.clone(), name, version, origin));
            }
        }
    }
    let mut all = installed;
    all.extend(locked);
    all
}

/// The (name, version) of every package a lock file pins for production, once each.
pub(crate) fn parse_lock(bytes: &[u8]) -> Vec<(String, String)> {
    let Ok(lock) = serde_json::from_slice::<Value>(bytes) else { return Vec::new() };
    let mut found = BTreeSet::new();
    if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
        // lockfileVersion 2 and 3: one entry per install location.
        for (location, entry) in packages.iter().take(MAX_LOCKED) {
            let Some((_, name)) = location.rsplit_once("node_modules/") else { continue };
            let name = entry.get("name").and_then(Value::as_str).unwrap_or(name);
            if let Some(version) = production_version(entry) {
                found.insert((name.to_owned(), version));
            }
        }
    } else if let Some(dependencies) = lock.get("dependencies") {
        // lockfileVersion 1: dependencies nested as npm installed them.
        nested(dependencies, 0, &mut found);
    }
    found.into_iter().collect()
}

fn nested(dependencies: &Value, depth: usize, found: &mut BTreeSet<(String, String)>) {
    let Some(dependencies) = dependencies.as_object() else { return };
    if depth > MAX_NESTING {
        return;
    }
    for (name, entry) in dependencies {
        if found.len() >= MAX_LOCKED {
            return;
        }
        if let Some(version) = production_version(entry) {
            found.insert((name.clone(), version));
        }
        if let Some(inner) = entry.get("dependencies") {
            nested(inner, depth + 1, found);
        }
    }
}

/// The version a lock entry installs, unless it is a development dependency, a link to a
/// folder, or not a registry version (a git or file reference names no release).
fn production_version(entry: &Value) -> Option<String> {
    let flag = |key: &str| entry.get(key).and_then(Value::as_bool).unwrap_or(false);
    if flag("dev") || flag("link") {
        return None;
    }
    let version = entry.get("version").and_then(Value::as_str)?;
    let registry_version = version.starts_with(|c: char| c.is_ascii_digit()) && !version.contains(['/', ':']);
    registry_version.then(|| version.to_owned())
}
