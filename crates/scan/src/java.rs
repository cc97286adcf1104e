//! Java libraries: the `META-INF/maven/<group>/<artifact>/pom.properties` each Maven-built
//! archive carries, in every `.jar`, `.war`, `.ear` (and the plugin archives `.par`, `.hpi`,
//! `.jpi`) and in the archives nested in them (`WEB-INF/lib/`, `BOOT-INF/lib/`), named
//! `group:artifact` as Maven's advisories name them. An archive without that file is named by
//! its manifest only where the manifest and the file name agree: `Implementation-Vendor-Id`
//! (the group, as Maven's archiver writes it) and an `<artifact>-<version>.jar` name whose
//! version is the manifest's `Implementation-Version` (or `Bundle-Version`). Anything less
//! names no group, and a guess would match the wrong advisories.

use std::io::{Cursor, Read};

use crate::{Embedded, PackageKind};

const ARCHIVE_EXTENSIONS: [&str; 6] = [".jar", ".war", ".ear", ".par", ".hpi", ".jpi"];
/// Archives inside archives inside archives: deeper ones are not opened.
const MAX_DEPTH: u32 = 3;
/// Entries read per archive.
const MAX_ENTRIES: usize = 100_000;
/// The largest pom.properties read.
const MAX_PROPERTIES_BYTES: u64 = 64 * 1024;
/// Bytes of nested archives decompressed, in all, for one outer archive.
const MAX_NESTED_BYTES: u64 = 512 * 1024 * 1024;
/// The largest nested archive opened (each is held while it is read; the libraries a fat
/// archive nests are a few megabytes each).
const MAX_NESTED_ARCHIVE_BYTES: u64 = 64 * 1024 * 1024;
const MAX_FIELD: usize = 256;

/// Whether the file at `path` is a Java archive, by its name.
pub(crate) fn is_archive(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    ARCHIVE_EXTENSIONS.iter().any(|e| lower.ends_with(e))
}

/// The Maven libraries of the archive at `path` and of the archives it nests.
pub(crate) fn inspect(path: &str, bytes: &[u8]) -> Vec<Embedded> {
    let mut found = Vec::new();
    let mut nested_budget = MAX_NESTED_BYTES;
    read_archive(file_name(path), bytes, 0, &mut nested_budget, &mut found);
    found.sort();
    found.dedup();
    found
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

fn read_archive(name: &str, bytes: &[u8], depth: u32, nested_budget: &mut u64, found: &mut Vec<Embedded>) {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(bytes)) else { return };
    let mut described = false;
    let mut manifest = None;
    for index in 0..archive.len().min(MAX_ENTRIES) {
        let Ok(entry) = archive.by_index(index) else { continue };
        if !entry.is_file() {
            continue;
        }
        let Ok(member) = entry.name().map(|n| n.into_owned()) else { continue };
        if is_pom_properties(&member) {
            let mut text = Vec::new();
            if entry.take(MAX_PROPERTIES_BYTES).read_to_end(&mut text).is_ok()
                && let Some(library) = library(&String::from_utf8_lossy(&text))
            {
                found.push(library);
                described = true;
            }
        } else if member == "META-INF/MANIFEST.MF" {
            let mut text = Vec::new();
            if entry.take(MAX_PROPERTIES_BYTES).read_to_end(&mut text).is_ok() {
                manifest = Some(String::from_utf8_lossy(&text).into_owned());
            }
        } else if is_archive(&member) && depth + 1 < MAX_DEPTH {
            let mut nested = Vec::new();
            let cap = (*nested_budget).min(MAX_NESTED_ARCHIVE_BYTES + 1);
            let within = entry.take(cap).read_to_end(&mut nested);
            *nested_budget = nested_budget.saturating_sub(nested.len() as u64);
            let whole = nested.len() as u64 <= MAX_NESTED_ARCHIVE_BYTES;
            if within.is_ok() && whole && *nested_budget > 0 {
                read_archive(file_name(&member), &nested, depth + 1, nested_budget, found);
            }
        }
    }
    if !described && let Some(library) = manifest.and_then(|m| named_by_manifest(name, &m)) {
        found.push(library);
    }
}

/// The library an archive without pom.properties is, when its manifest's group and version
/// and its file name `<artifact>-<version>.<extension>` agree.
pub(crate) fn named_by_manifest(file_name: &str, manifest: &str) -> Option<Embedded> {
    // Continuation lines (a leading space) belong to the attribute before them.
    let joined = manifest.replace("\r\n", "\n").replace("\n ", "");
    let attribute = |key: &str| {
        joined.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            let value = value.trim();
            (name.trim().eq_ignore_ascii_case(key) && !value.is_empty() && value.len() <= MAX_FIELD)
                .then(|| value.to_owned())
        })
    };
    let group = attribute("Implementation-Vendor-Id")?;
    let version = attribute("Implementation-Version").or_else(|| attribute("Bundle-Version"))?;
    let stem = file_name.rsplit_once('.')?.0;
    let artifact = stem.strip_suffix(&version)?.strip_suffix('-')?;
    let plausible =
        |text: &str| !text.is_empty() && !text.chars().any(|c| c.is_control() || c == ':' || c == '/');
    if !plausible(&group) || !plausible(artifact) {
        return None;
    }
    let name = format!("{group}:{artifact}");
    Some(Embedded { kind: PackageKind::Maven, matched_name: name.clone(), name, version })
}

