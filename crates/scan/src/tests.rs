//! The catalogers against real layers and package databases with their oracles, from the
//! shared test data beside the repository (skipped, and said so, where it is absent).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

mod embedded;
mod rpm_databases;

/// A folder of the shared test data, or `None` (with a SKIP line) when it is not there.
fn testdata(test: &str, folder: &str) -> Option<PathBuf> {
    let wanted = std::path::Path::new("shared/testdata").join(folder);
    let found = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join(&wanted))
        .find(|p| p.is_dir());
    if found.is_none() {
        skip(test, &format!("the test data folder {} is not beside the repository", wanted.display()));
    }
    found
}

/// Says that `test` could not run, and why: on standard error, and in the file the test command
/// counts skips from (TESTS_SKIP_LOG).
fn skip(test: &str, why: &str) {
    let line = format!("SKIP {test}: {why}");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("TESTS_SKIP_LOG") {
        use std::io::Write;
        let recorded = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| writeln!(f, "{line}"));
        assert!(recorded.is_ok(), "cannot record the skip in {}", std::path::Path::new(&log).display());
    }
}

/// Rows of a TSV oracle (tab-separated, never trimmed), without its header when it has one.
fn rows(path: &std::path::Path, header: bool) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().skip(usize::from(header)).map(|l| l.split('\t').map(str::to_owned).collect()).collect()
}

fn add(files: &mut ImageFiles, path: &std::path::Path) -> LayerStats {
    let blob = std::fs::File::open(path).expect("layer");
    let name = path.file_name().expect("name").to_string_lossy().into_owned();
    files.add_layer(&name, blob, &wanted).expect("the layer reads")
}

/// (package, version, arch, source, source version) of every dpkg package found.
fn dpkg_view(inventory: &Inventory) -> Vec<Vec<String>> {
    let mut view: Vec<Vec<String>> = inventory
        .packages
        .iter()
        .filter(|p| p.kind == PackageKind::Dpkg)
        .map(|p| {
            let arch = p.architecture.clone().unwrap_or_default();
            vec![p.name.clone(), p.version.clone(), arch, p.source_name.clone(), p.source_version.clone()]
        })
        .collect();
    view.sort();
    view
}

fn dpkg_oracle(path: &std::path::Path) -> Vec<Vec<String>> {
    let mut want: Vec<Vec<String>> = rows(path, false)
        .into_iter()
        .filter(|r| r.get(6).is_none_or(|status| status == "install ok installed"))
        .map(|r| r[..5].to_vec())
        .collect();
    want.sort();
    want
}

#[test]
fn debian_layers_give_exactly_dpkgs_own_package_list() {
    let Some(dir) = testdata("debian_layers_give_exactly_dpkgs_own_package_list", "images/debian-bookworm")
    else {
        return;
    };
    let mut files = ImageFiles::new(Limits::default());
    let base = add(&mut files, &dir.join("layer1-debian-bookworm-minbase.tar.gz"));
    assert!(base.entries > 1000, "{base:?}");
    let inventory = catalog(&files);
    assert_eq!(dpkg_view(&inventory), dpkg_oracle(&dir.join("debian-bookworm.dpkg-query.tsv")));
    let distro = inventory.distro.expect("os-release");
    assert_eq!((distro.id.as_str(), distro.version_id.as_str()), ("debian", "12"));
    assert!(files.read("etc/resolv.conf").is_none(), "not asked for, not kept");
    assert!(
        inventory
            .packages
            .iter()
            .all(|p| p.path == "var/lib/dpkg/status" && p.layer == "layer1-debian-bookworm-minbase.tar.gz")
    );

    add(&mut files, &dir.join("layer2-bookworm-security-upgrade.tar.gz"));
    let upgraded = catalog(&files);
    assert_eq!(dpkg_view(&upgraded), dpkg_oracle(&dir.join("debian-bookworm-security.dpkg-query.tsv")));
    assert!(
        upgraded.packages.iter().all(|p| p.layer == "layer2-bookworm-security-upgrade.tar.gz"),
        "the upper status wins"
    );
}

#[test]
fn alpine_minirootfs_give_exactly_their_apk_lists() {
    let Some(dir) = testdata("alpine_minirootfs_give_exactly_their_apk_lists", "images/alpine") else {
        return;
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("folder").flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".tar.gz"))
        else {
            continue;
        };
        let mut files = ImageFiles::new(Limits::default());
        add(&mut files, &path);
        let inventory = catalog(&files);
        let mut have: Vec<Vec<String>> = inventory
            .packages
            .iter()
            .map(|p| vec![p.name.clone(), p.version.clone(), p.source_name.clone()])
            .collect();
        let mut want = rows(&dir.join(format!("{name}.apk.tsv")), true);
        have.sort();
        want.sort();
        assert_eq!(have, want, "{name}");
        let distro = inventory.distro.expect("os-release");
        assert_eq!(distro.id, "alpine", "{name}");
        assert!(name.contains(&distro.version_id) || name.contains("2024"), "{name}: {distro:?}");
        checked += 1;
    }
    assert_eq!(checked, 5, "every minirootfs");
}

