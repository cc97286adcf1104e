//! rpm's databases in their three formats against `rpm -qa`, damaged databases, and rpm packages
//! matched against rpm distributions' advisories.

use std::collections::BTreeSet;
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

/// A package of an AlmaLinux 9 image, as its rpm database lists it.
fn alma_package(name: &str, version: &str, source: &str) -> Package {
    Package {
        kind: PackageKind::Rpm,
        name: name.to_owned(),
        version: version.to_owned(),
        architecture: Some("x86_64".to_owned()),
        source_name: source.to_owned(),
        source_version: version.rsplit(':').next().unwrap_or_default().to_owned(),
        layer: String::new(),
        path: String::new(),
    }
}

fn alma_9() -> Distro {
    Distro {
        id: "almalinux".to_owned(),
        version_id: "9.4".to_owned(),
        pretty_name: Some("AlmaLinux 9.4 (Seafoam Ocelot)".to_owned()),
    }
}

/// An AlmaLinux record: `package` fixed in `fixed`.
fn alma_record(id: &str, package: &str, fixed: &str) -> osv::Record {
    let json = serde_json::json!({"id": id, "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": package},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
    osv::Record::parse(json.to_string().as_bytes()).expect("record")
}

#[test]
fn rpm_packages_match_almalinux_records_below_the_fixed_evr() {
    let mut advisories = Advisories::default();
    advisories.add(alma_record("ALSA-2026:0001", "openssl-libs", "1:3.0.7-25.el9_3"));
    // Without its epoch a fix sorts below any epoch-1 build: it fixes nothing installed here.
    advisories.add(alma_record("ALSA-2026:0002", "openssl-libs", "3.0.9-1.el9"));
    // Named by its source, not a binary: AlmaLinux's records name binaries.
    advisories.add(alma_record("ALSA-2026:0003", "openssl", "1:3.0.7-25.el9_3"));
    advisories.add(alma_record("ALSA-2026:0004", "gpg-pubkey", "ffffffff-ffffffff"));
    let inventory = |version: &str| Inventory {
        distro: Some(alma_9()),
        packages: vec![
            alma_package("openssl-libs", version, "openssl"),
            alma_package("gpg-pubkey", "b86b3716-61e69f29", "gpg-pubkey"),
        ],
    };
    let below = advisories.findings(&inventory("1:3.0.7-24.el9"));
    let found: Vec<_> = below.iter().map(|f| (f.record_id.as_str(), f.package.as_str())).collect();
    assert_eq!(found, [("ALSA-2026:0001", "openssl-libs")]);
    assert_eq!(below[0].fixed_version.as_deref(), Some("1:3.0.7-25.el9_3"));
    assert_eq!(below[0].version, "1:3.0.7-24.el9");
    assert_eq!(advisories.findings(&inventory("1:3.0.7-25.el9_3")), vec![], "at the fix");
    assert_eq!(advisories.findings(&inventory("1:3.0.7-27.el9")), vec![], "past the fix");

    let rhel = Distro { id: "rhel".to_owned(), ..alma_9() };
    let on_rhel = Inventory { distro: Some(rhel), ..inventory("1:3.0.7-24.el9") };
    assert_eq!(advisories.findings(&on_rhel), vec![], "AlmaLinux's records are not RHEL's");
    let purl = sbom::purl(&on_rhel.packages[0], &on_rhel);
    assert_eq!(purl, "pkg:rpm/rhel/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.4&epoch=1");
}

#[test]
fn rpm_distributions_match_as_their_records_name_packages() {
    let record = |ecosystem: &str, name: &str, fixed: &str| {
        let json = serde_json::json!({"id": format!("{ecosystem}/{name}"), "affected": [{"package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
        osv::Record::parse(json.to_string().as_bytes()).expect("record")
    };
    let mut advisories = Advisories::default();
    // Rocky Linux names source packages, at version-release without the epoch.
    advisories.add(record("Rocky Linux:9", "openssl", "3.0.7-25.el9_3"));
    advisories.add(record("Azure Linux:2", "openssl", "1.1.1k-8.cm2"));
    advisories.add(record("SUSE:Linux Enterprise Server 15 SP3", "openssl-1_1", "1.1.1d-11.20.1"));
    advisories.add(record("openSUSE:Leap 15.5", "openssl-1_1", "1.1.1l-150500.17.3.1"));
    let found = |id: &str, version_id: &str, pretty: &str, package: Package| {
        let distro = Distro {
            id: id.to_owned(),
            version_id: version_id.to_owned(),
            pretty_name: Some(pretty.to_owned()),
        };
        let inventory = Inventory { distro: Some(distro), packages: vec![package] };
        advisories.findings(&inventory).into_iter().map(|f| f.record_id).collect::<Vec<_>>()
    };
    let rocky = alma_package("openssl-libs", "1:3.0.7-24.el9", "openssl");
    assert_eq!(found("rocky", "9.3", "Rocky Linux 9.3 (Blue Onyx)", rocky), ["Rocky Linux:9/openssl"]);
    let mariner = alma_package("openssl-libs", "1.1.1k-7.cm2", "openssl");
    assert_eq!(found("mariner", "2.0", "CBL-Mariner/Linux", mariner), ["Azure Linux:2/openssl"]);
    let sles = alma_package("libopenssl1_1", "1.1.1d-11.12.1", "openssl-1_1");
    let sles_name = "SUSE Linux Enterprise Server 15 SP3";
    assert_eq!(found("sles", "15.3", sles_name, sles), ["SUSE:Linux Enterprise Server 15 SP3/openssl-1_1"]);
    let leap = alma_package("libopenssl1_1", "1.1.1l-150500.17.3.1", "openssl-1_1");
    assert!(found("opensuse-leap", "15.5", "openSUSE Leap 15.5", leap).is_empty(), "at the fix");
}

#[test]
fn an_almalinux_image_is_matched_against_almalinux_advisories() {
    let test = "an_almalinux_image_is_matched_against_almalinux_advisories";
    let (Some(rpmdb), Some(osv_dir)) = (testdata(test, "pkgdb/rpm"), testdata(test, "osv")) else { return };
    let database = std::fs::read(rpmdb.join("rpm-upstream/rpmdb.sqlite")).expect("database");
    let os_release =
        b"NAME=\"AlmaLinux\"\nVERSION_ID=\"9.4\"\nID=\"almalinux\"\nPRETTY_NAME=\"AlmaLinux 9.4\"\n";
    let layer = tar_of(&[
        ("etc/os-release", Some(os_release.as_slice())),
        ("var/lib/rpm/rpmdb.sqlite", Some(database.as_slice())),
    ]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("alma", layer.as_slice(), &wanted).expect("layer");
    let mut inventory = catalog(&files);
    let names: BTreeSet<&str> = inventory.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["foo", "gpg-pubkey", "hlinktest"]));

    let mut advisories = Advisories::default();
    advisories.add(alma_record("ALSA-2026:0010", "foo", "1.0-2"));
    advisories.add(alma_record("ALSA-2026:0011", "hlinktest", "1.0-1"));
    let found: Vec<_> =
        advisories.findings(&inventory).into_iter().map(|f| (f.record_id, f.package)).collect();
    assert_eq!(found, [("ALSA-2026:0010".to_owned(), "foo".to_owned())], "hlinktest is at its fix");

    // AlmaLinux's own records: an openssl-libs of 9.0 has fixes waiting, each a later epoch-1 build.
    let zip = std::fs::File::open(osv_dir.join("almalinux.zip")).expect("zip");
    let mut real = Advisories::default();
    for (record, _) in osv::read_zip(std::io::BufReader::new(zip)).expect("zip").records {
        real.add(record);
    }
    inventory.packages = vec![alma_package("openssl-libs", "1:3.0.1-41.el9_0", "openssl")];
    let findings = real.findings(&inventory);
    assert!(findings.len() > 5, "{findings:?}");
    for finding in &findings {
        let fixed = finding.fixed_version.as_deref().unwrap_or_default();
        assert!(fixed.starts_with("1:3."), "{finding:?}");
        let order = versions::compare_rpm_evr("1:3.0.1-41.el9_0", fixed);
        assert_eq!(order, std::cmp::Ordering::Less, "{finding:?}");
    }
}
