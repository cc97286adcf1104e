//! rpm's database of installed packages, in each of its three formats: sqlite (`rpmdb.sqlite`),
//! BerkeleyDB hash (`Packages`) and NDB (`Packages.db`). Every format stores one rpm header per
//! package; a reader per format (`rpm/`) finds the headers and `rpm/header.rs` reads the few tags
//! a scan needs. The bytes come from an image, so every count, offset and length is checked, and
//! the headers read from a file never add up to more bytes than the file holds.

mod bdb;
mod header;
mod ndb;
mod sqlite;

use crate::{ImageFiles, Origin, Package, PackageKind};

/// How rpm stored its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Sqlite,
    BerkeleyDb,
    Ndb,
}

/// Where rpm keeps its database, the newer folder and the newer format first: a system
/// converted to a newer format or folder may keep the old file, which rpm no longer reads.
const DATABASES: [(&str, Format); 6] = [
    ("usr/lib/sysimage/rpm/rpmdb.sqlite", Format::Sqlite),
    ("usr/lib/sysimage/rpm/Packages.db", Format::Ndb),
    ("usr/lib/sysimage/rpm/Packages", Format::BerkeleyDb),
    ("var/lib/rpm/rpmdb.sqlite", Format::Sqlite),
    ("var/lib/rpm/Packages.db", Format::Ndb),
    ("var/lib/rpm/Packages", Format::BerkeleyDb),
];

/// More packages than any real system has: past this a database is taken as hostile.
const MAX_PACKAGES: usize = 100_000;

/// The largest header read: more than rpm itself accepts (fewer than 65,536 entries, a data
/// store under 16 MiB).
const MAX_HEADER_BYTES: usize = 32 * 1024 * 1024;

pub(crate) fn wanted(path: &str) -> bool {
    DATABASES.iter().any(|(database, _)| *database == path)
}

/// The packages of the image's rpm database: the first of [`DATABASES`] that lists any (an
/// image has one database in use; a link from the old folder to the new reads the same file).
pub(crate) fn catalog(files: &ImageFiles) -> Vec<Package> {
    for (path, format) in DATABASES {
        let Some((bytes, origin)) = files.read(path) else { continue };
        let installed = read(bytes, format);
        if !installed.is_empty() {
            return installed.into_iter().map(|i| i.into_package(origin)).collect();
        }
    }
    Vec::new()
}

/// The packages a database lists, in the order its format keeps them; what a damaged file still
/// holds, or nothing.
pub(crate) fn read(bytes: &[u8], format: Format) -> Vec<Installed> {
    let mut headers = Headers::new(bytes.len());
    match format {
        Format::Sqlite => sqlite::read(bytes, &mut headers),
        Format::BerkeleyDb => bdb::read(bytes, &mut headers),
        Format::Ndb => ndb::read(bytes, &mut headers),
    }
    headers.found
}

#[cfg(test)]
pub(crate) use header::read as read_header;

/// An installed package as its header gives it (`rpm -q --qf` would print these tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Installed {
    pub(crate) name: String,
    pub(crate) epoch: Option<u32>,
    pub(crate) version: String,
    pub(crate) release: String,
    /// None for `gpg-pubkey`, an imported signing key rpm lists as a package.
    pub(crate) arch: Option<String>,
    /// `name-version-release.src.rpm`; for `gpg-pubkey` none, or the text `(none)`.
    pub(crate) source_rpm: Option<String>,
}

impl Installed {
    /// `[epoch:]version-release`, as rpm distributions' advisories write fixed versions (epoch
    /// 0 left out, as they leave it).
    fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) if epoch != 0 => format!("{epoch}:{}-{}", self.version, self.release),
            _ => format!("{}-{}", self.version, self.release),
        }
    }

    /// The source package's name and `version-release`, from the source rpm's file name; the
    /// package's own when it names none (or none that reads).
    fn source(&self) -> (String, String) {
        let parsed = self.source_rpm.as_deref().and_then(|file| {
            let stem = file.strip_suffix(".rpm")?;
            let (nvr, _arch) = stem.rsplit_once('.')?;
            let (name_version, release) = nvr.rsplit_once('-')?;
            let (name, version) = name_version.rsplit_once('-')?;
            let all_set = !name.is_empty() && !version.is_empty() && !release.is_empty();
            all_set.then(|| (name.to_owned(), format!("{version}-{release}")))
        });
        parsed.unwrap_or_else(|| (self.name.clone(), format!("{}-{}", self.version, self.release)))
    }

    fn into_package(self, origin: Origin<'_>) -> Package {
        let (source_name, source_version) = self.source();
        Package {
            kind: PackageKind::Rpm,
            version: self.evr(),
            name: self.name,
            architecture: self.arch,
            source_name,
            source_version,
            layer: origin.layer.to_owned(),
            path: origin.path.to_owned(),
        }
    }
}

/// What the readers hand each header blob to: it reads the header, counts packages and bytes,
/// and tells the reader when to stop.
struct Headers {
    found: Vec<Installed>,
    /// Header bytes still to be read. It starts at the file's size, which a real database's
    /// headers never exceed: a hostile one that points many records at the same bytes stops here.
    budget: usize,
}

impl Headers {
    fn new(file_bytes: usize) -> Self {
        Self { found: Vec::new(), budget: file_bytes }
    }

    /// Reads one blob (an unreadable one counts, and is skipped); false when the reader must stop.
    fn take(&mut self, blob: &[u8]) -> bool {
        if self.found.len() >= MAX_PACKAGES || !self.spend(blob.len()) {
            return false;
        }
        if let Some(installed) = header::read(blob) {
            self.found.push(installed);
        }
        true
    }

    /// Counts bytes read, header or not; false when the budget is spent.
    fn spend(&mut self, bytes: usize) -> bool {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => false,
        }
    }

    /// The most bytes a reader may gather for the next blob.
    fn room(&self) -> usize {
        self.budget.min(MAX_HEADER_BYTES)
    }
}

/// A file of pages of one size, as BerkeleyDB and sqlite keep theirs.
#[derive(Clone, Copy)]
struct Pages<'a> {
    bytes: &'a [u8],
    size: usize,
}

impl<'a> Pages<'a> {
    /// Page `index`, counted from 0, whole; `None` past the end (a last page cut short is none).
    fn get(&self, index: usize) -> Option<&'a [u8]> {
        let start = index.checked_mul(self.size)?;
        self.bytes.get(start..start.checked_add(self.size)?)
    }

    fn count(&self) -> usize {
        self.bytes.len() / self.size
    }
}

/// Fixed-width integers at an offset, `None` past the end.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}
