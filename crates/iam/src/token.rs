//! Registry login tokens: the password `docker login -u AWS` takes, in the same format that
//! `GetAuthorizationToken` returns.
//!
//! ```text
//! password = base64url(nonce || AES-256-GCM(token key, nonce, claims))
//! claims   = "v2|" access key id "|" expiry (unix seconds)
//! ```
//!
//! The claims are sealed, not only signed: like ECR's, the password is opaque, and shows neither
//! the access key id nor the expiry. The token key is derived from the registry's signing
//! secret. Passwords of the earlier, signed-only form (`base64url(claims) "." base64url(HMAC)`)
//! are still accepted until they expire.
//!
//! The alphabet of base64url has no `:`, so the decoded `AWS:<password>` holds exactly one, as
//! the aws CLI requires. The token names the access key that asked for it: it dies when that
//! key is disabled or deleted, which the caller checks after [`TokenSigner::verify`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

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
    #[error("the random source failed")]
    Random,
    #[error("the token signing key cannot be used")]
    Key,
}

/// Additional data of every sealed password, so that no other sealed value can pass for one.
const TOKEN_AAD: &[u8] = b"berth registry token";

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
    /// Seals the claims of passwords.
    sealing: LessSafeKey,
    random: SystemRandom,
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TokenSigner {
    /// A signer over a registry-wide secret (at least 32 bytes, kept sealed by the key provider).
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        // A key of its own for sealing, derived from the same secret.
        let derived = hmac::sign(&key, b"registry token sealing key");
        let sealing = UnboundKey::new(&AES_256_GCM, derived.as_ref()).map_err(|_| TokenError::Key)?;
        Ok(Self { key, sealing: LessSafeKey::new(sealing), random: SystemRandom::new() })
    }

    pub fn issue(&self, access_key_id: &str, now: SystemTime) -> Result<IssuedToken, TokenError> {
        self.issue_for(access_key_id, now, TOKEN_LIFETIME)
    }

    /// A token that lives `lifetime`, at most [`TOKEN_LIFETIME`] (short-lived tokens for jobs).
    pub fn issue_for(
        &self,
        access_key_id: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<IssuedToken, TokenError> {
        let expires_at = unix_seconds(now + lifetime.min(TOKEN_LIFETIME));
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| TokenError::Random)?;
        let mut sealed = format!("v2|{access_key_id}|{expires_at}").into_bytes();
        self.sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(TOKEN_AAD), &mut sealed)
            .map_err(|_| TokenError::Random)?;
        let password = URL_SAFE_NO_PAD.encode([&nonce[..], &sealed].concat());
        Ok(IssuedToken { password, expires_at })
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
        // Only authenticated claims are parsed further.
        let (version, claims) = match password.split_once('.') {
            Some(signed) => ("v1", self.signed_claims(signed)?),
            None => ("v2", self.sealed_claims(password)?),
        };
        let claims = String::from_utf8(claims).map_err(|_| TokenError::Malformed)?;
        let mut fields = claims.split('|');
        let (Some(stated), Some(access_key_id), Some(expires_at), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Malformed);
        };
        if stated != version {
            return Err(TokenError::Malformed);
        }
        let expires_at: u64 = expires_at.parse().map_err(|_| TokenError::Malformed)?;
        if unix_seconds(now) >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims { access_key_id: access_key_id.to_owned(), expires_at })
    }

    /// The claims of a password of the earlier form: signed, readable.
    fn signed_claims(&self, (payload, tag): (&str, &str)) -> Result<Vec<u8>, TokenError> {
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| TokenError::BadSignature)?;
        Ok(payload)
    }

    /// The claims of a sealed password.
    fn sealed_claims(&self, password: &str) -> Result<Vec<u8>, TokenError> {
        let bytes = URL_SAFE_NO_PAD.decode(password).map_err(|_| TokenError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(TokenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TokenError::Malformed)?;
        let mut sealed = sealed.to_vec();
        let claims = self
            .sealing
            .open_in_place(nonce, Aad::from(TOKEN_AAD), &mut sealed)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(claims.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(&[42u8; 32]).expect("signer")
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = signer().issue("AKIAEXAMPLE000000001", now).expect("issued");
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
        let short = signer().issue_for("AKIAEXAMPLE000000001", now, Duration::from_secs(60)).expect("issued");
        assert!(signer().verify(&short.password, now + Duration::from_secs(59)).is_ok());
        assert_eq!(signer().verify(&short.password, now + Duration::from_secs(60)), Err(TokenError::Expired));
        let long =
            signer().issue_for("AKIAEXAMPLE000000001", now, Duration::from_secs(48 * 3600)).expect("issued");
        assert_eq!(long.expires_at, 1_700_000_000 + 12 * 3600);
    }

    #[test]
    fn the_decoded_token_has_exactly_one_colon() {
        let token = signer().issue("AKIAEXAMPLE000000001", SystemTime::now()).expect("issued");
        let decoded = STANDARD.decode(token.authorization_token()).expect("base64");
        let decoded = String::from_utf8(decoded).expect("utf8");
        assert_eq!(decoded.matches(':').count(), 1);
        assert_eq!(decoded.split_once(':').map(|(u, _)| u), Some("AWS"));
    }

    #[test]
    fn opaque_tokens_and_passwords_are_bounded_in_length() {
        // A 3,039-byte payload makes a token of 4,096 characters, the most accepted.
        let longest = signer().sign_opaque("page", &"x".repeat(3039));
        assert_eq!(longest.len(), 4096);
        assert!(signer().open_opaque("page", &longest).is_some());
        let medium = signer().sign_opaque("page", &"x".repeat(1500));
        assert!(signer().open_opaque("page", &medium).is_some());
        let over = signer().sign_opaque("page", &"x".repeat(3040));
        assert_eq!(signer().open_opaque("page", &over), None, "{} characters", over.len());
        // Passwords past 1,024 characters are refused unread; shorter junk fails to open.
        let now = SystemTime::now();
        assert_eq!(signer().verify(&"a".repeat(1024), now), Err(TokenError::BadSignature));
        assert_eq!(signer().verify(&"a".repeat(1025), now), Err(TokenError::Malformed));
        // Nonce and tag with no claims between them: opened (and refused) rather than misread.
        let empty = URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN + 16]);
        assert_eq!(signer().verify(&empty, now), Err(TokenError::BadSignature));
        let short = URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN + 15]);
        assert_eq!(signer().verify(&short, now), Err(TokenError::Malformed));
    }

    #[test]
    fn opaque_tokens_are_bound_to_their_purpose_and_key() {
        let token = signer().sign_opaque("page", "123456789012|mlops/base");
        assert_eq!(signer().open_opaque("page", &token).as_deref(), Some("123456789012|mlops/base"));
        assert_eq!(signer().open_opaque("other", &token), None);
        assert_eq!(TokenSigner::new(&[1u8; 32]).expect("signer").open_opaque("page", &token), None);
        let (_, tag) = token.split_once('.').expect("two parts");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("111111111111|x"));
        assert_eq!(signer().open_opaque("page", &forged), None);
    }

    #[test]
    fn passwords_show_neither_the_key_nor_the_expiry() {
        let token = signer().issue("AKIAEXAMPLE000000001", SystemTime::now()).expect("issued");
        let decoded = URL_SAFE_NO_PAD.decode(&token.password).expect("base64url");
        let text = String::from_utf8_lossy(&decoded);
        assert!(
            !text.contains("AKIAEXAMPLE000000001") && !text.contains(&token.expires_at.to_string()),
            "{text}"
        );
        assert!(!token.password.contains("QUtJQ"), "no base64 of AKIA anywhere: {}", token.password);
        let again = signer().issue("AKIAEXAMPLE000000001", SystemTime::now()).expect("issued");
        assert_ne!(token.password, again.password, "each password is sealed afresh");
    }

    #[test]
    fn passwords_of_the_earlier_signed_form_verify_until_they_expire() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let signed = |claims: &str| {
            let tag = hmac::sign(&signer().key, claims.as_bytes());
            format!("{}.{}", URL_SAFE_NO_PAD.encode(claims), URL_SAFE_NO_PAD.encode(tag))
        };
        let legacy = signed("v1|AKIAEXAMPLE000000001|1700003600");
        assert_eq!(signer().verify(&legacy, now).expect("valid").access_key_id, "AKIAEXAMPLE000000001");
        assert_eq!(signer().verify(&legacy, now + Duration::from_secs(3600)), Err(TokenError::Expired));
        // Claims of the sealed form are not accepted in the signed form.
        assert_eq!(
            signer().verify(&signed("v2|AKIAEXAMPLE000000001|1700003600"), now),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let now = SystemTime::now();
        let token = signer().issue("AKIAEXAMPLE000000001", now).expect("issued");
        let other = TokenSigner::new(&[7u8; 32]).expect("signer");
        assert_eq!(other.verify(&token.password, now), Err(TokenError::BadSignature));

        let mut flipped = URL_SAFE_NO_PAD.decode(&token.password).expect("base64url");
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(signer().verify(&URL_SAFE_NO_PAD.encode(flipped), now), Err(TokenError::BadSignature));
        let forged_payload = URL_SAFE_NO_PAD.encode("v1|AKIAOTHERKEY0000001|99999999999");
        assert_eq!(signer().verify(&format!("{forged_payload}.AAAA"), now), Err(TokenError::BadSignature));
        for junk in ["", ".", "abc", "a.b.c", "!!!.???", &"a".repeat(5000)] {
            assert!(signer().verify(junk, now).is_err(), "accepted {junk:?}");
        }
    }
}
