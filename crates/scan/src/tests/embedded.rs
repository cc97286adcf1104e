//! Packages embedded in files, from binaries the real toolchains build here (a Go binary with a
//! module from a local module proxy; a Rust binary built with cargo-auditable), skipped and said
//! so where a toolchain is missing; and Java archives inside a layer.

use std::path::Path;
use std::process::Command;

use super::*;

/// A layer of regular files with their modes.
fn layer_of(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        builder.append_data(&mut header, path, *data).expect("file");
    }
    builder.into_inner().expect("tar")
}

/// The inventory of an image of one layer, with inspection on, as the registry scans.
fn scanned(layer: &[u8]) -> Inventory {
    let mut files = ImageFiles::new(Limits::default()).inspecting(inspected);
    files.add_layer("sha256:layer", layer, &wanted).expect("layer");
    catalog(&files)
}

fn packages_of(inventory: &Inventory, kind: PackageKind) -> Vec<(String, String)> {
    inventory
        .packages
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

/// Runs a program, or `None` (with a SKIP line) when it cannot run here.
fn runs(test: &str, program: &str, args: &[&str]) -> Option<String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => {
            skip(
                test,
                &format!("`{program} {}` does not run here (the test command installs it)", args.join(" ")),
            );
            None
        }
    }
}

fn write(path: &Path, text: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("write");
}

