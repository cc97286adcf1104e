//! ECR lifecycle policies: the JSON language ECR accepts, validated with ECR's rules and its
//! error wording, and evaluated with ECR's semantics (every rule sees every image; the
//! highest-priority rule whose selection takes an image decides its fate; an image an index or a
//! living subject needs is kept). No I/O: callers hand in the images and get decisions back.

mod evaluate;
mod policy;

pub use berth_core::StorageClass;
pub use evaluate::{Decision, Image, Outcome, Protections, Reason, Since, Verdict, evaluate, explain};
pub use policy::{
    Count, LifecycleError, LifecyclePolicy, MAX_POLICY_CHARS, MAX_RULES, MIN_POLICY_CHARS, Rule, RuleAction,
    Selection, TagFilter, TagStatus, parse,
};

#[cfg(test)]
mod tests;
