//! Parsing and validation of the manifests berth stores: OCI image manifests and indexes,
//! Docker schema 2 manifests and manifest lists, and OCI 1.1 artifacts.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Digest, InvalidInput};

/// Largest manifest accepted, as ECR's `ImageManifest` limit.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

/// Whether a manifest lists blobs (an image or artifact) or other manifests (an index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

impl ManifestKind {
    fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST => Some(Self::Image),
            media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST => Some(Self::Index),
            _ => None,
        }
    }
}

/// A content descriptor: what a manifest says about a blob or another manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub urls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
}

/// Reads an explicit JSON `null` as the empty value, as clients send for absent fields.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Descriptor {
    /// Foreign and non-distributable layers live elsewhere (their `urls`); a registry does not
    /// hold them, so a manifest referencing them is not refused for their absence.
    pub fn is_external(&self) -> bool {
        !self.urls.is_empty()
            && (self.media_type.contains("foreign") || self.media_type.contains("nondistributable"))
    }
}

/// The wire shape, with every field optional so that the checks below can say what is missing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    #[serde(default, deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

/// A validated manifest and the facts the registry needs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    pub media_type: String,
    /// The type a referrers listing reports: `artifactType`, else an image's config media type.
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses manifest bytes sent with the given `Content-Type` (if any).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Self, InvalidInput> {
        let bad = |reason: String| InvalidInput::new("manifest", reason);
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(bad(format!(
                "{} bytes exceeds the limit of {MAX_MANIFEST_BYTES} bytes",
                bytes.len()
            )));
        }
        let content_type =
            content_type.map(|ct| ct.split(';').next().unwrap_or(ct).trim()).filter(|ct| !ct.is_empty());
        if let Some(ct @ (media_types::DOCKER_SCHEMA1 | media_types::DOCKER_SCHEMA1_SIGNED)) = content_type {
            return Err(bad(format!("{ct} (Docker schema 1) is not supported; push schema 2 or OCI")));
        }
        let raw: RawManifest =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a valid manifest: {e}")))?;
        match raw.schema_version.as_ref().and_then(serde_json::Value::as_u64) {
            Some(2) => {}
            Some(1) => return Err(bad("Docker schema 1 manifests are not supported".to_owned())),
            _ => return Err(bad("schemaVersion must be 2".to_owned())),
        }

        let media_type = match (&raw.media_type, content_type) {
            (Some(body), Some(header)) if body != header && ManifestKind::of_media_type(header).is_some() => {
                return Err(bad(format!("mediaType {body:?} does not match Content-Type {header:?}")));
            }
            (Some(body), _) => body.clone(),
            (None, Some(header)) if ManifestKind::of_media_type(header).is_some() => header.to_owned(),
            (None, _) if raw.manifests.is_some() => media_types::OCI_INDEX.to_owned(),
            (None, _) => media_types::OCI_MANIFEST.to_owned(),
        };
        let kind = ManifestKind::of_media_type(&media_type)
            .ok_or_else(|| bad(format!("unsupported manifest media type {media_type:?}")))?;

        match kind {
            ManifestKind::Image => {
                if raw.manifests.is_some() {
                    return Err(bad("an image manifest cannot list manifests".to_owned()));
                }
                let config = raw
                    .config
                    .ok_or_else(|| bad("an image manifest needs a config descriptor".to_owned()))?;
                let layers = raw.layers.unwrap_or_default();
                let artifact_type = raw.artifact_type.or_else(|| Some(config.media_type.clone()));
                Ok(Self {
                    kind,
                    media_type,
                    artifact_type,
                    config: Some(config),
                    layers,
                    manifests: Vec::new(),
                    subject: raw.subject,
                    annotations: raw.annotations,
                })
            }
            ManifestKind::Index => {
                if raw.config.is_some() || raw.layers.is_some() {
                    return Err(bad("an index cannot have a config or layers".to_owned()));
                }
                let manifests =
                    raw.manifests.ok_or_else(|| bad("an index needs a manifests list".to_owned()))?;
                Ok(Self {
                    kind,
                    media_type,
                    artifact_type: raw.artifact_type,
                    config: None,
                    layers: Vec::new(),
                    manifests,
                    subject: raw.subject,
                    annotations: raw.annotations,
                })
            }
        }
    }

    /// The blobs this manifest needs the repository to hold: its config and layers.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter()).filter(|d| !d.is_external())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":3}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_an_oci_image_manifest() {
        let m =
            Manifest::parse(image("").as_bytes(), Some(media_types::OCI_MANIFEST)).expect("valid manifest");
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.required_blobs().count(), 2);
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
    }

    #[test]
    fn reads_subject_and_artifact_type() {
        let extra = format!(
            r#","artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{}","digest":"{D1}","size":9}}"#,
            media_types::OCI_MANIFEST
        );
        let m = Manifest::parse(image(&extra).as_bytes(), None).expect("valid artifact");
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example.sbom"));
        assert_eq!(m.subject.map(|s| s.digest.to_string()), Some(D1.to_owned()));
    }

    #[test]
    fn parses_an_index() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D1}","size":5}}]}}"#,
            media_types::OCI_INDEX,
            media_types::OCI_MANIFEST
        );
        let m = Manifest::parse(body.as_bytes(), Some(media_types::OCI_INDEX)).expect("index");
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(m.manifests.len(), 1);
        assert_eq!(m.required_blobs().count(), 0);
    }

    #[test]
    fn refuses_bad_manifests_with_a_reason() {
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("not json".to_owned(), None, "not a valid manifest"),
            (r#"{"schemaVersion":1}"#.to_owned(), None, "schema 1"),
            (r#"{"schemaVersion":3}"#.to_owned(), None, "schemaVersion"),
            (image(""), Some(media_types::DOCKER_MANIFEST), "does not match"),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_owned(),
                None,
                "config",
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"text/plain","config":{}}"#.to_owned(),
                None,
                "not a valid manifest",
            ),
            (image("").replace(D2, "sha256:short"), None, "digest"),
            ("{}".to_owned(), Some(media_types::DOCKER_SCHEMA1_SIGNED), "schema 1"),
        ];
        for (body, ct, expected) in cases {
            let err = Manifest::parse(body.as_bytes(), ct).expect_err(&body);
            assert!(err.reason.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn tolerates_unknown_and_null_fields() {
        let body = image(r#","newUnspecifiedField":null,"annotations":null"#)
            .replace(r#""size":3}"#, r#""size":3,"newUnspecifiedField":null,"urls":null}"#);
        let m = Manifest::parse(body.as_bytes(), None).expect("unknown fields are ignored");
        assert!(m.annotations.is_empty());
        assert_eq!(m.layers.len(), 1);
    }

    #[test]
    fn refuses_oversized_manifests() {
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(Manifest::parse(&big, None).is_err());
    }
}
