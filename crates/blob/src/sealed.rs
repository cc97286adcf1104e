//! The encrypted-at-rest format of every stored byte.
//!
//! ```text
//! header  : "BERTHENC" | version u16 BE | reserved u16 | chunk size u32 BE   (16 bytes)
//! record i: nonce (12) | AES-256-GCM ciphertext of chunk i | tag (16)
//! ```
//!
//! Every chunk but the last holds exactly `chunk size` plaintext bytes, so record `i` starts
//! at a computable offset and a range read opens only the records it touches. The additional
//! authenticated data of record `i` is the header followed by `i`, so records cannot be
//! reordered or moved between files of another format; the plaintext length is kept in the
//! metadata store, so a truncated file is detected when a record it needs is missing or short.
//! Nonces are random per record: an upload that grows over several requests re-seals its last
//! partial chunk, and a counter nonce would then repeat under the same key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::{BlobError, DataKey};

pub const MAGIC: &[u8; 8] = b"BERTHENC";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: u64 = 16;
pub const TAG_LEN: usize = 16;
/// Bytes a record adds to its chunk: nonce and tag.
pub const RECORD_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Plaintext bytes per chunk in files this version writes.
pub const CHUNK_SIZE: u32 = 64 * 1024;

/// The header of a file written with `chunk_size`.
pub fn header(chunk_size: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_be_bytes());
    h[12..16].copy_from_slice(&chunk_size.to_be_bytes());
    h
}

/// Reads the chunk size from a header, refusing anything this version did not write.
pub fn parse_header(bytes: &[u8]) -> Result<u32, BlobError> {
    let corrupt = BlobError::Corrupt { chunk: 0 };
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return Err(corrupt);
    }
    if u16::from_be_bytes([bytes[8], bytes[9]]) != VERSION {
        return Err(corrupt);
    }
    let chunk_size = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if chunk_size == 0 || chunk_size > 16 * 1024 * 1024 {
        return Err(corrupt);
    }
    Ok(chunk_size)
}

/// Byte offset of record `index` in a file of `chunk_size` chunks.
pub fn record_offset(chunk_size: u32, index: u64) -> u64 {
    HEADER_LEN + index * (u64::from(chunk_size) + RECORD_OVERHEAD as u64)
}

/// Plaintext length of chunk `index` in a blob of `total` bytes.
pub fn chunk_len(chunk_size: u32, total: u64, index: u64) -> usize {
    let start = index * u64::from(chunk_size);
    // Bounded by chunk_size (a u32), so the conversion cannot truncate.
    total.saturating_sub(start).min(u64::from(chunk_size)) as usize
}

/// Ciphertext size of a blob of `total` plaintext bytes.
pub fn sealed_len(chunk_size: u32, total: u64) -> u64 {
    let chunks = total.div_ceil(u64::from(chunk_size));
    HEADER_LEN + total + chunks * RECORD_OVERHEAD as u64
}

/// Seals and opens the records of one file.
pub struct ChunkCipher {
    key: LessSafeKey,
    header: [u8; HEADER_LEN as usize],
    random: SystemRandom,
}

