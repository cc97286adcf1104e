//! Property tests over untrusted input: every parser answers arbitrary bytes with a value or an
//! `InvalidInput`, never a panic, and what it accepts prints back to the same text.

use proptest::prelude::*;

use crate::{AccountId, Digest, Manifest, Reference, RepositoryName, Tag};

const VALID_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":3,"annotations":{"a":"b"}}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":4}}"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn identifiers_never_panic_and_round_trip(s in "\\PC{0,300}") {
        if let Ok(d) = s.parse::<Digest>() { prop_assert_eq!(d.to_string(), s.clone()); }
        if let Ok(n) = s.parse::<RepositoryName>() { prop_assert_eq!(n.to_string(), s.clone()); }
        if let Ok(t) = s.parse::<Tag>() { prop_assert_eq!(t.to_string(), s.clone()); }
        if let Ok(r) = s.parse::<Reference>() { prop_assert_eq!(r.to_string(), s.clone()); }
        if let Ok(a) = s.parse::<AccountId>() { prop_assert_eq!(a.to_string(), s.clone()); }
    }

    #[test]
    fn name_like_strings_never_panic(s in "[a-z0-9._/-]{0,260}") {
        let _ = s.parse::<RepositoryName>();
    }

    #[test]
    fn arbitrary_bytes_are_not_a_manifest_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), ct in proptest::option::of("\\PC{0,80}")) {
        let _ = Manifest::parse(&bytes, ct.as_deref());
    }

    #[test]
    fn mutated_manifests_never_panic(flips in proptest::collection::vec((0..VALID_MANIFEST.len(), any::<u8>()), 1..8)) {
        let mut bytes = VALID_MANIFEST.as_bytes().to_vec();
        for (at, value) in flips {
            bytes[at] = value;
        }
        let _ = Manifest::parse(&bytes, None);
    }

    #[test]
    fn truncated_manifests_never_panic(cut in 0..VALID_MANIFEST.len()) {
        let _ = Manifest::parse(&VALID_MANIFEST.as_bytes()[..cut], None);
    }
}

#[test]
fn the_seed_manifest_is_valid() {
    assert!(Manifest::parse(VALID_MANIFEST.as_bytes(), None).is_ok());
}
