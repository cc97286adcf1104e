//! Who is asking, and may they: principals, access keys, registry login tokens, the catalogue of
//! `ecr:*` actions and the one authorization function every request on every surface goes
//! through.

mod authorize;
mod keys;
mod principal;
pub mod sigv4;
pub mod token;

pub use authorize::{Action, AuthzRequest, Decision, authorize};
pub use keys::{AccessKeyPair, generate_access_key, is_access_key_id};
pub use principal::Principal;
