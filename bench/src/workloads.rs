//! The workloads of issue 5. Each one prepares its fixtures untimed, then starts the [`Timer`]
//! around exactly the requests it measures and returns a [`Measured`].

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use http::{Method, StatusCode, header};
use ring::digest;
use serde_json::{Value, json};

use crate::Error;
use crate::client::{Conn, Target, empty};
use crate::data::{Blob, Blobs, GIB, Layer, MIB, image_config, image_manifest, layer_id};
use crate::probe::{Sample, Timer};

/// Every workload, in the order `scripts/bench` runs them (pulls after the pushes whose
/// blobs they read).
pub(crate) const ALL: &[&str] = &[
    "push-large",
    "pull-large",
    "push-small",
    "pull-small",
    "blob-head",
    "mount",
    "manifest-get",
    "manifest-head",
    "tags-list",
    "push-images",
];

/// Sizes and counts; `--quick` shrinks all of them so the whole matrix takes seconds.
pub(crate) struct Sizes {
    large: u64,
    small_count: usize,
    small_size: u64,
    /// Request-rate workloads stop at this many requests or after `request_time`, whichever
    /// comes first, so a slow registry does not stretch the run and a fast one is still
    /// measured over seconds.
    requests: usize,
    request_time: Duration,
    tags: usize,
    tag_lists: usize,
    images: usize,
    base_layers: [u64; 3],
    app_layer: u64,
}

impl Sizes {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                large: 8 * MIB,
                small_count: 50,
                small_size: 64 * 1024,
                requests: 200,
                request_time: Duration::from_secs(5),
                tags: 200,
                tag_lists: 5,
                images: 10,
                base_layers: [256 * 1024, 128 * 1024, 64 * 1024],
                app_layer: 64 * 1024,
            }
        } else {
            Self {
                large: GIB,
                small_count: 1000,
                small_size: 64 * 1024,
                requests: 1_000_000,
                request_time: Duration::from_secs(5),
                tags: 10_000,
                tag_lists: 20,
                images: 100,
                base_layers: [8 * MIB, 4 * MIB, 2 * MIB],
                app_layer: MIB,
            }
        }
    }
}

/// Concurrency of the small-blob workloads (issue 5: 1,000 layers at concurrency 16).
const BLOB_CONCURRENCY: usize = 16;
/// Concurrency of the request-rate workloads (issue 5: manifest GET at concurrency 32).
const REQUEST_CONCURRENCY: usize = 32;

// Layer id namespaces, so that no two workloads ever generate the same bytes.
const KIND_LARGE: u64 = 1;
const KIND_SMALL: u64 = 2;
const KIND_MANIFEST: u64 = 3;
const KIND_BASE: u64 = 5;
const KIND_APP: u64 = 6;

/// What a workload's headline number counts.
#[derive(Clone, Copy)]
enum Unit {
    /// Decimal megabytes of blob content per second.
    MegabytesPerSecond,
    /// Requests (or operations, such as whole image pushes) per second.
    PerSecond(&'static str),
}

/// One workload's result.
struct Measured {
    unit: Unit,
    ops: usize,
    bytes: u64,
    latencies: Vec<Duration>,
    sample: Sample,
    setup: Duration,
    note: String,
    /// Extra named figures (milliseconds), e.g. the phases of a push.
    extra: Vec<(&'static str, f64)>,
}

/// Everything a workload needs.
pub(crate) struct Ctx {
    pub(crate) target: Arc<Target>,
    pub(crate) sizes: Sizes,
    /// Distinct per round, so pushes always send new content into new repositories.
    pub(crate) seed: u64,
    pub(crate) server_pid: Option<String>,
}

impl Ctx {
    fn conns(&self, n: usize) -> Vec<Conn> {
        (0..n).map(|_| Conn::new(Arc::clone(&self.target))).collect()
    }

    /// When a request-rate workload stops taking new requests; call as the timer starts.
    fn deadline(&self) -> Option<Instant> {
        Some(Instant::now() + self.sizes.request_time)
    }

    fn timer(&self) -> Timer {
        Timer::start(self.server_pid.as_deref())
    }

