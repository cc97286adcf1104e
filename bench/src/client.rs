//! A lean HTTP/1.1 client for the registry API: one hyper connection per worker, no pool, so
//! that on a small machine the load generator spends its CPU on bytes, not on bookkeeping.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use ring::digest;

use crate::Error;
use crate::data::{Blob, Layer};

/// Every request body the generator sends.
pub(crate) type ReqBody = BoxBody<Bytes, io::Error>;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// What docker sends when it asks for a manifest by tag.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json";

/// The registry under test: where it listens, how to log in, which namespace to use.
pub(crate) struct Target {
    /// `host:port`, used both to connect and as the `Host` header.
    pub(crate) authority: String,
    authorization: HeaderValue,
    /// Repository prefix: `000000000000` for berth (the owner account), anything for the reference.
    pub(crate) namespace: String,
}

impl Target {
    pub(crate) fn new(url: &str, user: &str, password: &str, namespace: &str) -> Result<Self, Error> {
        let uri: http::Uri = url.parse().map_err(|e| format!("registry URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("registry URL {url:?}: only http:// on loopback is benchmarked").into());
        }
        let authority = uri.authority().ok_or_else(|| format!("registry URL {url:?} has no host"))?;
        let authority =
            if authority.port().is_some() { authority.to_string() } else { format!("{authority}:80") };
        let credentials = STANDARD.encode(format!("{user}:{password}"));
        let authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| "the credentials do not fit in a header".to_owned())?;
        Ok(Self { authority, authorization, namespace: namespace.trim_matches('/').to_owned() })
    }

    /// `<namespace>/bench/<name>`.
    pub(crate) fn repo(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            format!("bench/{name}")
        } else {
            format!("{}/bench/{name}", self.namespace)
        }
    }
}

/// One keep-alive connection, reopened when the server closes it.
pub(crate) struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<ReqBody>>,
}

impl Conn {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        Self { target, sender: None }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<ReqBody>, Error> {
        let stale = self.sender.as_ref().is_none_or(SendRequest::is_closed);
        if stale {
            let stream = tokio::net::TcpStream::connect(&self.target.authority)
                .await
                .map_err(|e| format!("connect {}: {e}", self.target.authority))?;
            // Small requests must not wait for Nagle's algorithm.
            stream.set_nodelay(true)?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // The connection ends when the sender is dropped or the server closes it; a
                // failure shows up on the next request, so it needs no report here.
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().ok_or("no connection")?;
        sender.ready().await?;
        Ok(sender)
    }

