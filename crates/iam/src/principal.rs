use std::fmt;

use berth_core::AccountId;

/// The identity a request acts as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No credentials were presented: principal `*`.
    Anonymous,
    /// An account's root, acting with every permission inside its own account.
    Root { account: AccountId },
    /// An IAM user of an account.
    User { account: AccountId, name: String },
}

impl Principal {
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Anonymous => None,
            Self::Root { account } | Self::User { account, .. } => Some(account),
        }
    }

    /// The principal's ARN, as AWS writes it in policies and error messages.
    pub fn arn(&self) -> String {
        match self {
            Self::Anonymous => "*".to_owned(),
            Self::Root { account } => format!("arn:aws:iam::{account}:root"),
            Self::User { account, name } => format!("arn:aws:iam::{account}:user/{name}"),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_displays_as_its_arn() {
        let user = Principal::User {
            account: "123456789012".parse().expect("account"),
            name: "build/ci".to_owned(),
        };
        assert_eq!(user.to_string(), "arn:aws:iam::123456789012:user/build/ci");
        assert_eq!(Principal::Anonymous.to_string(), "*");
    }
}
