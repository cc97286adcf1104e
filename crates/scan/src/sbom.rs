//! An inventory as a CycloneDX 1.5 SBOM (JSON): one component per package, named by its
//! package URL.

use serde_json::{Value, json};

use crate::{Inventory, Package, PackageKind};

/// The package URL of a distribution package (`pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12`).
pub fn purl(package: &Package, inventory: &Inventory) -> String {
    let (kind, namespace) = match package.kind {
        PackageKind::Dpkg => ("deb", inventory.distro.as_ref().map_or("debian", |d| d.id.as_str())),
        PackageKind::Apk => ("apk", inventory.distro.as_ref().map_or("alpine", |d| d.id.as_str())),
        // Without a distribution there is no vendor to name: the namespace is left out.
        PackageKind::Rpm => ("rpm", inventory.distro.as_ref().map_or("", |d| d.id.as_str())),
        PackageKind::Cargo => return format!("pkg:cargo/{}@{}", package.name, package.version),
        PackageKind::Go => return format!("pkg:golang/{}@v{}", package.name, package.version),
        PackageKind::Maven => {
            let (group, artifact) = package.name.split_once(':').unwrap_or(("", &package.name));
            return format!("pkg:maven/{group}/{artifact}@{}", package.version);
        }
        PackageKind::Npm => {
            return format!("pkg:npm/{}@{}", package.name.replace('@', "%40"), package.version);
        }
        PackageKind::Python => {
            return format!("pkg:pypi/{}@{}", crate::normalize_python_name(&package.name), package.version);
        }
    };
    let escape = |text: &str| text.replace('%', "%25").replace('+', "%2B").replace(':', "%3A");
    let mut qualifiers = Vec::new();
    if let Some(arch) = &package.architecture {
        qualifiers.push(format!("arch={}", escape(arch)));
    }
    if let Some(distro) = &inventory.distro {
        qualifiers.push(format!("distro={}-{}", distro.id, distro.version_id));
    }
    let mut version = package.version.as_str();
    // An rpm epoch is a qualifier of the package URL, not part of its version.
    if package.kind == PackageKind::Rpm
        && let Some((epoch, rest)) = version.split_once(':')
        && !epoch.is_empty()
        && epoch.bytes().all(|b| b.is_ascii_digit())
    {
        qualifiers.push(format!("epoch={epoch}"));
        version = rest;
    }
    let query = if qualifiers.is_empty() { String::new() } else { format!("?{}", qualifiers.join("&")) };
    let namespace = if namespace.is_empty() { String::new() } else { format!("{namespace}/") };
    format!("pkg:{kind}/{namespace}{}@{}{query}", escape(&package.name), escape(version))
}

/// The SBOM of the image `digest` (`sha256:...`) whose inventory this is.
pub fn cyclonedx(inventory: &Inventory, image: &str, name: &str) -> Value {
    let components: Vec<Value> = inventory
        .packages
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let mut properties = vec![
                json!({"name": "berth:layer", "value": p.layer}),
                json!({"name": "berth:path", "value": p.path}),
            ];
            if p.source_name != p.name || p.source_version != p.version {
                properties.push(json!({"name": "berth:source", "value": format!("{} {}", p.source_name, p.source_version)}));
            }
            json!({
                "type": "library",
                // The same package may be installed in several places: each is its own component.
                "bom-ref": format!("{}#{n}", purl(p, inventory)),
                "name": p.name,
                "version": p.version,
                "purl": purl(p, inventory),
                "properties": properties,
            })
        })
        .collect();
    let mut root = json!({"type": "container", "bom-ref": image, "name": name, "version": image});
    if let Some(distro) = &inventory.distro {
        root["properties"] =
            json!([{"name": "berth:os", "value": format!("{} {}", distro.id, distro.version_id)}]);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": root, "tools": {"components": [{"type": "application", "name": "berth"}]}},
        "components": components,
    })
}
