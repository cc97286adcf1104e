//! rpm's BerkeleyDB database (`Packages`): a hash database from header instance to header. Its
//! first page holds the metadata (magic number, page size, last page); hash pages hold key and
//! data items in turn, an item either on the page or, as large as headers are, a reference to a
//! chain of overflow pages. Integers are in the byte order of the machine that wrote the file,
//! which the magic number shows. The hash pages are read in file order, which finds every pair
//! without following the bucket layout.

use std::borrow::Cow;

use super::{Headers, Pages, be_u16, be_u32, le_u16, le_u32};

const HASH_MAGIC: u32 = 0x0006_1561;
const HASH_META: u8 = 8;
const HASH_UNSORTED: u8 = 2;
const HASH_SORTED: u8 = 13;
const OVERFLOW: u8 = 7;
/// An item on its page, and an item in overflow pages.
const ON_PAGE: u8 = 1;
const OFF_PAGE: u8 = 3;
/// Every page starts with this: log sequence number, its own, the previous and the next page
/// number, the item count, the offset of free space (on an overflow page: the bytes it holds),
/// the tree level and the page type.
const PAGE_HEADER_BYTES: usize = 26;
const NEXT_PAGE_AT: usize = 16;
const ITEMS_AT: usize = 20;
const FREE_AT: usize = 22;
const TYPE_AT: usize = 25;

pub(super) fn read(bytes: &[u8], headers: &mut Headers) {
    let Some(file) = File::open(bytes) else { return };
    for number in 1..file.in_use {
        let Some(page) = file.page(number) else { break };
        if !matches!(page.get(TYPE_AT), Some(&(HASH_UNSORTED | HASH_SORTED))) {
            continue;
        }
        let Some(items) = file.u16(page, ITEMS_AT) else { continue };
        let items = usize::from(items).min((page.len() - PAGE_HEADER_BYTES) / 2);
        // Key, data, key, data: the data items hold the headers. (Instance 0 holds rpm's next
        // instance number, four bytes that read as no header.)
        for index in (1..items).step_by(2) {
            let Some(blob) = file.item(page, index, headers.room()) else { continue };
            if !headers.take(&blob) {
                return;
            }
        }
    }
}

struct File<'a> {
    pages: Pages<'a>,
    big_endian: bool,
    /// Pages up to the last the metadata names, as far as the file holds them.
    in_use: u32,
}

impl<'a> File<'a> {
    fn open(bytes: &'a [u8]) -> Option<Self> {
        let big_endian = match (le_u32(bytes, 12)?, be_u32(bytes, 12)?) {
            (HASH_MAGIC, _) => false,
            (_, HASH_MAGIC) => true,
            _ => return None,
        };
        let read = |at| if big_endian { be_u32(bytes, at) } else { le_u32(bytes, at) };
        let page_size = usize::try_from(read(20)?).ok()?;
        if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
            return None;
        }
        // An encrypted database cannot be read without its key.
        if bytes.get(24) != Some(&0) || bytes.get(TYPE_AT) != Some(&HASH_META) {
            return None;
        }
        let pages = Pages { bytes, size: page_size };
        let in_use = read(32)?.saturating_add(1).min(u32::try_from(pages.count()).unwrap_or(u32::MAX));
        Some(Self { pages, big_endian, in_use })
    }

    fn u16(&self, bytes: &[u8], at: usize) -> Option<u16> {
        if self.big_endian { be_u16(bytes, at) } else { le_u16(bytes, at) }
    }

    fn u32(&self, bytes: &[u8], at: usize) -> Option<u32> {
        if self.big_endian { be_u32(bytes, at) } else { le_u32(bytes, at) }
    }

    fn page(&self, number: u32) -> Option<&'a [u8]> {
        self.pages.get(usize::try_from(number).ok()?)
    }

    /// Item `index` of a hash page, from the page or its overflow pages; `None` when it does not
    /// read or is larger than `room`.
    fn item(&self, page: &'a [u8], index: usize, room: usize) -> Option<Cow<'a, [u8]>> {
        let offset_of = |index: usize| self.u16(page, PAGE_HEADER_BYTES + 2 * index).map(usize::from);
        // Items fill the page from its end: each ends where the one before it starts.
        let end = match index.checked_sub(1) {
            Some(before) => offset_of(before)?,
            None => page.len(),
        };
        let item = page.get(offset_of(index)?..end)?;
        match *item.first()? {
            ON_PAGE => Some(Cow::Borrowed(item.get(1..)?)),
            OFF_PAGE => {
                let first = self.u32(item, 4)?;
                let size = usize::try_from(self.u32(item, 8)?).ok().filter(|&s| s <= room)?;
                self.overflow(first, size).map(Cow::Owned)
            }
            _ => None,
        }
    }

    /// `size` bytes from the chain of overflow pages that starts at `first`.
    fn overflow(&self, first: u32, size: usize) -> Option<Vec<u8>> {
        let mut data = Vec::with_capacity(size);
        let mut next = first;
        while data.len() < size {
            let page = self.page(next)?;
            if page.get(TYPE_AT) != Some(&OVERFLOW) {
                return None;
            }
            let held = usize::from(self.u16(page, FREE_AT)?);
            let content = page.get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES.checked_add(held)?)?;
            // Every page must add something, or a loop of empty pages would never end.
            if content.is_empty() {
                return None;
            }
            let wanted = (size - data.len()).min(content.len());
            data.extend_from_slice(content.get(..wanted)?);
            next = self.u32(page, NEXT_PAGE_AT)?;
        }
        Some(data)
    }
}