    fn small_blobs(&self) -> Blobs {
        Arc::new(
            (0..self.sizes.small_count)
                .map(|i| {
                    Blob::new(Layer::new(layer_id(self.seed, KIND_SMALL, i as u64), self.sizes.small_size))
                })
                .collect(),
        )
    }
}

/// Runs workload `name` and returns its JSON result line.
pub(crate) async fn run(ctx: &Ctx, name: &str) -> Result<Value, Error> {
    let setup_started = Instant::now();
    let measured = match name {
        "push-large" => push_large(ctx, setup_started).await?,
        "pull-large" => pull_large(ctx, setup_started).await?,
        "push-small" => push_small(ctx, setup_started).await?,
        "pull-small" => pull_small(ctx, setup_started).await?,
        "blob-head" => blob_head(ctx, setup_started).await?,
        "mount" => mount(ctx, setup_started).await?,
        "manifest-get" => manifest(ctx, setup_started, Method::GET).await?,
        "manifest-head" => manifest(ctx, setup_started, Method::HEAD).await?,
        "tags-list" => tags_list(ctx, setup_started).await?,
        "push-images" => push_images(ctx, setup_started).await?,
        other => return Err(format!("unknown workload {other:?}; one of: {}", ALL.join(", ")).into()),
    };
    Ok(report(name, &measured))
}

/// Nearest-rank percentile of sorted latencies, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0)
}

fn report(name: &str, m: &Measured) -> Value {
    let mut latencies = m.latencies.clone();
    latencies.sort_unstable();
    let secs = m.sample.elapsed.as_secs_f64().max(1e-9);
    let (value, unit) = match m.unit {
        Unit::MegabytesPerSecond => (m.bytes as f64 / 1e6 / secs, "MB/s".to_owned()),
        Unit::PerSecond(what) => (m.ops as f64 / secs, format!("{what}/s")),
    };
    let gib = m.bytes as f64 / GIB as f64;
    let cpu = m.sample.server_cpu_s;
    let mut line = json!({
        "workload": name,
        "value": value,
        "unit": unit,
        "ops": m.ops,
        "bytes": m.bytes,
        "duration_s": secs,
        "ops_per_s": m.ops as f64 / secs,
        "mb_per_s": m.bytes as f64 / 1e6 / secs,
        "p50_ms": percentile_ms(&latencies, 50.0),
        "p99_ms": percentile_ms(&latencies, 99.0),
        "setup_s": m.setup.as_secs_f64(),
        "server_cpu_s": cpu,
        "server_cpu_s_per_gib": cpu.filter(|_| m.bytes >= 1 << 20).map(|c| c / gib),
        "server_cpu_us_per_op": cpu.filter(|_| m.ops > 0).map(|c| c * 1e6 / m.ops as f64),
        "server_peak_rss_kib": m.sample.server_peak_rss_kib,
        "peak_scope": m.sample.peak_scope,
        "client_cpu_s": m.sample.client_cpu_s,
        "other_cpu_s": m.sample.other_cpu_s,
        "verified": true,
        "note": m.note,
    });
    for (key, value) in &m.extra {
        line[*key] = json!(value);
    }
    line
}

/// Runs `jobs` jobs over the given connections (one worker per connection), each job timed.
/// Workers are futures polled by this task rather than spawned tasks: the load generator
/// stays on one core, leaving the other to the server.
pub(crate) async fn concurrently<F>(conns: &mut [Conn], jobs: usize, job: F) -> Result<Vec<Duration>, Error>
where
    F: AsyncFn(&mut Conn, usize) -> Result<(), Error>,
{
    concurrently_until(conns, jobs, None, job).await
}

/// [`concurrently`], with workers taking no new job after `deadline`.
async fn concurrently_until<F>(
    conns: &mut [Conn],
    jobs: usize,
    deadline: Option<Instant>,
    job: F,
) -> Result<Vec<Duration>, Error>
where
    F: AsyncFn(&mut Conn, usize) -> Result<(), Error>,
{
    let next = Cell::new(0usize);
    let job = &job;
    let next = &next;
    let mut workers: FuturesUnordered<_> = conns
        .iter_mut()
        .take(jobs.max(1))
        .map(|conn| async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.get();
                if i >= jobs || deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok::<_, Error>(latencies);
                }
                next.set(i + 1);
                let started = Instant::now();
                job(conn, i).await?;
                latencies.push(started.elapsed());
            }
        })
        .collect();
    let mut all = Vec::with_capacity(jobs.min(1 << 16));
    while let Some(latencies) = workers.next().await {
        all.extend(latencies?);
    }
    Ok(all)
}

/// Opens every connection and checks the credentials, before anything is timed.
async fn warm(conns: &mut [Conn]) -> Result<(), Error> {
    concurrently(conns, conns.len(), async |conn, _| {
        conn.expect(StatusCode::OK, Method::GET, "/v2/", &[], empty()).await.map(|_| ())
    })
    .await
    .map(|_| ())
}

