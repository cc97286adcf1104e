//! Key material in a hardware security module, through any PKCS#11 module: each version of a
//! customer key is a non-extractable AES-256 key on the token, and wrapping a data key is an
//! AES-GCM encryption the token performs. The material never leaves the token; the key records
//! (account, state, aliases, which token objects are its versions) stay in the data directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::KmsError;

/// Calls that may wait for the token at once: a token that hangs fails the ones past this at
/// once, rather than letting them pile up behind it.
const MAX_WAITING_CALLS: usize = 256;

/// GCM's tag, in bits: the full 128, so a wrap made by the token has the layout of one made here.
const TAG_BITS: u64 = 128;

/// How to reach the token. The PIN comes from a file or the environment, never from the
/// configuration file itself.
#[derive(Clone)]
pub struct Pkcs11Settings {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token that holds berth's keys.
    pub token_label: String,
    /// The user PIN of that token.
    pub pin: String,
    /// The longest one operation on the token may take before it counts as unavailable.
    pub timeout: Duration,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"(hidden)")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The token, reached through a thread of its own: every operation is handed to that thread and
/// waited for at most the configured timeout, so a token that hangs inside its module fails the
/// calls that need it (their repositories answer KEY_UNAVAILABLE) instead of holding them.
pub(crate) struct Hsm {
    /// `None` once dropped, which ends the thread.
    jobs: Option<mpsc::SyncSender<Job>>,
    /// Says the thread has closed the session and let go of the module.
    closed: Mutex<mpsc::Receiver<()>>,
    timeout: Duration,
    name: String,
}

type Job = Box<dyn FnOnce(&Token) + Send>;

impl Hsm {
    /// Connects (so that a wrong module, token or PIN is reported here) and starts the thread.
    pub(crate) fn open(settings: &Pkcs11Settings) -> Result<Self, KmsError> {
        let token = Token::open(settings)?;
        let name = token.name.clone();
        let (jobs, queue) = mpsc::sync_channel::<Job>(MAX_WAITING_CALLS);
        let (done, closed) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("berth-hsm".to_owned())
            .spawn(move || {
                for job in queue {
                    job(&token);
                }
                drop(token);
                let _ = done.send(());
            })
            .map_err(|e| KmsError::Unavailable(format!("cannot start the HSM's thread: {e}")))?;
        Ok(Self { jobs: Some(jobs), closed: Mutex::new(closed), timeout: settings.timeout, name })
    }

    fn call<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Token) -> Result<T, KmsError> + Send + 'static,
    ) -> Result<T, KmsError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |token| {
            // The caller may have stopped waiting; then the answer has no one to go to.
            let _ = reply.send(operation(token));
        });
        match self.jobs.as_ref().map(|jobs| jobs.try_send(job)) {
            Some(Ok(())) => {}
            Some(Err(mpsc::TrySendError::Full(_))) => {
                return Err(KmsError::Unavailable(format!(
                    "the HSM {} is behind: {MAX_WAITING_CALLS} calls already wait for it",
                    self.name
                )));
            }
            Some(Err(mpsc::TrySendError::Disconnected(_))) | None => {
                return Err(KmsError::Unavailable(format!("the HSM {}'s thread has stopped", self.name)));
            }
        }
        answer.recv_timeout(self.timeout).map_err(|_| {
            KmsError::Unavailable(format!(
                "the HSM {} did not answer within {} ms",
                self.name,
                self.timeout.as_millis()
            ))
        })?
    }

    /// Makes a new key on the token under `label` (see [`Token::generate`]).
    pub(crate) fn generate(&self, label: &str) -> Result<(), KmsError> {
        let label = label.to_owned();
        self.call(move |token| token.generate(&label))
    }

    /// AES-GCM under the token key `label`: the ciphertext with its 16-byte tag appended.
    pub(crate) fn seal(
        &self,
        label: &str,
        nonce: &[u8; 12],
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let (label, nonce, aad, plain) =
            (label.to_owned(), *nonce, aad.to_vec(), Zeroizing::new(plain.to_vec()));
        self.call(move |token| token.seal(&label, &nonce, &aad, &plain))
    }

    /// Opens what [`Hsm::seal`] sealed; tampered input is [`KmsError::Unwrap`].
    pub(crate) fn open_sealed(
        &self,
        label: &str,
        nonce: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let (label, nonce, aad, sealed) = (label.to_owned(), nonce.to_vec(), aad.to_vec(), sealed.to_vec());
        self.call(move |token| token.open_sealed(&label, &nonce, &aad, &sealed))
    }
}