fn osv_record(ecosystem: &str, name: &str, fixed: &str) -> osv::Record {
    let json = serde_json::json!({
        "id": format!("TEST-{name}"), "modified": "2026-12-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name},
                      "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    });
    osv::Record::parse(json.to_string().as_bytes()).expect("record")
}

#[test]
fn a_go_binary_names_its_modules_and_the_standard_library() {
    let test = "a_go_binary_names_its_modules_and_the_standard_library";
    let Some(go_version) = runs(test, "go", &["env", "GOVERSION"]) else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path();
    // A module served by a module proxy on disk, so the build needs no network.
    let proxy = root.join("proxy/example.com/lib/@v");
    write(&proxy.join("list"), b"v1.2.3\n");
    write(&proxy.join("v1.2.3.info"), br#"{"Version":"v1.2.3","Time":"2026-01-01T00:00:00Z"}"#);
    write(&proxy.join("v1.2.3.mod"), b"module example.com/lib\n\ngo 1.18\n");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in [
        ("example.com/lib@v1.2.3/go.mod", "module example.com/lib\n\ngo 1.18\n"),
        ("example.com/lib@v1.2.3/lib.go", "package lib\n\nfunc Hello() string { return \"hello\" }\n"),
    ] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).expect("member");
        std::io::Write::write_all(&mut zip, text.as_bytes()).expect("write");
    }
    write(&proxy.join("v1.2.3.zip"), &zip.finish().expect("zip").into_inner());
    let app = root.join("app");
    write(&app.join("go.mod"), b"module example.com/app\n\ngo 1.18\n\nrequire example.com/lib v1.2.3\n");
    write(
        &app.join("main.go"),
        b"package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\nfunc main() { fmt.Println(lib.Hello()) }\n",
    );
    let built = Command::new("go")
        .args(["build", "-o", "app", "."])
        .current_dir(&app)
        .env("GOPROXY", format!("file://{}", root.join("proxy").display()))
        .env("GOFLAGS", "-mod=mod")
        .env("GOSUMDB", "off")
        .env("GOPATH", root.join("gopath"))
        .env("GOCACHE", root.join("cache"))
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("go build");
    assert!(built.status.success(), "go build: {}", String::from_utf8_lossy(&built.stderr));
    let binary = std::fs::read(app.join("app")).expect("the binary");

    let inventory = scanned(&layer_of(&[("usr/local/bin/app", &binary, 0o755)]));
    let stdlib = go_version.trim().trim_start_matches("go").to_owned();
    let stdlib = if stdlib.matches('.').count() == 1 { format!("{stdlib}.0") } else { stdlib };
    assert_eq!(
        packages_of(&inventory, PackageKind::Go),
        [("example.com/lib".to_owned(), "1.2.3".to_owned()), ("stdlib".to_owned(), stdlib)],
        "the main module, built from its folder, has no version and is left out"
    );
    let lib = inventory.packages.iter().find(|p| p.name == "example.com/lib").expect("lib");
    assert_eq!((lib.layer.as_str(), lib.path.as_str()), ("sha256:layer", "usr/local/bin/app"));

    // Matched as the Go ecosystem's advisories name modules, below the fix only.
    let mut advisories = Advisories::default();
    advisories.add(osv_record("Go", "example.com/lib", "1.2.4"));
    let findings = advisories.findings(&inventory);
    assert_eq!(findings.iter().map(|f| f.package.as_str()).collect::<Vec<_>>(), ["example.com/lib"]);
    let mut fixed = Advisories::default();
    fixed.add(osv_record("Go", "example.com/lib", "1.2.3"));
    assert!(fixed.findings(&inventory).is_empty(), "1.2.3 is the fixed version");

    // The same bytes without an execute bit are not a program: nothing is looked for.
    assert!(packages_of(&scanned(&layer_of(&[("srv/app", &binary, 0o644)])), PackageKind::Go).is_empty());
}

#[test]
fn a_rust_binary_built_with_cargo_auditable_names_its_crates_io_crates() {
    let test = "a_rust_binary_built_with_cargo_auditable_names_its_crates_io_crates";
    if runs(test, "cargo", &["auditable", "--version"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let project = work.path().join("audited");
    write(
        &project.join("Cargo.toml"),
        b"[package]\nname = \"audited\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nhex = \"=0.4.3\"\n\n[workspace]\n",
    );
    write(&project.join("src/main.rs"), b"fn main() { println!(\"{}\", hex::encode([1u8, 2])); }\n");
    // hex is one of berth's own dependencies, so the build needs no network.
    let built = Command::new("cargo")
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", work.path().join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo auditable build");
    assert!(built.status.success(), "cargo auditable build: {}", String::from_utf8_lossy(&built.stderr));
    let binary = std::fs::read(work.path().join("target/debug/audited")).expect("the binary");

    let inventory = scanned(&layer_of(&[("usr/bin/audited", &binary, 0o755)]));
    assert_eq!(
        packages_of(&inventory, PackageKind::Cargo),
        [("hex".to_owned(), "0.4.3".to_owned())],
        "the binary's own crate is not from crates.io and is left out"
    );
    let mut advisories = Advisories::default();
    advisories.add(osv_record("crates.io", "hex", "0.4.4"));
    assert_eq!(advisories.findings(&inventory).len(), 1);
}

#[test]
fn java_archives_in_a_layer_give_their_libraries_and_whiteouts_hide_them() {
    let archive = |members: &[(&str, &[u8])]| {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).expect("member");
            std::io::Write::write_all(&mut zip, bytes).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    };
    let pom = b"groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n";
    let log4j = archive(&[("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties", pom)]);
    let war = archive(&[("WEB-INF/lib/log4j-core-2.14.1.jar", &log4j)]);
    let lower = layer_of(&[("opt/app/app.war", &war, 0o644), ("opt/tools/log4j.jar", &log4j, 0o644)]);
    let mut files = ImageFiles::new(Limits::default()).inspecting(inspected);
    files.add_layer("sha256:lower", lower.as_slice(), &wanted).expect("lower");
    let inventory = catalog(&files);
    let found: Vec<(&str, &str)> =
        inventory.packages.iter().map(|p| (p.path.as_str(), p.name.as_str())).collect();
    assert_eq!(
        found,
        [
            ("opt/app/app.war", "org.apache.logging.log4j:log4j-core"),
            ("opt/tools/log4j.jar", "org.apache.logging.log4j:log4j-core")
        ]
    );
    let mut advisories = Advisories::default();
    let record = serde_json::json!({
        "id": "GHSA-jfh8-c2jp-5v3q", "aliases": ["CVE-2021-44228"], "modified": "2026-12-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}]}]}]
    });
    advisories.add(osv::Record::parse(record.to_string().as_bytes()).expect("record"));
    let findings = advisories.findings(&inventory);
    assert_eq!(findings.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["CVE-2021-44228"]);

    // A later layer deletes the tool: its library goes with it.
    let mut upper = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_entry_type(tar::EntryType::Regular);
    upper.append_data(&mut header, "opt/tools/.wh.log4j.jar", std::io::empty()).expect("whiteout");
    let upper = upper.into_inner().expect("tar");
    files.add_layer("sha256:upper", upper.as_slice(), &wanted).expect("upper");
    let left: Vec<String> = catalog(&files).packages.into_iter().map(|p| p.path).collect();
    assert_eq!(left, ["opt/app/app.war"]);
}
