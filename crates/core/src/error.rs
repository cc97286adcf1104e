use std::fmt;

/// An input that failed validation, with a message meant for the caller who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    /// Which field or kind of value was wrong (`digest`, `repository name`, `manifest`...).
    pub what: &'static str,
    /// Why it was refused, in words a client can act on.
    pub reason: String,
}

impl InvalidInput {
    pub fn new(what: &'static str, reason: impl Into<String>) -> Self {
        Self { what, reason: reason.into() }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for InvalidInput {}
