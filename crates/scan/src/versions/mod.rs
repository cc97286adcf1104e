//! Version ordering, by each ecosystem's own rules: an advisory's "fixed in 1:2.3-4" means what
//! that package manager means by it.

mod apk;
mod dpkg;
pub mod go;
mod maven;
mod npm;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;

pub use apk::compare as compare_apk;
pub use dpkg::compare as compare_dpkg;
pub use go::compare as compare_go;
pub use maven::compare as compare_maven;
pub use npm::compare as compare_npm;
pub use pep440::compare as compare_pep440;
pub use rpm::{compare as compare_rpm, compare_evr as compare_rpm_evr};
pub use semver::compare as compare_semver;

/// The ordering an OSV ecosystem uses (`Debian:12`, `Ubuntu:22.04:LTS`, ...), if berth knows it.
pub fn ordering_for(ecosystem: &str) -> Option<fn(&str, &str) -> Ordering> {
    match ecosystem.split(':').next()? {
        "Debian" | "Ubuntu" => Some(compare_dpkg),
        "Alpine" => Some(compare_apk),
        "PyPI" => Some(compare_pep440),
        "crates.io" => Some(compare_semver),
        "npm" => Some(compare_npm),
        "Go" => Some(compare_go),
        "Maven" => Some(compare_maven),
        "AlmaLinux" | "Rocky Linux" | "Red Hat" | "Azure Linux" | "openSUSE" | "SUSE" | "Mageia" => {
            Some(compare_rpm_evr)
        }
        _ => None,
    }
}

/// The ordering a range of an OSV record uses: `SEMVER` ranges are semantic versions whatever
/// the ecosystem; `ECOSYSTEM` ranges use the ecosystem's own.
pub fn ordering_for_range(kind: &str, ecosystem: &str) -> Option<fn(&str, &str) -> Ordering> {
    match kind {
        "SEMVER" => Some(compare_semver),
        "ECOSYSTEM" => ordering_for(ecosystem),
        _ => None,
    }
}
