//! Deterministic layer content, generated on the fly.
//!
//! Every layer is a 1 MiB pseudo-random pattern repeated, with each 1 MiB chunk stamped with the
//! layer's id and the chunk's index. Stamping costs a copy (~10 GB/s) rather than generating
//! random bytes, so the client stays cheap; stamps make every chunk of every layer distinct, and
//! the same (id, size) always yields the same bytes, so a digest computed in setup matches the
//! bytes streamed later. Registries neither compress nor deduplicate below the blob, so the
//! repeating pattern does not flatter either of them.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use ring::digest;

use crate::client::{LayerBody, ReqBody};
use http_body_util::BodyExt;

pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const GIB: u64 = 1 << 30;
const CHUNK: u64 = MIB;

/// The shared 1 MiB pattern (splitmix64 from a fixed seed).
pub(crate) fn pattern() -> &'static Bytes {
    static PATTERN: OnceLock<Bytes> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(CHUNK as usize);
        while out.len() < CHUNK as usize {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Bytes::from(out)
    })
}

/// A layer's identity and size; its bytes are produced on demand.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) id: u64,
    pub(crate) size: u64,
}

impl Layer {
    pub(crate) fn new(id: u64, size: u64) -> Self {
        Self { id, size }
    }

    pub(crate) fn chunks(&self) -> u64 {
        self.size.div_ceil(CHUNK)
    }

    /// Chunk `index`: the pattern, stamped with (id, index), cut to the layer's end.
    pub(crate) fn chunk(&self, index: u64) -> Bytes {
        let start = index * CHUNK;
        let len = (self.size - start).min(CHUNK) as usize;
        let mut out = BytesMut::from(&pattern()[..len]);
        let mut stamp = [0u8; 16];
        stamp[..8].copy_from_slice(&self.id.to_le_bytes());
        stamp[8..].copy_from_slice(&index.to_le_bytes());
        let n = stamp.len().min(len);
        out[..n].copy_from_slice(&stamp[..n]);
        out.freeze()
    }

    /// The whole layer at once (tests only: workloads stream).
    #[cfg(test)]
    fn bytes(&self) -> Bytes {
        if self.chunks() == 1 {
            return self.chunk(0);
        }
        let mut out = BytesMut::with_capacity(self.size as usize);
        for i in 0..self.chunks() {
            out.extend_from_slice(&self.chunk(i));
        }
        out.freeze()
    }

    /// `sha256:<hex>` of the layer, computed by streaming its chunks.
    pub(crate) fn digest(&self) -> String {
        let mut context = digest::Context::new(&digest::SHA256);
        for i in 0..self.chunks() {
            context.update(&self.chunk(i));
        }
        format!("sha256:{}", hex::encode(context.finish()))
    }

    /// A streaming request body of this layer.
    pub(crate) fn body(&self) -> ReqBody {
        LayerBody::new(self.clone()).boxed()
    }
}

/// A layer together with its digest.
#[derive(Clone, Debug)]
pub(crate) struct Blob {
    pub(crate) layer: Layer,
    pub(crate) digest: String,
    pub(crate) bytes: Option<Bytes>,
}

impl Blob {
    pub(crate) fn new(layer: Layer) -> Self {
        let digest = layer.digest();
        Self { layer, digest, bytes: None }
    }

    /// A JSON document (config or manifest) stored as a blob.
    pub(crate) fn json(bytes: Bytes) -> Self {
        let digest = format!("sha256:{}", hex::encode(digest::digest(&digest::SHA256, &bytes)));
        Self { layer: Layer::new(0, bytes.len() as u64), digest, bytes: Some(bytes) }
    }

    pub(crate) fn size(&self) -> u64 {
        self.layer.size
    }

    /// The request body that uploads this blob.
    pub(crate) fn body(&self) -> ReqBody {
        match &self.bytes {
            Some(bytes) => crate::client::full(bytes.clone()),
            None => self.layer.body(),
        }
    }
}

/// The ids of a workload's layers: distinct per seed (round), workload and index.
pub(crate) fn layer_id(seed: u64, kind: u64, index: u64) -> u64 {
    (seed << 40) ^ (kind << 32) ^ index
}

/// An OCI image manifest naming `config` and `layers`.
pub(crate) fn image_manifest(config: &Blob, layers: &[&Blob]) -> Bytes {
    let descriptor = |media_type: &str, blob: &Blob| serde_json::json!({ "mediaType": media_type, "digest": blob.digest, "size": blob.size() });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::client::OCI_MANIFEST,
        "config": descriptor(crate::client::OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(crate::client::OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    Bytes::from(manifest.to_string())
}

/// A minimal image configuration for `layers`, unique per `tag` so images differ.
pub(crate) fn image_config(layers: &[&Blob], tag: &str) -> Blob {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { "bench": tag } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    Blob::json(Bytes::from(config.to_string()))
}

/// Shares precomputed blobs between worker tasks.
pub(crate) type Blobs = Arc<Vec<Blob>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_deterministic_and_distinct() {
        let a = Layer::new(1, 3 * MIB + 5);
        assert_eq!(a.chunks(), 4);
        assert_eq!(a.chunk(3).len(), 5);
        assert_eq!(a.bytes().len() as u64, a.size);
        assert_eq!(a.digest(), Layer::new(1, 3 * MIB + 5).digest());
        assert_ne!(a.digest(), Layer::new(2, 3 * MIB + 5).digest());
        assert_ne!(a.chunk(0), a.chunk(1));
        let direct = format!("sha256:{}", hex::encode(digest::digest(&digest::SHA256, &a.bytes())));
        assert_eq!(direct, a.digest());
    }
}