#[test]
fn dpkg_and_apk_databases_give_their_oracle_lists() {
    let test = "dpkg_and_apk_databases_give_their_oracle_lists";
    let (Some(dpkg), Some(apk)) = (testdata(test, "pkgdb/dpkg"), testdata(test, "pkgdb/apk")) else { return };
    for name in ["trivy-valid", "osv-scalibr-valid", "claircore-texlive"] {
        let text = std::fs::read_to_string(dpkg.join(name).join("status")).expect("status");
        let inventory = Inventory { distro: None, packages: dpkg::parse(&text) };
        assert_eq!(
            dpkg_view(&inventory),
            dpkg_oracle(&dpkg.join(format!("{name}.dpkg-query.tsv"))),
            "{name}"
        );
    }
    for name in ["trivy", "syft-multiple-2", "osv-scalibr"] {
        let text = std::fs::read_to_string(apk.join(name).join("installed")).expect("installed");
        let have: Vec<Vec<String>> =
            apk::parse(&text).into_iter().map(|p| vec![p.name, p.version, p.source_name]).collect();
        assert_eq!(have, rows(&apk.join(format!("{name}.apk.tsv")), true), "{name}: in file order");
    }
}

/// A tar archive of `(path, contents)` files, `(path, None)` meaning an empty directory.
fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        match contents {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).expect("file");
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty()).expect("dir");
            }
        }
    }
    builder.into_inner().expect("tar")
}

const STATUS_A: &[u8] = b"Package: a\nStatus: install ok installed\nVersion: 1\n\n";
const STATUS_B: &[u8] = b"Package: b\nStatus: install ok installed\nVersion: 2\n\n";

#[test]
fn whiteouts_and_opaque_directories_hide_what_lower_layers_had() {
    let mut files = ImageFiles::new(Limits::default());
    let lower = tar_of(&[
        ("var/lib/dpkg/status", Some(STATUS_A)),
        ("var/lib/dpkg/status.d/one", Some(STATUS_A)),
        ("etc/debian_version", Some(b"12.4\n")),
    ]);
    files.add_layer("lower", lower.as_slice(), &wanted).expect("lower");
    assert_eq!(catalog(&files).packages.len(), 2);
    let upper = tar_of(&[
        ("var/lib/dpkg/.wh.status", Some(b"")),
        ("var/lib/dpkg/status.d/.wh..wh..opq", Some(b"")),
        ("var/lib/dpkg/status.d/two", Some(STATUS_B)),
    ]);
    files.add_layer("upper", upper.as_slice(), &wanted).expect("upper");
    let inventory = catalog(&files);
    let names: Vec<_> = inventory.packages.iter().map(|p| (p.name.as_str(), p.layer.as_str())).collect();
    assert_eq!(names, [("b", "upper")], "the opaque directory keeps only this layer's files");
    assert_eq!(inventory.distro.map(|d| d.version_id), Some("12".to_owned()));
    let gone = tar_of(&[("etc/.wh.debian_version", Some(b""))]);
    files.add_layer("gone", gone.as_slice(), &wanted).expect("gone");
    assert!(catalog(&files).distro.is_none());
}

#[test]
fn paths_and_links_stay_inside_the_image() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = |path: &str, target: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, path, target).expect("link");
    };
    link("etc/os-release", "../../../../usr/lib/os-release");
    link("lib/apk/db/installed", "/lib/apk/db/installed");
    let mut data = builder.into_inner().expect("tar");
    data.truncate(data.len() - 1024);
    // A file named with `..` above the root, as a hostile archive writes it (tar's builder refuses).
    let contents = b"ID=alpine\nVERSION_ID=\"3.20.3\"\n";
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    let name = b"../../usr/lib/os-release";
    header.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    let mut hostile = tar::Builder::new(Vec::new());
    hostile.append(&header, contents.as_slice()).expect("entry");
    data.extend(hostile.into_inner().expect("tar"));
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("l", data.as_slice(), &wanted).expect("layer");
    let distro = catalog(&files).distro.expect("through the link, inside the root");
    assert_eq!((distro.id.as_str(), distro.version_id.as_str()), ("alpine", "3.20.3"));
    assert!(catalog(&files).packages.is_empty(), "a link to itself ends");
}

#[test]
fn a_decompression_bomb_ends_bounded() {
    // 64 MiB of zeros compress to a few tens of KiB: far past the ratio allowed.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = tar_of(&[("big", Some(&vec![0u8; 64 * 1024 * 1024]))]);
    std::io::Write::write_all(&mut encoder, &zeros).expect("gzip");
    let bomb = encoder.finish().expect("gzip");
    let limits = Limits { ratio_after: 1024 * 1024, ..Limits::default() };
    let mut files = ImageFiles::new(limits);
    let refused = files.add_layer("bomb", bomb.as_slice(), &|_| false);
    assert!(
        matches!(&refused, Err(ScanError::Bounded(why)) if why.contains("times its compressed size")),
        "{refused:?}"
    );
    let small = Limits { max_layer_bytes: 1024 * 1024, ..Limits::default() };
    let refused = ImageFiles::new(small).add_layer("big", zeros.as_slice(), &|_| false);
    assert!(
        matches!(&refused, Err(ScanError::Bounded(why)) if why.contains("more than 1048576 bytes")),
        "{refused:?}"
    );
    let few = Limits { max_entries: 2, ..Limits::default() };
    let three = tar_of(&[("a", Some(b"")), ("b", Some(b"")), ("c", Some(b""))]);
    let refused = ImageFiles::new(few).add_layer("many", three.as_slice(), &|_| false);
    assert!(matches!(refused, Err(ScanError::Bounded(_))), "{refused:?}");
}