/// `META-INF/maven/<group>/<artifact>/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("META-INF/maven/") else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [group, artifact, "pom.properties"] if !group.is_empty() && !artifact.is_empty())
}

/// The library a pom.properties names: `groupId`, `artifactId` and `version`.
fn library(properties: &str) -> Option<Embedded> {
    let value = |key: &str| {
        properties.lines().find_map(|line| {
            let line = line.trim_start();
            let rest = line.strip_prefix(key)?.trim_start();
            let value = rest.strip_prefix('=').or_else(|| rest.strip_prefix(':'))?.trim();
            (!value.is_empty() && value.len() <= MAX_FIELD && !value.chars().any(char::is_control))
                .then(|| value.to_owned())
        })
    };
    let (group, artifact, version) = (value("groupId")?, value("artifactId")?, value("version")?);
    let name = format!("{group}:{artifact}");
    Some(Embedded { kind: PackageKind::Maven, matched_name: name.clone(), name, version })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("member");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    }

    fn names(found: &[Embedded]) -> Vec<(&str, &str)> {
        found.iter().map(|e| (e.name.as_str(), e.version.as_str())).collect()
    }

    #[test]
    fn libraries_of_an_archive_and_of_the_archives_it_nests() {
        let pom = |g: &str, a: &str, v: &str| {
            format!("#Generated by Maven\ngroupId={g}\nartifactId={a}\nversion={v}\n")
        };
        let log4j = pom("org.apache.logging.log4j", "log4j-core", "2.14.1");
        let inner = archive(&[(
            "META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties",
            log4j.as_bytes(),
        )]);
        let app = pom("com.example", "app", "1.0.0");
        let outer = archive(&[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            ("META-INF/maven/com.example/app/pom.properties", app.as_bytes()),
            ("BOOT-INF/lib/log4j-core-2.14.1.jar", &inner),
            ("BOOT-INF/lib/broken.jar", b"not a zip"),
            ("META-INF/maven/x/pom.properties", b"groupId=x\nartifactId=y\nversion=1\n"),
        ]);
        assert_eq!(
            names(&inspect("srv/app.jar", &outer)),
            [("com.example:app", "1.0.0"), ("org.apache.logging.log4j:log4j-core", "2.14.1")]
        );
    }

    #[test]
    fn a_manifest_names_an_archive_only_where_it_and_the_file_name_agree() {
        let manifest = b"Manifest-Version: 1.0\r\nImplementation-Title: Commons Text\r\nImplementation-Vendor-Id: org.apa\r\n che.commons\r\nImplementation-Version: 1.9\r\n";
        let jar = archive(&[("META-INF/MANIFEST.MF", manifest)]);
        assert_eq!(
            names(&inspect("usr/share/java/commons-text-1.9.jar", &jar)),
            [("org.apache.commons:commons-text", "1.9")]
        );
        assert!(inspect("usr/share/java/commons-text.jar", &jar).is_empty(), "no version in the name");
        assert!(inspect("usr/share/java/commons-text-1.10.jar", &jar).is_empty(), "the versions differ");
        let without_group = archive(&[("META-INF/MANIFEST.MF", b"Implementation-Version: 1.9\n")]);
        assert!(inspect("lib/commons-text-1.9.jar", &without_group).is_empty());
        // pom.properties, where there is one, is what names it.
        let both = archive(&[
            ("META-INF/MANIFEST.MF", manifest),
            (
                "META-INF/maven/org.apache.commons/commons-text/pom.properties",
                b"groupId=org.apache.commons\nartifactId=commons-text\nversion=1.9\n",
            ),
        ]);
        assert_eq!(names(&inspect("renamed.jar", &both)), [("org.apache.commons:commons-text", "1.9")]);
    }

    #[test]
    fn nesting_stops_at_its_depth_and_properties_need_all_three_keys() {
        let pom = b"groupId=g\nartifactId=deep\nversion=1\n";
        let mut nested = archive(&[("META-INF/maven/g/deep/pom.properties", pom)]);
        for _ in 0..MAX_DEPTH {
            nested = archive(&[("lib/inner.jar", &nested)]);
        }
        assert!(
            inspect("x.jar", &nested).is_empty(),
            "archives nested deeper than {MAX_DEPTH} are not opened"
        );
        assert_eq!(
            library("groupId = g\nartifactId: a\nversion=2.0"),
            library("groupId=g\nartifactId=a\nversion=2.0")
        );
        assert!(library("groupId=g\nartifactId=a\n").is_none());
        assert!(inspect("x.jar", b"PK\x03\x04 but nothing more").is_empty());
    }
}
