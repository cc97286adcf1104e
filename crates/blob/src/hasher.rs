use berth_core::{Digest, DigestAlgorithm};
use ring::digest::{Context, SHA256, SHA512};

/// Incremental content hashing for digest verification.
#[derive(Clone)]
pub struct Hasher {
    algorithm: DigestAlgorithm,
    context: Context,
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        let context = match algorithm {
            DigestAlgorithm::Sha256 => Context::new(&SHA256),
            DigestAlgorithm::Sha512 => Context::new(&SHA512),
        };
        Self { algorithm, context }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
    }

    pub fn finish(self) -> Digest {
        Digest::from_bytes(self.algorithm, self.context.finish().as_ref())
    }

    /// The digest of a whole byte slice.
    pub fn digest_of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Digest {
        let mut h = Self::new(algorithm);
        h.update(bytes);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            Hasher::digest_of(DigestAlgorithm::Sha256, b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut split = Hasher::new(DigestAlgorithm::Sha512);
        split.update(b"a");
        split.update(b"bc");
        assert_eq!(
            split.finish().to_string(),
            "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }
}
