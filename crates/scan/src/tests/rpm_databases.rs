//! rpm's databases in their three formats against `rpm -qa`, and damaged databases.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::{rows, tar_of, testdata};
use crate::rpm::{self, Format};
use crate::*;

/// Each fixture: its folder, the database file in it, its format, and where an image keeps it.
const FIXTURES: [(&str, &str, Format, &str); 6] = [
    ("go-rpmdb-cbl-mariner-2.0", "rpmdb.sqlite", Format::Sqlite, "var/lib/rpm/rpmdb.sqlite"),
    ("rpm-upstream", "rpmdb.sqlite", Format::Sqlite, "usr/lib/sysimage/rpm/rpmdb.sqlite"),
    ("go-rpmdb-libuuid", "Packages", Format::BerkeleyDb, "var/lib/rpm/Packages"),
    ("syft", "Packages", Format::BerkeleyDb, "var/lib/rpm/Packages"),
    ("osv-scalibr-epoch", "Packages_epoch", Format::BerkeleyDb, "var/lib/rpm/Packages"),
    ("go-rpmdb-sle15-bci", "Packages.db", Format::Ndb, "usr/lib/sysimage/rpm/Packages.db"),
];

/// A package as `rpm -qa --qf '%{EPOCH}\t%{NAME}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}'`
/// prints it.
fn rpm_qa_row(installed: &rpm::Installed) -> Vec<String> {
    let none = || "(none)".to_owned();
    vec![
        installed.epoch.map_or_else(none, |e| e.to_string()),
        installed.name.clone(),
        installed.version.clone(),
        installed.release.clone(),
        installed.arch.clone().unwrap_or_else(none),
        installed.source_rpm.clone().unwrap_or_else(none),
    ]
}

#[test]
fn rpm_databases_in_every_format_give_exactly_rpm_qa() {
    let test = "rpm_databases_in_every_format_give_exactly_rpm_qa";
    let Some(dir) = testdata(test, "pkgdb/rpm") else { return };
    for (name, file, format, image_path) in FIXTURES {
        let bytes = std::fs::read(dir.join(name).join(file)).expect("database");
        let want = rows(&dir.join(format!("{name}.rpm-qa.tsv")), false);
        let have: Vec<Vec<String>> = rpm::read(&bytes, format).iter().map(rpm_qa_row).collect();
        assert!(!want.is_empty(), "{name}");
        assert_eq!(have, want, "{name}: every package, every field, in the database's order");

        // The same database in an image: found at its path, every package once.
        let layer = tar_of(&[(image_path, Some(bytes.as_slice()))]);
        let mut files = ImageFiles::new(Limits::default());
        files.add_layer(name, layer.as_slice(), &wanted).expect("layer");
        let packages = catalog(&files).packages;
        assert_eq!(packages.len(), want.len(), "{name}");
        assert!(
            packages.iter().all(|p| p.kind == PackageKind::Rpm && p.path == image_path && p.layer == name)
        );
    }
}

#[test]
fn rpm_packages_carry_their_evr_and_source_rpm() {
    let test = "rpm_packages_carry_their_evr_and_source_rpm";
    let Some(dir) = testdata(test, "pkgdb/rpm") else { return };
    let mut files = ImageFiles::new(Limits::default());
    for (name, file, path) in [
        ("go-rpmdb-libuuid", "Packages", "var/lib/rpm/Packages"),
        ("osv-scalibr-epoch", "Packages_epoch", "usr/lib/sysimage/rpm/Packages"),
    ] {
        let bytes = std::fs::read(dir.join(name).join(file)).expect("database");
        let layer = tar_of(&[(path, Some(bytes.as_slice()))]);
        files.add_layer(name, layer.as_slice(), &wanted).expect("layer");
    }
    // Two databases in one image: the one in the newer folder is the one rpm reads.
    let packages = catalog(&files).packages;
    let view: Vec<_> = packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.source_name.as_str(), p.source_version.as_str()))
        .collect();
    assert_eq!(view, [("hello", "1:0.0.1-rls", "hello", "0.0.1-rls")]);

    let mut files = ImageFiles::new(Limits::default());
    let bytes = std::fs::read(dir.join("go-rpmdb-libuuid/Packages")).expect("database");
    files
        .add_layer("l", tar_of(&[("var/lib/rpm/Packages", Some(&bytes))]).as_slice(), &wanted)
        .expect("layer");
    let libuuid = &catalog(&files).packages[0];
    assert_eq!(
        (libuuid.name.as_str(), libuuid.version.as_str(), libuuid.architecture.as_deref()),
        ("libuuid", "2.32.1-42.el8_8", Some("x86_64"))
    );
    assert_eq!(
        (libuuid.source_name.as_str(), libuuid.source_version.as_str()),
        ("util-linux", "2.32.1-42.el8_8")
    );

    // rpm lists an imported signing key as a package, and so does the inventory. Its source rpm
    // is the text "(none)", no file name: the key is its own source.
    let upstream = std::fs::read(dir.join("rpm-upstream/rpmdb.sqlite")).expect("database");
    let layer = tar_of(&[("var/lib/rpm/rpmdb.sqlite", Some(upstream.as_slice()))]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("l", layer.as_slice(), &wanted).expect("layer");
    let keys: Vec<_> = catalog(&files).packages.into_iter().filter(|p| p.name == "gpg-pubkey").collect();
    let view: Vec<_> = keys
        .iter()
        .map(|p| {
            (p.version.as_str(), p.architecture.as_deref(), p.source_name.as_str(), p.source_version.as_str())
        })
        .collect();
    assert_eq!(view, [("1964c5fc-58e63918", None, "gpg-pubkey", "1964c5fc-58e63918")]);
}