fn large_blob(ctx: &Ctx) -> Blob {
    Blob::new(Layer::new(layer_id(ctx.seed, KIND_LARGE, 0), ctx.sizes.large))
}

/// One large layer, POST + streamed PATCH + PUT, as docker pushes it.
async fn push_large(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blob = large_blob(ctx);
    let repo = ctx.target.repo(&format!("large-{}", ctx.seed));
    let mut conns = ctx.conns(1);
    warm(&mut conns).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let phases = Cell::new([Duration::ZERO; 3]);
    let latencies = concurrently(&mut conns, 1, async |conn, _| {
        phases.set(conn.push_blob(&repo, &blob).await?);
        Ok(())
    })
    .await?;
    let sample = timer.stop();
    let [post, patch, put] = phases.get().map(|d| d.as_secs_f64() * 1000.0);
    // The registry must now hold exactly those bytes.
    if !conns[0].has_blob(&repo, &blob.digest).await? {
        return Err(format!("{} not found after its push", blob.digest).into());
    }
    Ok(Measured {
        unit: Unit::MegabytesPerSecond,
        ops: 1,
        bytes: blob.size(),
        latencies,
        sample,
        setup,
        note: format!("{} MiB layer, POST + streamed PATCH + PUT", blob.size() / MIB),
        // Where the time went: PATCH carries the bytes, PUT verifies the digest and commits.
        extra: vec![("post_ms", post), ("patch_ms", patch), ("put_ms", put)],
    })
}

/// The large layer back, hashed as it arrives and checked against its digest.
async fn pull_large(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blob = large_blob(ctx);
    let repo = ctx.target.repo(&format!("large-{}", ctx.seed));
    let mut conns = ctx.conns(1);
    warm(&mut conns).await?;
    conns[0].ensure_blob(&repo, &blob).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns, 1, async |conn, _| {
        let (length, digest) = conn.pull_blob(&repo, &blob.digest).await?;
        if length != blob.size() || digest != blob.digest {
            return Err(
                format!("pulled {length} bytes with digest {digest}, expected {}", blob.digest).into()
            );
        }
        Ok(())
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::MegabytesPerSecond,
        ops: 1,
        bytes: blob.size(),
        latencies,
        sample,
        setup,
        note: "digest verified by the client".to_owned(),
        extra: Vec::new(),
    })
}

/// Pushes every small blob the repository does not hold yet (setup for the reading workloads).
async fn ensure_small(conns: &mut [Conn], repo: &str, blobs: &Blobs) -> Result<(), Error> {
    concurrently(conns, blobs.len(), async |conn, i| conn.ensure_blob(repo, &blobs[i]).await)
        .await
        .map(|_| ())
}

async fn push_small(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blobs = ctx.small_blobs();
    let repo = ctx.target.repo(&format!("small-{}", ctx.seed));
    let mut conns = ctx.conns(BLOB_CONCURRENCY);
    warm(&mut conns).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns, blobs.len(), async |conn, i| {
        conn.push_blob(&repo, &blobs[i]).await.map(|_| ())
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("layer"),
        ops: blobs.len(),
        bytes: blobs.iter().map(Blob::size).sum(),
        latencies,
        sample,
        setup,
        note: format!("{} layers of {} KiB, c={BLOB_CONCURRENCY}", blobs.len(), ctx.sizes.small_size / 1024),
        extra: Vec::new(),
    })
}

async fn pull_small(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blobs = ctx.small_blobs();
    let repo = ctx.target.repo(&format!("small-{}", ctx.seed));
    let mut conns = ctx.conns(BLOB_CONCURRENCY);
    warm(&mut conns).await?;
    ensure_small(&mut conns, &repo, &blobs).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns, blobs.len(), async |conn, i| {
        let (length, digest) = conn.pull_blob(&repo, &blobs[i].digest).await?;
        if length != blobs[i].size() || digest != blobs[i].digest {
            return Err(format!("blob {i}: got {length} bytes with digest {digest}").into());
        }
        Ok(())
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("layer"),
        ops: blobs.len(),
        bytes: blobs.iter().map(Blob::size).sum(),
        latencies,
        sample,
        setup,
        note: format!("{} layers, c={BLOB_CONCURRENCY}, digests verified", blobs.len()),
        extra: Vec::new(),
    })
}

