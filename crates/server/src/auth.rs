//! Turns the `Authorization` header into a [`Caller`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use berth_registry::{Caller, Registry, RegistryError};
use http::HeaderMap;
use http::header::AUTHORIZATION;

/// Longest `Authorization` header considered; anything longer is not a credential berth issued.
const MAX_AUTHORIZATION_LEN: usize = 4096;

/// The caller a request acts as: anonymous without credentials, refused with bad ones.
pub(crate) async fn caller(registry: &Registry, headers: &HeaderMap) -> Result<Caller, RegistryError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(Caller::anonymous());
    };
    let bad = || RegistryError::Unauthenticated("malformed Authorization header".to_owned());
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(bad());
    }
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, credentials) = value.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(RegistryError::Unauthenticated(
            "use HTTP Basic authentication: user AWS, password from get-login-password".to_owned(),
        ));
    }
    let decoded = STANDARD.decode(credentials.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, password) = decoded.split_once(':').ok_or_else(bad)?;
    registry.authenticate_basic(user, password).await
}
