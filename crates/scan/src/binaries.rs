//! Packages compiled into executables: the Go modules a Go binary records in its build
//! information (and the Go standard library at the toolchain's version), and the crates a Rust
//! binary built with cargo-auditable records in its `.dep-v0` section.

use std::io::Read;

use serde::Deserialize;

use crate::{Embedded, PackageKind};

/// Starts the build information Go links into every binary: 16-byte aligned, followed by the
/// pointer size, flags and (since Go 1.18) the Go version and module information inline.
const GO_MAGIC: &[u8] = b"\xff Go buildinf:";
const GO_HEADER_BYTES: usize = 32;
/// The flag saying the strings follow the header inline (Go 1.18 and later); before, the header
/// held the addresses of the two strings, found through the binary's segments.
const GO_INLINE_STRINGS: u8 = 0x2;
/// The flag saying those addresses are big-endian.
const GO_BIG_ENDIAN: u8 = 0x1;
/// The longest string of build information read (module lists run to kilobytes).
const MAX_GO_STRING: u64 = 4 * 1024 * 1024;
/// Build information headers looked at in one binary (a real one has one).
const MAX_GO_HEADERS_TRIED: usize = 16;
/// The longest decompressed cargo-auditable record read.
const MAX_AUDIT_JSON: u64 = 8 * 1024 * 1024;
/// The longest name or version kept.
const MAX_FIELD: usize = 512;

/// Whether the bytes are an executable format a compiler writes (ELF, Mach-O, PE).
fn is_executable(bytes: &[u8]) -> bool {
    const MACHO: [[u8; 4]; 4] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"MZ") || MACHO.iter().any(|m| bytes.starts_with(m))
}

/// The packages compiled into an executable; nothing for any other file.
pub(crate) fn inspect(_path: &str, bytes: &[u8]) -> Vec<Embedded> {
    if !is_executable(bytes) {
        return Vec::new();
    }
    let mut found = go_packages(bytes);
    found.extend(audited_crates(bytes));
    found
}

/// A name or version as found, if it is a plausible one.
fn field(text: &str) -> Option<String> {
    (!text.is_empty() && text.len() <= MAX_FIELD && !text.chars().any(char::is_control))
        .then(|| text.to_owned())
}

fn embedded(kind: PackageKind, name: &str, version: &str) -> Option<Embedded> {
    let (name, version) = (field(name)?, field(version)?);
    Some(Embedded { kind, matched_name: name.clone(), name, version })
}

/// The Go modules of a binary's build information, and the standard library.
fn go_packages(bytes: &[u8]) -> Vec<Embedded> {
    // Go aligns the header to 16 bytes; a binary full of look-alikes gets a bounded number of tries.
    let aligned = memchr::memmem::find_iter(bytes, GO_MAGIC).filter(|at| at % 16 == 0);
    for at in aligned.take(MAX_GO_HEADERS_TRIED) {
        if let Some((go_version, modules)) = go_build_info(bytes, at) {
            let mut found = go_modules(&modules);
            if let Some(stdlib) = go_version_as_semver(&go_version) {
                found.extend(embedded(PackageKind::Go, "stdlib", &stdlib));
            }
            return found;
        }
    }
    Vec::new()
}

/// The Go version and module information of the build information header at `at`.
fn go_build_info(bytes: &[u8], at: usize) -> Option<(String, String)> {
    let header = bytes.get(at..)?.get(..GO_HEADER_BYTES)?;
    let flags = *header.get(15)?;
    let (version, modules) = if flags & GO_INLINE_STRINGS != 0 {
        let mut rest = bytes.get(at + GO_HEADER_BYTES..)?;
        (go_string(&mut rest)?, go_string(&mut rest)?)
    } else {
        go_strings_by_address(bytes, header)?
    };
    Some((String::from_utf8_lossy(version).into_owned(), String::from_utf8_lossy(modules).into_owned()))
}

/// Before Go 1.18: the header holds the addresses of two Go string headers (address, length),
/// each pointer `header[14]` bytes wide, found through the binary's loaded segments.
fn go_strings_by_address<'a>(bytes: &'a [u8], header: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    use object::{Object, ObjectSegment};
    let width = usize::from(*header.get(14)?);
    let big_endian = header.get(15)? & GO_BIG_ENDIAN != 0;
    let pointer = |b: &[u8]| -> Option<u64> {
        match (width, big_endian) {
            (8, false) => Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)),
            (8, true) => Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?)),
            (4, false) => Some(u64::from(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))),
            (4, true) => Some(u64::from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))),
            _ => None,
        }
    };
    let file = object::File::parse(bytes).ok()?;
    let at_address = |address: u64, length: u64| -> Option<&'a [u8]> {
        file.segments().find_map(|segment| {
            let offset = address.checked_sub(segment.address())?;
            let (file_offset, file_size) = segment.file_range();
            if offset.checked_add(length)? > file_size {
                return None;
            }
            let start = usize::try_from(file_offset.checked_add(offset)?).ok()?;
            bytes.get(start..start.checked_add(usize::try_from(length).ok()?)?)
        })
    };
    let string = |header_address: u64| -> Option<&'a [u8]> {
        let string_header = at_address(header_address, 2 * width as u64)?;
        let (data, length) = (pointer(string_header)?, pointer(string_header.get(width..)?)?);
        if length > MAX_GO_STRING {
            return None;
        }
        at_address(data, length)
    };
    let version = string(pointer(header.get(16..)?)?)?;
    let modules = string(pointer(header.get(16 + width..)?)?)?;
    Some((version, modules))
}

