//! Parses `/v2/...` paths. Repository names contain slashes, so the path is split at the last
//! OCI keyword segment rather than matched by a fixed-depth router.

/// What an OCI path addresses, with its parts still unparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OciPath<'a> {
    Base,
    Catalog,
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    Uploads { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Tags { name: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

/// Parses the path below `/v2` (with its leading slash), or `None` if no route matches.
pub(crate) fn parse(path: &str) -> Option<OciPath<'_>> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return Some(OciPath::Base);
    }
    if rest == "_catalog" {
        return Some(OciPath::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(OciPath::Tags { name });
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        return Some(OciPath::Uploads { name });
    }
    // The last segment is a reference, digest or upload id; the segment(s) before it say which.
    let (head, last) = rest.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Some(OciPath::Upload { name, id: last });
    }
    let (name, keyword) = head.rsplit_once('/')?;
    match keyword {
        "manifests" => Some(OciPath::Manifest { name, reference: last }),
        "blobs" => Some(OciPath::Blob { name, digest: last }),
        "referrers" => Some(OciPath::Referrers { name, digest: last }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route_including_names_with_slashes() {
        let cases = [
            ("/", Some(OciPath::Base)),
            ("", Some(OciPath::Base)),
            ("/_catalog", Some(OciPath::Catalog)),
            ("/000000000000/a/b/tags/list", Some(OciPath::Tags { name: "000000000000/a/b" })),
            ("/0/x/blobs/uploads/", Some(OciPath::Uploads { name: "0/x" })),
            ("/0/x/blobs/uploads", Some(OciPath::Uploads { name: "0/x" })),
            ("/0/x/blobs/uploads/abc-1", Some(OciPath::Upload { name: "0/x", id: "abc-1" })),
            ("/0/x/manifests/v1", Some(OciPath::Manifest { name: "0/x", reference: "v1" })),
            ("/0/manifests/manifests/v1", Some(OciPath::Manifest { name: "0/manifests", reference: "v1" })),
            ("/0/x/blobs/sha256:ab", Some(OciPath::Blob { name: "0/x", digest: "sha256:ab" })),
            ("/0/x/referrers/sha256:ab", Some(OciPath::Referrers { name: "0/x", digest: "sha256:ab" })),
            ("/0/x/manifests/", None),
            ("/0/x/manifests/a/b", None),
            (
                "/0/a/manifests/b/blobs/sha256:ab",
                Some(OciPath::Blob { name: "0/a/manifests/b", digest: "sha256:ab" }),
            ),
            (
                "/0/blobs/uploads/x/manifests/v1",
                Some(OciPath::Manifest { name: "0/blobs/uploads/x", reference: "v1" }),
            ),
            ("/0/x/nothing", None),
        ];
        for (path, expected) in cases {
            assert_eq!(parse(path), expected, "{path}");
        }
    }
}
