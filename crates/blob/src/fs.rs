//! The filesystem backend: `uploads/<id>` for staging data, `blobs/<xx>/<id>` for stored blobs.

use std::io::{self, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::sealed::{self, CHUNK_SIZE, ChunkCipher, RECORD_OVERHEAD};
use crate::{BlobError, BlobLocation, BlobStore, ByteStream, DataKey, Hasher, StoredBlob};

/// Sealed bytes gathered before one write call, so large blobs move in big writes.
const WRITE_BATCH: usize = 1024 * 1024;
/// Records read and decrypted per step of a read stream.
const READ_BATCH_RECORDS: u64 = 16;

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    /// Opens the store under `root`, creating its folders owner-only (0700) and tightening
    /// folders an older version left readable by others, so that no other user of the machine
    /// can list or read even the ciphertext.
    pub async fn open(root: &Path) -> Result<Self, BlobError> {
        for dir in ["uploads", "blobs"] {
            private_dir(&root.join(dir)).await?;
        }
        let mut shards = fs::read_dir(root.join("blobs")).await?;
        while let Some(shard) = shards.next_entry().await? {
            if shard.file_type().await?.is_dir() {
                private_dir(&shard.path()).await?;
            }
        }
        Ok(Self { root: root.to_owned() })
    }

    fn upload_path(&self, upload_id: &str) -> Result<PathBuf, BlobError> {
        // Ids come from the metadata store, but a path is built from them: keep them plain.
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(BlobError::NotFound(upload_id.to_owned()));
        }
        Ok(self.root.join("uploads").join(upload_id))
    }

    fn blob_path(&self, location: &BlobLocation) -> Result<PathBuf, BlobError> {
        let ok = location
            .0
            .split('/')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !ok || !location.0.starts_with("blobs/") {
            return Err(BlobError::NotFound(location.0.clone()));
        }
        Ok(self.root.join(&location.0))
    }
}

/// Creates `dir` (and its parents) owner-only, or makes an existing one owner-only.
async fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).await?;
    let mode = fs::metadata(dir).await?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "folder was readable by others; made it 0700");
        fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await?;
    }
    Ok(())
}

fn not_found_as(path: &Path) -> impl Fn(io::Error) -> BlobError + '_ {
    move |e| {
        if e.kind() == io::ErrorKind::NotFound {
            BlobError::NotFound(path.display().to_string())
        } else {
            BlobError::Io(e)
        }
    }
}