/// A string as Go's linker writes it: its length as an unsigned varint, then its bytes.
fn go_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut length: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        length |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    if length > MAX_GO_STRING {
        return None;
    }
    let length = usize::try_from(length).ok()?;
    let (string, tail) = (rest.get(..length)?, rest.get(length..)?);
    *rest = tail;
    Some(string)
}

/// The modules of Go's module information (`mod` the main module, `dep` each dependency, `=>`
/// the replacement of the line before), at their versions less the `v` OSV leaves out. The
/// main module built from a working tree (`(devel)`) and modules replaced by a local folder
/// have no version and are left out.
fn go_modules(info: &str) -> Vec<Embedded> {
    // The linker frames the text with 16 bytes on each side.
    let info = match info.len() {
        n if n >= 33 && info.as_bytes().get(n - 17) == Some(&b'\n') => info.get(16..n - 16).unwrap_or(info),
        _ => info,
    };
    let mut modules: Vec<(String, String)> = Vec::new();
    for line in info.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => modules.push(((*path).to_owned(), (*version).to_owned())),
            ["=>", path, version, ..] => {
                if let Some(last) = modules.last_mut() {
                    *last = ((*path).to_owned(), (*version).to_owned());
                }
            }
            ["=>", ..] => {
                modules.pop();
            }
            _ => {}
        }
    }
    modules
        .iter()
        .filter(|(_, version)| version.starts_with('v'))
        .filter_map(|(path, version)| embedded(PackageKind::Go, path, version.trim_start_matches('v')))
        .collect()
}

/// A Go toolchain version (`go1.22.3`, `go1.21rc2`, `go1.20`, maybe with build settings after a
/// space) as the semantic version OSV gives the standard library (`1.22.3`, `1.21.0-rc.2`,
/// `1.20.0`); `None` for a development toolchain.
fn go_version_as_semver(version: &str) -> Option<String> {
    let number = version.split_whitespace().next()?.strip_prefix("go")?;
    let (release, pre) = match number.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => number.split_at(at),
        None => (number, ""),
    };
    let mut parts: Vec<&str> = release.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    let release = parts.join(".");
    match pre.find(|c: char| c.is_ascii_digit()) {
        _ if pre.is_empty() => Some(release),
        Some(at) => {
            let (label, n) = pre.split_at(at);
            Some(format!("{release}-{label}.{n}"))
        }
        None => None,
    }
}

#[derive(Deserialize)]
struct AuditRecord {
    packages: Vec<AuditedCrate>,
}

#[derive(Deserialize)]
struct AuditedCrate {
    name: String,
    version: String,
    source: String,
    /// `build` for crates used only to build (not in the binary); absent or `runtime` otherwise.
    #[serde(default)]
    kind: Option<String>,
}

