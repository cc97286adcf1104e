//! Registry login tokens: the password `docker login -u AWS` takes, in the same format that
//! `GetAuthorizationToken` returns.
//!
//! ```text
//! password = base64url(payload) "." base64url(HMAC-SHA256(signing key, payload))
//! payload  = "v1|" access key id "|" expiry (unix seconds)
//! ```
//!
//! The alphabet of base64url has no `:`, so the decoded `AWS:<password>` holds exactly one, as
//! the aws CLI requires. The token names the access key that asked for it: it dies when that
//! key is disabled or deleted, which the caller checks after [`TokenSigner::verify`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::hmac;

/// How long a token stays valid, as ECR's.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The user name that goes with every token.
pub const TOKEN_USER: &str = "AWS";
/// Longest password accepted for verification (tokens are far shorter).
const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the password is not a registry token")]
    Malformed,
    #[error("the registry token's signature does not verify")]
    BadSignature,
    #[error("Your authorization token has expired. Reauthenticate and try again.")]
    Expired,
}

/// A token handed to a client.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub password: String,
    /// Expiry in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl IssuedToken {
    /// ECR's `authorizationToken`: base64 of `AWS:<password>`.
    pub fn authorization_token(&self) -> String {
        STANDARD.encode(format!("{TOKEN_USER}:{}", self.password))
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub access_key_id: String,
    pub expires_at: u64,
}

pub struct TokenSigner {
    key: hmac::Key,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TokenSigner {
    /// A signer over a registry-wide secret (at least 32 bytes, kept sealed by the key provider).
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    pub fn issue(&self, access_key_id: &str, now: SystemTime) -> IssuedToken {
        self.issue_for(access_key_id, now, TOKEN_LIFETIME)
    }

    /// A token that lives `lifetime`, at most [`TOKEN_LIFETIME`] (short-lived tokens for jobs).
    pub fn issue_for(&self, access_key_id: &str, now: SystemTime, lifetime: Duration) -> IssuedToken {
        let expires_at = unix_seconds(now + lifetime.min(TOKEN_LIFETIME));
        let payload = format!("v1|{access_key_id}|{expires_at}");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        IssuedToken {
            password: format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag)),
            expires_at,
        }
    }

    /// Seals `payload` for `purpose` into an opaque, tamper-proof string (pagination tokens).
    /// The payload is readable by whoever holds the string; it must not hold secrets.
    pub fn sign_opaque(&self, purpose: &str, payload: &str) -> String {
        let tag = hmac::sign(&self.key, format!("{purpose}\0{payload}").as_bytes());
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The payload of a string made by [`TokenSigner::sign_opaque`] for the same purpose.
    pub fn open_opaque(&self, purpose: &str, token: &str) -> Option<String> {
        if token.len() > MAX_PASSWORD_LEN * 4 {
            return None;
        }
        let (payload, tag) = token.split_once('.')?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.key, format!("{purpose}\0{payload}").as_bytes(), &tag).ok()?;
        Some(payload)
    }

    pub fn verify(&self, password: &str, now: SystemTime) -> Result<TokenClaims, TokenError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = password.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| TokenError::BadSignature)?;
        // Only signed payloads are parsed further.
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let mut fields = payload.split('|');
        let (Some("v1"), Some(access_key_id), Some(expires_at), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
        if unix_seconds(now) >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims { access_key_id: access_key_id.to_owned(), expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(&[42u8; 32])
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = signer().issue("AKIAEXAMPLE000000001", now);
        assert_eq!(token.expires_at, 1_700_000_000 + 12 * 3600);
        let claims = signer().verify(&token.password, now).expect("valid");
        assert_eq!(claims.access_key_id, "AKIAEXAMPLE000000001");
        let later = now + TOKEN_LIFETIME - Duration::from_secs(1);
        assert!(signer().verify(&token.password, later).is_ok());
        assert_eq!(signer().verify(&token.password, now + TOKEN_LIFETIME), Err(TokenError::Expired));
    }

    #[test]
    fn short_lived_tokens_expire_early_and_none_outlives_twelve_hours() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let short = signer().issue_for("AKIAEXAMPLE000000001", now, Duration::from_secs(60));
        assert!(signer().verify(&short.password, now + Duration::from_secs(59)).is_ok());
        assert_eq!(signer().verify(&short.password, now + Duration::from_secs(60)), Err(TokenError::Expired));
        let long = signer().issue_for("AKIAEXAMPLE000000001", now, Duration::from_secs(48 * 3600));
        assert_eq!(long.expires_at, 1_700_000_000 + 12 * 3600);
    }

    #[test]
    fn the_decoded_token_has_exactly_one_colon() {
        let token = signer().issue("AKIAEXAMPLE000000001", SystemTime::now());
        let decoded = STANDARD.decode(token.authorization_token()).expect("base64");
        let decoded = String::from_utf8(decoded).expect("utf8");
        assert_eq!(decoded.matches(':').count(), 1);
        assert_eq!(decoded.split_once(':').map(|(u, _)| u), Some("AWS"));
    }

    #[test]
    fn opaque_tokens_are_bound_to_their_purpose_and_key() {
        let token = signer().sign_opaque("page", "123456789012|mlops/base");
        assert_eq!(signer().open_opaque("page", &token).as_deref(), Some("123456789012|mlops/base"));
        assert_eq!(signer().open_opaque("other", &token), None);
        assert_eq!(TokenSigner::new(&[1u8; 32]).open_opaque("page", &token), None);
        let (_, tag) = token.split_once('.').expect("two parts");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("111111111111|x"));
        assert_eq!(signer().open_opaque("page", &forged), None);
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let now = SystemTime::now();
        let token = signer().issue("AKIAEXAMPLE000000001", now);
        let other = TokenSigner::new(&[7u8; 32]);
        assert_eq!(other.verify(&token.password, now), Err(TokenError::BadSignature));

        let (_, tag) = token.password.split_once('.').expect("two parts");
        let forged_payload = URL_SAFE_NO_PAD.encode("v1|AKIAOTHERKEY0000001|99999999999");
        assert_eq!(signer().verify(&format!("{forged_payload}.{tag}"), now), Err(TokenError::BadSignature));
        for junk in ["", ".", "abc", "a.b.c", "!!!.???", &"a".repeat(5000)] {
            assert!(signer().verify(junk, now).is_err(), "accepted {junk:?}");
        }
    }
}
