//! rpm's sqlite database, read straight from the file's bytes as far as rpm needs: the schema
//! table (page 1) names the root page of the table `Packages`, whose b-tree leaves hold one
//! record `(hnum, blob)` per package, in `hnum` order. The file: a 100-byte header, then pages;
//! a table b-tree page is interior (child page numbers) or a leaf (cells of rowid and record);
//! a record too large for its page goes on in a chain of overflow pages.
//!
//! Not a general sqlite reader, and no SQL: the scanner has no SQL engine, and the sqlite
//! binding the workspace links offers in-memory opening of bytes only through unsafe code.

use std::borrow::Cow;

use super::{Headers, MAX_HEADER_BYTES, Pages, be_u16, be_u32};

const MAGIC: &[u8] = b"SQLite format 3\0";
const FILE_HEADER_BYTES: usize = 100;
const INTERIOR_TABLE: u8 = 5;
const LEAF_TABLE: u8 = 13;
/// A record a little larger than the largest header: the blob and its column types.
const MAX_RECORD_BYTES: usize = MAX_HEADER_BYTES + 64;
/// rpm's schema has a few dozen entries.
const MAX_SCHEMA_RECORDS: usize = 10_000;

pub(super) fn read(bytes: &[u8], headers: &mut Headers) {
    let Some(file) = File::open(bytes) else { return };
    let Some(root) = file.packages_root() else { return };
    file.walk(root, MAX_RECORD_BYTES, &mut |record| match column(record, 1) {
        Some(Value::Bytes(blob)) => headers.take(blob),
        // A record that is no package still took reading.
        _ => headers.spend(record.len()),
    });
}

/// A column's value; text and blobs alike are bytes, and floats are of no use here.
enum Value<'a> {
    Null,
    Integer(i64),
    Bytes(&'a [u8]),
}

struct File<'a> {
    pages: Pages<'a>,
    /// The bytes of a page sqlite uses (the rest is reserved for extensions).
    usable: usize,
}

impl<'a> File<'a> {
    fn open(bytes: &'a [u8]) -> Option<Self> {
        if !bytes.starts_with(MAGIC) {
            return None;
        }
        let page_size = match be_u16(bytes, 16)? {
            1 => 65_536,
            size => usize::from(size),
        };
        if !page_size.is_power_of_two() || page_size < 512 {
            return None;
        }
        let usable = page_size.checked_sub(usize::from(*bytes.get(20)?))?;
        // The format's own minimum: below it the overflow arithmetic has no meaning.
        if usable < 480 {
            return None;
        }
        Some(Self { pages: Pages { bytes, size: page_size }, usable })
    }

