//! The audit log: one JSON line for every change made through the APIs (repositories, images,
//! policies, lifecycle policies, templates, scanning settings), every request the authorization
//! refused and every failed authentication, with the fields CloudTrail records for an API call,
//! so that a CloudTrail user reads it as such. Successful reads are not recorded: metrics count
//! them. The operator's own commands (`berth admin`) add their lines to the same file.
//!
//! A line names who asked (principal ARN, access key id, source address, user agent), what
//! (`eventName`, `requestParameters` without secrets or content: a manifest or a layer part is
//! recorded by its size only), on what (`resources`) and how it ended (`errorCode`,
//! `errorMessage`), under the request's id, the `x-amzn-RequestId` the client got.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use berth_core::Cidr;
use berth_iam::Principal;
use berth_registry::Caller;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::oci::route::{self, OciPath};
use crate::request_id::RequestId;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDestination {
    Off,
    Stdout,
    /// For commands whose standard output is their result.
    Stderr,
    /// A file, renamed to `<path>.1` (and older ones shifted, `keep` kept) once it would pass
    /// `max_bytes`.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
}

/// The audit log of one process.
pub struct AuditLog {
    region: String,
    sink: Option<Mutex<Sink>>,
}

enum Sink {
    Stdout,
    Stderr,
    File(RotatingFile),
}

impl AuditLog {
    /// Opens `destination`; a file (and its folder) is created owner-only.
    pub fn open(destination: &AuditDestination, region: &str) -> io::Result<Self> {
        let sink = match destination {
            AuditDestination::Off => None,
            AuditDestination::Stdout => Some(Mutex::new(Sink::Stdout)),
            AuditDestination::Stderr => Some(Mutex::new(Sink::Stderr)),
            AuditDestination::File { path, max_bytes, keep } => {
                Some(Mutex::new(Sink::File(RotatingFile::open(path, *max_bytes, *keep)?)))
            }
        };
        Ok(Self { region: region.to_owned(), sink })
    }

    pub fn off() -> Self {
        Self { region: String::new(), sink: None }
    }

    pub fn is_on(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one record. A failure to write is logged and does not fail the request: the
    /// audit log is a record, not a gate.
    pub fn record(&self, entry: &AuditEntry) {
        let Some(sink) = &self.sink else { return };
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "an audit record could not be written as JSON");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = match &mut *sink {
            Sink::Stdout => io::stdout().lock().write_all(&line),
            Sink::Stderr => io::stderr().lock().write_all(&line),
            Sink::File(file) => file.write_line(&line),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "the audit log could not be written");
        }
    }

    /// A record of an operator's command, run beside the server (`berth admin ...`).
    pub fn record_operator_command(
        &self,
        command: &str,
        parameters: Value,
        account: Option<&str>,
        error: Option<&str>,
    ) {
        if !self.is_on() {
            return;
        }
        let operator = std::env::var("USER").ok();
        self.record(&AuditEntry {
            event_source: "berth.admin",
            event_name: command.to_owned(),
            event_type: "BerthOperatorCommand",
            user_identity: UserIdentity {
                kind: "Operator",
                principal_id: operator.clone(),
                user_name: operator,
                ..UserIdentity::default()
            },
            request_parameters: parameters,
            recipient_account_id: account.map(str::to_owned),
            error_code: error.map(|_| "CommandFailed".to_owned()),
            error_message: error.map(str::to_owned),
            read_only: false,
            ..AuditEntry::new(&self.region)
        });
    }
}

/// A file that is renamed aside once it would pass its size, keeping a fixed number of old ones.
struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: File,
    written: u64,
}