#[test]
fn zstd_and_plain_layers_read_alike() {
    let layer = tar_of(&[("lib/apk/db/installed", Some(b"P:musl\nV:1.2.5-r0\no:musl\n\n"))]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("plain", layer.as_slice(), &wanted).expect("plain");
    assert_eq!(catalog(&files).packages.len(), 1);
    // A zstd frame of stored (raw) blocks, written by hand: berth only decodes zstd.
    let frame = zstd_raw_frame(&layer);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("zstd", frame.as_slice(), &wanted).expect("zstd");
    let packages = catalog(&files).packages;
    assert_eq!((packages.len(), packages[0].name.as_str()), (1, "musl"));
    let mut decoded = Vec::new();
    ruzstd::decoding::StreamingDecoder::new(frame.as_slice())
        .expect("frame")
        .read_to_end(&mut decoded)
        .expect("decode");
    assert_eq!(decoded, layer);
}

/// A zstd frame holding `data` in raw blocks (no compression), as the format allows.
fn zstd_raw_frame(data: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd];
    // Frame header: single segment, 4-byte content size.
    frame.push(0b1010_0000);
    frame.extend((data.len() as u32).to_le_bytes());
    let chunks: Vec<&[u8]> = data.chunks(128 * 1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let header = last | ((chunk.len() as u32) << 3);
        frame.extend(&header.to_le_bytes()[..3]);
        frame.extend(*chunk);
    }
    frame
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes, and any damage to a real archive, end in a result, never a panic.
    #[test]
    fn arbitrary_layers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                    cut in 0usize..3000, flip in 0usize..3000) {
        let _ = ImageFiles::new(Limits::default()).add_layer("any", bytes.as_slice(), &wanted);
        let mut layer = tar_of(&[("var/lib/dpkg/status", Some(STATUS_A)), ("lib/apk/db/installed", Some(b"P:x\nV:1\n"))]);
        if let Some(byte) = layer.get_mut(flip) { *byte ^= 0x5a; }
        layer.truncate(cut.max(1));
        let mut files = ImageFiles::new(Limits::default());
        let _ = files.add_layer("damaged", layer.as_slice(), &wanted);
        let _ = catalog(&files);
    }

    /// The inspectors take any bytes, and any damage to an archive or to build information.
    #[test]
    fn inspectors_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                 cut in 0usize..2000, flip in 0usize..2000, with in any::<u8>()) {
        let _ = java::inspect("a-1.jar", &bytes);
        let _ = binaries::inspect("bin/a", &bytes);
        let mut elf = b"\x7fELF".to_vec();
        elf.extend_from_slice(&bytes);
        let _ = binaries::inspect("bin/a", &elf);
        // Build information with its strings damaged.
        let mut go = b"\x7fELF\0\0\0\0\0\0\0\0\0\0\0\0\xff Go buildinf:\x08\x02".to_vec();
        go.extend_from_slice(&[0u8; 16]);
        go.extend_from_slice(&[8, b'g', b'o', b'1', b'.', b'2', b'2', b'.', b'1', 200, 1]);
        go.extend_from_slice(b"\tdep\tgolang.org/x/net\tv0.17.0\th1:x=\n");
        go.extend_from_slice(&bytes);
        let at = flip % go.len().max(1);
        if let Some(byte) = go.get_mut(at) { *byte ^= with; }
        go.truncate(cut.max(1));
        let _ = binaries::inspect("bin/a", &go);
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let _ = zip.start_file("META-INF/maven/g/a/pom.properties", zip::write::SimpleFileOptions::default());
        let _ = std::io::Write::write_all(&mut zip, b"groupId=g\nartifactId=a\nversion=1\n");
        let _ = zip.start_file("lib/inner.jar", zip::write::SimpleFileOptions::default());
        let _ = std::io::Write::write_all(&mut zip, &bytes);
        if let Ok(cursor) = zip.finish() {
            let mut jar = cursor.into_inner();
            let at = flip % jar.len().max(1);
            if let Some(byte) = jar.get_mut(at) { *byte ^= with; }
            jar.truncate(cut.max(1).min(jar.len()));
            let _ = java::inspect("a-1.jar", &jar);
        }
    }

    /// Every package parser takes any text.
    #[test]
    fn package_parsers_take_any_text(text in "[A-Za-z:() \\n.+~\"{}=\\[\\],-]{0,400}") {
        let _ = dpkg::parse(&text);
        let _ = apk::parse(&text);
        let _ = python::parse(&text);
        let _ = cargo::parse(&text);
        let _ = npm::parse_lock(text.as_bytes());
        let _ = java::named_by_manifest("lib/a-1.0.jar", &text);
        let layer = tar_of(&[
            ("etc/os-release", Some(text.as_bytes())),
            ("x/node_modules/a/package.json", Some(text.as_bytes())),
            ("x/package-lock.json", Some(text.as_bytes())),
        ]);
        let mut files = ImageFiles::new(Limits::default());
        if files.add_layer("text", layer.as_slice(), &wanted).is_ok() {
            let _ = catalog(&files);
        }
    }

    /// Every version ordering takes any two strings, and is antisymmetric on them.
    #[test]
    fn version_orderings_take_any_text(a in "[0-9a-z.~^+:_!-]{0,24}", b in "[0-9a-z.~^+:_!-]{0,24}") {
        let orderings: [(&str, Ordering); 8] = [
            ("dpkg", versions::compare_dpkg),
            ("apk", versions::compare_apk),
            ("rpm", versions::compare_rpm_evr),
            ("pep440", versions::compare_pep440),
            ("semver", versions::compare_semver),
            ("npm", versions::compare_npm),
            ("go", versions::compare_go),
            ("maven", versions::compare_maven),
        ];
        for (name, compare) in orderings {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse(), "{}: {:?} {:?}", name, a, b);
        }
        let _ = (versions::go::pseudo_base(&a), versions::go::pseudo_time(&a), versions::go::pseudo_revision(&a));
    }

    /// Go's pseudo-versions, however odd, read back as they were made.
    #[test]
    fn go_pseudo_versions_read_back(
        base in "(v[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-z0-9]{1,4})?(\\+[a-z]{1,4})?)?",
        timestamp in "[0-9]{14}",
        revision in "[a-f0-9]{1,12}",
    ) {
        let made = versions::go::pseudo_version("v0", &base, &timestamp, &revision);
        prop_assert!(versions::go::is_pseudo(&made), "{}", made);
        prop_assert_eq!(versions::go::pseudo_revision(&made), Some(revision.as_str()));
        prop_assert_eq!(versions::compare_go(&base, &made), std::cmp::Ordering::Less, "{} before {}", base, made);
    }
}