    /// Page `number`, counted from 1; `None` for 0 and past the end.
    fn page(&self, number: u32) -> Option<&'a [u8]> {
        self.pages.get(usize::try_from(number).ok()?.checked_sub(1)?)
    }

    /// The root page of the table `Packages`, from the schema table.
    fn packages_root(&self) -> Option<u32> {
        let mut root = None;
        let (mut records, mut bytes_read) = (0, 0);
        self.walk(1, MAX_RECORD_BYTES, &mut |record| {
            let text = |index| match column(record, index) {
                Some(Value::Bytes(text)) => Some(text),
                _ => None,
            };
            if text(0) == Some(b"table") && text(1).is_some_and(|name| name.eq_ignore_ascii_case(b"Packages"))
            {
                if let Some(Value::Integer(page)) = column(record, 3) {
                    root = u32::try_from(page).ok();
                }
                return false;
            }
            records += 1;
            bytes_read += record.len();
            records < MAX_SCHEMA_RECORDS && bytes_read <= self.pages.bytes.len()
        });
        root
    }

    /// Hands the record of every cell of the table b-tree at `root` to `visit`, in rowid order,
    /// until it returns false. A damaged file's loops end: no page is read twice, and a record
    /// larger than `max_record` is passed over.
    fn walk(&self, root: u32, max_record: usize, visit: &mut dyn FnMut(&[u8]) -> bool) {
        let mut seen = vec![false; self.pages.count().saturating_add(1)];
        let mut pending = vec![root];
        while let Some(number) = pending.pop() {
            let Some(seen_before) = usize::try_from(number).ok().and_then(|n| seen.get_mut(n)) else {
                continue;
            };
            if std::mem::replace(seen_before, true) {
                continue;
            }
            let Some(page) = self.page(number) else { continue };
            let at = if number == 1 { FILE_HEADER_BYTES } else { 0 };
            let (Some(&kind), Some(cells)) = (page.get(at), be_u16(page, at + 3)) else { continue };
            let pointers = at + if kind == INTERIOR_TABLE { 12 } else { 8 };
            let cells = usize::from(cells).min(page.len().saturating_sub(pointers) / 2);
            let cell = |index: usize| be_u16(page, pointers + 2 * index).map(usize::from);
            match kind {
                INTERIOR_TABLE => {
                    // Last in, first out: the right-most child first, then the cells backwards.
                    pending.extend(be_u32(page, at + 8));
                    for index in (0..cells).rev() {
                        pending.extend(cell(index).and_then(|offset| be_u32(page, offset)));
                    }
                    // A tree never waits on more pages than the file has.
                    if pending.len() > self.pages.count() {
                        return;
                    }
                }
                LEAF_TABLE => {
                    for index in 0..cells {
                        let record = cell(index).and_then(|offset| self.record(page, offset, max_record));
                        if let Some(record) = record
                            && !visit(&record)
                        {
                            return;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The record of the leaf cell at `offset`: the payload size, the rowid, the payload's part
    /// on this page, and then the number of the first overflow page for the rest.
    fn record(&self, page: &'a [u8], offset: usize, max_record: usize) -> Option<Cow<'a, [u8]>> {
        let (size, size_bytes) = varint(page.get(offset..)?)?;
        let (_rowid, rowid_bytes) = varint(page.get(offset + size_bytes..)?)?;
        let size = usize::try_from(size).ok().filter(|&s| s <= max_record)?;
        let start = offset + size_bytes + rowid_bytes;
        let local = self.local_bytes(size);
        let here = page.get(start..start.checked_add(local)?)?;
        if local == size {
            return Some(Cow::Borrowed(here));
        }
        let mut record = Vec::with_capacity(size);
        record.extend_from_slice(here);
        let mut next = be_u32(page, start + local)?;
        // Each overflow page adds at least 476 bytes, so this ends.
        while record.len() < size {
            let overflow = self.page(next)?;
            let content = overflow.get(4..self.usable)?;
            let wanted = (size - record.len()).min(content.len());
            record.extend_from_slice(content.get(..wanted)?);
            next = be_u32(overflow, 0)?;
        }
        Some(Cow::Owned(record))
    }

    /// How much of a payload of `size` bytes a table leaf keeps on its own page (the format's
    /// rule: all of it up to a limit, else a share chosen to fill overflow pages evenly).
    fn local_bytes(&self, size: usize) -> usize {
        let most = self.usable - 35;
        if size <= most {
            return size;
        }
        let least = (self.usable - 12) * 32 / 255 - 23;
        let spilled = least + (size - least) % (self.usable - 4);
        if spilled <= most { spilled } else { least }
    }
}

/// sqlite's variable-length integer and the bytes it took: up to eight bytes of seven bits each
/// (the high bit says more follow), and a ninth of eight.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(9) {
        if index == 8 {
            return Some(((value << 8) | u64::from(byte), 9));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Column `wanted` (from 0) of a record: a header (its own size, then one serial type per
/// column), then the values in order.
fn column(record: &[u8], wanted: usize) -> Option<Value<'_>> {
    let (header_size, mut type_at) = varint(record)?;
    let header_size = usize::try_from(header_size).ok()?;
    let types = record.get(..header_size)?;
    let mut value_at = header_size;
    for index in 0..=wanted {
        let (serial, used) = varint(types.get(type_at..)?)?;
        type_at += used;
        let size = match serial {
            0 | 8 | 9 => 0,
            1..=4 => usize::try_from(serial).ok()?,
            5 => 6,
            6 | 7 => 8,
            10 | 11 => return None,
            // Blobs (even) and text (odd) from 12 on.
            _ => usize::try_from((serial - 12) / 2).ok()?,
        };
        if index == wanted {
            let value = record.get(value_at..value_at.checked_add(size)?)?;
            return match serial {
                0 => Some(Value::Null),
                8 => Some(Value::Integer(0)),
                9 => Some(Value::Integer(1)),
                // Big-endian two's complement, sign-extended from its first byte.
                1..=6 => {
                    let negative = value.first().is_some_and(|b| b & 0x80 != 0);
                    let start: i64 = if negative { -1 } else { 0 };
                    Some(Value::Integer(value.iter().fold(start, |n, &b| (n << 8) | i64::from(b))))
                }
                7 => None,
                _ => Some(Value::Bytes(value)),
            };
        }
        value_at = value_at.checked_add(size)?;
    }
    None
}
