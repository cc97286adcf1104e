//! TLS for the listener: a certificate chain and its private key from PEM files, reloaded on
//! SIGHUP or when the files change, without dropping a connection (each handshake takes the
//! certificate current at that moment).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the files are looked at for a change.
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Where the certificate chain and key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server's certificate first, then the intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// A certificate and key that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// The listener's TLS: the acceptor, and the certificate it presents, replaceable at run time.
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<CurrentCertificate>,
}

/// The certificate handshakes get, and the files' modification times it was loaded at.
#[derive(Debug)]
struct CurrentCertificate {
    files: TlsFiles,
    key: RwLock<Arc<CertifiedKey>>,
    loaded_at: Mutex<Option<(FileStamp, FileStamp)>>,
}

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key.read().ok().map(|key| Arc::clone(&key))
    }
}

/// What tells one version of a file from the next: its inode (a file replaced by rename), size
/// and modification time (whose granularity alone can miss a change made within a tick).
type FileStamp = (u64, u64, SystemTime);

fn modified(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.ino(), metadata.len(), metadata.modified().ok()?))
}

/// Reads and checks a chain and key: both parse, and the key is the certificate's.
fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_file = files.cert_file.display();
    let chain = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("cannot read certificates from {cert_file}: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError(format!("{cert_file} holds no PEM certificate")));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| TlsError(format!("cannot read a private key from {}: {e}", files.key_file.display())))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        TlsError(format!("the key in {} cannot sign TLS handshakes: {e}", files.key_file.display()))
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|e| {
        TlsError(format!(
            "the key in {} is not the key of the first certificate in {cert_file}: {e}",
            files.key_file.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

impl Tls {
    /// Loads the files, refusing a certificate and key that do not go together.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let stamp = (modified(&files.cert_file), modified(&files.key_file));
        let key = load(&files)?;
        let certificate = Arc::new(CurrentCertificate {
            files,
            key: RwLock::new(key),
            loaded_at: Mutex::new(stamp.0.zip(stamp.1)),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
        // The listener speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(config)), certificate })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Loads the files again; on failure the certificate in use stays, and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = &self.certificate.files;
        // Noted first: files that fail to load are reported once, not at every look.
        if let Ok(mut loaded_at) = self.certificate.loaded_at.lock() {
            *loaded_at = modified(&files.cert_file).zip(modified(&files.key_file));
        }
        let key = load(files)?;
        if let Ok(mut current) = self.certificate.key.write() {
            *current = key;
        }
        Ok(())
    }

    /// Whether the files changed since they were last loaded.
    fn changed(&self) -> bool {
        let files = &self.certificate.files;
        let now = modified(&files.cert_file).zip(modified(&files.key_file));
        self.certificate.loaded_at.lock().is_ok_and(|loaded| now.is_some() && *loaded != now)
    }

    /// Reloads on SIGHUP and when the files change, for as long as the task runs.
    pub fn spawn_reloader(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => Some(signal),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; the certificate reloads when its files change");
                    None
                }
            };
            let mut ticks = tokio::time::interval(WATCH_INTERVAL);
            loop {
                let asked = tokio::select! {
                    Some(()) = async { match hangups.as_mut() { Some(s) => s.recv().await, None => None } } => true,
                    _ = ticks.tick() => false,
                };
                if !asked && !self.changed() {
                    continue;
                }
                match self.reload() {
                    Ok(()) => {
                        tracing::info!(cert_file = %self.certificate.files.cert_file.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the TLS certificate was not reloaded; the previous one stays in use")
                    }
                }
            }
        })
    }
}