impl Drop for Hsm {
    /// Ends the thread and waits (at most the timeout) for it to close the session: a process
    /// that exits while the module still has a session open can crash in the module's teardown.
    fn drop(&mut self) {
        self.jobs = None;
        if let Ok(closed) = self.closed.get_mut() {
            let _ = closed.recv_timeout(self.timeout);
        }
    }
}

/// A logged-in session with the token, used by the HSM's thread only.
struct Token {
    settings: Pkcs11Settings,
    /// `None` only after a reconnect failed (the next call tries again).
    connection: Mutex<Option<Connection>>,
    /// Token objects found so far, by label (a version's material never changes).
    handles: Mutex<HashMap<String, ObjectHandle>>,
    /// For messages: which module and token.
    name: String,
}

/// The module loaded and initialized, and a session logged in to the token. The session is
/// declared first so that it closes before the module is finalized.
struct Connection {
    session: Session,
    context: Pkcs11,
}

fn unavailable(what: &str, name: &str) -> impl Fn(Error) -> KmsError {
    let context = format!("{what} on the HSM {name}");
    move |e| KmsError::Unavailable(format!("{context}: {e}"))
}

impl Token {
    /// Loads the module, finds the token by its label and logs in as its user.
    fn open(settings: &Pkcs11Settings) -> Result<Self, KmsError> {
        let name = format!("{} (token {:?})", settings.module.display(), settings.token_label);
        let connection = connect(settings, &name)?;
        Ok(Self {
            settings: settings.clone(),
            connection: Mutex::new(Some(connection)),
            handles: Mutex::new(HashMap::new()),
            name,
        })
    }

    /// Runs `operation` with the connection, connecting first if an earlier reconnect failed.
    fn with_connection<T>(
        &self,
        operation: impl FnOnce(&mut Option<Connection>) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let mut connection = self.connection.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if connection.is_none() {
            *connection = Some(connect(&self.settings, &self.name)?);
        }
        operation(&mut connection)
    }

    /// Finalizes the module and connects again, which makes it read the token afresh. SoftHSM2
    /// does not see a key another process made once this process has made one itself (its
    /// token generation counter then skips the other's change), so a key that is not found is
    /// looked for once more this way before it is reported missing.
    fn reconnect(&self, connection: &mut Option<Connection>) -> Result<(), KmsError> {
        if let Some(Connection { session, context }) = connection.take() {
            drop(session);
            // A failure here leaves nothing to clean up: the next initialize starts afresh.
            let _ = context.finalize();
        }
        self.lock_handles().clear();
        *connection = Some(connect(&self.settings, &self.name)?);
        Ok(())
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, ObjectHandle>> {
        self.handles.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a new AES-256 key on the token under `label`: sensitive, never extractable, able
    /// only to encrypt and decrypt.
    fn generate(&self, label: &str) -> Result<(), KmsError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let handle = self.with_connection(|connection| {
            session_of(connection)?
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(unavailable("making a key", &self.name))
        })?;
        self.lock_handles().insert(label.to_owned(), handle);
        Ok(())
    }

    /// The token's key object `label`, looked for again after a reconnect if it is not found.
    fn handle(&self, connection: &mut Option<Connection>, label: &str) -> Result<ObjectHandle, KmsError> {
        if let Some(handle) = self.lock_handles().get(label) {
            return Ok(*handle);
        }
        let template =
            [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())];
        let find = |connection: &mut Option<Connection>| {
            session_of(connection)?.find_objects(&template).map_err(unavailable("finding a key", &self.name))
        };
        let mut found = find(connection)?;
        if found.is_empty() {
            self.reconnect(connection)?;
            found = find(connection)?;
        }
        match found.as_slice() {
            [handle] => {
                self.lock_handles().insert(label.to_owned(), *handle);
                Ok(*handle)
            }
            [] => Err(KmsError::KeyNotFound(format!(
                "the HSM {} holds no key labelled {label}: was the token replaced or the key deleted?",
                self.name
            ))),
            _ => Err(KmsError::Unavailable(format!(
                "the HSM {} holds {} keys labelled {label}; berth's labels must be unique",
                self.name,
                found.len()
            ))),
        }
    }

    fn seal(&self, label: &str, nonce: &[u8; 12], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.with_connection(|connection| {
            let key = self.handle(connection, label)?;
            let mut iv = *nonce;
            let params =
                GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(unavailable("sealing", &self.name))?;
            session_of(connection)?
                .encrypt(&Mechanism::AesGcm(params), key, plain)
                .map_err(unavailable("sealing", &self.name))
        })
    }

