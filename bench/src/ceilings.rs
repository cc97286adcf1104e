//! The machine's own limits, measured in the same run as the workloads: what a registry on
//! this machine could reach at best. CPU figures are single-core, through `ring` as berth uses
//! it (SHA-256, AES-256-GCM over 64 KiB records), per second of the thread's CPU time; disk
//! figures are in the benchmark's data folder; network figures use both cores.

use std::convert::Infallible;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::digest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;
use crate::client::{Conn, Target, empty};
use crate::data::{MIB, pattern};
use crate::workloads::{concurrently, percentile_ms};

/// `O_DIRECT`, which std does not name; the value is fixed per architecture by the kernel ABI.
/// Elsewhere the device read is skipped.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const O_DIRECT: Option<i32> = Some(0o40000);
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const O_DIRECT: Option<i32> = Some(0o200000);
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm")))]
const O_DIRECT: Option<i32> = None;

/// berth's record size (`blob::sealed::CHUNK_SIZE`).
const RECORD: usize = 64 * 1024;

struct Volumes {
    cpu: u64,
    disk: u64,
    fsyncs: usize,
    loopback: u64,
    http_requests: usize,
}

pub(crate) fn run(dir: &Path, quick: bool) -> Result<Value, Error> {
    let v = if quick {
        Volumes { cpu: 128 * MIB, disk: 256 * MIB, fsyncs: 50, loopback: 512 * MIB, http_requests: 2_000 }
    } else {
        Volumes {
            cpu: 1024 * MIB,
            disk: 1024 * MIB,
            fsyncs: 300,
            loopback: 4096 * MIB,
            http_requests: 30_000,
        }
    };
    fs::create_dir_all(dir)?;
    let sha = mb_per_s(v.cpu, sha256(v.cpu));
    let seal = mb_per_s(v.cpu, aes_seal(v.cpu)?);
    let open = mb_per_s(v.cpu, aes_open(v.cpu)?);
    let both = mb_per_s(v.cpu, hash_and_seal(v.cpu)?);
    let (write, cached, direct) = disk(dir, v.disk)?;
    let (fsync_per_s, fsync_p50_ms) = fsyncs(dir, v.fsyncs)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let loopback = mb_per_s(v.loopback, runtime.block_on(loopback(v.loopback))?);
    let (http_req_s, http_p50_ms, http_p99_ms) = runtime.block_on(http_echo(v.http_requests))?;
    Ok(json!({
        "sha256_mb_s": sha,
        "aes_gcm_seal_mb_s": seal,
        "aes_gcm_open_mb_s": open,
        "hash_encrypt_mb_s": both,
        "disk_write_mb_s": write,
        "disk_read_cached_mb_s": cached,
        "disk_read_direct_mb_s": direct,
        "fsync_per_s": fsync_per_s,
        "fsync_p50_ms": fsync_p50_ms,
        "loopback_mb_s": loopback,
        "http_req_s": http_req_s,
        "http_p50_ms": http_p50_ms,
        "http_p99_ms": http_p99_ms,
        "cpu_bytes": v.cpu,
        "disk_bytes": v.disk,
    }))
}

/// CPU time this thread has run (/proc/thread-self/schedstat, nanoseconds).
fn thread_cpu() -> Option<Duration> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(text.split_whitespace().next()?.parse().ok()?))
}

/// A CPU ceiling's clock: the thread's own CPU time where the kernel reports it, so other
/// processes on a shared machine do not lower a single-core figure; wall time otherwise.
struct CpuClock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl CpuClock {
    fn start() -> Self {
        Self { cpu: thread_cpu(), wall: Instant::now() }
    }