impl ChunkCipher {
    pub fn new(key: &DataKey, chunk_size: u32) -> Self {
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key.as_bytes()).expect("a 32-byte key fits AES-256"),
        );
        Self { key, header: header(chunk_size), random: SystemRandom::new() }
    }

    fn aad(&self, index: u64) -> [u8; HEADER_LEN as usize + 8] {
        let mut aad = [0u8; HEADER_LEN as usize + 8];
        aad[..HEADER_LEN as usize].copy_from_slice(&self.header);
        aad[HEADER_LEN as usize..].copy_from_slice(&index.to_be_bytes());
        aad
    }

    /// Appends the record of chunk `index` holding `plaintext` to `out`.
    pub fn seal_into(&self, index: u64, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), BlobError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| BlobError::Random)?;
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(index)),
                &mut out[start..],
            )
            .map_err(|_| BlobError::Random)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens the record of chunk `index` in place and returns its plaintext.
    pub fn open<'a>(&self, index: u64, record: &'a mut [u8]) -> Result<&'a [u8], BlobError> {
        let corrupt = BlobError::Corrupt { chunk: index };
        if record.len() < RECORD_OVERHEAD {
            return Err(corrupt);
        }
        let (nonce, body) = record.split_at_mut(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| BlobError::Corrupt { chunk: index })?;
        let plain = self.key.open_in_place(nonce, Aad::from(self.aad(index)), body).map_err(|_| corrupt)?;
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7u8; 32])
    }

    #[test]
    fn header_round_trips_and_rejects_foreign_data() {
        assert_eq!(parse_header(&header(CHUNK_SIZE)).expect("header"), CHUNK_SIZE);
        assert!(parse_header(b"BERTHENC").is_err());
        assert!(parse_header(&[0u8; 16]).is_err());
        let mut future = header(CHUNK_SIZE);
        future[9] = 2;
        assert!(parse_header(&future).is_err());
    }

    #[test]
    fn golden_layout_of_the_header() {
        assert_eq!(
            header(65536),
            *b"BERTHENC\x00\x01\x00\x00\x00\x01\x00\x00",
            "changing the header breaks every stored blob"
        );
    }

    #[test]
    fn records_round_trip_and_detect_tampering_and_reordering() {
        let cipher = ChunkCipher::new(&key(), 4);
        let mut out = Vec::new();
        cipher.seal_into(0, b"abcd", &mut out).expect("seal");
        cipher.seal_into(1, b"ef", &mut out).expect("seal");
        assert_eq!(out.len(), 4 + 2 + 2 * RECORD_OVERHEAD);
        assert!(!out.windows(4).any(|w| w == b"abcd"), "plaintext visible in record");

        let (first, second) = out.split_at_mut(4 + RECORD_OVERHEAD);
        assert_eq!(cipher.open(1, &mut second.to_vec()).expect("open"), b"ef");
        assert!(cipher.open(0, &mut second.to_vec()).is_err(), "moved record accepted");
        let mut flipped = first.to_vec();
        flipped[NONCE_LEN] ^= 1;
        assert!(cipher.open(0, &mut flipped).is_err(), "tampered record accepted");
        let other = ChunkCipher::new(&DataKey::from_bytes([8u8; 32]), 4);
        assert!(other.open(0, &mut first.to_vec()).is_err(), "wrong key accepted");
        assert!(cipher.open(0, &mut first.to_vec()[..10].to_vec()).is_err(), "short record accepted");
    }

    #[test]
    fn an_empty_chunk_round_trips() {
        // A record of exactly the overhead: a nonce and a tag around nothing.
        let cipher = ChunkCipher::new(&key(), 4);
        let mut out = Vec::new();
        cipher.seal_into(0, b"", &mut out).expect("seal");
        assert_eq!(out.len(), RECORD_OVERHEAD);
        assert_eq!(cipher.open(0, &mut out).expect("open"), b"");
    }

    #[test]
    fn a_header_names_a_chunk_size_of_at_most_16_mib() {
        assert_eq!(parse_header(&header(16 * 1024 * 1024)).expect("the largest"), 16 * 1024 * 1024);
        assert!(
            parse_header(&header(16 * 1024 * 1024 + 1)).is_err(),
            "a tampered size would size a read buffer"
        );
        assert!(parse_header(&header(0)).is_err());
    }

    #[test]
    fn offsets_and_lengths() {
        assert_eq!(record_offset(4, 0), HEADER_LEN);
        assert_eq!(record_offset(4, 2), HEADER_LEN + 2 * (4 + RECORD_OVERHEAD as u64));
        assert_eq!(chunk_len(4, 10, 0), 4);
        assert_eq!(chunk_len(4, 10, 2), 2);
        assert_eq!(chunk_len(4, 10, 3), 0);
        assert_eq!(sealed_len(4, 0), HEADER_LEN);
        assert_eq!(sealed_len(4, 10), HEADER_LEN + 10 + 3 * RECORD_OVERHEAD as u64);
    }
}
