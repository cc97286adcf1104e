//! The one authorization function. Every request on every surface becomes an [`AuthzRequest`]
//! and is decided here, so no route can forget a check or apply a different rule.

use berth_core::AccountId;

use crate::Principal;

/// The `ecr:*` actions berth authorizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    BatchCheckLayerAvailability,
    BatchDeleteImage,
    BatchGetImage,
    CompleteLayerUpload,
    CreateRepository,
    CreateRepositoryCreationTemplate,
    DeleteRepository,
    DeleteRepositoryCreationTemplate,
    DescribeRepositoryCreationTemplates,
    UpdateRepositoryCreationTemplate,
    DescribeImages,
    DescribeRepositories,
    GetAuthorizationToken,
    GetDownloadUrlForLayer,
    InitiateLayerUpload,
    ListImages,
    ListTagsForResource,
    PutImage,
    PutImageScanningConfiguration,
    PutImageTagMutability,
    TagResource,
    UntagResource,
    UploadLayerPart,
    DescribeRegistry,
}

impl Action {
    /// The action's name as written in policies.
    pub fn name(self) -> &'static str {
        match self {
            Self::BatchCheckLayerAvailability => "ecr:BatchCheckLayerAvailability",
            Self::BatchDeleteImage => "ecr:BatchDeleteImage",
            Self::BatchGetImage => "ecr:BatchGetImage",
            Self::CompleteLayerUpload => "ecr:CompleteLayerUpload",
            Self::CreateRepository => "ecr:CreateRepository",
            Self::CreateRepositoryCreationTemplate => "ecr:CreateRepositoryCreationTemplate",
            Self::DeleteRepository => "ecr:DeleteRepository",
            Self::DeleteRepositoryCreationTemplate => "ecr:DeleteRepositoryCreationTemplate",
            Self::DescribeRepositoryCreationTemplates => "ecr:DescribeRepositoryCreationTemplates",
            Self::UpdateRepositoryCreationTemplate => "ecr:UpdateRepositoryCreationTemplate",
            Self::DescribeImages => "ecr:DescribeImages",
            Self::DescribeRepositories => "ecr:DescribeRepositories",
            Self::GetAuthorizationToken => "ecr:GetAuthorizationToken",
            Self::GetDownloadUrlForLayer => "ecr:GetDownloadUrlForLayer",
            Self::InitiateLayerUpload => "ecr:InitiateLayerUpload",
            Self::ListImages => "ecr:ListImages",
            Self::ListTagsForResource => "ecr:ListTagsForResource",
            Self::PutImageScanningConfiguration => "ecr:PutImageScanningConfiguration",
            Self::PutImageTagMutability => "ecr:PutImageTagMutability",
            Self::TagResource => "ecr:TagResource",
            Self::UntagResource => "ecr:UntagResource",
            Self::DescribeRegistry => "ecr:DescribeRegistry",
            Self::PutImage => "ecr:PutImage",
            Self::UploadLayerPart => "ecr:UploadLayerPart",
        }
    }
}

/// One question: may `principal` perform `action` on the resource owned by `resource_account`
/// and named `resource_arn`?
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub resource_account: &'a AccountId,
    pub resource_arn: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the message AWS would give.
    Deny(String),
}

/// Decides a request. An account's root holds every permission inside its own account and none
/// outside it; identity, repository and registry policies refine this as they are attached.
pub fn authorize(request: &AuthzRequest<'_>) -> Decision {
    let allowed = match request.principal {
        Principal::Root { account } => account == request.resource_account,
        Principal::Anonymous | Principal::User { .. } => false,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny(format!(
            "User: {} is not authorized to perform: {} on resource: {}",
            request.principal.arn(),
            request.action.name(),
            request.resource_arn
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(s: &str) -> AccountId {
        s.parse().expect("account")
    }

    #[test]
    fn roots_act_only_inside_their_own_account() {
        let owner = account("123456789012");
        let other = account("333333333333");
        let arn = "arn:aws:ecr:us-east-1:123456789012:repository/mlops/python-base";
        let ask = |principal: &Principal| {
            authorize(&AuthzRequest {
                principal,
                action: Action::BatchGetImage,
                resource_account: &owner,
                resource_arn: arn,
            })
        };
        assert_eq!(ask(&Principal::Root { account: owner.clone() }), Decision::Allow);
        let denied = ask(&Principal::Root { account: other.clone() });
        assert_eq!(
            denied,
            Decision::Deny(format!(
                "User: arn:aws:iam::333333333333:root is not authorized to perform: ecr:BatchGetImage on resource: {arn}"
            ))
        );
        assert!(matches!(ask(&Principal::Anonymous), Decision::Deny(_)));
        assert!(
            matches!(
                ask(&Principal::User { account: owner.clone(), name: "dev".to_owned() }),
                Decision::Deny(_)
            ),
            "users hold nothing until a policy grants it"
        );
    }
}