    fn elapsed(&self) -> Duration {
        match (self.cpu, thread_cpu()) {
            (Some(before), Some(after)) if after > before => after - before,
            _ => self.wall.elapsed(),
        }
    }
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

fn sha256(total: u64) -> Duration {
    let block = pattern();
    let started = CpuClock::start();
    let mut context = digest::Context::new(&digest::SHA256);
    for _ in 0..total / MIB {
        context.update(block);
    }
    std::hint::black_box(context.finish());
    started.elapsed()
}

fn key() -> Result<LessSafeKey, Error> {
    let key = UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| "AES-256-GCM key rejected")?;
    Ok(LessSafeKey::new(key))
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals 64 KiB records in place, as berth's writer does after copying the plaintext in.
fn aes_seal(total: u64) -> Result<Duration, Error> {
    let key = key()?;
    let mut record = pattern()[..RECORD].to_vec();
    let started = CpuClock::start();
    for i in 0..total / RECORD as u64 {
        let tag = key
            .seal_in_place_separate_tag(nonce(i), Aad::from(i.to_be_bytes()), &mut record)
            .map_err(|_| "seal failed")?;
        let _ = std::hint::black_box(tag);
    }
    Ok(started.elapsed())
}

/// Opens 64 KiB records; each is first copied from a sealed original, as a reader fills its
/// buffer from the file (the copy is part of the real cost too).
fn aes_open(total: u64) -> Result<Duration, Error> {
    let key = key()?;
    let mut sealed = pattern()[..RECORD].to_vec();
    key.seal_in_place_append_tag(nonce(0), Aad::from(0u64.to_be_bytes()), &mut sealed)
        .map_err(|_| "seal failed")?;
    let mut record = Vec::with_capacity(sealed.len());
    let started = CpuClock::start();
    for _ in 0..total / RECORD as u64 {
        record.clear();
        record.extend_from_slice(&sealed);
        let plain = key
            .open_in_place(nonce(0), Aad::from(0u64.to_be_bytes()), &mut record)
            .map_err(|_| "open failed")?;
        std::hint::black_box(plain);
    }
    Ok(started.elapsed())
}

/// What one core does per pushed byte in berth: hash it, copy it into the record, seal it.
fn hash_and_seal(total: u64) -> Result<Duration, Error> {
    let key = key()?;
    let plain = &pattern()[..RECORD];
    let mut record = Vec::with_capacity(RECORD);
    let mut context = digest::Context::new(&digest::SHA256);
    let started = CpuClock::start();
    for i in 0..total / RECORD as u64 {
        context.update(plain);
        record.clear();
        record.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(nonce(i), Aad::from(i.to_be_bytes()), &mut record)
            .map_err(|_| "seal failed")?;
        let _ = std::hint::black_box(tag);
    }
    std::hint::black_box(context.finish());
    Ok(started.elapsed())
}

/// Sequential write (1 MiB writes, then fdatasync, both timed), read back through the page
/// cache, and read with O_DIRECT (the device itself). Returns MB/s of each; O_DIRECT is `None`
/// where the file system refuses it (tmpfs).
fn disk(dir: &Path, total: u64) -> Result<(f64, f64, Option<f64>), Error> {
    let path = dir.join("ceiling-disk");
    let block = pattern();
    let started = Instant::now();
    let mut file = File::create(&path)?;
    for _ in 0..total / MIB {
        file.write_all(block)?;
    }
    file.sync_data()?;
    let write = mb_per_s(total, started.elapsed());
    drop(file);

    let mut buffer = vec![0u8; MIB as usize];
    let started = Instant::now();
    let mut file = File::open(&path)?;
    while file.read(&mut buffer)? > 0 {}
    let cached = mb_per_s(total, started.elapsed());

    // O_DIRECT needs a block-aligned buffer: carve one out of a larger allocation.
    let mut raw = vec![0u8; MIB as usize + 4096];
    let offset = raw.as_ptr().align_offset(4096);
    let aligned = &mut raw[offset..offset + MIB as usize];
    let opened = O_DIRECT.map(|flag| OpenOptions::new().read(true).custom_flags(flag).open(&path));
    let direct = match opened {
        Some(Ok(mut file)) => {
            let started = Instant::now();
            let mut read = 0u64;
            loop {
                match file.read(aligned) {
                    Ok(0) => break Some(mb_per_s(read, started.elapsed())),
                    Ok(n) => read += n as u64,
                    Err(_) => break None,
                }
            }
        }
        _ => None,
    };
    fs::remove_file(&path)?;
    Ok((write, cached, direct))
}

/// Small appends each followed by fdatasync: the most durable commits per second one writer
/// can make, the bound of any registry that syncs each blob it accepts.
fn fsyncs(dir: &Path, count: usize) -> Result<(f64, f64), Error> {
    let path = dir.join("ceiling-fsync");
    let mut file = File::create(&path)?;
    let block = &pattern()[..4096];
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let one = Instant::now();
        file.write_all(block)?;
        file.sync_data()?;
        latencies.push(one.elapsed());
    }
    let per_s = count as f64 / started.elapsed().as_secs_f64().max(1e-9);
    fs::remove_file(&path)?;
    latencies.sort_unstable();
    let p50 = latencies.get(latencies.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Ok((per_s, p50))
}

/// One TCP stream over loopback, 1 MiB writes against 1 MiB reads, sender and receiver on
/// separate runtime threads.
async fn loopback(total: u64) -> Result<Duration, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buffer = vec![0u8; MIB as usize];
        let mut received = 0u64;
        loop {
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<u64, std::io::Error>(received);
            }
            received += n as u64;
        }
    });
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let block = pattern().clone();
    let started = Instant::now();
    for _ in 0..total / MIB {
        stream.write_all(&block).await?;
    }
    stream.shutdown().await?;
    let received = receiver.await??;
    let took = started.elapsed();
    if received != total {
        return Err(format!("loopback: received {received} of {total} bytes").into());
    }
    Ok(took)
}

/// The request rate of a do-nothing HTTP/1.1 server (hyper, answering every request with a
/// 500-byte body) driven by this load generator at concurrency 32: the most any registry
/// could answer here, with the client's own cost included.
async fn http_echo(requests: usize) -> Result<(f64, f64, f64), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let body = Bytes::from(vec![b'x'; 500]);
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                // A connection error only ends that connection; the measurement sees it.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let target = Arc::new(Target::new(&format!("http://{address}"), "x", "x", "")?);
    let mut conns: Vec<Conn> = (0..32).map(|_| Conn::new(Arc::clone(&target))).collect();
    let get = async |conn: &mut Conn, _: usize| {
        conn.expect(StatusCode::OK, Method::GET, "/v2/", &[], empty()).await.map(|_| ())
    };
    concurrently(&mut conns, 32 * 8, get).await?;
    let started = Instant::now();
    let mut latencies = concurrently(&mut conns, requests, get).await?;
    let per_s = requests as f64 / started.elapsed().as_secs_f64().max(1e-9);
    server.abort();
    latencies.sort_unstable();
    let ms = |p: f64| percentile_ms(&latencies, p).unwrap_or(0.0);
    Ok((per_s, ms(50.0), ms(99.0)))
}