/// An rpm header holding these string tags.
fn header_of(tags: &[(u32, &str)]) -> Vec<u8> {
    let (mut index, mut store) = (Vec::new(), Vec::new());
    for (tag, value) in tags {
        for field in [*tag, 6, store.len() as u32, 1] {
            index.extend(field.to_be_bytes());
        }
        store.extend(value.as_bytes());
        store.push(0);
    }
    [(tags.len() as u32).to_be_bytes().as_slice(), &(store.len() as u32).to_be_bytes(), &index, &store]
        .concat()
}

/// An NDB database of one slot page, then `blobs`; each slot names package `n + 1`, whose blob
/// is `blobs[n]`.
fn ndb_of(blobs: &[Vec<u8>], slots: &[usize]) -> Vec<u8> {
    let mut file = [b"RpmP".as_slice(), &[0; 8], &1u32.to_le_bytes(), &[0; 16]].concat();
    let mut data = Vec::new();
    let mut placed = Vec::new();
    for (n, blob) in blobs.iter().enumerate() {
        let package = (n + 1) as u32;
        let (block, blocks) = ((4096 + data.len()) / 16, (blob.len() + 16).div_ceil(16));
        placed.push((package, block as u32, blocks as u32));
        data.extend(
            [b"BlbS".as_slice(), &package.to_le_bytes(), &[0; 4], &(blob.len() as u32).to_le_bytes(), blob]
                .concat(),
        );
        data.resize(data.len().next_multiple_of(16), 0);
    }
    for &blob in slots {
        let (package, block, blocks) = placed[blob];
        file.extend(
            [b"Slot".as_slice(), &package.to_le_bytes(), &block.to_le_bytes(), &blocks.to_le_bytes()]
                .concat(),
        );
    }
    file.resize(4096, 0);
    file.extend(data);
    file
}

#[test]
fn a_database_that_points_many_records_at_one_header_reads_no_more_than_it_holds() {
    let header = |name: &str| header_of(&[(1000, name), (1001, "1.0"), (1002, "1")]);
    let three = ndb_of(&[header("a"), header("b"), header("c")], &[2, 0, 1]);
    let names: Vec<_> = rpm::read(&three, Format::Ndb).into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["a", "b", "c"], "by package index, whatever the slot order");

    let one = header("a");
    let hostile = ndb_of(std::slice::from_ref(&one), &[0; 240]);
    let read = rpm::read(&hostile, Format::Ndb).len();
    assert!(read > 1 && read <= hostile.len() / one.len(), "{read} headers of {} bytes", one.len());
}

/// A little-endian BerkeleyDB hash database rewritten in big-endian, field by field as the
/// reader knows them: the metadata, each page's header, item offsets and overflow references.
fn big_endian_bdb(little: &[u8]) -> Vec<u8> {
    let mut big = little.to_vec();
    let swap = |bytes: &mut [u8], at: usize, width: usize| bytes[at..at + width].reverse();
    let page_size = u32::from_le_bytes(little[20..24].try_into().expect("4 bytes")) as usize;
    swap(&mut big, 12, 4);
    swap(&mut big, 20, 4);
    swap(&mut big, 32, 4);
    for start in (page_size..little.len()).step_by(page_size) {
        let page = &mut big[start..start + page_size];
        let items = u16::from_le_bytes([page[20], page[21]]) as usize;
        for at in [8, 12, 16] {
            swap(page, at, 4);
        }
        swap(page, 20, 2);
        swap(page, 22, 2);
        if matches!(page[25], 2 | 13) {
            for item in 0..items {
                let offset = u16::from_le_bytes([page[26 + 2 * item], page[27 + 2 * item]]) as usize;
                swap(page, 26 + 2 * item, 2);
                if page[offset] == 3 {
                    swap(page, offset + 4, 4);
                    swap(page, offset + 8, 4);
                }
            }
        }
    }
    big
}