    fn open_sealed(
        &self,
        label: &str,
        nonce: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.with_connection(|connection| {
            let key = self.handle(connection, label)?;
            let mut iv = nonce.to_vec();
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(|_| KmsError::Unwrap)?;
            // A failed tag check is CKR_ENCRYPTED_DATA_INVALID by the standard; SoftHSM2 reports
            // it as CKR_GENERAL_ERROR (others as CKR_FUNCTION_FAILED). Either way it does not open.
            let opened = session_of(connection)?.decrypt(&Mechanism::AesGcm(params), key, sealed);
            opened.map(Zeroizing::new).map_err(|e| match e {
                Error::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError
                    | RvError::FunctionFailed,
                    _,
                ) => KmsError::Unwrap,
                other => unavailable("opening a wrapped key", &self.name)(other),
            })
        })
    }
}

/// Loads the module, finds the token by its label and logs in as its user.
fn connect(settings: &Pkcs11Settings, name: &str) -> Result<Connection, KmsError> {
    let context = Pkcs11::new(&settings.module).map_err(|e| {
        KmsError::Unavailable(format!(
            "cannot load the PKCS#11 module {}: {e}; check kms.pkcs11_module",
            settings.module.display()
        ))
    })?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(unavailable("initializing", name)(e)),
    }
    let mut labels = Vec::new();
    let mut found = None;
    for slot in context.get_slots_with_token().map_err(unavailable("listing slots", name))? {
        let info = context.get_token_info(slot).map_err(unavailable("reading a token", name))?;
        if info.label() == settings.token_label {
            found = Some(slot);
            break;
        }
        labels.push(format!("{:?}", info.label()));
    }
    let Some(slot) = found else {
        return Err(KmsError::Unavailable(format!(
            "the PKCS#11 module {} has no token labelled {:?} (it has {}); check kms.pkcs11_token",
            settings.module.display(),
            settings.token_label,
            if labels.is_empty() { "none".to_owned() } else { labels.join(", ") }
        )));
    };
    let session = context.open_rw_session(slot).map_err(unavailable("opening a session", name))?;
    let pin = AuthPin::new(settings.pin.clone().into_boxed_str());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(Error::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
            return Err(KmsError::Unavailable(format!(
                "the HSM {name} refused the PIN; check the PIN file or BERTH_KMS_PKCS11_PIN"
            )));
        }
        Err(e) => return Err(unavailable("logging in", name)(e)),
    }
    Ok(Connection { session, context })
}

