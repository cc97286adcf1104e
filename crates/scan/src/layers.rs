//! An image's file system as far as the catalogers need it: its layers read in order as
//! streams (gzip, zstd or plain tar), whiteouts applied, and only the files asked for kept in
//! memory. Nothing is unpacked to disk and nothing in a layer is trusted: paths are confined to
//! the image's root, and sizes and counts are bounded.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

use crate::ScanError;

/// The most packages one file may embed (a fat archive lists a few hundred).
const MAX_EMBEDDED_PER_FILE: usize = 10_000;

/// How much a layer may make the scanner do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes a layer may decompress to.
    pub max_layer_bytes: u64,
    /// Past `ratio_after` decompressed bytes, the most a layer may grow per compressed byte.
    pub max_ratio: u64,
    pub ratio_after: u64,
    /// Entries in one layer.
    pub max_entries: u64,
    /// The largest file a cataloger may ask for, and all kept files together.
    pub max_file_bytes: u64,
    pub max_kept_bytes: u64,
    /// The largest file looked into for the packages it embeds (an archive, a binary); larger
    /// ones are passed over.
    pub max_inspected_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            max_layer_bytes: 4 * 1024 * MIB,
            max_ratio: 250,
            ratio_after: 64 * MIB,
            max_entries: 1_000_000,
            max_file_bytes: 256 * MIB,
            max_kept_bytes: 512 * MIB,
            max_inspected_bytes: 256 * MIB,
        }
    }
}

/// A kept path: a file's bytes, a symbolic link, or the packages a file embeds (looked for as
/// the layer was read, so that the file itself is not kept), with the layer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    File { layer: usize, data: Vec<u8> },
    Symlink { layer: usize, target: String },
    Embedding { layer: usize, packages: Vec<Embedded> },
}

impl Node {
    fn layer(&self) -> usize {
        match self {
            Self::File { layer, .. } | Self::Symlink { layer, .. } | Self::Embedding { layer, .. } => *layer,
        }
    }
}

/// A package found inside a file: a library in a Java archive, a module or crate compiled into
/// a binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Embedded {
    pub kind: crate::PackageKind,
    pub name: String,
    /// The name its advisories use.
    pub matched_name: String,
    pub version: String,
}

/// Looks into a file's bytes (at a path) for the packages it embeds.
pub type Inspector = fn(&str, &[u8]) -> Vec<Embedded>;

/// Which inspector, if any, looks into the file at a path with a mode (the tar header's).
pub type Inspection = fn(&str, u32) -> Option<Inspector>;

/// What one layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub decompressed_bytes: u64,
}

/// The files of an image that the catalogers asked for, after every layer so far.
#[derive(Debug, Default)]
pub struct ImageFiles {
    limits: Limits,
    layers: Vec<String>,
    nodes: BTreeMap<String, Node>,
    kept_bytes: u64,
    inspection: Option<Inspection>,
}

/// Where a kept file came from: the layer (as the caller named it) and the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub layer: &'a str,
    pub path: &'a str,
}