/// The crates.io crates a binary built with cargo-auditable records: zlib-compressed JSON in
/// its `.dep-v0` section. Crates from git or local paths have no advisories there; crates only
/// used to build it are not in it.
fn audited_crates(bytes: &[u8]) -> Vec<Embedded> {
    use object::{Object, ObjectSection};
    let Ok(file) = object::File::parse(bytes) else { return Vec::new() };
    let section = file.section_by_name(".dep-v0").or_else(|| file.section_by_name("__dep_v0"));
    let Some(compressed) = section.and_then(|s| s.data().ok()) else { return Vec::new() };
    let mut json = Vec::new();
    let decoder = flate2::read::ZlibDecoder::new(compressed);
    if decoder.take(MAX_AUDIT_JSON).read_to_end(&mut json).is_err() {
        return Vec::new();
    }
    let Ok(record) = serde_json::from_slice::<AuditRecord>(&json) else { return Vec::new() };
    record
        .packages
        .iter()
        .filter(|c| c.source == "crates.io" && c.kind.as_deref() != Some("build"))
        .filter_map(|c| embedded(PackageKind::Cargo, &c.name, &c.version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_become_the_standard_librarys_semantic_versions() {
        for (go, semver) in [
            ("go1.22.3", Some("1.22.3")),
            ("go1.20", Some("1.20.0")),
            ("go1.21rc2", Some("1.21.0-rc.2")),
            ("go1.19.8 X:boringcrypto", Some("1.19.8")),
            ("devel go1.23-abc", None),
            ("go1..2", None),
            ("gox", None),
        ] {
            assert_eq!(go_version_as_semver(go).as_deref(), semver, "{go}");
        }
    }

    #[test]
    fn module_information_gives_each_module_at_its_replacement() {
        let info = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
                    dep\tgolang.org/x/net\tv0.17.0\th1:abc=\n\
                    dep\tgithub.com/a/b\tv1.0.0\th1:x=\n=>\tgithub.com/fork/b\tv1.0.1\th1:y=\n\
                    dep\tgithub.com/c/d\tv2.0.0+incompatible\th1:z=\n\
                    dep\tgithub.com/local/e\tv1.2.0\th1:w=\n=>\t../e\t\t\n\
                    build\t-compiler=gc\n";
        let found: Vec<(String, String)> =
            go_modules(info).into_iter().map(|e| (e.name, e.version)).collect();
        assert_eq!(
            found,
            [
                ("golang.org/x/net".to_owned(), "0.17.0".to_owned()),
                ("github.com/fork/b".to_owned(), "1.0.1".to_owned()),
                ("github.com/c/d".to_owned(), "2.0.0+incompatible".to_owned()),
            ]
        );
    }

    /// A minimal 64-bit little-endian ELF executable: one loaded segment at 0x400000 holding
    /// the whole file, as Go before 1.18 lays out its build information: a header with the
    /// addresses of two string headers, which hold the addresses of the strings.
    fn elf_with_addressed_build_info(version: &str, modules: &str) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let mut file = vec![0u8; 0x200];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // 64-bit
        file[5] = 1; // little-endian
        file[6] = 1; // version
        file[16..18].copy_from_slice(&2u16.to_le_bytes()); // an executable
        file[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        file[20..24].copy_from_slice(&1u32.to_le_bytes());
        file[32..40].copy_from_slice(&64u64.to_le_bytes()); // program headers right after
        file[52..54].copy_from_slice(&64u16.to_le_bytes()); // header size
        file[54..56].copy_from_slice(&56u16.to_le_bytes()); // program header size
        file[56..58].copy_from_slice(&1u16.to_le_bytes()); // one
        file[58..60].copy_from_slice(&64u16.to_le_bytes()); // section header size
        // The build information header at 0x100; string headers at 0x120 and 0x130; strings at 0x140.
        let info = 0x100;
        file[info..info + 14].copy_from_slice(GO_MAGIC);
        file[info + 14] = 8;
        file[info + 15] = 0;
        file[info + 16..info + 24].copy_from_slice(&(BASE + 0x120).to_le_bytes());
        file[info + 24..info + 32].copy_from_slice(&(BASE + 0x130).to_le_bytes());
        let version_at = 0x140u64;
        let modules_at = version_at + version.len() as u64;
        file[0x120..0x128].copy_from_slice(&(BASE + version_at).to_le_bytes());
        file[0x128..0x130].copy_from_slice(&(version.len() as u64).to_le_bytes());
        file[0x130..0x138].copy_from_slice(&(BASE + modules_at).to_le_bytes());
        file[0x138..0x140].copy_from_slice(&(modules.len() as u64).to_le_bytes());
        file.truncate(0x140);
        file.extend_from_slice(version.as_bytes());
        file.extend_from_slice(modules.as_bytes());
        let length = file.len() as u64;
        let segment = 64;
        file[segment..segment + 4].copy_from_slice(&1u32.to_le_bytes()); // loaded
        file[segment + 4..segment + 8].copy_from_slice(&5u32.to_le_bytes()); // r-x
        file[segment + 16..segment + 24].copy_from_slice(&BASE.to_le_bytes()); // virtual address
        file[segment + 24..segment + 32].copy_from_slice(&BASE.to_le_bytes()); // physical
        file[segment + 32..segment + 40].copy_from_slice(&length.to_le_bytes()); // in the file
        file[segment + 40..segment + 48].copy_from_slice(&length.to_le_bytes()); // in memory
        file
    }

    #[test]
    fn build_information_before_go_1_18_is_found_through_its_addresses() {
        let modules = "path\tapp\nmod\tapp\t(devel)\t\ndep\tgithub.com/gorilla/websocket\tv1.4.0\th1:x=\n";
        let binary = elf_with_addressed_build_info("go1.16.15", modules);
        let found: Vec<(String, String)> =
            inspect("bin/app", &binary).into_iter().map(|e| (e.name, e.version)).collect();
        assert_eq!(
            found,
            [
                ("github.com/gorilla/websocket".to_owned(), "1.4.0".to_owned()),
                ("stdlib".to_owned(), "1.16.15".to_owned())
            ]
        );
        // An address outside every segment reads nothing rather than anything.
        let mut stray = binary;
        stray[0x120..0x128].copy_from_slice(&0x9999_0000u64.to_le_bytes());
        let found = inspect("bin/app", &stray);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn varint_strings_are_bounded_by_what_is_there() {
        let mut rest: &[u8] = &[3, b'a', b'b', b'c', 1];
        assert_eq!(go_string(&mut rest), Some(&b"abc"[..]));
        assert_eq!(go_string(&mut rest), None, "a length past the end");
        let mut huge: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(go_string(&mut huge), None);
        let mut endless: &[u8] = &[0x80; 20];
        assert_eq!(go_string(&mut endless), None);
    }
}
