//! apk's database, `lib/apk/db/installed`: stanzas of one-letter fields (`P:` name, `V:`
//! version, `o:` origin, `A:` architecture) separated by blank lines.

use crate::{ImageFiles, Package, PackageKind};

const INSTALLED: &str = "lib/apk/db/installed";

pub(crate) fn wanted(path: &str) -> bool {
    path == INSTALLED
}

pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    let Some((bytes, origin)) = files.read(INSTALLED) else { return Vec::new() };
    parse(&String::from_utf8_lossy(bytes))
        .into_iter()
        .map(|p| Package { layer: origin.layer.to_owned(), path: origin.path.to_owned(), ..p })
        .collect()
}

/// The packages of an `installed` file, in file order; a stanza without a name or a version is
/// skipped.
pub(crate) fn parse(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |key: char| {
            stanza.lines().find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        };
        let (Some(name), Some(version)) = (field('P'), field('V')) else { continue };
        let origin = field('o').unwrap_or(name);
        packages.push(Package {
            kind: PackageKind::Apk,
            name: name.to_owned(),
            version: version.to_owned(),
            architecture: field('A').map(str::to_owned),
            source_name: origin.to_owned(),
            source_version: version.to_owned(),
            layer: String::new(),
            path: String::new(),
        });
    }
    packages
}