impl ImageFiles {
    pub fn new(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Also looks into the files `inspection` names for the packages they embed, as each layer
    /// is read; only what is found is kept.
    #[must_use]
    pub fn inspecting(mut self, inspection: Inspection) -> Self {
        self.inspection = Some(inspection);
        self
    }

    /// Reads the next layer, named `layer` (its digest), keeping the files `wanted` accepts
    /// (and the symbolic links at those paths).
    pub fn add_layer(
        &mut self,
        layer: &str,
        blob: impl Read,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<LayerStats, ScanError> {
        let index = self.layers.len();
        self.layers.push(layer.to_owned());
        let counted = Counted::new(blob);
        let compressed = counted.count.clone();
        let decoded = Bounded { inner: decompress(counted)?, read: 0, compressed, limits: self.limits };
        let mut archive = tar::Archive::new(decoded);
        let mut stats = LayerStats::default();
        let entries = archive.entries().map_err(|e| unreadable(layer, &e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| unreadable(layer, &e))?;
            stats.entries += 1;
            if stats.entries > self.limits.max_entries {
                return Err(ScanError::Bounded(format!(
                    "layer {layer} has more than {} entries",
                    self.limits.max_entries
                )));
            }
            let raw = entry.path_bytes();
            let Some(path) = normalize(&String::from_utf8_lossy(&raw)) else { continue };
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            if name == ".wh..wh..opq" {
                self.remove_below(dir, index);
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                let hidden = if dir.is_empty() { hidden.to_owned() } else { format!("{dir}/{hidden}") };
                self.remove(&hidden, index);
                continue;
            }
            let kind = entry.header().entry_type();
            // Whatever this entry is, it replaces what lower layers had at its path, and a
            // file or link replaces a directory with all it held.
            if !kind.is_dir() {
                self.remove(&path, index);
            }
            if !wanted(&path) {
                let mode = entry.header().mode().unwrap_or(0);
                let inspector = self.inspection.and_then(|inspection| inspection(&path, mode));
                // A file past the limit is passed over by its header's size, before any is read.
                let size = entry.header().size().unwrap_or(u64::MAX);
                let fits = kind.is_file() && size <= self.limits.max_inspected_bytes;
                if let Some(inspector) = inspector.filter(|_| fits) {
                    self.inspect(&mut entry, path, index, inspector).map_err(|e| unreadable(layer, &e))?;
                } else if kind.is_hard_link() {
                    // A second name of a file already looked into embeds what it does.
                    let target =
                        entry.link_name_bytes().and_then(|t| normalize(&String::from_utf8_lossy(&t)));
                    if let Some(Node::Embedding { packages, .. }) =
                        target.and_then(|t| self.nodes.get(&t)).cloned()
                    {
                        self.nodes.insert(path, Node::Embedding { layer: index, packages });
                    }
                }
                continue;
            }
            if kind.is_symlink() {
                let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned());
                if let Some(target) = target {
                    self.nodes.insert(path, Node::Symlink { layer: index, target });
                }
            } else if kind.is_hard_link() {
                let target = entry.link_name_bytes().and_then(|t| normalize(&String::from_utf8_lossy(&t)));
                if let Some(Node::File { data, .. }) = target.and_then(|t| self.nodes.get(&t)).cloned() {
                    self.keep(path, index, data)?;
                }
            } else if kind.is_file() {
                let size = entry.header().size().map_err(|e| unreadable(layer, &e))?;
                if size > self.limits.max_file_bytes {
                    return Err(ScanError::Bounded(format!(
                        "{path} in layer {layer} is {size} bytes, more than the {} a package database may be",
                        self.limits.max_file_bytes
                    )));
                }
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut data).map_err(|e| unreadable(layer, &e))?;
                self.keep(path, index, data)?;
            }
        }
        // What remains after the archive's end (padding) counts too, but need not be read.
        stats.decompressed_bytes = archive.into_inner().read;
        Ok(stats)
    }

    /// Reads a file an inspector looks into, within the limit, and keeps what it finds.
    fn inspect(
        &mut self,
        entry: &mut impl Read,
        path: String,
        layer: usize,
        inspector: Inspector,
    ) -> io::Result<()> {
        let mut data = Vec::new();
        let limit = self.limits.max_inspected_bytes;
        entry.take(limit.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            // Passed over: the tar reader skips the rest of the entry.
            return Ok(());
        }
        let mut packages = inspector(&path, &data);
        packages.truncate(MAX_EMBEDDED_PER_FILE);
        if !packages.is_empty() {
            self.nodes.insert(path, Node::Embedding { layer, packages });
        }
        Ok(())
    }

    fn keep(&mut self, path: String, layer: usize, data: Vec<u8>) -> Result<(), ScanError> {
        self.kept_bytes += data.len() as u64;
        if self.kept_bytes > self.limits.max_kept_bytes {
            return Err(ScanError::Bounded(format!(
                "the files the catalogers read exceed {} bytes",
                self.limits.max_kept_bytes
            )));
        }
        if let Some(Node::File { data: replaced, .. }) = self.nodes.insert(path, Node::File { layer, data }) {
            self.kept_bytes -= replaced.len() as u64;
        }
        Ok(())
    }

    /// Removes `path` and all below it, as lower layers had them.
    fn remove(&mut self, path: &str, below_layer: usize) {
        let below = format!("{path}/");
        let at_or_below = self.nodes.contains_key(path)
            || self.nodes.range(below.clone()..).next().is_some_and(|(p, _)| p.starts_with(&below));
        if at_or_below {
            self.drop_where(|p| p == path || p.starts_with(&below), below_layer);
        }
    }

