//! dpkg's database: `var/lib/dpkg/status` and, in distroless images, one file per package in
//! `var/lib/dpkg/status.d/`.

use crate::{ImageFiles, Package, PackageKind};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d";

pub(crate) fn wanted(path: &str) -> bool {
    path == STATUS
        || path
            .strip_prefix(STATUS_D)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    let mut found = Vec::new();
    let paths = std::iter::once(STATUS).chain(files.files_in(STATUS_D).filter(|p| wanted(p)));
    for path in paths {
        if let Some((bytes, origin)) = files.read(path) {
            let text = String::from_utf8_lossy(bytes);
            found.extend(parse(&text).into_iter().map(|p| Package {
                layer: origin.layer.to_owned(),
                path: origin.path.to_owned(),
                ..p
            }));
        }
    }
    found
}

/// The installed packages of a status file (stanzas of `Field: value` lines, continued by lines
/// that start with a space, separated by blank lines). A stanza without `Status` (status.d)
/// counts as installed.
pub(crate) fn parse(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (!line.starts_with([' ', '\t']) && key.eq_ignore_ascii_case(name)).then(|| value.trim())
            })
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else { continue };
        if field("Status").is_some_and(|s| s.split_whitespace().last() != Some("installed")) {
            continue;
        }
        // `Source: name` or `Source: name (version)`, the version only when it differs.
        let (source_name, source_version) = match field("Source") {
            Some(source) => match source.split_once('(') {
                Some((n, v)) => (n.trim(), v.trim_end_matches(')').trim()),
                None => (source, version),
            },
            None => (name, version),
        };
        packages.push(Package {
            kind: PackageKind::Dpkg,
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: field("Architecture").map(str::to_owned),
            source_name: source_name.to_owned(),
            source_version: source_version.to_owned(),
            layer: String::new(),
            path: String::new(),
        });
    }
    packages
}
