//! npm packages: the `package.json` of each package installed under a `node_modules` folder
//! (`node_modules/<name>/` or `node_modules/@scope/<name>/`).

use serde::Deserialize;

use crate::{ImageFiles, Package, PackageKind};

pub(crate) fn wanted(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/package.json") else { return false };
    let Some((_, package)) = rest.rsplit_once("node_modules/") else { return false };
    match package.split_once('/') {
        None => !package.is_empty(),
        Some((scope, name)) => scope.starts_with('@') && !name.is_empty() && !name.contains('/'),
    }
}

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    crate::one_per_file(files, PackageKind::Npm, wanted, |bytes| {
        let manifest: Manifest = serde_json::from_slice(bytes).ok()?;
        let (name, version) = (manifest.name?, manifest.version?);
        Some((name.clone(), name, version))
    })
}
