//! Version ordering, by each ecosystem's own rules: an advisory's "fixed in 1:2.3-4" means what
//! that package manager means by it.

mod apk;
mod dpkg;
mod pep440;
mod rpm;

use std::cmp::Ordering;

pub use apk::compare as compare_apk;
pub use dpkg::compare as compare_dpkg;
pub use pep440::compare as compare_pep440;
pub use rpm::{compare as compare_rpm, compare_evr as compare_rpm_evr};

/// The ordering an OSV ecosystem uses (`Debian:12`, `Ubuntu:22.04:LTS`, ...), if berth knows it.
pub fn ordering_for(ecosystem: &str) -> Option<fn(&str, &str) -> Ordering> {
    match ecosystem.split(':').next()? {
        "Debian" | "Ubuntu" => Some(compare_dpkg),
        "Alpine" => Some(compare_apk),
        "PyPI" => Some(compare_pep440),
        "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" => Some(compare_rpm_evr),
        _ => None,
    }
}