/// A version ordering.
type Ordering = fn(&str, &str) -> std::cmp::Ordering;

/// Checks `compare` on each (left, op, right) vector, and on its reverse.
fn check_vectors(what: &str, cases: &[(String, String, String)], compare: Ordering) {
    for (left, op, right) in cases {
        let want = match op.as_str() {
            "<" => std::cmp::Ordering::Less,
            ">" => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        };
        assert_eq!(compare(left, right), want, "{what}: {left} {op} {right}");
        assert_eq!(compare(right, left), want.reverse(), "{what}: {right} against {left}");
    }
}

/// The (left, op, right) rows of a vector file with a header.
fn vector_rows(path: &std::path::Path) -> Vec<(String, String, String)> {
    rows(path, true).into_iter().map(|r| (r[0].clone(), r[1].clone(), r[2].clone())).collect()
}

#[test]
fn dpkg_orders_versions_as_dpkg_does() {
    let Some(dir) = testdata("dpkg_orders_versions_as_dpkg_does", "version-vectors") else { return };
    let cases = vector_rows(&dir.join("dpkg.tsv"));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    check_vectors("dpkg", &cases, versions::compare_dpkg);
}

/// OSV records as Debian publishes them, one per advisory id, saying each source package is
/// fixed in `fixed_in`.
fn debian_records(pending: &std::path::Path) -> Vec<osv::Record> {
    let mut by_id: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for row in rows(pending, true) {
        if row[4] != "(none)" {
            by_id.entry(row[4].clone()).or_default().push((row[0].clone(), row[2].clone()));
        }
    }
    by_id
        .into_iter()
        .map(|(id, fixes)| {
            let affected: Vec<_> = fixes
                .iter()
                .map(|(source, fixed)| {
                    serde_json::json!({"package": {"ecosystem": "Debian:12", "name": source},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]})
                })
                .collect();
            let json = serde_json::json!({"id": id, "affected": affected});
            osv::Record::parse(json.to_string().as_bytes()).expect("record")
        })
        .collect()
}

#[test]
fn the_debian_base_has_exactly_its_pending_fixes_and_the_upgrade_none() {
    let test = "the_debian_base_has_exactly_its_pending_fixes_and_the_upgrade_none";
    let Some(dir) = testdata(test, "images/debian-bookworm") else { return };
    let pending = dir.join("pending-security-fixes.tsv");
    let mut advisories = Advisories::default();
    for record in debian_records(&pending) {
        advisories.add(record);
    }
    let withdrawn = r#"{"id":"DEBIAN-WITHDRAWN","withdrawn":"2026-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"apt"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#;
    advisories.add(osv::Record::parse(withdrawn.as_bytes()).expect("withdrawn"));

    // Expected: every binary package of each source named by an id, as dpkg-query lists them.
    let binaries = rows(&dir.join("debian-bookworm.dpkg-query.tsv"), false);
    let mut want = std::collections::BTreeSet::new();
    for row in rows(&pending, true).into_iter().filter(|r| r[4] != "(none)") {
        for binary in binaries.iter().filter(|b| b[3] == row[0]) {
            want.insert((row[4].clone(), binary[0].clone(), Some(row[2].clone())));
        }
    }
    assert!(want.len() > 19, "{want:?}");

    let mut files = ImageFiles::new(Limits::default());
    add(&mut files, &dir.join("layer1-debian-bookworm-minbase.tar.gz"));
    let found: std::collections::BTreeSet<_> = advisories
        .findings(&catalog(&files))
        .into_iter()
        .map(|f| (f.name, f.package, f.fixed_version))
        .collect();
    assert_eq!(found, want);

    add(&mut files, &dir.join("layer2-bookworm-security-upgrade.tar.gz"));
    assert_eq!(advisories.findings(&catalog(&files)), vec![], "the upgrade fixed them all");
}

