//! What an image holds, for vulnerability scanning: its layers walked as streams
//! (`layers.rs`), its operating system (`os.rs`) and its installed packages, one cataloger per
//! package database (`dpkg.rs`, `apk.rs`, `rpm.rs` with its sqlite, BerkeleyDB and NDB readers,
//! `python.rs`, `cargo.rs`, `npm.rs`), and the packages files embed, looked for as each layer is
//! read (`java.rs`: Java archives; `binaries.rs`: Go build information and cargo-auditable
//! records in executables); and what is known about them: advisories in the OSV
//! format (`osv.rs`), matched (`matching.rs`) by each ecosystem's version ordering
//! (`versions/`). No I/O of its own and no HTTP or SQL: the registry hands in each layer's
//! decrypted bytes and advisories, and gets an [`Inventory`] and its findings back.

mod apk;
mod binaries;
mod cargo;
mod dpkg;
mod java;
mod layers;
mod matching;
mod npm;
mod os;
pub mod osv;
mod python;
mod rpm;
pub mod sbom;
mod severity;
pub mod versions;

pub use layers::{Embedded, ImageFiles, Inspection, Inspector, LayerStats, Limits, Origin};
pub use matching::{Advisories, Finding};
pub use os::Distro;
pub use python::normalize as normalize_python_name;
pub use severity::{Rating, rate};

/// Why an image could not be cataloged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// A layer went past a limit (size, ratio, entries): the scan ends as FAILED with this.
    #[error("{0}")]
    Bounded(String),
    /// A layer is not a readable (compressed) tar archive.
    #[error("{0}")]
    Unreadable(String),
}

/// The package managers berth reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    Dpkg,
    Apk,
    Python,
    Cargo,
    Npm,
    Rpm,
    /// Go modules (and the standard library) compiled into a binary.
    Go,
    /// Java libraries in archives, named `group:artifact`.
    Maven,
}

/// One installed package, where it was found, and the source package advisories name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub kind: PackageKind,
    pub name: String,
    pub version: String,
    pub architecture: Option<String>,
    /// The source package (dpkg `Source`, apk origin, rpm's source rpm); the binary's own name
    /// when none is given.
    pub source_name: String,
    pub source_version: String,
    /// The layer (digest) and path of the database that lists it.
    pub layer: String,
    pub path: String,
}

impl Package {
    /// A package of a language ecosystem, found in the file at `origin`: no architecture, and
    /// its source is itself (under `matched_name`, the name its advisories use).
    pub(crate) fn of_language(
        kind: PackageKind,
        name: String,
        matched_name: String,
        version: String,
        origin: Origin<'_>,
    ) -> Self {
        Self {
            kind,
            source_name: matched_name,
            source_version: version.clone(),
            name,
            version,
            architecture: None,
            layer: origin.layer.to_owned(),
            path: origin.path.to_owned(),
        }
    }
}

/// One package per file `wanted` names, as `read` finds it in the file's bytes: (name, the name
/// its advisories use, version).
pub(crate) fn one_per_file(
    files: &ImageFiles,
    kind: PackageKind,
    wanted: fn(&str) -> bool,
    read: impl Fn(&[u8]) -> Option<(String, String, String)>,
) -> Vec<Package> {
    files
        .paths()
        .filter(|p| wanted(p))
        .filter_map(|path| {
            let (bytes, origin) = files.read(path)?;
            let (name, matched_name, version) = read(bytes)?;
            Some(Package::of_language(kind, name, matched_name, version, origin))
        })
        .collect()
}

/// What a scan found in an image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub distro: Option<Distro>,
    pub packages: Vec<Package>,
}

/// Whether a cataloger wants the file at `path` (relative to the image root).
pub fn wanted(path: &str) -> bool {
    os::wanted(path)
        || dpkg::wanted(path)
        || apk::wanted(path)
        || rpm::wanted(path)
        || python::wanted(path)
        || cargo::wanted(path)
        || npm::wanted(path)
}

/// Which inspector looks into the file at `path` with the tar header's `mode` for the packages
/// it embeds: Java archives by name, executables (any execute bit) by their format.
pub fn inspected(path: &str, mode: u32) -> Option<Inspector> {
    if java::is_archive(path) {
        Some(java::inspect)
    } else if mode & 0o111 != 0 {
        Some(binaries::inspect)
    } else {
        None
    }
}

/// The OS and packages of the image whose wanted files `files` holds.
pub fn catalog(files: &ImageFiles) -> Inventory {
    let mut packages = dpkg::catalog(files);
    packages.extend(apk::catalog(files));
    packages.extend(rpm::catalog(files));
    packages.extend(python::catalog(files));
    packages.extend(cargo::catalog(files));
    packages.extend(npm::catalog(files));
    for (embedded, origin) in files.embeddings() {
        packages.extend(embedded.iter().map(|e| {
            Package::of_language(e.kind, e.name.clone(), e.matched_name.clone(), e.version.clone(), origin)
        }));
    }
    packages.sort();
    Inventory { distro: os::detect(files), packages }
}

#[cfg(test)]
mod tests;
