//! Renders [`RegistryError`] as the OCI error body `{"errors":[{"code","message","detail"}]}`.

use axum::response::{IntoResponse, Response};
use berth_registry::RegistryError;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// Challenge sent with every 401: Basic, as ECR's registry endpoint does.
pub(crate) const CHALLENGE: &str = r#"Basic realm="berth",service="ecr.amazonaws.com""#;

/// A registry error on its way to an OCI client, with the upload context a 416 needs.
pub(crate) struct OciError {
    pub(crate) error: RegistryError,
    /// `Location` of the upload a range error refers to.
    pub(crate) upload_location: Option<String>,
    /// A status that replaces the error's own (for routing answers: 404, 405).
    pub(crate) status: Option<StatusCode>,
}

impl From<RegistryError> for OciError {
    fn from(error: RegistryError) -> Self {
        Self { error, upload_location: None, status: None }
    }
}

impl OciError {
    /// A path that names no endpoint of the API.
    pub(crate) fn no_such_endpoint(path: &str) -> Self {
        let error = RegistryError::Unsupported(format!("no such endpoint: {path}"));
        Self { error, upload_location: None, status: Some(StatusCode::NOT_FOUND) }
    }

    /// An endpoint asked with a method it does not serve.
    pub(crate) fn method_not_allowed(method: &http::Method) -> Self {
        let error = RegistryError::Unsupported(format!("{method} is not allowed on this endpoint"));
        Self { error, upload_location: None, status: Some(StatusCode::METHOD_NOT_ALLOWED) }
    }
}

fn status_and_code(error: &RegistryError) -> (StatusCode, &'static str) {
    use RegistryError as E;
    match error {
        E::Unauthenticated(_) | E::Signature(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
        E::Denied(_) => (StatusCode::FORBIDDEN, "DENIED"),
        E::NameUnknown { .. } => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        E::NameInvalid(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID"),
        E::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        E::ListedByIndex { .. } => (StatusCode::CONFLICT, "UNSUPPORTED"),
        E::ManifestInvalid(_) => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        E::ManifestBlobUnknown { .. } => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
        E::TagInvalid(_) | E::TagImmutable(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        E::ImageNotFound(_) | E::ImageArchived(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        E::LayersNotFound(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        E::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        E::UploadUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        E::DigestInvalid(_) | E::InvalidLayer(_) | E::ImageDigestMismatch(_) => {
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        }
        // The tags-per-image quota is the one limit an OCI request can reach (a manifest PUT).
        E::LimitExceeded(_) => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        E::RangeInvalid { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"),
        E::TooManyUploads(_) | E::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "TOOMANYREQUESTS"),
        E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
        E::BodyInterrupted(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
        E::Unsupported(_) => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        // Control-plane refusals; the OCI surface does not produce them, but maps them sensibly.
        E::RepositoryAlreadyExists { .. }
        | E::RepositoryNotEmpty { .. }
        | E::InvalidParameter(_)
        | E::ImageAlreadyExists(_)
        | E::LayerAlreadyExists(_)
        | E::EmptyUpload(_)
        | E::TooManyTags(_)
        | E::TemplateAlreadyExists(_)
        | E::TemplateNotFound(_)
        | E::RepositoryPolicyNotFound(_)
        | E::RegistryPolicyNotFound(_)
        | E::LifecyclePolicyNotFound(_)
        | E::LifecyclePolicyPreviewInProgress(_)
        | E::LifecyclePolicyPreviewNotFound(_)
        | E::ImageStorageClassUpdateNotSupported(_)
        | E::ScanNotFound(_)
        | E::Validation { .. }
        | E::Kms { .. } => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        // Refusals of the ECR layer API; OCI uploads are not held to its part rules.
        E::InvalidLayerPart(_) | E::LayerPartTooSmall(_) => (StatusCode::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
        E::LayerInaccessible(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        // Not the client's fault and not the server's: the key guarding the repository is
        // unusable (disabled, deleted, unreachable) until its owner or its service restores it.
        E::KeyFailure { .. } => (StatusCode::SERVICE_UNAVAILABLE, "KEY_UNAVAILABLE"),
        E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self.error);
        let status = self.status.unwrap_or(status);
        let message = match &self.error {
            RegistryError::Internal(cause) => {
                // The cause is for the operator; the client learns only that it was not its fault.
                tracing::error!(error = %cause, "request failed");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let detail = match &self.error {
            RegistryError::ManifestBlobUnknown { blobs, manifests } => json!(
                blobs.iter().chain(manifests).map(|d| json!({ "digest": d.to_string() })).collect::<Vec<_>>()
            ),
            RegistryError::BlobUnknown(digest) => json!({ "digest": digest.to_string() }),
            _ => serde_json::Value::Null,
        };
        let body = json!({ "errors": [{ "code": code, "message": message, "detail": detail }] });
        let mut response = (status, axum::Json(body)).into_response();
        response.extensions_mut().insert(crate::audit::ErrorFacts { code: code.to_owned(), message });
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        if let RegistryError::RangeInvalid { length, .. } = &self.error {
            if let Ok(v) = HeaderValue::from_str(&super::upload_range(*length)) {
                headers.insert(header::RANGE, v);
            }
            if let Some(location) =
                self.upload_location.as_deref().and_then(|l| HeaderValue::from_str(l).ok())
            {
                headers.insert(header::LOCATION, location);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use berth_registry::RegistryError;
    use http::StatusCode;

    use super::status_and_code;

    #[test]
    fn ecr_only_refusals_keep_their_oci_codes() {
        // A digest mismatch stays DIGEST_INVALID on the OCI surface, whatever ECR calls it.
        for error in [
            RegistryError::DigestInvalid("x".to_owned()),
            RegistryError::InvalidLayer("x".to_owned()),
            RegistryError::ImageDigestMismatch("x".to_owned()),
        ] {
            assert_eq!(status_and_code(&error), (StatusCode::BAD_REQUEST, "DIGEST_INVALID"), "{error:?}");
        }
        let tags = RegistryError::LimitExceeded("the image has 1000 tags".to_owned());
        assert_eq!(status_and_code(&tags), (StatusCode::BAD_REQUEST, "TAG_INVALID"));
        let missing = RegistryError::ManifestBlobUnknown { blobs: vec![], manifests: vec![] };
        assert_eq!(status_and_code(&missing), (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"));
    }
}
