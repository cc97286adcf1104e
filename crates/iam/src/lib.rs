//! Who is asking, and may they: principals, access keys, registry login tokens, the catalogue of
//! `ecr:*` actions and the one authorization function every request on every surface goes
//! through.

mod authorize;
pub mod condition_keys;
mod keys;
pub mod policy;
mod policy_eval;
mod principal;
pub mod sigv4;
mod time;

#[cfg(test)]
mod fuzz;
pub mod token;

pub use authorize::{Action, AuthzRequest, Decision, Policies, authorize};
pub use keys::{AccessKeyPair, generate_access_key, is_access_key_id};
pub use policy_eval::ContextKeys;
pub use principal::Principal;