    /// Sends one request. `path` is an origin-form path (with query) or an absolute URL on the
    /// same server, as registries return in `Location`.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: ReqBody,
    ) -> Result<Response<Incoming>, Error> {
        let path = origin_form(path);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.target.authority)
            .header(header::AUTHORIZATION, self.target.authorization.clone());
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let request = request.body(body)?;
        let sender = self.connect().await?;
        match sender.send_request(request).await {
            Ok(response) => Ok(response),
            Err(e) => {
                // Whatever state the connection is in, do not reuse it.
                self.sender = None;
                Err(e.into())
            }
        }
    }

    /// Sends a request and reads the whole (small) response body.
    pub(crate) async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: ReqBody,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        let response = self.send(method, path, headers, body).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// Like [`Conn::call`], failing unless the status is `want`.
    pub(crate) async fn expect(
        &mut self,
        want: StatusCode,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: ReqBody,
    ) -> Result<(HeaderMap, Bytes), Error> {
        let what = format!("{method} {path}");
        let (status, headers, bytes) = self.call(method, path, headers, body).await?;
        if status != want {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            return Err(format!("{what}: expected {want}, got {status}: {text}").into());
        }
        Ok((headers, bytes))
    }

    /// Pushes a blob the way docker does: `POST` to open an upload, one streamed `PATCH` with
    /// the whole content, then `PUT ?digest=` with an empty body (where the registry verifies
    /// and commits). Returns how long each of the three took.
    pub(crate) async fn push_blob(&mut self, repo: &str, blob: &Blob) -> Result<[Duration; 3], Error> {
        let started = Instant::now();
        let (headers, _) = self
            .expect(StatusCode::ACCEPTED, Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], empty())
            .await?;
        let location = location_of(&headers)?;
        let posted = Instant::now();
        let (headers, _) = self
            .expect(
                StatusCode::ACCEPTED,
                Method::PATCH,
                &location,
                &[(header::CONTENT_TYPE, "application/octet-stream")],
                blob.body(),
            )
            .await?;
        let location = location_of(&headers)?;
        let patched = Instant::now();
        let digest = &blob.digest;
        let separator = if location.contains('?') { '&' } else { '?' };
        self.expect(
            StatusCode::CREATED,
            Method::PUT,
            &format!("{location}{separator}digest={digest}"),
            &[(header::CONTENT_LENGTH, "0")],
            empty(),
        )
        .await?;
        Ok([posted - started, patched - posted, patched.elapsed()])
    }

    /// `HEAD` of a blob: whether the repository holds it.
    pub(crate) async fn has_blob(&mut self, repo: &str, digest: &str) -> Result<bool, Error> {
        let (status, _, _) =
            self.call(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"), &[], empty()).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => Err(format!("HEAD blob {digest} in {repo}: unexpected {other}").into()),
        }
    }

    /// Pushes the blob unless the repository already holds it.
    pub(crate) async fn ensure_blob(&mut self, repo: &str, blob: &Blob) -> Result<(), Error> {
        if !self.has_blob(repo, &blob.digest).await? {
            self.push_blob(repo, blob).await?;
        }
        Ok(())
    }

    /// Cross-repository mount; `true` when the registry mounted it (201), `false` when it
    /// opened an upload instead (202), which is then cancelled.
    pub(crate) async fn mount(&mut self, repo: &str, digest: &str, from: &str) -> Result<bool, Error> {
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let (status, headers, _) = self.call(Method::POST, &path, &[], empty()).await?;
        match status {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                let location = location_of(&headers)?;
                self.call(Method::DELETE, &location, &[], empty()).await?;
                Ok(false)
            }
            other => Err(format!("mount {digest} into {repo}: unexpected {other}").into()),
        }
    }

    pub(crate) async fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        manifest: &Bytes,
    ) -> Result<(), Error> {
        self.expect(
            StatusCode::CREATED,
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[(header::CONTENT_TYPE, OCI_MANIFEST)],
            full(manifest.clone()),
        )
        .await?;
        Ok(())
    }

    /// `GET` (or `HEAD`) of a manifest by tag, as docker asks for it; returns the body and the
    /// `Docker-Content-Digest` the registry reported.
    pub(crate) async fn get_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        method: Method,
    ) -> Result<(Bytes, String), Error> {
        let (headers, body) = self
            .expect(
                StatusCode::OK,
                method,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[(header::ACCEPT, MANIFEST_ACCEPT)],
                empty(),
            )
            .await?;
        let digest = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .ok_or("manifest response without Docker-Content-Digest")?
            .to_owned();
        Ok((body, digest))
    }

    /// Every tag of a repository, following `Link` pagination.
    pub(crate) async fn list_tags(&mut self, repo: &str) -> Result<Vec<String>, Error> {
        let mut tags = Vec::new();
        let mut path = Some(format!("/v2/{repo}/tags/list"));
        while let Some(current) = path.take() {
            let (status, headers, body) = self.call(Method::GET, &current, &[], empty()).await?;
            if status == StatusCode::NOT_FOUND && tags.is_empty() {
                // A repository that does not exist yet has no tags.
                return Ok(tags);
            }
            if status != StatusCode::OK {
                return Err(format!("GET {current}: unexpected {status}").into());
            }
            let page: serde_json::Value = serde_json::from_slice(&body)?;
            if let Some(list) = page.get("tags").and_then(serde_json::Value::as_array) {
                tags.extend(list.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
            path = headers.get(header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
        }
        Ok(tags)
    }

    /// Downloads a blob, hashing while reading; returns the number of bytes and their digest.
    pub(crate) async fn pull_blob(&mut self, repo: &str, digest: &str) -> Result<(u64, String), Error> {
        let response = self.send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), &[], empty()).await?;
        let status = response.status();
        let mut body = response.into_body();
        if status != StatusCode::OK {
            return Err(format!("GET blob {digest} from {repo}: unexpected {status}").into());
        }
        let mut context = digest::Context::new(&digest::SHA256);
        let mut length = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                context.update(&data);
                length += data.len() as u64;
            }
        }
        Ok((length, format!("sha256:{}", hex::encode(context.finish()))))
    }
}

/// The path and query of `location`, which registries send either as a path or as an absolute
/// URL (distribution does the latter).
fn origin_form(location: &str) -> &str {
    match location.strip_prefix("http://").or_else(|| location.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

fn location_of(headers: &HeaderMap) -> Result<String, Error> {
    let value = headers.get(header::LOCATION).ok_or("upload response without Location")?;
    Ok(value.to_str().map_err(|_| "Location is not text")?.to_owned())
}

/// The target of `Link: <...>; rel="next"`.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(origin_form(part.get(start..end)?).to_owned())
    })
}

pub(crate) fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|never: Infallible| match never {}).boxed()
}

pub(crate) fn full(bytes: Bytes) -> ReqBody {
    Full::new(bytes).map_err(|never: Infallible| match never {}).boxed()
}

/// A request body produced chunk by chunk from a [`Layer`], so a 1 GiB layer is never held in
/// memory. Its length is not announced, so hyper sends it chunked, as docker does.
pub(crate) struct LayerBody {
    layer: Layer,
    next: u64,
}

impl LayerBody {
    pub(crate) fn new(layer: Layer) -> Self {
        Self { layer, next: 0 }
    }
}

impl Body for LayerBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if this.next >= this.layer.chunks() {
            return Poll::Ready(None);
        }
        let chunk = this.layer.chunk(this.next);
        this.next += 1;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        // Deliberately unknown: docker streams layers with chunked transfer encoding.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_origin_form() {
        assert_eq!(origin_form("/v2/a/blobs/uploads/x?y=1"), "/v2/a/blobs/uploads/x?y=1");
        assert_eq!(
            origin_form("http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=s"),
            "/v2/a/blobs/uploads/x?_state=s"
        );
        assert_eq!(
            next_link("</v2/r/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/r/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("</v2/r/tags/list>; rel=\"prev\""), None);
    }
}