fn session_of(connection: &mut Option<Connection>) -> Result<&Session, KmsError> {
    connection
        .as_ref()
        .map(|c| &c.session)
        .ok_or_else(|| KmsError::Unavailable("the HSM is not connected".to_owned()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::{DataKey, KeyService, LocalKeyService};

    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
    const A: &str = "111111111111";

    /// SoftHSM reads its configuration (where its tokens are) from `SOFTHSM2_CONF` once per
    /// process, and this crate changes no environment: so a test makes a fresh token and runs
    /// itself again in a child process pointed at it. In that child this returns the token's
    /// settings; in the parent it returns `None` once the child has passed (or after saying why
    /// there is no SoftHSM2 here).
    fn in_child_with_token(test: &str) -> Option<Pkcs11Settings> {
        let settings = |label: String| Pkcs11Settings {
            module: MODULE.into(),
            token_label: label,
            pin: "1234".into(),
            timeout: Duration::from_secs(5),
        };
        if let Ok(label) = std::env::var("BERTH_TEST_HSM_TOKEN") {
            return Some(settings(label));
        }
        if !Path::new(MODULE).exists() {
            eprintln!("SKIP {test}: SoftHSM2 (apt-get install softhsm2) is not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokens");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, format!("directories.tokendir = {}\n", tokens.display())).expect("conf");
        let init = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "unit", "--pin", "1234", "--so-pin", "5678"])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util runs");
        assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
        let child = Command::new(std::env::current_exe().expect("this test binary"))
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env("SOFTHSM2_CONF", &conf)
            .env("BERTH_TEST_HSM_TOKEN", "unit")
            .output()
            .expect("the test runs again");
        let output =
            format!("{}{}", String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
        assert!(child.status.success() && output.contains("1 passed"), "{output}");
        None
    }

    #[tokio::test]
    async fn data_keys_round_trip_through_the_token_and_tampering_is_an_unwrap_error() {
        let test = "pkcs11::tests::data_keys_round_trip_through_the_token_and_tampering_is_an_unwrap_error";
        let Some(settings) = in_child_with_token(test) else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let kms =
            LocalKeyService::open_with_hsm(&dir.path().join("kms"), "eu-west-1", &settings).expect("open");
        assert_eq!(kms.provider(), "pkcs11");
        let made = kms.create_key(A, "hsm key", Some("alias/hsm")).await.expect("create");
        let record = std::fs::read_to_string(dir.path().join("kms").join(A).join("keys").join(&made.key_id))
            .expect("record");
        assert!(record.contains(&format!("version 1 pkcs11:berth/{A}/{}/v1", made.key_id)), "{record}");

        let dek = DataKey::generate().expect("dek");
        let wrapped = kms.wrap(&made.arn, &dek).await.expect("wrap");
        assert_eq!(kms.unwrap(&made.arn, &wrapped).await.expect("unwrap").as_bytes(), dek.as_bytes());
        for at in [6, wrapped.len() - 1] {
            let mut tampered = wrapped.clone();
            tampered[at] ^= 1;
            let opened = kms.unwrap(&made.arn, &tampered).await.map(|_| ());
            assert!(matches!(opened, Err(KmsError::Unwrap)), "byte {at}: {opened:?}");
        }

        // Rotated: new wraps use version 2 on the token, and version 1's wraps still open.
        assert_eq!(kms.rotate_key(A, "alias/hsm").await.expect("rotate").versions, 2);
        let rewrapped = kms.wrap(&made.arn, &dek).await.expect("wrap");
        assert_eq!(rewrapped[1..5], 2u32.to_be_bytes());
        assert_eq!(kms.unwrap(&made.arn, &wrapped).await.expect("old").as_bytes(), dek.as_bytes());
        assert_eq!(kms.unwrap(&made.arn, &rewrapped).await.expect("new").as_bytes(), dek.as_bytes());

        // Opened again, as another process would: it finds the token's objects by label.
        drop(kms);
        let again =
            LocalKeyService::open_with_hsm(&dir.path().join("kms"), "eu-west-1", &settings).expect("open");
        assert_eq!(again.unwrap(&made.arn, &wrapped).await.expect("reopened").as_bytes(), dek.as_bytes());
        // A registry without the HSM says where the material is rather than failing obscurely.
        let without = LocalKeyService::open(&dir.path().join("kms"), "eu-west-1").expect("open");
        let refused =
            without.unwrap(&made.arn, &wrapped).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("in an HSM"), "{refused}");
    }

    #[test]
    fn a_token_that_does_not_answer_fails_calls_within_the_timeout_and_they_recover() {
        let test =
            "pkcs11::tests::a_token_that_does_not_answer_fails_calls_within_the_timeout_and_they_recover";
        let Some(settings) = in_child_with_token(test) else { return };
        let hsm =
            Hsm::open(&Pkcs11Settings { timeout: Duration::from_millis(300), ..settings }).expect("open");
        hsm.generate("unit/slow").expect("a key");
        // The token's thread is held for 1.5 s, as a module stuck in a call would hold it.
        let started = std::time::Instant::now();
        let stuck = hsm.call(|_| {
            std::thread::sleep(Duration::from_millis(1_500));
            Ok(())
        });
        assert!(
            matches!(&stuck, Err(KmsError::Unavailable(m)) if m.contains("did not answer within 300 ms")),
            "{stuck:?}"
        );
        let queued = hsm.seal("unit/slow", &[7; 12], b"aad", b"plain");
        assert!(matches!(queued, Err(KmsError::Unavailable(_))), "a call behind the stuck one fails too");
        println!("two calls failed after {:?} with a 300 ms timeout", started.elapsed());
        std::thread::sleep(Duration::from_millis(1_500));
        let sealed = hsm.seal("unit/slow", &[7; 12], b"aad", b"plain").expect("answers again");
        let opened = hsm.open_sealed("unit/slow", &[7; 12], b"aad", &sealed).expect("opens");
        assert_eq!(opened.as_slice(), b"plain");
    }

    #[test]
    fn a_wrong_pin_or_token_says_which_setting_to_check() {
        let Some(settings) =
            in_child_with_token("pkcs11::tests::a_wrong_pin_or_token_says_which_setting_to_check")
        else {
            return;
        };
        let wrong_pin = Pkcs11Settings { pin: "0000".to_owned(), ..settings.clone() };
        let message = Hsm::open(&wrong_pin).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("refused the PIN"), "{message}");
        let wrong_token = Pkcs11Settings { token_label: "nope".to_owned(), ..settings.clone() };
        let message = Hsm::open(&wrong_token).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("no token labelled \"nope\"") && message.contains("\"unit\""), "{message}");
        let wrong_module = Pkcs11Settings { module: "/nonexistent/module.so".into(), ..settings };
        let message = Hsm::open(&wrong_module).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("kms.pkcs11_module"), "{message}");
    }
}
