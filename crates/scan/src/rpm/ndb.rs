//! rpm's NDB database (`Packages.db`, SUSE's format): slot pages of 4096 bytes, then blobs, all
//! integers little-endian. The first 32 bytes are the database header (magic `RpmP`, version,
//! generation, number of slot pages, next package index); 16-byte slots follow, each a magic
//! `Slot`, a package index (0: free) and where the package's blob lies, in blocks of 16 bytes.
//! A blob starts with its magic `BlbS`, package index, generation and length; the header follows.

use super::{Headers, MAX_PACKAGES, le_u32};

const DATABASE_MAGIC: &[u8] = b"RpmP";
const SLOT_MAGIC: &[u8] = b"Slot";
const BLOB_MAGIC: &[u8] = b"BlbS";
const SLOT_PAGE_BYTES: usize = 4096;
const FIRST_SLOT_AT: usize = 32;
const SLOT_BYTES: usize = 16;
const BLOCK_BYTES: usize = 16;
const BLOB_HEADER_BYTES: usize = 16;

/// Where a package's blob lies: its index, first byte and size in bytes.
struct Slot {
    package: u32,
    start: usize,
    bytes: usize,
}

pub(super) fn read(bytes: &[u8], headers: &mut Headers) {
    if !bytes.starts_with(DATABASE_MAGIC) || le_u32(bytes, 4) != Some(0) {
        return;
    }
    let Some(slot_pages) = le_u32(bytes, 12).and_then(|n| usize::try_from(n).ok()) else { return };
    let slots_end = slot_pages.saturating_mul(SLOT_PAGE_BYTES).min(bytes.len());
    let Some(slots) = bytes.get(FIRST_SLOT_AT..slots_end) else { return };
    let mut used: Vec<Slot> = slots
        .chunks_exact(SLOT_BYTES)
        .filter_map(|slot| {
            let package = le_u32(slot, 4).filter(|&p| p != 0 && slot.starts_with(SLOT_MAGIC))?;
            let start = usize::try_from(le_u32(slot, 8)?).ok()?.checked_mul(BLOCK_BYTES)?;
            let blocks = usize::try_from(le_u32(slot, 12)?).ok()?;
            Some(Slot { package, start, bytes: blocks.checked_mul(BLOCK_BYTES)? })
        })
        .take(MAX_PACKAGES)
        .collect();
    // rpm lists the packages by index, whatever slot holds them.
    used.sort_by_key(|slot| slot.package);
    for slot in used {
        let Some(blob) = blob(bytes, &slot) else { continue };
        if !headers.take(blob) {
            return;
        }
    }
}

/// The header a slot points at, when the blob there is the one the slot names.
fn blob<'a>(bytes: &'a [u8], slot: &Slot) -> Option<&'a [u8]> {
    let span = bytes.get(slot.start..slot.start.checked_add(slot.bytes)?)?;
    if !span.starts_with(BLOB_MAGIC) || le_u32(span, 4)? != slot.package {
        return None;
    }
    let length = usize::try_from(le_u32(span, 12)?).ok()?;
    span.get(BLOB_HEADER_BYTES..BLOB_HEADER_BYTES.checked_add(length)?)
}