#[test]
fn berkeley_databases_read_in_either_byte_order() {
    let Some(dir) = testdata("berkeley_databases_read_in_either_byte_order", "pkgdb/rpm") else { return };
    for (name, file) in
        [("go-rpmdb-libuuid", "Packages"), ("syft", "Packages"), ("osv-scalibr-epoch", "Packages_epoch")]
    {
        let little = std::fs::read(dir.join(name).join(file)).expect("database");
        let want = rpm::read(&little, Format::BerkeleyDb);
        assert_eq!(want.len(), 1, "{name}");
        assert_eq!(rpm::read(&big_endian_bdb(&little), Format::BerkeleyDb), want, "{name}");
    }
}

/// The fixtures' bytes, read once for all the cases that damage them (none when absent).
fn fixture_bytes() -> &'static [(Format, Vec<u8>)] {
    static BYTES: OnceLock<Vec<(Format, Vec<u8>)>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let Some(dir) = testdata("rpm_readers_never_panic", "pkgdb/rpm") else { return Vec::new() };
        FIXTURES
            .iter()
            .filter_map(|(name, file, format, _)| {
                Some((*format, std::fs::read(dir.join(name).join(file)).ok()?))
            })
            .collect()
    })
}

/// The first bytes each format's reader checks, so that random bytes get past them.
fn with_magic(format: Format, mut bytes: Vec<u8>) -> Vec<u8> {
    let magic: &[(usize, &[u8])] = match format {
        Format::Sqlite => &[(0, b"SQLite format 3\0"), (16, &[0x02, 0x00]), (20, &[0])],
        Format::BerkeleyDb => &[(12, &[0x61, 0x15, 0x06, 0x00]), (20, &[0, 2, 0, 0]), (24, &[0, 8])],
        Format::Ndb => &[(0, b"RpmP\0\0\0\0"), (12, &[1, 0, 0, 0])],
    };
    for (at, value) in magic {
        if bytes.len() < at + value.len() {
            bytes.resize(at + value.len(), 0);
        }
        bytes[*at..at + value.len()].copy_from_slice(value);
    }
    bytes
}

const FORMATS: [Format; 3] = [Format::Sqlite, Format::BerkeleyDb, Format::Ndb];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any bytes, in any format's name, read as some packages or none, never a panic.
    #[test]
    fn rpm_readers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8192),
                               fixture in 0usize..6, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..24),
                               cut in any::<usize>()) {
        for format in FORMATS {
            let _ = rpm::read(&bytes, format);
            let _ = rpm::read(&with_magic(format, bytes.clone()), format);
        }
        if let Some((format, original)) = fixture_bytes().get(fixture) {
            let mut damaged = original.clone();
            for (at, value) in &flips {
                let len = damaged.len();
                if let Some(byte) = damaged.get_mut(at % len.max(1)) { *byte ^= value | 1; }
            }
            let _ = rpm::read(&damaged, *format);
            damaged.truncate(cut % (original.len() + 1));
            let _ = rpm::read(&damaged, *format);
        }
    }

    /// Headers with any entries, pointing anywhere in their store, read or not, never panic.
    #[test]
    fn rpm_headers_never_panic(entries in proptest::collection::vec((0usize..8, any::<u32>(), any::<u32>(), any::<u32>()), 0..12),
                               store in proptest::collection::vec(any::<u8>(), 0..256),
                               declared in proptest::option::of(any::<(u32, u32)>())) {
        const TAGS: [u32; 8] = [1000, 1001, 1002, 1003, 1022, 1044, 63, 0];
        let (count, size) = declared.unwrap_or((entries.len() as u32, store.len() as u32));
        let mut blob = [count.to_be_bytes(), size.to_be_bytes()].concat();
        for (tag, kind, offset, values) in &entries {
            for field in [TAGS[*tag], kind % 12, offset % 300, values % 4] {
                blob.extend(field.to_be_bytes());
            }
        }
        blob.extend(&store);
        let _ = rpm::read_header(&blob);
    }
}
