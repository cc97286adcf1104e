//! The operations of ECR's API model, and the ones berth serves.

/// Every operation in ECR's service model (2015-09-21), as named in `X-Amz-Target`.
const MODEL_OPERATIONS: [&str; 62] = [
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "BatchGetImage",
    "BatchGetRepositoryScanningConfiguration",
    "CompleteLayerUpload",
    "CreatePullThroughCacheRule",
    "CreateRepository",
    "CreateRepositoryCreationTemplate",
    "DeleteLifecyclePolicy",
    "DeletePullThroughCacheRule",
    "DeleteRegistryPolicy",
    "DeleteRepository",
    "DeleteRepositoryCreationTemplate",
    "DeleteRepositoryPolicy",
    "DeleteSigningConfiguration",
    "DeregisterPullTimeUpdateExclusion",
    "DescribeImageReplicationStatus",
    "DescribeImageScanFindings",
    "DescribeImageSigningStatus",
    "DescribeImages",
    "DescribePullThroughCacheRules",
    "DescribeRegistry",
    "DescribeReplicationBackfillResults",
    "DescribeRepositories",
    "DescribeRepositoryCreationTemplates",
    "GetAccountSetting",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "GetLifecyclePolicy",
    "GetLifecyclePolicyPreview",
    "GetRegistryPolicy",
    "GetRegistryScanningConfiguration",
    "GetRepositoryPolicy",
    "GetSigningConfiguration",
    "InitiateLayerUpload",
    "ListImageReferrers",
    "ListImages",
    "ListPullTimeUpdateExclusions",
    "ListReplicationBackfills",
    "ListTagsForResource",
    "PutAccountSetting",
    "PutImage",
    "PutImageScanningConfiguration",
    "PutImageTagMutability",
    "PutLifecyclePolicy",
    "PutRegistryPolicy",
    "PutRegistryScanningConfiguration",
    "PutReplicationConfiguration",
    "PutSigningConfiguration",
    "RegisterPullTimeUpdateExclusion",
    "SetRepositoryPolicy",
    "StartImageScan",
    "StartLifecyclePolicyPreview",
    "StartReplicationBackfill",
    "StopReplicationBackfill",
    "TagResource",
    "UntagResource",
    "UpdateImageStorageClass",
    "UpdatePullThroughCacheRule",
    "UpdateRepositoryCreationTemplate",
    "UploadLayerPart",
    "ValidatePullThroughCacheRule",
];

/// The prefix of `X-Amz-Target` for ECR.
pub(crate) const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// The operations berth serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    BatchCheckLayerAvailability,
    BatchDeleteImage,
    BatchGetImage,
    CompleteLayerUpload,
    CreateRepository,
    CreateRepositoryCreationTemplate,
    DeleteRegistryPolicy,
    DeleteRepository,
    DeleteRepositoryCreationTemplate,
    DeleteRepositoryPolicy,
    DescribeImages,
    DescribeRegistry,
    DescribeRepositories,
    DescribeRepositoryCreationTemplates,
    GetAuthorizationToken,
    GetDownloadUrlForLayer,
    GetRegistryPolicy,
    GetRepositoryPolicy,
    InitiateLayerUpload,
    ListImageReferrers,
    ListImages,
    ListTagsForResource,
    PutImage,
    PutImageScanningConfiguration,
    PutImageTagMutability,
    PutRegistryPolicy,
    SetRepositoryPolicy,
    TagResource,
    UntagResource,
    UpdateRepositoryCreationTemplate,
    UploadLayerPart,
    PutLifecyclePolicy,
    GetLifecyclePolicy,
    DeleteLifecyclePolicy,
    StartLifecyclePolicyPreview,
    GetLifecyclePolicyPreview,
    UpdateImageStorageClass,
    StartImageScan,
    DescribeImageScanFindings,
    PutRegistryScanningConfiguration,
    GetRegistryScanningConfiguration,
    BatchGetRepositoryScanningConfiguration,
}