    /// Removes what lower layers had under `dir` (an opaque directory).
    fn remove_below(&mut self, dir: &str, below_layer: usize) {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        self.drop_where(|p| p.starts_with(&prefix), below_layer);
    }

    /// Drops the nodes of layers below `below_layer` whose path `matches`.
    fn drop_where(&mut self, matches: impl Fn(&str) -> bool, below_layer: usize) {
        let mut freed = 0;
        self.nodes.retain(|p, node| {
            let keep = node.layer() >= below_layer || !matches(p);
            if let (false, Node::File { data, .. }) = (keep, &*node) {
                freed += data.len() as u64;
            }
            keep
        });
        self.kept_bytes -= freed;
    }

    /// The bytes of the file at `path`, following symbolic links within the image.
    pub fn read(&self, path: &str) -> Option<(&[u8], Origin<'_>)> {
        let mut path = normalize(path)?;
        for _ in 0..16 {
            let (key, node) = self.nodes.get_key_value(&path)?;
            match node {
                Node::File { layer, data } => {
                    let layer = self.layers.get(*layer).map_or("", String::as_str);
                    return Some((data, Origin { layer, path: key }));
                }
                Node::Embedding { .. } => return None,
                Node::Symlink { target, .. } => {
                    let joined = match (target.starts_with('/'), path.rsplit_once('/')) {
                        (false, Some((dir, _))) => format!("{dir}/{target}"),
                        _ => target.clone(),
                    };
                    path = normalize(&joined)?;
                }
            }
        }
        None
    }

    /// Every file found to embed packages, with them, in path order.
    pub fn embeddings(&self) -> impl Iterator<Item = (&[Embedded], Origin<'_>)> {
        self.nodes.iter().filter_map(|(path, node)| match node {
            Node::Embedding { layer, packages } => {
                let layer = self.layers.get(*layer).map_or("", String::as_str);
                Some((packages.as_slice(), Origin { layer, path }))
            }
            _ => None,
        })
    }

    /// Every kept path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The kept files directly in `dir`, by path.
    pub fn files_in<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("{dir}/");
        self.nodes
            .keys()
            .filter(move |p| p.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')))
            .map(String::as_str)
    }
}

fn unreadable(layer: &str, e: &io::Error) -> ScanError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<LimitHit>()) {
        Some(LimitHit(why)) => ScanError::Bounded(format!("layer {layer}: {why}")),
        None => ScanError::Unreadable(format!("layer {layer}: {e}")),
    }
}

/// A path inside the image, relative to its root, with `.` and `..` resolved and never above
/// the root; `None` for the root itself.
pub(crate) fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The layer's bytes, decompressed by what they start with.
fn decompress<'a>(blob: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ScanError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, blob);
    let head = buffered.fill_buf().map_err(|e| ScanError::Unreadable(e.to_string()))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = ruzstd::decoding::StreamingDecoder::new(buffered)
            .map_err(|e| ScanError::Unreadable(format!("not a zstd stream: {e}")))?;
        Box::new(decoder)
    } else {
        Box::new(buffered)
    })
}

/// Counts the compressed bytes read.
struct Counted<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Self {
        Self { inner, count: std::rc::Rc::default() }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Why a layer stopped being read: a limit, not a fault in the data.
#[derive(Debug)]
struct LimitHit(String);

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitHit {}

/// The decompressed stream, refused past the size and ratio limits.
struct Bounded<'a> {
    inner: Box<dyn Read + 'a>,
    read: u64,
    compressed: std::rc::Rc<std::cell::Cell<u64>>,
    limits: Limits,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let limits = &self.limits;
        let hit = |why: String| io::Error::other(LimitHit(why));
        if self.read > limits.max_layer_bytes {
            return Err(hit(format!("decompresses to more than {} bytes", limits.max_layer_bytes)));
        }
        let compressed = self.compressed.get().max(1);
        if self.read > limits.ratio_after && self.read / compressed > limits.max_ratio {
            return Err(hit(format!(
                "decompresses to more than {} times its compressed size",
                limits.max_ratio
            )));
        }
        Ok(n)
    }
}
