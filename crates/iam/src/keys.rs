use ring::rand::{SecureRandom, SystemRandom};

/// A new access key: the id is public, the secret is shown once and then only kept sealed.
pub struct AccessKeyPair {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyPair").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_text(alphabet: &[u8], len: usize) -> Option<String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new().fill(&mut bytes).ok()?;
    // Both alphabets have a power-of-two size, so masking keeps the choice uniform.
    Some(bytes.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect())
}

/// A fresh key pair shaped like AWS's: `AKIA` + 16 characters, and a 40-character secret.
pub fn generate_access_key() -> Option<AccessKeyPair> {
    Some(AccessKeyPair {
        access_key_id: format!("AKIA{}", random_text(ID_ALPHABET, 16)?),
        secret_access_key: random_text(SECRET_ALPHABET, 40)?,
    })
}

/// Whether `id` has the shape of an access key id (16 to 128 upper-case letters and digits).
pub fn is_access_key_id(id: &str) -> bool {
    (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_aws_shapes_and_differ() {
        let a = generate_access_key().expect("random");
        let b = generate_access_key().expect("random");
        assert!(a.access_key_id.starts_with("AKIA") && a.access_key_id.len() == 20);
        assert!(is_access_key_id(&a.access_key_id));
        assert_eq!(a.secret_access_key.len(), 40);
        assert_ne!(a.access_key_id, b.access_key_id);
        assert_ne!(a.secret_access_key, b.secret_access_key);
        assert!(!format!("{a:?}").contains(&a.secret_access_key), "Debug shows the secret");
        assert!(format!("{a:?}").contains(&a.access_key_id), "Debug names the key");
    }

    #[test]
    fn every_character_of_each_alphabet_is_drawn() {
        let mut ids = std::collections::BTreeSet::new();
        let mut secrets = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let key = generate_access_key().expect("random");
            ids.extend(key.access_key_id[4..].bytes());
            secrets.extend(key.secret_access_key.bytes());
        }
        // 3,200 and 8,000 draws: a uniform choice misses a character with negligible chance.
        assert_eq!(ids.len(), ID_ALPHABET.len(), "id characters drawn: {ids:?}");
        assert_eq!(secrets.len(), SECRET_ALPHABET.len(), "secret characters drawn: {secrets:?}");
    }

    #[test]
    fn access_key_ids_are_16_to_128_upper_case_letters_and_digits() {
        assert!(is_access_key_id("AKIAEXAMPLE0000001"));
        assert!(is_access_key_id(&"A".repeat(16)) && is_access_key_id(&"A".repeat(128)));
        for bad in [
            "A".repeat(15),
            "A".repeat(129),
            "AKIAexample0000001".to_owned(),
            "AKIA-EXAMPLE-00001".to_owned(),
            String::new(),
        ] {
            assert!(!is_access_key_id(&bad), "{bad:?}");
        }
    }
}