impl Operation {
    pub(crate) const SERVED: [Self; 42] = [
        Self::BatchCheckLayerAvailability,
        Self::BatchDeleteImage,
        Self::BatchGetImage,
        Self::CompleteLayerUpload,
        Self::CreateRepository,
        Self::CreateRepositoryCreationTemplate,
        Self::DeleteRegistryPolicy,
        Self::DeleteRepository,
        Self::DeleteRepositoryCreationTemplate,
        Self::DeleteRepositoryPolicy,
        Self::DescribeImages,
        Self::DescribeRegistry,
        Self::DescribeRepositories,
        Self::DescribeRepositoryCreationTemplates,
        Self::GetAuthorizationToken,
        Self::GetDownloadUrlForLayer,
        Self::GetRegistryPolicy,
        Self::GetRepositoryPolicy,
        Self::InitiateLayerUpload,
        Self::ListImageReferrers,
        Self::ListImages,
        Self::ListTagsForResource,
        Self::PutImage,
        Self::PutImageScanningConfiguration,
        Self::PutImageTagMutability,
        Self::PutRegistryPolicy,
        Self::SetRepositoryPolicy,
        Self::TagResource,
        Self::UntagResource,
        Self::UpdateRepositoryCreationTemplate,
        Self::UploadLayerPart,
        Self::PutLifecyclePolicy,
        Self::GetLifecyclePolicy,
        Self::DeleteLifecyclePolicy,
        Self::StartLifecyclePolicyPreview,
        Self::GetLifecyclePolicyPreview,
        Self::UpdateImageStorageClass,
        Self::StartImageScan,
        Self::DescribeImageScanFindings,
        Self::PutRegistryScanningConfiguration,
        Self::GetRegistryScanningConfiguration,
        Self::BatchGetRepositoryScanningConfiguration,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::BatchCheckLayerAvailability => "BatchCheckLayerAvailability",
            Self::BatchDeleteImage => "BatchDeleteImage",
            Self::BatchGetImage => "BatchGetImage",
            Self::CompleteLayerUpload => "CompleteLayerUpload",
            Self::CreateRepository => "CreateRepository",
            Self::CreateRepositoryCreationTemplate => "CreateRepositoryCreationTemplate",
            Self::DeleteRegistryPolicy => "DeleteRegistryPolicy",
            Self::DeleteRepository => "DeleteRepository",
            Self::DeleteRepositoryCreationTemplate => "DeleteRepositoryCreationTemplate",
            Self::DeleteRepositoryPolicy => "DeleteRepositoryPolicy",
            Self::DescribeImages => "DescribeImages",
            Self::DescribeRegistry => "DescribeRegistry",
            Self::DescribeRepositories => "DescribeRepositories",
            Self::DescribeRepositoryCreationTemplates => "DescribeRepositoryCreationTemplates",
            Self::GetAuthorizationToken => "GetAuthorizationToken",
            Self::GetDownloadUrlForLayer => "GetDownloadUrlForLayer",
            Self::GetRegistryPolicy => "GetRegistryPolicy",
            Self::GetRepositoryPolicy => "GetRepositoryPolicy",
            Self::InitiateLayerUpload => "InitiateLayerUpload",
            Self::ListImageReferrers => "ListImageReferrers",
            Self::ListImages => "ListImages",
            Self::ListTagsForResource => "ListTagsForResource",
            Self::PutImage => "PutImage",
            Self::PutImageScanningConfiguration => "PutImageScanningConfiguration",
            Self::PutImageTagMutability => "PutImageTagMutability",
            Self::PutRegistryPolicy => "PutRegistryPolicy",
            Self::SetRepositoryPolicy => "SetRepositoryPolicy",
            Self::TagResource => "TagResource",
            Self::UntagResource => "UntagResource",
            Self::UpdateRepositoryCreationTemplate => "UpdateRepositoryCreationTemplate",
            Self::UploadLayerPart => "UploadLayerPart",
            Self::PutLifecyclePolicy => "PutLifecyclePolicy",
            Self::GetLifecyclePolicy => "GetLifecyclePolicy",
            Self::DeleteLifecyclePolicy => "DeleteLifecyclePolicy",
            Self::StartLifecyclePolicyPreview => "StartLifecyclePolicyPreview",
            Self::GetLifecyclePolicyPreview => "GetLifecyclePolicyPreview",
            Self::UpdateImageStorageClass => "UpdateImageStorageClass",
            Self::StartImageScan => "StartImageScan",
            Self::DescribeImageScanFindings => "DescribeImageScanFindings",
            Self::PutRegistryScanningConfiguration => "PutRegistryScanningConfiguration",
            Self::GetRegistryScanningConfiguration => "GetRegistryScanningConfiguration",
            Self::BatchGetRepositoryScanningConfiguration => "BatchGetRepositoryScanningConfiguration",
        }
    }
}

/// What an `X-Amz-Target` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Served(Operation),
    /// In ECR's model, not (yet) served by berth.
    NotSupported(&'a str),
    /// Not an ECR operation at all.
    Unknown,
}

pub(crate) fn parse_target(target: Option<&str>) -> Target<'_> {
    let Some(name) = target.and_then(|t| t.strip_prefix(TARGET_PREFIX)) else {
        return Target::Unknown;
    };
    if let Some(op) = Operation::SERVED.into_iter().find(|op| op.name() == name) {
        Target::Served(op)
    } else if MODEL_OPERATIONS.contains(&name) {
        Target::NotSupported(name)
    } else {
        Target::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_to_served_unsupported_or_unknown() {
        fn t(s: &str) -> Target<'_> {
            parse_target(Some(s))
        }
        assert_eq!(
            t("AmazonEC2ContainerRegistry_V20150921.CreateRepository"),
            Target::Served(Operation::CreateRepository)
        );
        assert_eq!(
            t("AmazonEC2ContainerRegistry_V20150921.StartReplicationBackfill"),
            Target::NotSupported("StartReplicationBackfill")
        );
        assert_eq!(t("AmazonEC2ContainerRegistry_V20150921.MakeCoffee"), Target::Unknown);
        assert_eq!(t("AmazonS3.ListBuckets"), Target::Unknown);
        assert_eq!(parse_target(None), Target::Unknown);
        for op in Operation::SERVED {
            assert!(MODEL_OPERATIONS.contains(&op.name()), "{} is not in the model", op.name());
        }
    }
}