fn open_private(path: &Path) -> io::Result<File> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder)?;
    }
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl RotatingFile {
    fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = open_private(path)?;
        let written = file.metadata()?.len();
        Ok(Self { path: path.to_owned(), max_bytes, keep, file, written })
    }

    fn aside(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written.saturating_add(line.len() as u64) > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.written = self.written.saturating_add(line.len() as u64);
        Ok(())
    }

    /// `<path>.{keep-1}` becomes `.{keep}` (the oldest is overwritten), ..., `<path>` becomes
    /// `.1`, and a new `<path>` is begun.
    fn rotate(&mut self) -> io::Result<()> {
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
        if self.keep == 0 {
            ignore_missing(std::fs::remove_file(&self.path))?;
        } else {
            for n in (1..self.keep).rev() {
                ignore_missing(std::fs::rename(self.aside(n), self.aside(n + 1)))?;
            }
            std::fs::rename(&self.path, self.aside(1))?;
        }
        self.file = open_private(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// One audit record, with CloudTrail's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub event_version: &'static str,
    pub event_time: String,
    pub event_source: &'static str,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub user_identity: UserIdentity,
    pub request_parameters: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    pub event_type: &'static str,
    pub management_event: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<AuditResource>,
}

impl AuditEntry {
    fn new(region: &str) -> Self {
        Self {
            event_version: "1.08",
            event_time: now_rfc3339(),
            event_source: "ecr.amazonaws.com",
            event_name: String::new(),
            aws_region: region.to_owned(),
            source_ip_address: None,
            user_agent: None,
            user_identity: UserIdentity::default(),
            request_parameters: Value::Null,
            error_code: None,
            error_message: None,
            request_id: None,
            event_id: uuid::Uuid::new_v4().to_string(),
            read_only: false,
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: None,
            resources: Vec::new(),
        }
    }
}

/// Who made the request, as CloudTrail's `userIdentity` names it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl UserIdentity {
    fn of(principal: &Principal, access_key_id: Option<String>) -> Self {
        let account_id = principal.account().map(ToString::to_string);
        match principal {
            Principal::Anonymous => Self { kind: "Anonymous", ..Self::default() },
            Principal::Root { .. } => Self {
                kind: "Root",
                principal_id: account_id.clone(),
                arn: Some(principal.arn()),
                account_id,
                access_key_id,
                user_name: None,
            },
            Principal::User { name, .. } => Self {
                kind: "IAMUser",
                principal_id: Some(principal.arn()),
                arn: Some(principal.arn()),
                account_id,
                access_key_id,
                user_name: Some(name.rsplit('/').next().unwrap_or(name).to_owned()),
            },
        }
    }
}

/// A resource a request acted on.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResource {
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// What handlers tell the audit log about a request, and what its error response says.

/// What a handler learned of a request that the audit record needs: who it is (once
/// authenticated) and, on the ECR API, the request's body (its parameters).
#[derive(Default)]
struct Facts {
    caller: Option<(Principal, Option<String>)>,
    body: Option<bytes::Bytes>,
}

/// Put in a request's extensions by the middleware; handlers fill it.
#[derive(Clone, Default)]
pub(crate) struct AuditNote(Arc<Mutex<Facts>>);