/// A listed file's metadata, or `None` if it went since the listing: a duplicate upload drops
/// its own copy while the collector lists, and a missing file must not fail the whole pass.
async fn metadata_if_present(entry: &fs::DirEntry) -> io::Result<Option<std::fs::Metadata>> {
    match entry.metadata().await {
        Ok(metadata) => Ok(Some(metadata)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir).await?.sync_all().await?;
    Ok(())
}

/// Streams plaintext bytes `start..=end` of a sealed file holding `size` bytes.
async fn read_sealed(
    path: PathBuf,
    key: &DataKey,
    size: u64,
    range: Option<(u64, u64)>,
) -> Result<ByteStream, BlobError> {
    let mut file = File::open(&path).await.map_err(not_found_as(&path))?;
    let mut header = [0u8; sealed::HEADER_LEN as usize];
    file.read_exact(&mut header).await.map_err(|_| BlobError::Corrupt { chunk: 0 })?;
    let chunk_size = sealed::parse_header(&header)?;
    let (start, end) = match range {
        _ if size == 0 => return Ok(Box::pin(futures_util::stream::empty())),
        Some((start, end)) if start <= end && end < size => (start, end),
        Some(_) => return Ok(Box::pin(futures_util::stream::empty())),
        None => (0, size - 1),
    };
    let cipher = ChunkCipher::new(key, chunk_size);
    let first = start / u64::from(chunk_size);
    let last = end / u64::from(chunk_size);
    file.seek(SeekFrom::Start(sealed::record_offset(chunk_size, first))).await?;

    struct State {
        file: File,
        cipher: ChunkCipher,
        next: u64,
        last: u64,
        skip: usize,
        remaining: u64,
        chunk_size: u32,
        size: u64,
        record: Vec<u8>,
    }
    let state = State {
        file,
        cipher,
        next: first,
        last,
        skip: (start - first * u64::from(chunk_size)) as usize,
        remaining: end - start + 1,
        chunk_size,
        size,
        record: Vec::new(),
    };
    let stream = futures_util::stream::try_unfold(state, |mut st| async move {
        if st.next > st.last || st.remaining == 0 {
            return Ok(None);
        }
        let batch_end = st.last.min(st.next + READ_BATCH_RECORDS - 1);
        // One read for the whole batch: each read on a tokio file is a trip to the blocking pool.
        let lens: Vec<usize> =
            (st.next..=batch_end).map(|i| sealed::chunk_len(st.chunk_size, st.size, i)).collect();
        let total: usize = lens.iter().map(|len| len + RECORD_OVERHEAD).sum();
        st.record.resize(total, 0);
        st.file
            .read_exact(&mut st.record)
            .await
            .map_err(|_| io::Error::other(BlobError::Corrupt { chunk: st.next }))?;
        let mut out = Vec::with_capacity(total);
        let mut at = 0;
        for (index, len) in (st.next..=batch_end).zip(lens) {
            let record = &mut st.record[at..at + len + RECORD_OVERHEAD];
            at += len + RECORD_OVERHEAD;
            let plain = st.cipher.open(index, record).map_err(io::Error::other)?;
            let plain = &plain[st.skip.min(plain.len())..];
            st.skip = 0;
            let take = plain.len().min(st.remaining as usize);
            out.extend_from_slice(&plain[..take]);
            st.remaining -= take as u64;
        }
        st.next = batch_end + 1;
        Ok(Some((Bytes::from(out), st)))
    });
    Ok(Box::pin(stream))
}

/// Writes an upload's bytes out to the disk while later ones arrive, so that the fsync that
/// commits it finds little left to do. One flush runs at a time, on a blocking thread; each
/// one's result is checked before the next begins and the last is awaited before the append
/// returns, because a write-back error reported here would not be reported again to the
/// commit's fsync.
struct Writeback {
    /// A second handle on the file for the flushing thread, opened at the first flush, so that
    /// small uploads never pay for it.
    file: Option<std::sync::Arc<std::fs::File>>,
    /// Bytes written since the last flush began.
    unflushed: u64,
    flushing: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

/// How many written bytes gather before a flush begins.
const WRITEBACK_EVERY: u64 = 16 * 1024 * 1024;

impl Writeback {
    fn new() -> Self {
        Self { file: None, unflushed: 0, flushing: None }
    }

    /// Records `len` bytes written to `file`, and begins a flush when enough have gathered and
    /// none is running; fails if the previous flush did.
    async fn wrote(&mut self, file: &File, len: u64) -> Result<(), BlobError> {
        self.unflushed += len;
        let busy = self.flushing.as_ref().is_some_and(|f| !f.is_finished());
        if self.unflushed < WRITEBACK_EVERY || busy {
            return Ok(());
        }
        self.finish().await?;
        self.unflushed = 0;
        let handle = match &self.file {
            Some(handle) => handle.clone(),
            None => {
                let handle = std::sync::Arc::new(file.try_clone().await?.into_std().await);
                self.file.insert(handle).clone()
            }
        };
        self.flushing = Some(tokio::task::spawn_blocking(move || handle.sync_data()));
        Ok(())
    }

    /// Waits for the flush in flight, if any, and returns its error.
    async fn finish(&mut self) -> Result<(), BlobError> {
        match self.flushing.take() {
            Some(flush) => Ok(flush.await.map_err(io::Error::other)??),
            None => Ok(()),
        }
    }
}

/// An upload's hasher: on the request task for the first bytes of a body, then on a blocking
/// thread of its own, so that a large body's hashing runs beside its sealing while a small one
/// pays for no thread and no channel.
enum Hashing {
    Inline { hasher: Box<Hasher>, seen: u64 },
    Thread { frames: tokio::sync::mpsc::Sender<Bytes>, done: tokio::task::JoinHandle<Hasher> },
}

/// Bytes of a body hashed inline before hashing moves to its own thread.
const INLINE_HASH_BYTES: u64 = 1024 * 1024;

/// Most bodies hashed on threads of their own at once. Such a thread waits on the client for the
/// whole body, and file I/O shares its blocking pool: without a bound, enough slow uploads would
/// leave no thread for the writes they wait on. Beyond the bound, bodies hash inline.
static HASHING_THREADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);

impl Hashing {
    fn new(hasher: Hasher) -> Self {
        Self::Inline { hasher: Box::new(hasher), seen: 0 }
    }

    async fn update(&mut self, frame: Bytes) {
        match self {
            Self::Inline { hasher, seen } if *seen < INLINE_HASH_BYTES => {
                hasher.update(&frame);
                *seen += frame.len() as u64;
            }
            Self::Inline { hasher, .. } => {
                let Ok(permit) = HASHING_THREADS.try_acquire() else {
                    hasher.update(&frame);
                    return;
                };
                let algorithm = hasher.algorithm();
                let mut hasher = std::mem::replace(hasher.as_mut(), Hasher::new(algorithm));
                let (frames, mut incoming) = tokio::sync::mpsc::channel::<Bytes>(16);
                let done = tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    while let Some(frame) = incoming.blocking_recv() {
                        hasher.update(&frame);
                    }
                    hasher
                });
                // A fresh channel has room for the first frame.
                let _ = frames.try_send(frame);
                *self = Self::Thread { frames, done };
            }
            Self::Thread { frames, .. } => {
                // The thread stops only once `finish` drops the sender, so the send cannot fail.
                let _ = frames.send(frame).await;
            }
        }
    }

    /// Waits for every frame to be hashed and returns the hasher.
    async fn finish(self) -> Result<Hasher, BlobError> {
        match self {
            Self::Inline { hasher, .. } => Ok(*hasher),
            Self::Thread { frames, done } => {
                drop(frames);
                done.await.map_err(|e| BlobError::Io(io::Error::other(e)))
            }
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn begin_upload(&self, upload_id: &str) -> Result<(), BlobError> {
        let path = self.upload_path(upload_id)?;
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).await?;
        file.write_all(&sealed::header(CHUNK_SIZE)).await?;
        file.flush().await?;
        Ok(())
    }

    async fn append_upload(
        &self,
        upload_id: &str,
        key: &DataKey,
        offset: u64,
        mut body: ByteStream,
        hasher: &mut Hasher,
        limit: u64,
    ) -> Result<u64, BlobError> {
        let path = self.upload_path(upload_id)?;
        let mut file =
            OpenOptions::new().read(true).write(true).open(&path).await.map_err(not_found_as(&path))?;
        let mut header = [0u8; sealed::HEADER_LEN as usize];
        file.read_exact(&mut header).await.map_err(|_| BlobError::Corrupt { chunk: 0 })?;
        let chunk_size = sealed::parse_header(&header)?;
        let chunk = chunk_size as usize;
        let cipher = ChunkCipher::new(key, chunk_size);

        // A partial last chunk is opened and re-sealed together with the new bytes.
        let mut index = offset / u64::from(chunk_size);
        let tail_len = (offset % u64::from(chunk_size)) as usize;
        let mut pending = Vec::with_capacity(chunk);
        let write_from = sealed::record_offset(chunk_size, index);
        if tail_len > 0 {
            let mut record = vec![0u8; tail_len + RECORD_OVERHEAD];
            file.seek(SeekFrom::Start(write_from)).await?;
            file.read_exact(&mut record).await.map_err(|_| BlobError::Corrupt { chunk: index })?;
            pending.extend_from_slice(cipher.open(index, &mut record)?);
        }
        file.set_len(write_from).await?;
        file.seek(SeekFrom::Start(write_from)).await?;

        // Past a body's first MiB its digest is computed on a thread of its own while this task
        // seals and writes: the two are the bulk of a large push's CPU and need not wait for
        // each other.
        let mut hashing = Hashing::new(std::mem::replace(hasher, Hasher::new(hasher.algorithm())));
        let mut out = Vec::with_capacity(WRITE_BATCH + chunk + RECORD_OVERHEAD);
        let mut len = offset;
        let mut interrupted = None;
        let mut writeback = Writeback::new();
        let written: Result<(), BlobError> = async {
            while let Some(frame) = body.next().await {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        interrupted = Some(e);
                        break;
                    }
                };
                if len + frame.len() as u64 > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                len += frame.len() as u64;
                let mut data = &frame[..];
                hashing.update(frame.clone()).await;
                while !data.is_empty() {
                    let take = (chunk - pending.len()).min(data.len());
                    pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if pending.len() == chunk {
                        cipher.seal_into(index, &pending, &mut out)?;
                        index += 1;
                        pending.clear();
                        if out.len() >= WRITE_BATCH {
                            file.write_all(&out).await?;
                            writeback.wrote(&file, out.len() as u64).await?;
                            out.clear();
                        }
                    }
                }
            }
            if !pending.is_empty() {
                cipher.seal_into(index, &pending, &mut out)?;
            }
            file.write_all(&out).await?;
            file.flush().await?;
            Ok(())
        }
        .await;
        let flushed = writeback.finish().await;
        *hasher = hashing.finish().await?;
        written?;
        flushed?;
        // Bytes received before a broken body are kept, so the client can resume after them.
        match interrupted {
            Some(source) => Err(BlobError::Interrupted { length: len, source }),
            None => Ok(len),
        }
    }

    async fn read_upload(&self, upload_id: &str, key: &DataKey, len: u64) -> Result<ByteStream, BlobError> {
        read_sealed(self.upload_path(upload_id)?, key, len, None).await
    }

    async fn commit_upload(&self, upload_id: &str) -> Result<BlobLocation, BlobError> {
        let src = self.upload_path(upload_id)?;
        // Stamped with the commit time: the garbage collector spares files younger than its grace,
        // and the metadata naming this one is committed right after.
        let file = File::options().write(true).open(&src).await.map_err(not_found_as(&src))?.into_std().await;
        tokio::task::spawn_blocking(move || {
            file.set_modified(std::time::SystemTime::now())?;
            file.sync_all()
        })
        .await
        .map_err(io::Error::other)??;
        let shard = &upload_id[..2.min(upload_id.len())];
        let location = BlobLocation(format!("blobs/{shard}/{upload_id}"));
        let dst = self.blob_path(&location)?;
        let dst_dir = self.root.join("blobs").join(shard);
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dst_dir).await?;
        fs::rename(&src, &dst).await?;
        sync_dir(&dst_dir).await?;
        sync_dir(&self.root.join("uploads")).await?;
        Ok(location)
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<(), BlobError> {
        match fs::remove_file(self.upload_path(upload_id)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn read(
        &self,
        location: &BlobLocation,
        key: &DataKey,
        size: u64,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream, BlobError> {
        read_sealed(self.blob_path(location)?, key, size, range).await
    }

    async fn delete(&self, location: &BlobLocation) -> Result<(), BlobError> {
        match fs::remove_file(self.blob_path(location)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list_blobs(&self) -> Result<Vec<StoredBlob>, BlobError> {
        let mut out = Vec::new();
        let mut shards = match fs::read_dir(self.root.join("blobs")).await {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        while let Some(shard) = shards.next_entry().await? {
            let (Some(shard_name), true) =
                (shard.file_name().to_str().map(str::to_owned), shard.file_type().await?.is_dir())
            else {
                continue;
            };
            let mut files = fs::read_dir(shard.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let Some(name) = file.file_name().to_str().map(str::to_owned) else { continue };
                let Some(metadata) = metadata_if_present(&file).await? else { continue };
                out.push(StoredBlob {
                    location: BlobLocation(format!("blobs/{shard_name}/{name}")),
                    written_at: metadata.modified()?,
                    stored_bytes: metadata.len(),
                });
            }
        }
        Ok(out)
    }

    async fn list_uploads(&self) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut dir = fs::read_dir(self.root.join("uploads")).await?;
        while let Some(entry) = dir.next_entry().await? {
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::DigestAlgorithm;

    fn body(parts: Vec<Vec<u8>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p)))))
    }

    async fn collect(stream: ByteStream) -> Result<Vec<u8>, io::Error> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(frame) = stream.next().await {
            out.extend_from_slice(&frame?);
        }
        Ok(out)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_file_removed_after_the_listing_is_skipped_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kept"), b"k").expect("write");
        std::fs::write(dir.path().join("gone"), b"g").expect("write");
        let mut listing = fs::read_dir(dir.path()).await.expect("list");
        let mut entries = Vec::new();
        while let Some(entry) = listing.next_entry().await.expect("entry") {
            entries.push(entry);
        }
        std::fs::remove_file(dir.path().join("gone")).expect("remove");
        let mut present = Vec::new();
        for entry in &entries {
            if metadata_if_present(entry).await.expect("no error for a vanished file").is_some() {
                present.push(entry.file_name());
            }
        }
        assert_eq!(present, vec![std::ffi::OsString::from("kept")]);
    }

    #[tokio::test]
    async fn uploads_in_uneven_parts_read_back_exactly_with_ranges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let data = pattern(3 * CHUNK_SIZE as usize + 1234);
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload("u1").await.expect("begin");

        // Cut points that fall inside chunks, so the partial tail is re-sealed each time.
        let cuts = [0, 10, 70_000, 70_001, 150_000, data.len()];
        let mut offset = 0;
        for w in cuts.windows(2) {
            let part = data[w[0]..w[1]].to_vec();
            offset = store
                .append_upload("u1", &key, offset, body(vec![part]), &mut hasher, u64::MAX)
                .await
                .expect("append");
        }
        assert_eq!(offset, data.len() as u64);
        assert_eq!(hasher.finish(), Hasher::digest_of(DigestAlgorithm::Sha256, &data));

        let location = store.commit_upload("u1").await.expect("commit");
        let on_disk = std::fs::read(dir.path().join(&location.0)).expect("file");
        assert_eq!(on_disk.len() as u64, sealed::sealed_len(CHUNK_SIZE, data.len() as u64));

        let size = data.len() as u64;
        let all = collect(store.read(&location, &key, size, None).await.expect("read")).await;
        assert_eq!(all.expect("bytes"), data);
        for (start, end) in [(0, 0), (5, 65_540), (65_536, 65_536), (100, size - 1), (size - 1, size - 1)] {
            let got =
                collect(store.read(&location, &key, size, Some((start, end))).await.expect("read")).await;
            assert_eq!(got.expect("bytes"), &data[start as usize..=end as usize], "{start}-{end}");
        }
        // Ranges that end before they start or past the end read nothing.
        for (start, end) in [(10, 5), (0, size), (size, size + 10)] {
            let got =
                collect(store.read(&location, &key, size, Some((start, end))).await.expect("read")).await;
            assert_eq!(got.expect("bytes"), Vec::<u8>::new(), "{start}-{end}");
        }
        // A stored file that is gone is not found, not an I/O fault.
        std::fs::remove_file(dir.path().join(&location.0)).expect("remove");
        let gone = store.read(&location, &key, size, None).await;
        assert!(matches!(gone, Err(BlobError::NotFound(_))), "a missing file is not found");
    }

    #[tokio::test]
    async fn large_bodies_hash_the_same_on_their_own_thread_and_across_appends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        // Past the inline part, past a writeback flush, and cut inside a frame between appends.
        let data = pattern(2 * INLINE_HASH_BYTES as usize + WRITEBACK_EVERY as usize + 777);
        let frames = |bytes: &[u8]| bytes.chunks(50_000).map(<[u8]>::to_vec).collect::<Vec<_>>();
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload("u5").await.expect("begin");
        let cut = INLINE_HASH_BYTES as usize + 12_345;
        let first =
            store.append_upload("u5", &key, 0, body(frames(&data[..cut])), &mut hasher, u64::MAX).await;
        let offset = first.expect("first append");
        let second =
            store.append_upload("u5", &key, offset, body(frames(&data[cut..])), &mut hasher, u64::MAX).await;
        assert_eq!(second.expect("second append"), data.len() as u64);
        assert_eq!(hasher.finish(), Hasher::digest_of(DigestAlgorithm::Sha256, &data));
        let location = store.commit_upload("u5").await.expect("commit");
        let read = collect(store.read(&location, &key, data.len() as u64, None).await.expect("read")).await;
        assert!(read.expect("bytes") == data, "the bytes read back differ");
    }

    #[tokio::test]
    async fn truncation_and_limit_are_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let data = pattern(2 * CHUNK_SIZE as usize);
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload("u2").await.expect("begin");
        let too_big =
            store.append_upload("u2", &key, 0, body(vec![data.clone()]), &mut hasher.clone(), 1000).await;
        assert!(matches!(too_big, Err(BlobError::TooLarge { limit: 1000 })));
        store
            .append_upload("u2", &key, 0, body(vec![data.clone()]), &mut hasher, u64::MAX)
            .await
            .expect("append");
        let location = store.commit_upload("u2").await.expect("commit");
        let path = dir.path().join(&location.0);
        let len = std::fs::metadata(&path).expect("stat").len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open")
            .set_len(len - 1)
            .expect("truncate");
        let read = collect(store.read(&location, &key, data.len() as u64, None).await.expect("read")).await;
        assert!(read.is_err(), "a truncated blob was served");
    }

    /// Stores `data` as a blob under `key`; its location.
    async fn store_blob(store: &FsBlobStore, id: &str, key: &DataKey, data: &[u8]) -> BlobLocation {
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload(id).await.expect("begin");
        store
            .append_upload(id, key, 0, body(vec![data.to_vec()]), &mut hasher, u64::MAX)
            .await
            .expect("append");
        store.commit_upload(id).await.expect("commit")
    }

    /// What a read streams before it ends, and whether it ended in an error.
    async fn served(
        store: &FsBlobStore,
        location: &BlobLocation,
        key: &DataKey,
        size: u64,
    ) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let Ok(mut stream) = store.read(location, key, size, None).await else { return (out, true) };
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    #[tokio::test]
    async fn tampered_files_fail_and_serve_no_byte_of_a_bad_chunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let data = pattern(4 * CHUNK_SIZE as usize + 100);
        let location = store_blob(&store, "t1", &key, &data).await;
        // Another blob under its own key, for a record moved between files.
        let other = store_blob(&store, "t2", &DataKey::generate().expect("key"), &data).await;
        let path = dir.path().join(&location.0);
        let pristine = std::fs::read(&path).expect("read");
        let other_bytes = std::fs::read(dir.path().join(&other.0)).expect("read");
        let record = |i: u64| {
            let start = usize::try_from(sealed::record_offset(CHUNK_SIZE, i)).expect("offset");
            start..start + CHUNK_SIZE as usize + sealed::RECORD_OVERHEAD
        };
        let mut cases: Vec<(&str, Vec<u8>, usize)> = Vec::new();
        for (chunk, byte) in [(0u64, 20usize), (2, 5000), (4, 40)] {
            let mut flipped = pristine.clone();
            flipped[usize::try_from(sealed::record_offset(CHUNK_SIZE, chunk)).expect("offset") + byte] ^=
                0x01;
            // Everything before the bad chunk may be served; nothing of it or after.
            cases.push(("a flipped byte", flipped, chunk as usize * CHUNK_SIZE as usize));
        }
        cases.push(("a truncated file", pristine[..pristine.len() - 1].to_vec(), 4 * CHUNK_SIZE as usize));
        let mut swapped = pristine.clone();
        let (one, two) = (record(1), record(2));
        swapped[one.clone()].copy_from_slice(&pristine[two.clone()]);
        swapped[two].copy_from_slice(&pristine[one.clone()]);
        cases.push(("swapped chunks", swapped, CHUNK_SIZE as usize));
        let mut foreign = pristine.clone();
        foreign[one.clone()].copy_from_slice(&other_bytes[one]);
        cases.push(("a chunk of another blob", foreign, CHUNK_SIZE as usize));
        let mut header = pristine.clone();
        header[13] ^= 0x01;
        cases.push(("a changed header", header, 0));
        for (what, bytes, good_prefix) in cases {
            std::fs::write(&path, &bytes).expect("write");
            let (out, failed) = served(&store, &location, &key, data.len() as u64).await;
            assert!(failed, "{what}: the read did not fail");
            assert!(
                out.len() <= good_prefix,
                "{what}: {} bytes served, at most {good_prefix} are intact",
                out.len()
            );
            assert_eq!(out, data[..out.len()], "{what}: served bytes differ from what was stored");
        }
        std::fs::write(&path, &pristine).expect("restore");
        assert_eq!(served(&store, &location, &key, data.len() as u64).await, (data, false));
    }

    #[tokio::test]
    async fn a_range_of_a_gibibyte_blob_opens_only_the_chunks_it_touches() {
        // A 1 GiB blob whose file holds real records only for the two chunks the range spans;
        // the rest is a hole of zeros that fails authentication if opened. The read succeeding
        // shows it opened those two records and no other.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let size: u64 = 1 << 30;
        let (first, second) = (8191u64, 8192u64);
        let cipher = sealed::ChunkCipher::new(&key, CHUNK_SIZE);
        let location = BlobLocation("blobs/ab/sparse".to_owned());
        std::fs::create_dir_all(dir.path().join("blobs/ab")).expect("shard");
        let file = std::fs::File::create(dir.path().join(&location.0)).expect("create");
        file.set_len(sealed::sealed_len(CHUNK_SIZE, size)).expect("sparse length");
        use std::os::unix::fs::FileExt;
        file.write_all_at(&sealed::header(CHUNK_SIZE), 0).expect("header");
        for chunk in [first, second] {
            let mut record = Vec::new();
            cipher.seal_into(chunk, &vec![chunk as u8; CHUNK_SIZE as usize], &mut record).expect("seal");
            file.write_all_at(&record, sealed::record_offset(CHUNK_SIZE, chunk)).expect("record");
        }
        let start = second * u64::from(CHUNK_SIZE) - 512;
        let range =
            collect(store.read(&location, &key, size, Some((start, start + 1023))).await.expect("read"))
                .await;
        let mut expected = vec![first as u8; 512];
        expected.extend(vec![second as u8; 512]);
        assert_eq!(range.expect("a 1 KiB range across two chunks reads"), expected);
        // A range over any other chunk reaches the hole and fails.
        let elsewhere = store.read(&location, &key, size, Some((0, 1023))).await.expect("read");
        assert!(collect(elsewhere).await.is_err(), "a record of zeros was accepted");
    }

    #[tokio::test]
    async fn a_long_body_reaches_the_disk_as_it_arrives_not_at_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        store.begin_upload("long").await.expect("begin");
        let staged = dir.path().join("uploads").join("long");
        // 16 MiB in 64 KiB frames; each frame first notes how much of the body is on disk.
        let on_disk = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&on_disk);
        let frames = futures_util::stream::iter(0..256).map(move |_| {
            let size = std::fs::metadata(&staged).map_or(0, |m| m.len());
            seen.lock().expect("lock").push(size);
            Ok(Bytes::from(pattern(64 * 1024)))
        });
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.append_upload("long", &key, 0, Box::pin(frames), &mut hasher, u64::MAX).await.expect("append");
        // By the last frame, all but the last write batch of what came before is on disk.
        let last = on_disk.lock().expect("lock").last().copied().unwrap_or(0);
        assert!(last >= 15 * 1024 * 1024 - WRITE_BATCH as u64, "{last} bytes on disk before the last frame");
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_no_staged_bytes_and_aborting_twice_is_harmless() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        store.begin_upload("gone").await.expect("begin");
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store
            .append_upload("gone", &key, 0, body(vec![pattern(5000)]), &mut hasher, u64::MAX)
            .await
            .expect("append");
        assert_eq!(store.list_uploads().await.expect("list"), vec!["gone".to_owned()]);
        store.abort_upload("gone").await.expect("abort");
        assert!(!dir.path().join("uploads").join("gone").exists(), "the staged bytes stayed");
        assert_eq!(store.list_uploads().await.expect("list"), Vec::<String>::new());
        store.abort_upload("gone").await.expect("a second abort finds nothing and is fine");
    }

    #[tokio::test]
    async fn deleting_a_blob_already_gone_is_not_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let location = store_blob(&store, "del", &DataKey::generate().expect("key"), &pattern(100)).await;
        store.delete(&location).await.expect("delete");
        assert!(!dir.path().join(&location.0).exists());
        // The collector may delete what another pass or a failed commit's clean-up removed first.
        store.delete(&location).await.expect("a second delete is fine");
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload("at").await.expect("begin");
        let taken = store.append_upload("at", &key, 0, body(vec![pattern(1000)]), &mut hasher, 1000).await;
        assert_eq!(taken.expect("exactly the limit"), 1000);
        store.begin_upload("over").await.expect("begin");
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        let over = store.append_upload("over", &key, 0, body(vec![pattern(1001)]), &mut hasher, 1000).await;
        assert!(matches!(over, Err(BlobError::TooLarge { limit: 1000 })), "{over:?}");
    }

    #[tokio::test]
    async fn a_broken_body_keeps_what_arrived() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        store.begin_upload("u3").await.expect("begin");
        let parts: Vec<io::Result<Bytes>> =
            vec![Ok(Bytes::from(pattern(1000))), Err(io::Error::other("client went away"))];
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        let result = store
            .append_upload("u3", &key, 0, Box::pin(futures_util::stream::iter(parts)), &mut hasher, u64::MAX)
            .await;
        assert!(matches!(result, Err(BlobError::Interrupted { length: 1000, .. })));
        let back = collect(store.read_upload("u3", &key, 1000).await.expect("read")).await.expect("bytes");
        assert_eq!(back, pattern(1000));
    }

    #[tokio::test]
    async fn locations_and_ids_cannot_escape_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        assert!(store.begin_upload("../x").await.is_err());
        let escape = BlobLocation("blobs/../../etc/passwd".to_owned());
        assert!(matches!(store.read(&escape, &key, 1, None).await, Err(BlobError::NotFound(_))));
    }

    #[tokio::test]
    async fn committed_blobs_are_listed_with_their_commit_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        assert_eq!(store.list_blobs().await.expect("list"), vec![]);
        let key = DataKey::generate().expect("key");
        store.begin_upload("old-upload").await.expect("begin");
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store
            .append_upload("old-upload", &key, 0, body(vec![pattern(10)]), &mut hasher, u64::MAX)
            .await
            .expect("append");
        // Written long ago, committed now: the commit time is what counts.
        let staged = dir.path().join("uploads").join("old-upload");
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .expect("open")
            .set_modified(long_ago)
            .expect("stamp");
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        let location = store.commit_upload("old-upload").await.expect("commit");
        let listed = store.list_blobs().await.expect("list");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].location, location);
        assert!(listed[0].written_at >= before, "stamped at commit: {listed:?}");
        assert_eq!(listed[0].stored_bytes, sealed::sealed_len(CHUNK_SIZE, 10));
        store.delete(&location).await.expect("delete");
        assert_eq!(store.list_blobs().await.expect("list"), vec![]);
    }

    #[tokio::test]
    async fn a_blob_of_whole_chunks_reads_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let key = DataKey::generate().expect("key");
        let data = pattern(2 * CHUNK_SIZE as usize);
        let mut hasher = Hasher::new(DigestAlgorithm::Sha256);
        store.begin_upload("whole").await.expect("begin");
        store
            .append_upload("whole", &key, 0, body(vec![data.clone()]), &mut hasher, u64::MAX)
            .await
            .expect("append");
        let location = store.commit_upload("whole").await.expect("commit");
        let all = collect(store.read(&location, &key, data.len() as u64, None).await.expect("read")).await;
        assert_eq!(all.expect("bytes"), data, "no chunk past the last is read");
    }

    #[tokio::test]
    async fn stored_locations_never_leave_the_blob_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        let at = |location: &str| store.blob_path(&BlobLocation(location.to_owned()));
        assert_eq!(at("blobs/ab/ab12-cd").expect("a stored blob"), dir.path().join("blobs/ab/ab12-cd"));
        for outside in [
            "blobs/../meta.db",
            "blobs/ab/..",
            "blobs//x",
            "blobs/./x",
            "uploads/x",
            "blobs/a b",
            "/etc/passwd",
        ] {
            assert!(matches!(at(outside), Err(BlobError::NotFound(_))), "{outside} was accepted");
        }
    }
}