async fn blob_head(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blobs = ctx.small_blobs();
    let repo = ctx.target.repo(&format!("small-{}", ctx.seed));
    let mut conns = ctx.conns(REQUEST_CONCURRENCY);
    warm(&mut conns).await?;
    ensure_small(&mut conns, &repo, &blobs).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently_until(&mut conns, ctx.sizes.requests, ctx.deadline(), async |conn, i| {
        let blob = &blobs[i % blobs.len()];
        let (headers, _) = conn
            .expect(StatusCode::OK, Method::HEAD, &format!("/v2/{repo}/blobs/{}", blob.digest), &[], empty())
            .await?;
        let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        if length != Some(blob.size().to_string().as_str()) {
            return Err(format!("HEAD {}: Content-Length {length:?}", blob.digest).into());
        }
        Ok(())
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("req"),
        ops: latencies.len(),
        bytes: 0,
        latencies,
        sample,
        setup,
        note: format!("c={REQUEST_CONCURRENCY}"),
        extra: Vec::new(),
    })
}

/// Cross-repository mounts of every small blob into a new repository.
async fn mount(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let blobs = ctx.small_blobs();
    let from = ctx.target.repo(&format!("small-{}", ctx.seed));
    let repo = ctx.target.repo(&format!("mount-{}", ctx.seed));
    let mut conns = ctx.conns(BLOB_CONCURRENCY);
    warm(&mut conns).await?;
    ensure_small(&mut conns, &from, &blobs).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns, blobs.len(), async |conn, i| {
        if conn.mount(&repo, &blobs[i].digest, &from).await? {
            Ok(())
        } else {
            Err(format!("the registry did not mount {}", blobs[i].digest).into())
        }
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("req"),
        ops: blobs.len(),
        bytes: 0,
        latencies,
        sample,
        setup,
        note: format!("{} mounts, c={BLOB_CONCURRENCY}", blobs.len()),
        extra: Vec::new(),
    })
}

/// A small image (one 64 KiB layer) in a fixed repository: what the manifest and tag
/// workloads read.
async fn fixture_image(conn: &mut Conn, repo: &str) -> Result<Bytes, Error> {
    fixture_image_named(conn, repo, "fixture").await
}

/// A fixture image whose config carries `name`, so that different names give different images.
async fn fixture_image_named(conn: &mut Conn, repo: &str, name: &str) -> Result<Bytes, Error> {
    let layer = Blob::new(Layer::new(layer_id(0, KIND_MANIFEST, 0), 64 * 1024));
    let config = image_config(&[&layer], name);
    conn.ensure_blob(repo, &layer).await?;
    conn.ensure_blob(repo, &config).await?;
    Ok(image_manifest(&config, &[&layer]))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest::digest(&digest::SHA256, bytes)))
}

/// Manifest by tag, GET or HEAD, at concurrency 32.
async fn manifest(ctx: &Ctx, setup: Instant, method: Method) -> Result<Measured, Error> {
    let repo = ctx.target.repo("manifest");
    let mut conns = ctx.conns(REQUEST_CONCURRENCY);
    warm(&mut conns).await?;
    let manifest = fixture_image(&mut conns[0], &repo).await?;
    conns[0].put_manifest(&repo, "latest", &manifest).await?;
    let expected = sha256(&manifest);
    let with_body = method == Method::GET;
    let check = async |conn: &mut Conn| -> Result<(), Error> {
        let (body, digest) = conn.get_manifest(&repo, "latest", method.clone()).await?;
        if digest != expected || (with_body && sha256(&body) != expected) {
            return Err(format!("manifest by tag: digest {digest}, expected {expected}").into());
        }
        Ok(())
    };
    // A few requests per connection first, so the timed phase starts warm on both sides.
    concurrently(&mut conns, REQUEST_CONCURRENCY * 4, async |conn, _| check(conn).await).await?;
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies =
        concurrently_until(&mut conns, ctx.sizes.requests, ctx.deadline(), async |conn, _| check(conn).await)
            .await?;
    let requests = latencies.len();
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("req"),
        ops: requests,
        bytes: if with_body { (requests * manifest.len()) as u64 } else { 0 },
        latencies,
        sample,
        setup,
        note: format!("by tag, c={REQUEST_CONCURRENCY}, {} B manifest", manifest.len()),
        extra: Vec::new(),
    })
}

/// The full tag list of a repository holding `sizes.tags` tags, fetched sequentially.
/// At most this many tags name one image of the tags-list fixture.
const TAGS_PER_IMAGE: usize = 1_000;