impl AuditNote {
    fn with<R>(&self, f: impl FnOnce(&mut Facts) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Notes who a request acts as.
pub(crate) fn note_caller(parts: &http::request::Parts, caller: &Caller) {
    if let Some(note) = parts.extensions.get::<AuditNote>() {
        note.with(|f| f.caller = Some((caller.principal.clone(), caller.access_key_id.clone())));
    }
}

/// Notes an ECR API request's body, read only if the request is recorded.
pub(crate) fn note_body(parts: &http::request::Parts, body: &bytes::Bytes) {
    if let Some(note) = parts.extensions.get::<AuditNote>() {
        note.with(|f| f.body = Some(body.clone()));
    }
}

/// Put in an error response's extensions where errors are rendered: its code and message.
#[derive(Debug, Clone)]
pub(crate) struct ErrorFacts {
    pub(crate) code: String,
    pub(crate) message: String,
}

/// Codes of refused authentication, on either API.
const AUTHENTICATION_FAILURES: [&str; 6] = [
    "UNAUTHORIZED",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
];
/// Codes of requests the authorization refused.
const DENIALS: [&str; 2] = ["DENIED", "AccessDeniedException"];

/// ECR operations that change something (CloudTrail's `readOnly: false`).
const CHANGES: [&str; 21] = [
    "CreateRepository",
    "DeleteRepository",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "TagResource",
    "UntagResource",
    "BatchDeleteImage",
    "PutImage",
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "PutRegistryPolicy",
    "DeleteRegistryPolicy",
    "CreateRepositoryCreationTemplate",
    "UpdateRepositoryCreationTemplate",
    "DeleteRepositoryCreationTemplate",
    "PutLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "StartLifecyclePolicyPreview",
    "UpdateImageStorageClass",
    "StartImageScan",
    "PutRegistryScanningConfiguration",
];

/// Members of a request that are content, not parameters: recorded by their size.
const CONTENT_MEMBERS: [&str; 2] = ["imageManifest", "layerPartBlob"];

/// What the audit middleware needs.
pub(crate) struct AuditState {
    pub(crate) log: Arc<AuditLog>,
    pub(crate) trusted_proxies: Vec<Cidr>,
}

fn text(value: &Option<http::HeaderValue>) -> Option<&str> {
    value.as_ref().and_then(|v| v.to_str().ok())
}

/// The parts of a request its record may need.
struct Seen {
    method: http::Method,
    uri: http::Uri,
    target: Option<http::HeaderValue>,
    authorization: Option<http::HeaderValue>,
    request_id: Option<String>,
    /// What `origin::of` reads: the peer, TLS, and the headers it names.
    origin: http::request::Parts,
}

impl Seen {
    fn of(parts: &http::request::Parts) -> Self {
        let mut origin = http::Request::new(()).into_parts().0;
        for name in ["user-agent", "referer", "x-forwarded-for"] {
            for value in parts.headers.get_all(name) {
                origin.headers.append(name, value.clone());
            }
        }
        if let Some(peer) = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>() {
            origin.extensions.insert(*peer);
        }
        if let Some(secure) = parts.extensions.get::<crate::listener::SecureTransport>() {
            origin.extensions.insert(*secure);
        }
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            target: parts.headers.get("x-amz-target").cloned(),
            authorization: parts.headers.get(http::header::AUTHORIZATION).cloned(),
            request_id: parts.extensions.get::<RequestId>().map(|id| id.0.clone()),
            origin,
        }
    }

    fn origin(&self, trusted_proxies: &[Cidr]) -> berth_registry::RequestOrigin {
        crate::origin::of(&self.origin, trusted_proxies)
    }
}

/// Middleware: records the request once it is answered, if it changed something, was refused
/// by the authorization, or failed to authenticate.
pub(crate) async fn track(State(state): State<Arc<AuditState>>, request: Request, next: Next) -> Response {
    if !state.log.is_on() {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let note = AuditNote::default();
    parts.extensions.insert(note.clone());
    // What a record would need, kept by reference-counted clones: most requests are reads that
    // succeed, leave no record, and should pay next to nothing for the log.
    let seen = Seen::of(&parts);

    let response = next.run(Request::from_parts(parts, body)).await;

    let error = response.extensions().get::<ErrorFacts>();
    let code = error.map(|e| e.code.as_str());
    let refused = code.is_some_and(|c| AUTHENTICATION_FAILURES.contains(&c) || DENIALS.contains(&c));
    let ecr = seen.method == http::Method::POST && seen.uri.path() == "/";
    let may_change = if ecr {
        text(&seen.target).and_then(|t| t.rsplit('.').next()).is_some_and(|name| CHANGES.contains(&name))
    } else {
        seen.method == http::Method::PUT || seen.method == http::Method::DELETE
    };
    if !(refused || may_change) {
        return response;
    }
    let event = if ecr {
        let Some(name) = text(&seen.target).and_then(|t| t.rsplit('.').next()) else {
            return response;
        };
        Event::Ecr { name: name.to_owned() }
    } else if let Some(oci) = seen.uri.path().strip_prefix("/v2").and_then(route::parse) {
        match oci_event(&seen.method, &oci) {
            Some(event) => event,
            None => return response,
        }
    } else {
        return response;
    };
    let has_credentials = seen.authorization.is_some();
    let signing_key = text(&seen.authorization)
        .and_then(|v| berth_iam::sigv4::parse_authorization(v).ok())
        .map(|a| a.access_key_id);
    let origin = seen.origin(&state.trusted_proxies);
    let request_id = seen.request_id;
    let change = event.is_change();
    // A 401 to a request without credentials is the challenge clients begin with (docker's
    // `GET /v2/`, containerd's first manifest HEAD), not a refusal worth a record.
    let challenge = !has_credentials && code == Some("UNAUTHORIZED");
    if !(change || refused) || challenge {
        return response;
    }

    let (caller, body) = note.with(|f| (f.caller.take(), f.body.take()));
    let mut entry = AuditEntry::new(&state.log.region);
    entry.event_name = event.name().to_owned();
    entry.source_ip_address = origin.source_ip.map(|ip| ip.to_string());
    entry.user_agent = origin.user_agent;
    entry.request_id = request_id;
    entry.read_only = !change;
    entry.user_identity = match &caller {
        Some((principal, key)) => UserIdentity::of(principal, key.clone()),
        // Not authenticated: the key it claimed, if it signed.
        None => UserIdentity {
            kind: if signing_key.is_some() { "Unknown" } else { "Anonymous" },
            access_key_id: signing_key,
            ..UserIdentity::default()
        },
    };
    entry.request_parameters = match &event {
        Event::Ecr { .. } => body.as_deref().map_or(Value::Null, parameters),
        Event::Oci { parameters, .. } => parameters.clone(),
    };
    if let Some(error) = error {
        entry.error_code = Some(error.code.clone());
        entry.error_message = Some(error.message.clone());
    }
    let account = entry
        .request_parameters
        .get("registryId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| caller.as_ref().and_then(|(p, _)| p.account().map(ToString::to_string)));
    if let (Some(account), Some(name)) =
        (&account, entry.request_parameters.get("repositoryName").and_then(Value::as_str))
    {
        entry.resources.push(AuditResource {
            arn: format!("arn:aws:ecr:{}:{account}:repository/{name}", state.log.region),
            account_id: account.clone(),
            kind: "AWS::ECR::Repository",
        });
    }
    entry.recipient_account_id = account;
    state.log.record(&entry);
    response
}

enum Event {
    Ecr { name: String },
    Oci { name: &'static str, parameters: Value },
}

impl Event {
    fn name(&self) -> &str {
        match self {
            Self::Ecr { name } => name,
            Self::Oci { name, .. } => name,
        }
    }

    fn is_change(&self) -> bool {
        CHANGES.contains(&self.name())
    }
}

/// An OCI request as the ECR action it stands for, with its parameters from the path.
fn oci_event(method: &http::Method, path: &OciPath<'_>) -> Option<Event> {
    use http::Method as M;
    let repository = |name: &str| {
        let mut parameters = Map::new();
        match name.split_once('/') {
            Some((account, rest)) if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) => {
                parameters.insert("registryId".to_owned(), json!(account));
                parameters.insert("repositoryName".to_owned(), json!(rest));
            }
            _ => {
                parameters.insert("repositoryName".to_owned(), json!(name));
            }
        }
        parameters
    };
    let with = |mut parameters: Map<String, Value>, key: &str, value: &str| {
        parameters.insert(key.to_owned(), json!(value));
        Value::Object(parameters)
    };
    let (name, parameters) = match (path, method) {
        (OciPath::Base, _) => ("GetAuthorizationStatus", Value::Null),
        (OciPath::Catalog, _) => ("DescribeRepositories", Value::Null),
        (OciPath::Manifest { name, reference }, m) => {
            let key = if reference.contains(':') { "imageDigest" } else { "imageTag" };
            let event = match *m {
                M::GET | M::HEAD => "BatchGetImage",
                M::PUT => "PutImage",
                M::DELETE => "BatchDeleteImage",
                _ => return None,
            };
            (event, with(repository(name), key, reference))
        }
        (OciPath::Blob { name, digest }, m) => {
            let event = match *m {
                M::GET | M::HEAD => "GetDownloadUrlForLayer",
                M::DELETE => "DeleteLayer",
                _ => return None,
            };
            (event, with(repository(name), "layerDigest", digest))
        }
        (OciPath::Uploads { name }, _) => ("InitiateLayerUpload", Value::Object(repository(name))),
        (OciPath::Upload { name, id }, m) => {
            let event = match *m {
                M::PUT => "CompleteLayerUpload",
                M::DELETE => "AbortLayerUpload",
                _ => "UploadLayerPart",
            };
            (event, with(repository(name), "uploadId", id))
        }
        (OciPath::Tags { name }, _) => ("ListImages", Value::Object(repository(name))),
        (OciPath::Referrers { name, digest }, _) => {
            ("ListImageReferrers", with(repository(name), "imageDigest", digest))
        }
    };
    Some(Event::Oci { name, parameters })
}

/// An ECR request's parameters: its JSON body, with content members replaced by their size.
fn parameters(body: &[u8]) -> Value {
    let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(body) else {
        return Value::Null;
    };
    for member in CONTENT_MEMBERS {
        if let Some(value) = members.get_mut(member) {
            let size = value.as_str().map_or(0, str::len);
            *value = json!(format!("({size} bytes, not recorded)"));
        }
    }
    Value::Object(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> AuditEntry {
        AuditEntry { event_name: format!("Event{n:04}"), ..AuditEntry::new("us-east-1") }
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit/audit.log");
        let destination = AuditDestination::File { path: path.clone(), max_bytes: 2_000, keep: 2 };
        let log = AuditLog::open(&destination, "us-east-1").expect("open");
        for n in 0..40 {
            log.record(&entry(n));
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let aside = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        for file in [path.clone(), aside(1), aside(2)] {
            let text = read(&file);
            assert!(!text.is_empty() && text.len() <= 2_000, "{} holds {} bytes", file.display(), text.len());
            for line in text.lines() {
                serde_json::from_str::<Value>(line).expect("every line is whole JSON");
            }
        }
        assert!(!aside(3).exists(), "only two old files are kept");
        assert!(read(&path).contains("Event0039"), "the newest record is in the current file");
        let oldest_kept = read(&aside(2));
        assert!(!oldest_kept.contains("Event0000\""), "the oldest records were dropped");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "owner-only");
    }

    #[test]
    fn content_members_are_recorded_by_their_size_only() {
        let recorded =
            parameters(br#"{"repositoryName":"a/b","imageTag":"v1","imageManifest":"{\"secret\":1}"}"#);
        assert_eq!(recorded["repositoryName"], "a/b");
        assert_eq!(recorded["imageTag"], "v1");
        assert_eq!(recorded["imageManifest"], "(12 bytes, not recorded)");
        assert_eq!(parameters(b"not json"), Value::Null);
    }

    #[test]
    fn oci_requests_are_named_by_the_ecr_action_they_stand_for() {
        let event = |method: http::Method, path: &str| {
            oci_event(&method, &route::parse(path).expect("route"))
                .map(|e| (e.name().to_owned(), e.is_change()))
        };
        assert_eq!(
            event(http::Method::PUT, "/123456789012/a/b/manifests/v1"),
            Some(("PutImage".into(), true))
        );
        assert_eq!(
            event(http::Method::DELETE, "/123456789012/a/manifests/sha256:ab"),
            Some(("BatchDeleteImage".into(), true))
        );
        assert_eq!(
            event(http::Method::GET, "/123456789012/a/manifests/v1"),
            Some(("BatchGetImage".into(), false))
        );
        let Some(Event::Oci { parameters, .. }) =
            oci_event(&http::Method::GET, &route::parse("/123456789012/a/b/manifests/v1").expect("route"))
        else {
            panic!("an OCI event")
        };
        assert_eq!(
            parameters,
            json!({"registryId": "123456789012", "repositoryName": "a/b", "imageTag": "v1"})
        );
    }
}