#[test]
fn aliases_make_one_finding_per_cve_and_package() {
    let record = |id: &str, aliases: &[&str], fixed: &str| {
        let json = serde_json::json!({"id": id, "aliases": aliases, "affected": [
            {"package": {"ecosystem": "Debian:12", "name": "pam"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
        osv::Record::parse(json.to_string().as_bytes()).expect("record")
    };
    let mut advisories = Advisories::default();
    advisories.add(record("DSA-5600-1", &["CVE-2024-22365"], "1.5.2-6+deb12u3"));
    advisories.add(record("CVE-2024-22365", &[], "1.5.2-6+deb12u3"));
    advisories.add(record("DLA-1-1", &[], "1.5.2-6+deb12u1"));
    let package = |name: &str| Package {
        kind: PackageKind::Dpkg,
        name: name.to_owned(),
        version: "1.5.2-6+deb12u2".to_owned(),
        architecture: None,
        source_name: "pam".to_owned(),
        source_version: "1.5.2-6+deb12u2".to_owned(),
        layer: String::new(),
        path: String::new(),
    };
    let distro = Distro { id: "debian".to_owned(), version_id: "12".to_owned(), pretty_name: None };
    let inventory =
        Inventory { distro: Some(distro), packages: vec![package("libpam0g"), package("libpam-runtime")] };
    let found: Vec<_> = advisories.findings(&inventory).into_iter().map(|f| (f.name, f.package)).collect();
    assert_eq!(
        found,
        [
            ("CVE-2024-22365".to_owned(), "libpam-runtime".to_owned()),
            ("CVE-2024-22365".to_owned(), "libpam0g".to_owned())
        ],
        "one finding per CVE and package; the advisory fixed before this version does not apply"
    );
}

#[test]
fn osv_zips_import_with_their_record_counts() {
    let Some(dir) = testdata("osv_zips_import_with_their_record_counts", "osv") else { return };
    // (zip, records, withdrawn), as the data's README counts them.
    for (zip, records, withdrawn) in [
        ("go.zip", 4291, 17),
        ("crates.io.zip", 1206, 13),
        ("pypi.zip", 2661, 10),
        ("almalinux.zip", 5637, 0),
    ] {
        let file = std::fs::File::open(dir.join(zip)).expect("zip");
        let contents = osv::read_zip(std::io::BufReader::new(file)).expect("reads");
        assert_eq!(contents.skipped, vec![], "{zip}");
        assert_eq!(contents.records.len(), records, "{zip}");
        let taken_back = contents.records.iter().filter(|(r, _)| r.withdrawn.is_some()).count();
        assert_eq!(taken_back, withdrawn, "{zip}");
        let mut advisories = Advisories::default();
        for (record, _) in contents.records {
            advisories.add(record);
        }
        assert_eq!(advisories.len(), records - withdrawn, "{zip}: withdrawn records match nothing");
    }
}

#[test]
fn apk_orders_versions_as_apk_does() {
    let Some(dir) = testdata("apk_orders_versions_as_apk_does", "version-vectors") else { return };
    let text = std::fs::read_to_string(dir.join("apk-tools-2.14-stable-version.data")).expect("vectors");
    // `left op right`, space-separated, with comments after `#`.
    let cases: Vec<(String, String, String)> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('#').next().unwrap_or_default().split_whitespace().collect();
            let [left, op, right] = fields[..] else { return None };
            Some((left.to_owned(), op.to_owned(), right.to_owned()))
        })
        .collect();
    assert_eq!(cases.len(), 733, "every vector");
    check_vectors("apk", &cases, versions::compare_apk);
}

#[test]
fn alpine_packages_match_by_origin_with_apks_ordering() {
    let Some(dir) = testdata("alpine_packages_match_by_origin_with_apks_ordering", "images/alpine") else {
        return;
    };
    let mut files = ImageFiles::new(Limits::default());
    add(&mut files, &dir.join("alpine-minirootfs-3.20.3-x86_64.tar.gz"));
    let inventory = catalog(&files);
    let busybox = inventory.packages.iter().find(|p| p.name == "busybox").expect("busybox").version.clone();
    let record = |id: &str, fixed: &str| {
        let json = serde_json::json!({"id": id, "affected": [{"package": {"ecosystem": "Alpine:v3.20", "name": "busybox"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]});
        osv::Record::parse(json.to_string().as_bytes()).expect("record")
    };
    let mut advisories = Advisories::default();
    // Fixed in a later revision of this version, and in a version already installed.
    advisories.add(record("CVE-2026-0001", &format!("{}9", busybox)));
    advisories.add(record("CVE-2026-0002", "1.0_rc1-r0"));
    let found: BTreeSet<(String, String)> =
        advisories.findings(&inventory).into_iter().map(|f| (f.name, f.package)).collect();
    let want: BTreeSet<(String, String)> = inventory
        .packages
        .iter()
        .filter(|p| p.source_name == "busybox")
        .map(|p| ("CVE-2026-0001".to_owned(), p.name.clone()))
        .collect();
    assert!(want.len() >= 2, "busybox and its subpackages: {want:?}");
    assert_eq!(found, want);
}

#[test]
fn severity_comes_from_the_cvss_vector_else_the_databases_word() {
    let record = |extra: serde_json::Value| {
        let mut json = serde_json::json!({"id": "CVE-2026-1"});
        if let (Some(object), Some(extra)) = (json.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        osv::Record::parse(json.to_string().as_bytes()).expect("record")
    };
    let critical = rate(&record(serde_json::json!({"severity": [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]})));
    assert_eq!((critical.level.as_str(), critical.score.as_deref()), ("CRITICAL", Some("9.8")));
    let medium = rate(&record(serde_json::json!({"severity": [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}]})));
    assert_eq!((medium.level.as_str(), medium.score.as_deref()), ("MEDIUM", Some("6.1")));
    let v4 = rate(&record(serde_json::json!({"severity": [
        {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]})));
    assert_eq!((v4.level.as_str(), v4.score.as_deref()), ("CRITICAL", Some("9.3")));
    let worded = rate(&record(serde_json::json!({"database_specific": {"severity": "MODERATE"}})));
    assert_eq!((worded.level.as_str(), worded.score), ("MEDIUM", None));
    assert_eq!(rate(&record(serde_json::json!({}))).level, "UNDEFINED");
    let garbage =
        rate(&record(serde_json::json!({"severity": [{"type": "CVSS_V3", "score": "not a vector"}]})));
    assert_eq!(garbage.level, "UNDEFINED", "an unreadable vector rates nothing");
}

#[test]
fn rpm_orders_versions_as_rpmvercmp_does() {
    let Some(dir) = testdata("rpm_orders_versions_as_rpmvercmp_does", "version-vectors") else { return };
    for (file, rows_wanted) in [("rpm.tsv", 91), ("rpm-claircore.tsv", 113)] {
        let cases = vector_rows(&dir.join(file));
        assert_eq!(cases.len(), rows_wanted, "{file}");
        check_vectors(file, &cases, versions::compare_rpm);
    }
    use std::cmp::Ordering::{Greater, Less};
    assert_eq!(versions::compare_rpm_evr("1:1.0-1.el9", "2.0-1.el9"), Greater, "the epoch first");
    assert_eq!(versions::compare_rpm_evr("0:2.0-1.el9", "2.0-2.el9"), Less);
}

#[test]
fn python_versions_order_as_pep_440_says() {
    let Some(dir) = testdata("python_versions_order_as_pep_440_says", "version-vectors") else { return };
    let cases = vector_rows(&dir.join("pep440-compare.tsv"));
    assert!(cases.len() > 4000, "{}", cases.len());
    check_vectors("PEP 440", &cases, versions::compare_pep440);
}

#[test]
fn python_packages_are_found_and_matched_against_pypi_advisories() {
    let test = "python_packages_are_found_and_matched_against_pypi_advisories";
    let Some(dir) = testdata(test, "osv") else { return };
    let metadata = |name: &str, version: &str| {
        format!(
            "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nLong description\nName: not-this\n"
        )
    };
    let old = metadata("Requests", "2.25.0");
    let new = metadata("requests", "2.32.3");
    let egg = metadata("Jinja2", "2.10");
    let layer = tar_of(&[
        ("usr/lib/python3/site-packages/requests-2.25.0.dist-info/METADATA", Some(old.as_bytes())),
        ("opt/venv/lib/python3.12/site-packages/requests-2.32.3.dist-info/METADATA", Some(new.as_bytes())),
        ("usr/lib/python3/site-packages/Jinja2-2.10.egg-info/PKG-INFO", Some(egg.as_bytes())),
        ("usr/lib/python3/site-packages/requests/__init__.py", Some(b"# not kept")),
    ]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("py", layer.as_slice(), &wanted).expect("layer");
    let inventory = catalog(&files);
    let found: Vec<(&str, &str)> =
        inventory.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
    assert_eq!(found, [("Jinja2", "2.10"), ("Requests", "2.25.0"), ("requests", "2.32.3")]);

    let zip = std::fs::File::open(dir.join("pypi.zip")).expect("zip");
    let mut advisories = Advisories::default();
    for (record, _) in osv::read_zip(std::io::BufReader::new(zip)).expect("zip").records {
        advisories.add(record);
    }
    let findings = advisories.findings(&inventory);
    let on = |package: &str, version: &str| -> BTreeSet<String> {
        findings
            .iter()
            .filter(|f| f.package == package && f.version == version)
            .map(|f| f.name.clone())
            .collect()
    };
    // requests 2.25.0: CVE-2023-32681 (fixed in 2.31.0) and not the older ones fixed by 2.20.0.
    let old_findings = on("Requests", "2.25.0");
    assert!(old_findings.contains("CVE-2023-32681"), "{old_findings:?}");
    assert!(!old_findings.contains("CVE-2018-18074"), "{old_findings:?}");
    assert!(on("requests", "2.32.3").iter().all(|id| id != "CVE-2023-32681"), "2.32.3 is fixed");
    assert!(!on("Jinja2", "2.10").is_empty(), "jinja2 2.10 has advisories in this data");
    let purl = sbom::purl(&inventory.packages[0], &inventory);
    assert_eq!(purl, "pkg:pypi/jinja2@2.10");
}

#[test]
fn cargo_orders_versions_as_the_semver_crate_does() {
    let Some(dir) = testdata("cargo_orders_versions_as_the_semver_crate_does", "version-vectors") else {
        return;
    };
    let cases = vector_rows(&dir.join("cargo-semver-compare.tsv"));
    assert_eq!(cases.len(), 22);
    check_vectors("cargo semver", &cases, versions::compare_semver);
}

#[test]
fn go_reads_and_orders_versions_as_the_go_command_does() {
    use versions::go;
    let Some(dir) = testdata("go_reads_and_orders_versions_as_the_go_command_does", "version-vectors") else {
        return;
    };
    let canonical = rows(&dir.join("go-semver-canonical.tsv"), true);
    assert_eq!(canonical.len(), 32);
    for row in &canonical {
        let (version, valid, want) = (&row[0], row[1] == "true", row.get(2).cloned().unwrap_or_default());
        assert_eq!(go::is_valid(version), valid, "{version}");
        assert_eq!(go::canonical(version).unwrap_or_default(), want, "{version}");
    }
    let cases = vector_rows(&dir.join("go-semver-compare.tsv"));
    assert_eq!(cases.len(), 528);
    check_vectors("go semver", &cases, versions::compare_go);

    let pseudo = rows(&dir.join("go-pseudo.tsv"), true);
    assert_eq!(pseudo.len(), 13);
    for row in &pseudo {
        let (major, base, version, time, revision) = (&row[0], &row[1], &row[2], &row[3], &row[4]);
        let major = if base.is_empty() { major.as_str() } else { "" };
        let timestamp: String = time.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(&go::pseudo_version(major, base, &timestamp, revision), version, "{row:?}");
        assert_eq!(go::pseudo_base(version).as_ref(), Some(base), "{version}");
        assert_eq!(go::pseudo_time(version).as_ref(), Some(time), "{version}");
        assert_eq!(go::pseudo_revision(version), Some(revision.as_str()), "{version}");
        assert!(go::is_pseudo(version), "{version}");
        assert!(!go::is_pseudo(base), "{base}");
        assert_eq!(versions::compare_go(base, version), std::cmp::Ordering::Less, "{base} before {version}");
    }
    let invalid = rows(&dir.join("go-pseudo-invalid-base.tsv"), true);
    assert_eq!(invalid.len(), 7);
    for row in &invalid {
        assert_eq!(go::pseudo_base(&row[0]), None, "{row:?}");
    }
}

/// Checks `compare` against one of univers' JSON vector files: every `comparison` case sorts its
/// versions into the expected order, every `equality` case says whether two are equal.
fn check_univers(dir: &std::path::Path, file: &str, count: usize, compare: Ordering) {
    let text = std::fs::read_to_string(dir.join("univers").join(file)).expect("vectors");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
    assert_eq!(cases.len(), count, "{file}");
    let mut failures = Vec::new();
    for case in &cases {
        let versions: Vec<&str> = case["input"]["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        match case["test_type"].as_str() {
            Some("equality") => {
                let equal = compare(versions[0], versions[1]) == std::cmp::Ordering::Equal;
                if Some(equal) != case["expected_output"].as_bool() {
                    failures.push(format!("{versions:?} equal: {equal}"));
                }
            }
            _ => {
                let mut sorted = versions.clone();
                sorted.sort_by(|a, b| compare(a, b));
                let want: Vec<&str> = case["expected_output"]
                    .as_array()
                    .expect("order")
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect();
                if sorted != want {
                    failures.push(format!("{versions:?} sorted as {sorted:?}, not {want:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{file}: {} of {count} cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn apk_and_dpkg_orders_agree_with_univers_vectors() {
    let Some(dir) = testdata("apk_and_dpkg_orders_agree_with_univers_vectors", "version-vectors") else {
        return;
    };
    check_univers(&dir, "alpine_version_cmp.json", 716, versions::compare_apk);
    check_univers(&dir, "deb_version_python_pkg_test.json", 16, versions::compare_dpkg);
}

#[test]
fn maven_orders_versions_as_maven_does() {
    let Some(dir) = testdata("maven_orders_versions_as_maven_does", "version-vectors") else { return };
    check_univers(&dir, "maven_version_cmp.json", 977, versions::compare_maven);
    use std::cmp::Ordering::{Equal, Greater, Less};
    for (a, b, want) in
        [("1.0-alpha-1", "1.0", Less), ("1-sp", "1", Greater), ("1.0.0", "1", Equal), ("1-ga", "1", Equal)]
    {
        assert_eq!(versions::compare_maven(a, b), want, "{a} against {b}");
    }
}

#[test]
fn crates_in_a_lock_file_are_matched_against_rustsec_advisories() {
    let test = "crates_in_a_lock_file_are_matched_against_rustsec_advisories";
    let Some(dir) = testdata(test, "osv") else { return };
    let lock = br#"version = 3

[[package]]
name = "app"
version = "0.1.0"

[[package]]
name = "regex"
version = "1.5.4"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "smallvec"
version = "0.6.9"
source = "sparse+https://index.crates.io/"

[[package]]
name = "smallvec"
version = "1.13.2"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
    let layer = tar_of(&[("usr/src/app/Cargo.lock", Some(lock.as_slice()))]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("rust", layer.as_slice(), &wanted).expect("layer");
    let inventory = catalog(&files);
    let found: Vec<(&str, &str)> =
        inventory.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
    assert_eq!(found, [("regex", "1.5.4"), ("smallvec", "0.6.9"), ("smallvec", "1.13.2")], "crates.io only");

    let zip = std::fs::File::open(dir.join("crates.io.zip")).expect("zip");
    let mut advisories = Advisories::default();
    for (record, _) in osv::read_zip(std::io::BufReader::new(zip)).expect("zip").records {
        advisories.add(record);
    }
    let findings = advisories.findings(&inventory);
    let on = |version: &str| -> BTreeSet<String> {
        findings.iter().filter(|f| f.version == version).map(|f| f.name.clone()).collect()
    };
    assert!(on("1.5.4").contains("CVE-2022-24713"), "regex before 1.5.5: {:?}", on("1.5.4"));
    let old = on("0.6.9");
    for cve in ["CVE-2019-15551", "CVE-2019-15554", "CVE-2018-25023", "CVE-2021-25900"] {
        assert!(old.contains(cve), "smallvec 0.6.9 lacks {cve}: {old:?}");
    }
    assert!(!old.contains("CVE-2018-20991"), "0.6.9 is past that range's fix (0.6.3)");
    assert_eq!(sbom::purl(&inventory.packages[0], &inventory), "pkg:cargo/regex@1.5.4");
}

#[test]
fn npm_orders_versions_as_node_semver_does() {
    let Some(dir) = testdata("npm_orders_versions_as_node_semver_does", "version-vectors") else { return };
    let cases = vector_rows(&dir.join("npm-semver-compare.tsv"));
    assert_eq!(cases.len(), 68);
    check_vectors("npm", &cases, versions::compare_npm);
}

#[test]
fn npm_packages_under_node_modules_are_found_and_matched() {
    let manifest = |name: &str, version: &str| format!(r#"{{"name": "{name}", "version": "{version}"}}"#);
    let (lodash, scoped, nested) =
        (manifest("lodash", "4.17.20"), manifest("@babel/core", "7.0.0"), manifest("minimist", "1.2.5"));
    let layer = tar_of(&[
        ("app/node_modules/lodash/package.json", Some(lodash.as_bytes())),
        ("app/node_modules/@babel/core/package.json", Some(scoped.as_bytes())),
        ("app/node_modules/mkdirp/node_modules/minimist/package.json", Some(nested.as_bytes())),
        ("app/package.json", Some(br#"{"name": "app", "version": "1.0.0"}"#.as_slice())),
        ("app/node_modules/lodash/lib/package.json", Some(br#"{"name": "not-a-package"}"#.as_slice())),
    ]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("node", layer.as_slice(), &wanted).expect("layer");
    let inventory = catalog(&files);
    let found: Vec<(&str, &str)> =
        inventory.packages.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
    assert_eq!(found, [("@babel/core", "7.0.0"), ("lodash", "4.17.20"), ("minimist", "1.2.5")]);
    let record = serde_json::json!({"id": "GHSA-35jh-r3h4-6jhm", "aliases": ["CVE-2021-23337"], "affected": [
        {"package": {"ecosystem": "npm", "name": "lodash"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}]});
    let mut advisories = Advisories::default();
    advisories.add(osv::Record::parse(record.to_string().as_bytes()).expect("record"));
    let found: Vec<(String, String)> =
        advisories.findings(&inventory).into_iter().map(|f| (f.name, f.package)).collect();
    assert_eq!(found, [("CVE-2021-23337".to_owned(), "lodash".to_owned())]);
    assert_eq!(sbom::purl(&inventory.packages[0], &inventory), "pkg:npm/%40babel/core@7.0.0");
}

#[test]
fn npm_lock_files_add_what_is_not_installed_beside_them() {
    // lockfileVersion 3: locations; dev, linked and git entries are not production releases.
    let v3 = br#"{"name": "app", "lockfileVersion": 3, "packages": {
        "": {"name": "app", "version": "1.0.0"},
        "node_modules/lodash": {"version": "4.17.20"},
        "node_modules/@babel/core": {"version": "7.0.0", "dev": true},
        "node_modules/mkdirp/node_modules/minimist": {"version": "1.2.5"},
        "node_modules/local": {"resolved": "../local", "link": true},
        "node_modules/from-git": {"version": "git+https://example.com/x.git#abc"},
        "node_modules/aliased": {"name": "real-name", "version": "2.0.0"}}}"#;
    assert_eq!(
        npm::parse_lock(v3),
        [("lodash", "4.17.20"), ("minimist", "1.2.5"), ("real-name", "2.0.0")]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
    // lockfileVersion 1: nested dependencies.
    let v1 = br#"{"lockfileVersion": 1, "dependencies": {
        "mkdirp": {"version": "0.5.1", "dependencies": {"minimist": {"version": "0.0.8"}}},
        "mocha": {"version": "5.0.0", "dev": true}}}"#;
    assert_eq!(
        npm::parse_lock(v1),
        [("minimist", "0.0.8"), ("mkdirp", "0.5.1")].map(|(n, v)| (n.to_owned(), v.to_owned()))
    );

    // In an image: what is installed comes from node_modules once; the lock adds the rest.
    let layer = tar_of(&[
        ("app/package-lock.json", Some(v3.as_slice())),
        (
            "app/node_modules/lodash/package.json",
            Some(br#"{"name": "lodash", "version": "4.17.20"}"#.as_slice()),
        ),
        ("app/node_modules/some/node_modules/dep/package-lock.json", Some(v1.as_slice())),
    ]);
    let mut files = ImageFiles::new(Limits::default());
    files.add_layer("node", layer.as_slice(), &wanted).expect("layer");
    let found: Vec<(String, String, String)> =
        catalog(&files).packages.into_iter().map(|p| (p.name, p.version, p.path)).collect();
    assert_eq!(
        found,
        [
            ("lodash", "4.17.20", "app/node_modules/lodash/package.json"),
            ("minimist", "1.2.5", "app/package-lock.json"),
            ("real-name", "2.0.0", "app/package-lock.json"),
        ]
        .map(|(n, v, p)| (n.to_owned(), v.to_owned(), p.to_owned())),
        "a lock file inside node_modules is a dependency's, not the image's"
    );
}
