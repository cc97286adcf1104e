//! Packages against advisories: which records affect which installed package, by the
//! package's ecosystem and each ecosystem's version ordering.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::osv::{Event, Range, Record};
use crate::severity::{Rating, rate};
use crate::versions::ordering_for;
use crate::{Distro, Inventory, Package, PackageKind};

/// Advisories indexed by (ecosystem, package name), as OSV names both.
#[derive(Debug, Default)]
pub struct Advisories {
    by_package: HashMap<(String, String), Vec<usize>>,
    records: Vec<Record>,
}

/// One advisory that affects one installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// The CVE (or the record's own id when it names none).
    pub name: String,
    /// The OSV record it came from.
    pub record_id: String,
    pub package: String,
    pub version: String,
    /// The version that fixes it, when the advisory names one.
    pub fixed_version: Option<String>,
    pub rating: Rating,
}

impl Advisories {
    /// Adds a record; a withdrawn one is ignored.
    pub fn add(&mut self, record: Record) {
        if record.withdrawn.is_some() {
            return;
        }
        let index = self.records.len();
        for affected in &record.affected {
            if let Some(package) = &affected.package {
                // `Ubuntu:22.04:LTS` is also found as `Ubuntu:22.04`, the name an image's release gives.
                let release: Vec<&str> = package.ecosystem.splitn(3, ':').take(2).collect();
                // PyPI compares names normalized (PEP 503); records name them as they were published.
                let name = match package.ecosystem.as_str() {
                    "PyPI" => crate::normalize_python_name(&package.name),
                    _ => package.name.clone(),
                };
                for ecosystem in [package.ecosystem.clone(), release.join(":")] {
                    let entries = self.by_package.entry((ecosystem, name.clone())).or_default();
                    if entries.last() != Some(&index) {
                        entries.push(index);
                    }
                }
            }
        }
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The findings for an image's inventory, one per (advisory name, package).
    pub fn findings(&self, inventory: &Inventory) -> Vec<Finding> {
        let mut found: BTreeMap<(String, String), Finding> = BTreeMap::new();
        for package in &inventory.packages {
            let Some((ecosystem, name, version)) = matched_as(inventory.distro.as_ref(), package) else {
                continue;
            };
            let Some(order) = ordering_for(&ecosystem) else { continue };
            for record in self.candidates(&ecosystem, name) {
                for affected in &record.affected {
                    let Some(target) = &affected.package else { continue };
                    let target_name = match package.kind {
                        PackageKind::Python => crate::normalize_python_name(&target.name),
                        _ => target.name.clone(),
                    };
                    if !same_ecosystem(&target.ecosystem, &ecosystem) || target_name != name {
                        continue;
                    }
                    let listed = affected.versions.iter().any(|v| order(v, version) == Ordering::Equal);
                    let ranged = affected.ranges.iter().find_map(|r| {
                        let range_order = crate::versions::ordering_for_range(&r.kind, &ecosystem)?;
                        in_range(r, version, range_order)
                    });
                    if let Some(fixed) = ranged.or(listed.then_some(None)) {
                        let finding = Finding {
                            name: record.name().to_owned(),
                            record_id: record.id.clone(),
                            package: package.name.clone(),
                            version: package.version.clone(),
                            fixed_version: fixed,
                            rating: rate(record),
                        };
                        found.entry((finding.name.clone(), finding.package.clone())).or_insert(finding);
                    }
                }
            }
        }
        found.into_values().collect()
    }

    fn candidates<'a>(&'a self, ecosystem: &str, name: &str) -> impl Iterator<Item = &'a Record> + 'a {
        let found = self.by_package.get(&(ecosystem.to_owned(), name.to_owned()));
        found.into_iter().flatten().filter_map(|&i| self.records.get(i))
    }
}

/// Whether a record's ecosystem names the image's (`Ubuntu:22.04:LTS` is `Ubuntu:22.04`).
fn same_ecosystem(record: &str, image: &str) -> bool {
    record == image || record.strip_prefix(image).is_some_and(|rest| rest.starts_with(':'))
}