fn tag_name(i: usize) -> String {
    format!("v{i:05}")
}

async fn tags_list(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let repo = ctx.target.repo("tags");
    let wanted = ctx.sizes.tags;
    let mut conns = ctx.conns(BLOB_CONCURRENCY);
    warm(&mut conns).await?;
    // ECR allows an image at most 1,000 tags (berth holds both APIs to it): the tags are spread
    // over as many images as that takes.
    let mut manifests = Vec::new();
    for n in 0..wanted.div_ceil(TAGS_PER_IMAGE) {
        manifests.push(fixture_image_named(&mut conns[0], &repo, &format!("tags-{n}")).await?);
    }
    let have: std::collections::HashSet<String> = conns[0].list_tags(&repo).await?.into_iter().collect();
    let missing: Vec<usize> = (0..wanted).filter(|i| !have.contains(&tag_name(*i))).collect();
    concurrently(&mut conns, missing.len(), async |conn, i| {
        let tag = missing[i];
        conn.put_manifest(&repo, &tag_name(tag), &manifests[tag / TAGS_PER_IMAGE]).await
    })
    .await?;
    let setup = setup.elapsed();
    let lists = ctx.sizes.tag_lists;
    let bytes = Cell::new(0u64);
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns[..1], lists, async |conn, _| {
        let tags = conn.list_tags(&repo).await?;
        if tags.len() < wanted {
            return Err(format!("tags/list returned {} tags, expected at least {wanted}", tags.len()).into());
        }
        bytes.set(bytes.get() + tags.iter().map(|t| t.len() as u64 + 3).sum::<u64>());
        Ok(())
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("list"),
        ops: lists,
        bytes: bytes.get(),
        latencies,
        sample,
        setup,
        note: format!("{wanted} tags, whole list (following Link pages), c=1"),
        extra: Vec::new(),
    })
}

/// Concurrent pushes of images built on one base: each push checks the base layers in its
/// repository (HEAD), mounts them from the base repository, uploads its own layer and config,
/// then puts the manifest, as docker does when the base came from the same registry.
async fn push_images(ctx: &Ctx, setup: Instant) -> Result<Measured, Error> {
    let sizes = &ctx.sizes;
    let base: Vec<Blob> = sizes
        .base_layers
        .iter()
        .enumerate()
        .map(|(j, s)| Blob::new(Layer::new(layer_id(0, KIND_BASE, j as u64), *s)))
        .collect();
    let base_repo = ctx.target.repo("base");
    let images: Vec<(String, Blob, Blob, Bytes)> = (0..sizes.images)
        .map(|i| {
            let app = Blob::new(Layer::new(layer_id(ctx.seed, KIND_APP, i as u64), sizes.app_layer));
            let mut layers: Vec<&Blob> = base.iter().collect();
            layers.push(&app);
            let tag = format!("app-{}-{i}", ctx.seed);
            let config = image_config(&layers, &tag);
            let manifest = image_manifest(&config, &layers);
            (ctx.target.repo(&tag), app, config, manifest)
        })
        .collect();
    let mut conns = ctx.conns(sizes.images);
    warm(&mut conns).await?;
    for blob in &base {
        conns[0].ensure_blob(&base_repo, blob).await?;
    }
    let setup = setup.elapsed();
    let timer = ctx.timer();
    let latencies = concurrently(&mut conns, images.len(), async |conn, i| {
        let (repo, app, config, manifest) = &images[i];
        for blob in &base {
            if !conn.has_blob(repo, &blob.digest).await?
                && !conn.mount(repo, &blob.digest, &base_repo).await?
            {
                conn.push_blob(repo, blob).await?;
            }
        }
        for blob in [app, config] {
            if !conn.has_blob(repo, &blob.digest).await? {
                conn.push_blob(repo, blob).await?;
            }
        }
        conn.put_manifest(repo, "v1", manifest).await
    })
    .await?;
    let sample = timer.stop();
    Ok(Measured {
        unit: Unit::PerSecond("image"),
        ops: images.len(),
        bytes: images.iter().map(|(_, app, config, _)| app.size() + config.size()).sum(),
        latencies,
        sample,
        setup,
        note: format!(
            "{} concurrent pushes; 3 base layers ({} KiB) mounted, {} KiB own layer",
            images.len(),
            sizes.base_layers.iter().sum::<u64>() / 1024,
            sizes.app_layer / 1024
        ),
        extra: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&ms, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&ms, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&ms[..1], 99.0), Some(1.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }
}
