//! One rpm header as the databases store it (big-endian, without a package file's lead): the
//! number of index entries and the size of the data store, then the entries (tag, type, offset
//! into the store, count), then the store.

use super::{Installed, be_u32};

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const ARCH: u32 = 1022;
const SOURCE_RPM: u32 = 1044;

const INT32: u32 = 4;
const STRING: u32 = 6;
const STRING_ARRAY: u32 = 8;
const I18N_STRING: u32 = 9;

/// rpm itself refuses headers with more entries, or a larger data store.
const MAX_ENTRIES: usize = 0xffff;
const MAX_STORE_BYTES: usize = 16 * 1024 * 1024 - 1;
const ENTRY_BYTES: usize = 16;

/// One index entry: what its data is, where it starts in the store, how many values.
struct Entry {
    kind: u32,
    offset: usize,
    count: u32,
}

/// The package a header describes; `None` when the header does not read or lacks a name,
/// version or release.
pub(crate) fn read(blob: &[u8]) -> Option<Installed> {
    let entries = usize::try_from(be_u32(blob, 0)?).ok()?;
    let store_bytes = usize::try_from(be_u32(blob, 4)?).ok()?;
    if entries == 0 || entries > MAX_ENTRIES || store_bytes > MAX_STORE_BYTES {
        return None;
    }
    let index_end = entries.checked_mul(ENTRY_BYTES)?.checked_add(8)?;
    let index = blob.get(8..index_end)?;
    let store = blob.get(index_end..index_end.checked_add(store_bytes)?)?;
    // The last entry of a tag counts: rpm lets entries added after the signed region replace
    // the region's own.
    let entry = |tag: u32| -> Option<Entry> {
        let raw = index.chunks_exact(ENTRY_BYTES).rev().find(|e| be_u32(e, 0) == Some(tag))?;
        Some(Entry {
            kind: be_u32(raw, 4)?,
            offset: usize::try_from(be_u32(raw, 8)?).ok()?,
            count: be_u32(raw, 12)?,
        })
    };
    let text = |tag: u32| -> Option<String> {
        let found = entry(tag)?;
        if !matches!(found.kind, STRING | STRING_ARRAY | I18N_STRING) || found.count == 0 {
            return None;
        }
        let rest = store.get(found.offset..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
    };
    // An epoch that is there but does not read makes the whole header suspect.
    let epoch = match entry(EPOCH) {
        None => None,
        Some(found) if found.kind == INT32 && found.count >= 1 => Some(be_u32(store, found.offset)?),
        Some(_) => return None,
    };
    let name = text(NAME).filter(|n| !n.is_empty())?;
    Some(Installed {
        name,
        epoch,
        version: text(VERSION)?,
        release: text(RELEASE)?,
        arch: text(ARCH),
        source_rpm: text(SOURCE_RPM),
    })
}