/// The OSV ecosystem, package name and version a package is matched as: distribution packages
/// by their source package where the distribution's advisories name sources.
fn matched_as<'a>(distro: Option<&Distro>, package: &'a Package) -> Option<(String, &'a str, &'a str)> {
    let distro_id = distro.map_or("", |d| d.id.as_str());
    match (package.kind, distro_id) {
        (PackageKind::Dpkg, "debian") => {
            let major = distro?.version_id.split('.').next().filter(|m| !m.is_empty())?;
            Some((format!("Debian:{major}"), &package.source_name, &package.source_version))
        }
        (PackageKind::Dpkg, "ubuntu") => {
            Some((format!("Ubuntu:{}", distro?.version_id), &package.source_name, &package.source_version))
        }
        (PackageKind::Python, _) => Some(("PyPI".to_owned(), &package.source_name, &package.version)),
        (PackageKind::Cargo, _) => Some(("crates.io".to_owned(), &package.name, &package.version)),
        (PackageKind::Npm, _) => Some(("npm".to_owned(), &package.name, &package.version)),
        (PackageKind::Go, _) => Some(("Go".to_owned(), &package.name, &package.version)),
        (PackageKind::Maven, _) => Some(("Maven".to_owned(), &package.name, &package.version)),
        (PackageKind::Apk, "alpine") => {
            let mut parts = distro?.version_id.split('.');
            let (major, minor) = (parts.next()?, parts.next()?);
            Some((format!("Alpine:v{major}.{minor}"), &package.source_name, &package.version))
        }
        (PackageKind::Rpm, _) => rpm_matched_as(distro?, package),
        _ => None,
    }
}

/// rpm distributions as OSV names them, each with what its records name: AlmaLinux binary
/// packages at `[epoch:]version-release`; Rocky Linux source packages at `version-release` (its
/// records carry no epoch); Azure Linux (CBL-Mariner before it), SUSE, openSUSE and Mageia
/// source packages. Red Hat's records are scoped to product streams that `os-release` does not
/// name, so RHEL and its other rebuilds are cataloged but not matched. `gpg-pubkey` is a signing
/// key rpm lists as a package: it is never matched.
fn rpm_matched_as<'a>(distro: &Distro, package: &'a Package) -> Option<(String, &'a str, &'a str)> {
    if package.name == "gpg-pubkey" {
        return None;
    }
    let major = distro.version_id.split('.').next().filter(|m| !m.is_empty());
    // SUSE and openSUSE name a release as its `PRETTY_NAME` does, less their own name.
    let pretty_without = |vendor: &str| distro.pretty_name.as_deref()?.strip_prefix(vendor).map(str::trim);
    let source = (package.source_name.as_str(), package.version.as_str());
    let (ecosystem, (name, version)) = match distro.id.as_str() {
        "almalinux" => (format!("AlmaLinux:{}", major?), (package.name.as_str(), package.version.as_str())),
        "rocky" => (
            format!("Rocky Linux:{}", major?),
            (package.source_name.as_str(), package.source_version.as_str()),
        ),
        "azurelinux" | "mariner" => (format!("Azure Linux:{}", major?), source),
        "mageia" => (format!("Mageia:{}", major?), source),
        id if id.starts_with("sle") => (format!("SUSE:{}", pretty_without("SUSE")?), source),
        id if id.starts_with("opensuse") => (format!("openSUSE:{}", pretty_without("openSUSE")?), source),
        _ => return None,
    };
    Some((ecosystem, name, version))
}

/// Whether `version` lies in the range (OSV's evaluation: events in version order, each
/// `introduced` opening and each `fixed`, `last_affected` or `limit` closing); if so, the
/// version that fixes it.
fn in_range(range: &Range, version: &str, order: fn(&str, &str) -> Ordering) -> Option<Option<String>> {
    let key = |e: &Event| -> String {
        e.introduced
            .clone()
            .or(e.fixed.clone())
            .or(e.last_affected.clone())
            .or(e.limit.clone())
            .unwrap_or_default()
    };
    let mut events: Vec<&Event> = range.events.iter().collect();
    events.sort_by(|a, b| match (key(a).as_str(), key(b).as_str()) {
        ("0", "0") => Ordering::Equal,
        ("0", _) => Ordering::Less,
        (_, "0") => Ordering::Greater,
        (x, y) => order(x, y),
    });
    let mut affected = false;
    let mut fixed = None;
    for event in events {
        if let Some(introduced) = &event.introduced {
            if introduced == "0" || order(version, introduced) != Ordering::Less {
                affected = true;
                fixed = None;
            }
        } else if let Some(at) = &event.fixed {
            if order(version, at) != Ordering::Less {
                affected = false;
            } else if affected && fixed.is_none() {
                fixed = Some(at.clone());
            }
        } else if let Some(at) = &event.last_affected {
            if order(version, at) == Ordering::Greater {
                affected = false;
            }
        } else if let Some(at) = &event.limit
            && order(version, at) != Ordering::Less
        {
            affected = false;
        }
    }
    affected.then_some(fixed)
}
