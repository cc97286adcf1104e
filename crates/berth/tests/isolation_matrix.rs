//! The isolation matrix: every OCI route and every served ECR operation, for every kind of
//! caller, against repositories under every kind of policy. Each cell's expectation comes from
//! the policy's plain meaning; the test counts unexpected allows and unexpected denials.
//!
//! A fifth "repository" does not exist: every caller who may not see the repository without a
//! policy must get the same answer for it as for the missing one, so a refusal tells nothing of
//! existence. No cell may answer with a server error.
//!
//! Mutating cells are chosen so that an allowed call leaves the state every later cell relies
//! on (a re-put of the same manifest, a delete of what is not there, a policy put back).
//!
//! Conditions are exercised too: callers connect from 127.0.0.1 or 127.0.0.2 against a policy
//! on `aws:SourceIp`; users carry identity Denies on `aws:ResourceTag`, `aws:TagKeys`,
//! `aws:RequestTag` and `ecr:CreateRepository` (which create-on-push needs, with the creation
//! template's tags as the request's).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use berth_iam::Action;
use berth_iam::condition_keys::{CONDITION_KEYS, ConditionKey, Presence};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const PULL: [&str; 3] =
    ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"];
const PUBLIC: [&str; 2] = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"];
const DENIED_TO_ALL: [&str; 2] = ["ecr:BatchDeleteImage", "ecr:PutImage"];
const REGION: &str = "us-east-1";

/// The address callers connect from unless they are said to come from elsewhere.
const HOME: &str = "127.0.0.1";
/// The other loopback address some callers connect from.
const ELSEWHERE: &str = "127.0.0.2";

/// The repositories under test and the actions each policy grants (to whom) or denies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    NoPolicy,
    CrossAccountPull,
    PublicRead,
    ExplicitDeny,
    /// Pull for account 111111111111 and anonymous reads only from [`HOME`]; pushes and deletes
    /// denied to everyone from anywhere else.
    FromHome,
    /// Tagged `env=prod`, with no policy.
    TaggedProd,
    /// Tagged `env=prod`, with a policy that grants nothing to any caller.
    TaggedProdWithPolicy,
    /// No repository by this name exists.
    Missing,
}

const SHAPES: [Shape; 8] = [
    Shape::NoPolicy,
    Shape::CrossAccountPull,
    Shape::PublicRead,
    Shape::ExplicitDeny,
    Shape::FromHome,
    Shape::TaggedProd,
    Shape::TaggedProdWithPolicy,
    Shape::Missing,
];

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::NoPolicy => "matrix/none",
            Shape::CrossAccountPull => "matrix/shared",
            Shape::PublicRead => "matrix/public",
            Shape::ExplicitDeny => "matrix/deny",
            Shape::FromHome => "matrix/from-home",
            Shape::TaggedProd => "matrix/prod",
            Shape::TaggedProdWithPolicy => "matrix/prod-with-policy",
            Shape::Missing => "matrix/missing",
        }
    }

    fn is_tagged_prod(self) -> bool {
        matches!(self, Shape::TaggedProd | Shape::TaggedProdWithPolicy)
    }

    fn policy(self) -> Option<String> {
        let from_home = |mut st: Value, operator: &str| {
            st["Condition"] = json!({operator: {"aws:SourceIp": format!("{HOME}/32")}});
            st
        };
        let statements = match self {
            Shape::NoPolicy | Shape::TaggedProd | Shape::Missing => return None,
            Shape::CrossAccountPull => vec![statement("Allow", json!({"AWS": "111111111111"}), &PULL)],
            Shape::PublicRead => vec![statement("Allow", json!("*"), &PUBLIC)],
            Shape::ExplicitDeny => vec![statement("Deny", json!("*"), &DENIED_TO_ALL)],
            Shape::FromHome => vec![
                from_home(statement("Allow", json!({"AWS": "111111111111"}), &PULL), "IpAddress"),
                from_home(statement("Allow", json!("*"), &PUBLIC), "IpAddress"),
                from_home(statement("Deny", json!("*"), &DENIED_TO_ALL), "NotIpAddress"),
            ],
            Shape::TaggedProdWithPolicy => return Some(inert_policy(&["ecr:*"])),
        };
        Some(json!({"Version": "2012-10-17", "Statement": statements}).to_string())
    }
}

fn statement(effect: &str, principal: Value, actions: &[&str]) -> Value {
    json!({"Effect": effect, "Principal": principal, "Action": actions})
}

/// A policy that names an account none of the callers belongs to: putting it changes no cell.
fn inert_policy(actions: &[&str]) -> String {
    json!({"Version": "2012-10-17", "Statement": [statement("Allow", json!({"AWS": "444444444444"}), actions)]})
        .to_string()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// An owner's user allowed `ecr:*` but denied `ecr:CreateRepository`.
    OwnerUserNoCreate,
    /// An owner's user allowed `ecr:*` but denied tagging with the key `team`
    /// (`aws:TagKeys`) and creating repositories tagged `team=blocked` (`aws:RequestTag`).
    OwnerUserTagGuard,
    OwnerRoot,
    OwnerUserWithPolicy,
    /// An owner's user allowed `ecr:*` but denied everything on repositories tagged `env=prod`.
    OwnerUserDenyProd,
    OwnerRootElsewhere,
    OwnerUserWithout,
    AllowedRoot,
    AllowedRootElsewhere,
    AllowedUserWithPolicy,
    OtherRoot,
    OtherUserWithout,
    Anonymous,
    AnonymousElsewhere,
    ExpiredToken,
    DisabledKey,
    BadSignature,
}

/// The owners' users that must not create the missing repository come first among the owners:
/// the first owner push creates it.
const CALLERS: [Who; 17] = [
    Who::OwnerUserNoCreate,
    Who::OwnerUserTagGuard,
    Who::OwnerRoot,
    Who::OwnerUserDenyProd,
    Who::OwnerRootElsewhere,
    Who::OwnerUserWithPolicy,
    Who::OwnerUserWithout,
    Who::AllowedRoot,
    Who::AllowedRootElsewhere,
    Who::AllowedUserWithPolicy,
    Who::OtherRoot,
    Who::OtherUserWithout,
    Who::Anonymous,
    Who::AnonymousElsewhere,
    Who::ExpiredToken,
    Who::DisabledKey,
    Who::BadSignature,
];

impl Who {
    /// The caller this one is, but for where it connects from and its identity Denies.
    fn base(self) -> Who {
        match self {
            Who::OwnerRootElsewhere => Who::OwnerRoot,
            Who::OwnerUserNoCreate | Who::OwnerUserTagGuard | Who::OwnerUserDenyProd => {
                Who::OwnerUserWithPolicy
            }
            Who::AllowedRootElsewhere => Who::AllowedRoot,
            Who::AnonymousElsewhere => Who::Anonymous,
            other => other,
        }
    }

    /// The address the caller connects from.
    fn address(self) -> &'static str {
        match self {
            Who::OwnerRootElsewhere | Who::AllowedRootElsewhere | Who::AnonymousElsewhere => ELSEWHERE,
            _ => HOME,
        }
    }

    /// A valid, unexpired credential whose identity side allows `ecr:*` (roots, policied users).
    fn has_identity_allow(self) -> bool {
        matches!(
            self.base(),
            Who::OwnerRoot
                | Who::OwnerUserWithPolicy
                | Who::AllowedRoot
                | Who::AllowedUserWithPolicy
                | Who::OtherRoot
        )
    }

    fn is_owner(self) -> bool {
        matches!(self.base(), Who::OwnerRoot | Who::OwnerUserWithPolicy)
    }

    /// Whether the caller's identity Denies refuse creating a repository that carries `tags`.
    fn may_not_create(self, tags: &[(String, String)]) -> bool {
        match self {
            Who::OwnerUserNoCreate => true,
            Who::OwnerUserTagGuard => tags.iter().any(|(k, v)| k == "team" && v == "blocked"),
            _ => false,
        }
    }

    /// Whether the caller's identity Denies refuse tagging or untagging with these keys.
    fn may_not_tag(self, keys: &[String]) -> bool {
        self == Who::OwnerUserTagGuard && keys.iter().any(|k| k == "team")
    }

    /// Holds a registry token that still works (users without GetAuthorizationToken get none).
    fn has_registry_token(self) -> bool {
        self.has_identity_allow()
    }
}

/// Whether `who` may perform `action` on a repository of `shape`, by the rules of DESIGN.
fn expected(who: Who, shape: Shape, action: &str) -> bool {
    let home = who.address() == HOME;
    if shape == Shape::ExplicitDeny && DENIED_TO_ALL.contains(&action) {
        return false;
    }
    if shape == Shape::FromHome && !home && DENIED_TO_ALL.contains(&action) {
        return false;
    }
    if who == Who::OwnerUserDenyProd && shape.is_tagged_prod() {
        return false;
    }
    let public =
        (shape == Shape::PublicRead || (shape == Shape::FromHome && home)) && PUBLIC.contains(&action);
    let shared =
        (shape == Shape::CrossAccountPull || (shape == Shape::FromHome && home)) && PULL.contains(&action);
    match who.base() {
        // The owner's identity side (root, or a user with ecr:* on *) allows everything.
        Who::OwnerRoot | Who::OwnerUserWithPolicy => true,
        // A user without policies gets only what a resource policy grants it by name ("*").
        Who::OwnerUserWithout => public,
        // Across accounts both sides must allow; roots and the policied user have the identity side.
        Who::AllowedRoot | Who::AllowedUserWithPolicy => shared || public,
        Who::OtherRoot => public,
        Who::OtherUserWithout => false,
        Who::Anonymous => public,
        Who::ExpiredToken | Who::DisabledKey | Who::BadSignature => false,
        // Every other caller has a base.
        _ => false,
    }
}

/// The tags an ECR request sets (`tags`) and the keys it sets or removes (`tagKeys`).
fn request_tags(input: &Value) -> (Vec<(String, String)>, Vec<String>) {
    let set: Vec<(String, String)> = input["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .filter_map(|t| Some((t["Key"].as_str()?.to_owned(), t["Value"].as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let mut keys: Vec<String> = set.iter().map(|(k, _)| k.clone()).collect();
    keys.extend(
        input["tagKeys"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)),
    );
    (set, keys)
}

/// How a caller presents itself on each surface.
struct Credentials {
    /// A client that connects from the caller's address.
    client: reqwest::Client,
    /// The registry password for `/v2/` (basic auth as `AWS`); `None` for anonymous.
    password: Option<String>,
    /// The key that signs ECR API calls, when-signed; `None` for anonymous.
    signer: Option<(String, String, SystemTime)>,
}

/// One repository of the matrix, with what its cells need.
struct Subject {
    shape: Shape,
    repo: String,
    manifest: Vec<u8>,
    digest: String,
    layer: String,
    /// An upload the owner began over the OCI API (its path), and two over the ECR API.
    oci_upload: String,
    part_upload: String,
    complete_upload: String,
}

/// What an allowed request may get on a repository that exists, by ECR operation or OCI route
/// (`<METHOD> <what>`): a success, or the refusal its input is built to draw. A 404 for the
/// repository itself is never among them.
fn outcomes_when_allowed(request: &str) -> &'static [&'static str] {
    match request {
        "PutImage" => &["ImageAlreadyExistsException"],
        "GetRepositoryPolicy" => &["", "RepositoryPolicyNotFoundException"],
        "DeleteRepositoryPolicy" => &["", "RepositoryPolicyNotFoundException"],
        "GetLifecyclePolicy" | "DeleteLifecyclePolicy" => &["", "LifecyclePolicyNotFoundException"],
        // One preview at a time: the next allowed caller may find the first still running.
        "StartLifecyclePolicyPreview" => &["", "LifecyclePolicyPreviewInProgressException"],
        "GetLifecyclePolicyPreview" => &["", "LifecyclePolicyPreviewNotFoundException"],
        // Once a day per image: the next allowed caller may find the first scan done.
        "StartImageScan" => &["", "LimitExceededException"],
        "DescribeImageScanFindings" => &["", "ScanNotFoundException"],
        "DeleteRepository" => &["RepositoryNotEmptyException"],
        // The owner's uploads: the first allowed caller's part and completion use them up.
        "UploadLayerPart" => &["", "InvalidLayerPartException", "UploadNotFoundException"],
        "CompleteLayerUpload" => &[
            "LayerPartTooSmallException",
            "InvalidLayerException",
            "EmptyUploadException",
            "UploadNotFoundException",
        ],
        "DELETE manifest" => &["MANIFEST_UNKNOWN"],
        "DELETE blob" => &["BLOB_UNKNOWN"],
        // Each route on the owner's upload: the first allowed DELETE ends it for later callers.
        "PATCH upload" | "GET upload" | "DELETE upload" => &["", "BLOB_UPLOAD_UNKNOWN"],
        "PUT upload" => &["DIGEST_INVALID", "BLOB_UPLOAD_UNKNOWN"],
        _ => &[""],
    }
}

/// The OCI route a request path takes, in the words of [`outcomes_when_allowed`].
fn route_name(method: &Method, path: &str) -> String {
    let what = if path.contains("/blobs/uploads/")
        && !path.ends_with("/blobs/uploads/")
        && !path.contains("?mount=")
    {
        "upload"
    } else if path.contains("/blobs/uploads/") {
        "uploads"
    } else if path.contains("/blobs/") {
        "blob"
    } else if path.contains("/manifests/") {
        "manifest"
    } else {
        "other"
    };
    format!("{method} {what}")
}

#[derive(Default)]
struct Tally {
    cells: usize,
    allows: BTreeSet<String>,
    denials: BTreeSet<String>,
    /// Allowed requests on an existing repository that got neither success nor the refusal
    /// their input is built to draw.
    wrong_outcomes: BTreeSet<String>,
    server_errors: BTreeSet<String>,
    /// What callers who may not see it got for the policy-less repository and the missing one,
    /// by (caller and request, shape).
    answers: BTreeMap<(String, bool), String>,
}

impl Tally {
    fn record(&mut self, status: u16, allowed: bool, expected: bool, cell: String) {
        self.cells += 1;
        if status >= 500 {
            self.server_errors.insert(cell.clone());
        }
        match (allowed, expected) {
            (true, false) => {
                self.allows.insert(cell);
            }
            (false, true) => {
                self.denials.insert(cell);
            }
            _ => {}
        }
    }

    /// Checks what an allowed request on an existing repository got against what it may get.
    fn outcome(&mut self, request: &str, answer: &Answer, cell: String) {
        let got = if (200..300).contains(&answer.status) { "" } else { answer.kind.as_str() };
        if !outcomes_when_allowed(request).contains(&got) {
            self.wrong_outcomes.insert(format!("{cell}: {} {}", answer.status, answer.kind));
        }
    }

    /// Keeps the answer a caller without access got, for the existing and the missing repository.
    fn answer(&mut self, who: Who, shape: Shape, request: String, answer: String) {
        if !who.is_owner() && matches!(shape, Shape::NoPolicy | Shape::Missing) {
            self.answers.insert((format!("{who:?} {request}"), shape == Shape::Missing), answer);
        }
    }

    /// Requests whose answer told an existing repository from a missing one.
    fn existence_leaks(&self) -> Vec<String> {
        let missing = |request: &String| self.answers.get(&(request.clone(), true));
        self.answers
            .iter()
            .filter(|((_, is_missing), _)| !is_missing)
            .filter_map(|((request, _), existing)| match missing(request) {
                Some(gone) if gone == existing => None,
                other => Some(format!("{request}: existing -> {existing}, missing -> {other:?}")),
            })
            .collect()
    }
}

const REFUSALS: [&str; 4] = [
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
];

#[tokio::test]
async fn zero_unexpected_allows_across_the_matrix() {
    let berth = Berth::start().await;
    let mut creds = callers(&berth).await;
    // The owners go last: their first push creates the missing repository (a push creates its
    // repository), and until then every other caller must find it missing.
    creds.sort_by_key(|(who, _)| who.is_owner());
    let subjects = subjects(&berth).await;

    let mut tally = Tally::default();
    let mut ecr_operations = BTreeSet::new();
    for (who, c) in &creds {
        oci_registry_cells(&berth, *who, c, &mut tally).await;
        cross_account_mount_cells(&berth, *who, c, &mut tally).await;
        for s in &subjects {
            oci_repository_cells(&berth, *who, c, s, &mut tally).await;
            for (operation, input) in repository_operations(s) {
                ecr_operations.insert(operation);
                let (_, tag_keys) = request_tags(&input);
                let answer = call(&berth, c, operation, input).await;
                let (status, kind) = (answer.status, answer.kind.clone());
                let expect = expected(*who, s.shape, &action_of(operation))
                    && who.base() != Who::Anonymous
                    && !(matches!(operation, "TagResource" | "UntagResource") && who.may_not_tag(&tag_keys));
                let allowed = !REFUSALS.contains(&kind.as_str());
                let cell = format!("{who:?} {:?} {operation} -> {status} {kind}", s.shape);
                if expect && s.shape != Shape::Missing {
                    tally.outcome(operation, &answer, cell.clone());
                }
                tally.record(status, allowed, expect, cell);
                tally.answer(*who, s.shape, operation.to_owned(), normalized(&answer.text));
                if operation == "DeleteRepositoryPolicy" && allowed {
                    restore_policy(&berth, s.shape).await;
                }
            }
        }
        for (operation, owner_registry_only, input) in registry_operations(*who) {
            ecr_operations.insert(operation);
            let (tags, _) = request_tags(&input);
            let Answer { status, kind, .. } = call(&berth, c, operation, input).await;
            let expect = who.has_identity_allow()
                && (who.is_owner() || !owner_registry_only)
                && !(operation == "CreateRepository" && who.may_not_create(&tags));
            let allowed = !REFUSALS.contains(&kind.as_str());
            tally.record(status, allowed, expect, format!("{who:?} registry {operation} -> {status} {kind}"));
        }
    }

    let unlisted: Vec<_> = SERVED_OPERATIONS.iter().filter(|op| !ecr_operations.contains(*op)).collect();
    assert!(unlisted.is_empty(), "served ECR operations missing from the matrix: {unlisted:?}");
    println!(
        "isolation matrix: {} cells ({} callers from two addresses, {} repository shapes incl. conditions on \
         aws:SourceIp, aws:ResourceTag, aws:TagKeys, aws:RequestTag and create-on-push, every OCI route, {} ECR \
         operations), {} unexpected allows, {} unexpected denials",
        tally.cells,
        CALLERS.len(),
        SHAPES.len(),
        ecr_operations.len(),
        tally.allows.len(),
        tally.denials.len()
    );
    let leaks = tally.existence_leaks();
    println!(
        "existence: {} refused requests compared between an existing and a missing repository, {} differ; \
         {} server errors",
        tally.answers.len() / 2,
        leaks.len(),
        tally.server_errors.len()
    );
    let list = |cells: &BTreeSet<String>| cells.iter().cloned().collect::<Vec<_>>().join("\n");
    println!(
        "allowed requests on existing repositories with an outcome other than theirs: {}",
        tally.wrong_outcomes.len()
    );
    assert!(tally.allows.is_empty(), "unexpected allows:\n{}", list(&tally.allows));
    assert!(
        tally.wrong_outcomes.is_empty(),
        "allowed requests that did not get their outcome:\n{}",
        list(&tally.wrong_outcomes)
    );
    assert!(tally.denials.is_empty(), "unexpected denials:\n{}", list(&tally.denials));
    assert!(leaks.is_empty(), "answers that tell existence:\n{}", leaks.join("\n"));
    assert!(tally.server_errors.is_empty(), "server errors:\n{}", list(&tally.server_errors));
}

/// Accounts, users and keys for every caller, and how each presents itself.
async fn callers(berth: &Berth) -> Vec<(Who, Credentials)> {
    let (owner_key, owner_secret) = berth.owner_credentials();
    berth.account_with_key("111111111111");
    berth.account_with_key("333333333333");
    let policy_file = berth.data_dir().with_extension("all.json");
    std::fs::write(
        &policy_file,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#,
    )
    .expect("write");
    let policy_path = policy_file.to_str().expect("path").to_owned();
    let pair = |key: &Value| {
        let text = |f: &str| key[f].as_str().expect("field").to_owned();
        (text("accessKeyId"), text("secretAccessKey"))
    };
    let user = |account: &str, name: &str, with_policy: bool| {
        berth.admin(&["user", "create", "--account", account, name]);
        if with_policy {
            let args =
                ["user", "policy", "put", "--account", account, "--user", name, "--name", "all", "--file"];
            berth.admin(&[&args[..], &[policy_path.as_str()]].concat());
        }
        pair(&berth.admin(&["key", "create", "--account", account, "--user", name]))
    };
    // Allowed everything, but for one or two Denies.
    let allowed_but = |name: &str, denials: Value| {
        let mut statements = vec![json!({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"})];
        statements.extend(denials.as_array().cloned().unwrap_or_default());
        berth.user_with_policy(ACCOUNT, name, &json!({"Version": "2012-10-17", "Statement": statements}))
    };
    let now = SystemTime::now();
    let mut creds = Vec::new();
    for who in CALLERS {
        let (key, secret) = match who {
            Who::OwnerRoot | Who::OwnerRootElsewhere | Who::ExpiredToken => {
                (owner_key.clone(), owner_secret.clone())
            }
            Who::OwnerUserNoCreate => allowed_but(
                "no-create",
                json!([{"Effect": "Deny", "Action": "ecr:CreateRepository", "Resource": "*"}]),
            ),
            Who::OwnerUserTagGuard => allowed_but(
                "tag-guard",
                json!([
                    {"Effect": "Deny", "Action": ["ecr:TagResource", "ecr:UntagResource"], "Resource": "*",
                     "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}},
                    {"Effect": "Deny", "Action": ["ecr:CreateRepository", "ecr:TagResource"], "Resource": "*",
                     "Condition": {"StringEquals": {"aws:RequestTag/team": "blocked"}}}
                ]),
            ),
            Who::OwnerUserDenyProd => allowed_but(
                "deny-prod",
                json!([{"Effect": "Deny", "Action": "ecr:*", "Resource": "*",
                        "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}]),
            ),
            Who::OwnerUserWithPolicy => user(ACCOUNT, "ci", true),
            Who::OwnerUserWithout => user(ACCOUNT, "intern", false),
            Who::AllowedRoot | Who::AllowedRootElsewhere => {
                pair(&berth.admin(&["key", "create", "--account", "111111111111"]))
            }
            Who::AllowedUserWithPolicy => user("111111111111", "dev", true),
            Who::OtherRoot => pair(&berth.admin(&["key", "create", "--account", "333333333333"])),
            Who::OtherUserWithout => user("333333333333", "x", false),
            Who::DisabledKey => pair(&berth.admin(&["key", "create", "--account", ACCOUNT])),
            Who::BadSignature => (owner_key.clone(), "not-the-secret-of-this-key".to_owned()),
            Who::Anonymous | Who::AnonymousElsewhere => {
                creds.push((
                    who,
                    Credentials { client: client_from(who.address()), password: None, signer: None },
                ));
                continue;
            }
        };
        let password = match who {
            // A user without GetAuthorizationToken gets no token: it presents garbage.
            Who::OwnerUserWithout | Who::OtherUserWithout | Who::BadSignature => "not-a-token".to_owned(),
            // The owner's own token, issued to live six seconds; it works, then it expires.
            Who::ExpiredToken => {
                let password = short_lived_password(berth.data_dir(), &key, 6);
                let r = berth.req_with(&password, Method::GET, "/v2/").send().await.expect("send");
                assert_eq!(r.status(), 200, "a fresh short-lived token works");
                password
            }
            _ => berth.password_for(&key, &secret).await,
        };
        // An expired credential on the ECR API: a request signed 20 minutes ago.
        let signed_at = if who == Who::ExpiredToken { now - Duration::from_secs(20 * 60) } else { now };
        if who == Who::DisabledKey {
            // The key worked (it got a token above); now it is disabled, with the token it issued.
            berth.admin(&["key", "disable", &key]);
        }
        let client = client_from(who.address());
        creds.push((
            who,
            Credentials { client, password: Some(password), signer: Some((key, secret, signed_at)) },
        ));
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    creds
}

fn client_from(address: &str) -> reqwest::Client {
    let address: std::net::IpAddr = address.parse().expect("address");
    reqwest::Client::builder().local_address(address).build().expect("client")
}

/// One image per shape, the policies and tags on last, and the uploads the owner leaves open;
/// and a creation template that would tag the missing repository `team=blocked` if a push
/// created it.
async fn subjects(berth: &Berth) -> Vec<Subject> {
    let mut subjects = Vec::new();
    for shape in SHAPES.into_iter().filter(|s| *s != Shape::Missing) {
        let r = repo(shape.name());
        let layer_bytes = format!("layer of {}", shape.name());
        let config = format!(r#"{{"n":"{}"}}"#, shape.name());
        let (manifest, digest) = berth.image_manifest(&r, config.as_bytes(), layer_bytes.as_bytes()).await;
        let pushed = berth.put_manifest(&r, "v1", OCI_MANIFEST, &manifest).await;
        assert_eq!(pushed.status(), 201);
        let begun = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
        assert_eq!(begun.status(), 202);
        let location = begun.headers()["location"].to_str().expect("location").to_owned();
        let oci_upload = location.strip_prefix(&berth.url).unwrap_or(&location).to_owned();
        let (part_upload, complete_upload) = (ecr_upload(berth, shape).await, ecr_upload(berth, shape).await);
        subjects.push(Subject {
            shape,
            repo: r,
            manifest,
            digest,
            layer: sha256(layer_bytes.as_bytes()),
            oci_upload,
            part_upload,
            complete_upload,
        });
    }
    // The missing repository: the same requests, naming content and uploads it does not have.
    let model = &subjects[0];
    let missing = repo(Shape::Missing.name());
    let fake_upload = || uuid_like(&missing);
    subjects.push(Subject {
        shape: Shape::Missing,
        oci_upload: format!("/v2/{missing}/blobs/uploads/{}", fake_upload()),
        part_upload: fake_upload(),
        complete_upload: fake_upload(),
        repo: missing.clone(),
        manifest: model.manifest.clone(),
        digest: model.digest.clone(),
        layer: model.layer.clone(),
    });
    for shape in SHAPES {
        if let Some(policy) = shape.policy() {
            let input = json!({"repositoryName": shape.name(), "policyText": policy});
            let (status, out) = berth.ecr("SetRepositoryPolicy", input).await;
            assert_eq!(status, 200, "{out}");
        }
        if shape.is_tagged_prod() {
            let arn = format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{}", shape.name());
            let tags = json!({"resourceArn": arn, "tags": [{"Key": "env", "Value": "prod"}]});
            let (status, out) = berth.ecr("TagResource", tags).await;
            assert_eq!(status, 200, "{out}");
        }
    }
    let template = json!({"prefix": Shape::Missing.name(), "appliedFor": ["CREATE_ON_PUSH"],
        "resourceTags": [{"Key": "team", "Value": "blocked"}]});
    let (status, out) = berth.ecr("CreateRepositoryCreationTemplate", template).await;
    assert_eq!(status, 200, "{out}");
    subjects
}

/// An upload id of the usual shape that no upload has.
fn uuid_like(seed: &str) -> String {
    let hex = sha256(seed.as_bytes());
    let h = &hex["sha256:".len()..];
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

async fn ecr_upload(berth: &Berth, shape: Shape) -> String {
    let (status, out) = berth.ecr("InitiateLayerUpload", json!({"repositoryName": shape.name()})).await;
    assert_eq!(status, 200, "{out}");
    out["uploadId"].as_str().expect("uploadId").to_owned()
}

/// Puts a shape's policy back after a cell deleted it.
async fn restore_policy(berth: &Berth, shape: Shape) {
    let (status, out) = match shape.policy() {
        Some(policy) => {
            berth
                .ecr("SetRepositoryPolicy", json!({"repositoryName": shape.name(), "policyText": policy}))
                .await
        }
        None => return,
    };
    assert_eq!(status, 200, "restoring the policy of {shape:?}: {out}");
}

/// The routes that name no repository: the version check and the catalog, which must list
/// nothing of the owner's to a caller who may not describe its repositories.
async fn oci_registry_cells(berth: &Berth, who: Who, c: &Credentials, tally: &mut Tally) {
    for path in ["/v2/", "/v2/_catalog"] {
        let response = oci_request(berth, c, Method::GET, path).send().await.expect("send");
        let status = response.status().as_u16();
        let allowed = status != 401 && status != 403;
        tally.record(status, allowed, who.has_registry_token(), format!("{who:?} GET {path} -> {status}"));
        if path == "/v2/_catalog" && allowed {
            let listed = response.json_or_null().await;
            let owners = listed["repositories"]
                .as_array()
                .map(|names| {
                    names.iter().filter(|n| n.as_str().is_some_and(|n| n.starts_with(ACCOUNT))).count()
                })
                .unwrap_or(0);
            tally.record(
                status,
                owners > 0,
                who.is_owner(),
                format!("{who:?} catalog lists {owners} of the owner's"),
            );
        }
    }
}

/// One OCI request of the matrix: the action ECR authorizes it as, and for a mount, the
/// repository it reads from.
struct Route {
    action: &'static str,
    method: Method,
    path: String,
    mount_from: Option<String>,
}

fn route(action: &'static str, method: Method, path: String) -> Route {
    Route { action, method, path, mount_from: None }
}

/// The layer each subject's repository holds.
fn layer_of(repository: &str) -> String {
    sha256(
        format!("layer of {}", repository.strip_prefix(&format!("{ACCOUNT}/")).unwrap_or(repository))
            .as_bytes(),
    )
}

/// Every OCI route on the subject's repository, with a mount from each of `mount_sources`.
fn oci_routes(s: &Subject, mount_sources: &[String]) -> Vec<Route> {
    let (r, digest, layer, upload) = (&s.repo, &s.digest, &s.layer, &s.oci_upload);
    let absent = sha256(b"not there");
    let mut routes = vec![
        route("ecr:BatchGetImage", Method::GET, format!("/v2/{r}/manifests/v1")),
        route("ecr:BatchGetImage", Method::HEAD, format!("/v2/{r}/manifests/{digest}")),
        route("ecr:PutImage", Method::PUT, format!("/v2/{r}/manifests/v1")),
        route("ecr:BatchDeleteImage", Method::DELETE, format!("/v2/{r}/manifests/{absent}")),
        route("ecr:GetDownloadUrlForLayer", Method::GET, format!("/v2/{r}/blobs/{layer}")),
        route("ecr:BatchCheckLayerAvailability", Method::HEAD, format!("/v2/{r}/blobs/{layer}")),
        route("ecr:BatchDeleteImage", Method::DELETE, format!("/v2/{r}/blobs/{absent}")),
        route("ecr:InitiateLayerUpload", Method::POST, format!("/v2/{r}/blobs/uploads/")),
    ];
    for source in mount_sources {
        let path = format!("/v2/{r}/blobs/uploads/?mount={}&from={source}", layer_of(source));
        routes.push(Route {
            mount_from: Some(source.clone()),
            ..route("ecr:InitiateLayerUpload", Method::POST, path)
        });
    }
    routes.extend([
        route("ecr:UploadLayerPart", Method::PATCH, upload.clone()),
        route("ecr:UploadLayerPart", Method::GET, upload.clone()),
        route(
            "ecr:CompleteLayerUpload",
            Method::PUT,
            format!("{upload}{}digest={absent}", query_joiner(upload)),
        ),
        route("ecr:UploadLayerPart", Method::DELETE, upload.clone()),
        route("ecr:ListImages", Method::GET, format!("/v2/{r}/tags/list")),
        route("ecr:BatchGetImage", Method::GET, format!("/v2/{r}/referrers/{digest}")),
    ]);
    routes
}

/// One OCI request as the caller, with the body its route needs.
async fn oci_cell(
    berth: &Berth,
    c: &Credentials,
    s: &Subject,
    method: Method,
    path: &str,
) -> reqwest::Response {
    let mut request = oci_request(berth, c, method.clone(), path).header("accept", OCI_MANIFEST);
    if method == Method::PUT && path.contains("/manifests/") {
        request = request.header("content-type", OCI_MANIFEST).body(s.manifest.clone());
    } else if method == Method::PATCH {
        request = request.header("content-type", "application/octet-stream").body("x");
    }
    request.send().await.expect("send")
}

/// The shape whose repository is `repository`.
fn shape_of(repository: &str) -> Option<Shape> {
    SHAPES.into_iter().find(|shape| repo(shape.name()) == repository)
}

async fn oci_repository_cells(berth: &Berth, who: Who, c: &Credentials, s: &Subject, tally: &mut Tally) {
    let template_tags = [("team".to_owned(), "blocked".to_owned())];
    // Mounts read from a repository anyone may read, and from one some callers may not.
    let sources = [repo(Shape::PublicRead.name()), repo(Shape::TaggedProd.name())];
    for (n, Route { action, method, path, mount_from }) in oci_routes(s, &sources).into_iter().enumerate() {
        let answer = answer_of(oci_cell(berth, c, s, method.clone(), &path).await).await;
        let status = answer.status;
        let allowed = status != 401 && status != 403;
        // A push into the missing repository would create it, with the template's tags.
        let creates = s.shape == Shape::Missing
            && (method == Method::POST && path.contains("/blobs/uploads/")
                || method == Method::PUT && path.contains("/manifests/"));
        let expect = expected(who, s.shape, action)
            && (who.has_registry_token() || who.base() == Who::Anonymous)
            && !(creates && who.may_not_create(&template_tags));
        let cell = format!("{who:?} {:?} {method} {path} -> {status}", s.shape);
        if expect && s.shape != Shape::Missing {
            tally.outcome(&route_name(&method, &path), &answer, cell.clone());
        }
        tally.record(status, allowed, expect, cell);
        tally.answer(who, s.shape, format!("OCI route {n} {method}"), normalized(&answer.text));
        if let Some(source) = mount_from.as_deref().and_then(shape_of) {
            // A mount needs push on the target and read on the source; otherwise it is an upload.
            let may_mount = expect && expected(who, source, "ecr:GetDownloadUrlForLayer");
            tally.record(
                status,
                status == 201,
                may_mount,
                format!("{who:?} {:?} mount from {source:?} -> {status}", s.shape),
            );
        }
    }
}

/// Mounts into a repository of the caller's own account from the owner's repositories: the
/// blob is linked only when the owner's policy lets the caller read it there.
async fn cross_account_mount_cells(berth: &Berth, who: Who, c: &Credentials, tally: &mut Tally) {
    let Some(account) = (match who.base() {
        Who::AllowedRoot | Who::AllowedUserWithPolicy => Some("111111111111"),
        Who::OtherRoot | Who::OtherUserWithout => Some("333333333333"),
        _ => None,
    }) else {
        return;
    };
    for source in [Shape::NoPolicy, Shape::CrossAccountPull, Shape::PublicRead, Shape::FromHome] {
        let from = repo(source.name());
        let path = format!("/v2/{account}/matrix/mine/blobs/uploads/?mount={}&from={from}", layer_of(&from));
        let status = oci_request(berth, c, Method::POST, &path).send().await.expect("send").status().as_u16();
        let may_push = who.has_identity_allow() && who.has_registry_token();
        tally.record(
            status,
            status != 401 && status != 403,
            may_push,
            format!("{who:?} mount into own account from {source:?} -> {status}"),
        );
        let may_mount = may_push && expected(who, source, "ecr:GetDownloadUrlForLayer");
        tally.record(
            status,
            status == 201,
            may_mount,
            format!("{who:?} mount into own account from {source:?}: completed = {}", status == 201),
        );
    }
}

/// The IAM action that authorizes an operation: its own name, but for ListImageReferrers, which
/// ECR authorizes as `ecr:BatchGetImage`.
fn action_of(operation: &str) -> String {
    match operation {
        "ListImageReferrers" => "ecr:BatchGetImage".to_owned(),
        other => format!("ecr:{other}"),
    }
}

fn query_joiner(path: &str) -> &'static str {
    if path.contains('?') { "&" } else { "?" }
}

fn oci_request(berth: &Berth, c: &Credentials, method: Method, path: &str) -> reqwest::RequestBuilder {
    let request = c.client.request(method, format!("{}{path}", berth.url));
    match &c.password {
        Some(password) => request.basic_auth("AWS", Some(password)),
        None => request,
    }
}

/// A lifecycle policy that never acts on the matrix's images (untagged, ten years old).
const INERT_LIFECYCLE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"inert","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3650},"action":{"type":"expire"}}]}"#;

/// The ECR operations on one repository, with inputs that an allowed caller can repeat.
fn repository_operations(s: &Subject) -> Vec<(&'static str, Value)> {
    let name = s.repo.strip_prefix(&format!("{ACCOUNT}/")).unwrap_or(&s.repo);
    let arn = format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}");
    let manifest = String::from_utf8(s.manifest.clone()).expect("manifest is UTF-8");
    let own_policy = s.shape.policy().unwrap_or_else(|| inert_policy(&["ecr:ListImages"]));
    let ops = vec![
        ("BatchGetImage", json!({"repositoryName": name, "imageIds": [{"imageTag": "v1"}]})),
        ("DescribeImages", json!({"repositoryName": name})),
        ("ListImages", json!({"repositoryName": name})),
        ("BatchCheckLayerAvailability", json!({"repositoryName": name, "layerDigests": [s.layer]})),
        ("GetDownloadUrlForLayer", json!({"repositoryName": name, "layerDigest": s.layer})),
        ("ListImageReferrers", json!({"repositoryName": name, "subjectId": {"imageDigest": s.digest}})),
        ("DescribeRepositories", json!({"repositoryNames": [name]})),
        ("ListTagsForResource", json!({"resourceArn": arn})),
        ("GetRepositoryPolicy", json!({"repositoryName": name})),
        ("BatchDeleteImage", json!({"repositoryName": name, "imageIds": [{"imageTag": "nope"}]})),
        ("StartImageScan", json!({"repositoryName": name, "imageId": {"imageDigest": s.digest}})),
        ("DescribeImageScanFindings", json!({"repositoryName": name, "imageId": {"imageDigest": s.digest}})),
        // Restoring an active image changes nothing.
        (
            "UpdateImageStorageClass",
            json!({"repositoryName": name, "imageId": {"imageDigest": s.digest}, "targetStorageClass": "STANDARD"}),
        ),
        // The same manifest under the same tag: ImageAlreadyExists when allowed.
        ("PutImage", json!({"repositoryName": name, "imageManifest": manifest, "imageTag": "v1"})),
        ("InitiateLayerUpload", json!({"repositoryName": name})),
        (
            "UploadLayerPart",
            json!({"repositoryName": name, "uploadId": s.part_upload, "partFirstByte": 0,
                   "partLastByte": 0, "layerPartBlob": "eA=="}),
        ),
        (
            "CompleteLayerUpload",
            json!({"repositoryName": name, "uploadId": s.complete_upload,
                   "layerDigests": [sha256(b"never uploaded")]}),
        ),
        // The repository holds an image, so without force this is RepositoryNotEmpty.
        ("DeleteRepository", json!({"repositoryName": name})),
        ("PutImageTagMutability", json!({"repositoryName": name, "imageTagMutability": "MUTABLE"})),
        (
            "PutImageScanningConfiguration",
            json!({"repositoryName": name, "imageScanningConfiguration": {"scanOnPush": false}}),
        ),
        ("TagResource", json!({"resourceArn": arn, "tags": [{"Key": "matrix", "Value": "yes"}]})),
        ("UntagResource", json!({"resourceArn": arn, "tagKeys": ["absent"]})),
        // Tagging with, and removing, a key a user may be denied by aws:TagKeys.
        ("TagResource", json!({"resourceArn": arn, "tags": [{"Key": "team", "Value": "x"}]})),
        ("UntagResource", json!({"resourceArn": arn, "tagKeys": ["team"]})),
        ("SetRepositoryPolicy", json!({"repositoryName": name, "policyText": own_policy})),
        (
            "PutLifecyclePolicy",
            json!({"repositoryName": name, "lifecyclePolicyText": INERT_LIFECYCLE_POLICY}),
        ),
        ("GetLifecyclePolicy", json!({"repositoryName": name})),
        (
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": name, "lifecyclePolicyText": INERT_LIFECYCLE_POLICY}),
        ),
        ("GetLifecyclePolicyPreview", json!({"repositoryName": name, "maxResults": 10})),
        ("DeleteLifecyclePolicy", json!({"repositoryName": name})),
        // Last: an allowed delete is followed by the owner putting the shape's policy back.
        ("DeleteRepositoryPolicy", json!({"repositoryName": name})),
    ];
    ops.into_iter()
        .map(|(op, mut input)| {
            if input.get("repositoryName").is_some() || op == "DescribeRepositories" {
                input["registryId"] = json!(ACCOUNT);
            }
            (op, input)
        })
        .collect()
}

/// The ECR operations on a registry: `true` marks those aimed at the owner's registry (only the
/// owner may), the others act on the caller's own registry (any caller its identity allows).
fn registry_operations(who: Who) -> Vec<(&'static str, bool, Value)> {
    let slug = format!("{who:?}").to_lowercase();
    let prefix = format!("tmpl-{slug}");
    vec![
        (
            "CreateRepository",
            true,
            json!({"registryId": ACCOUNT, "repositoryName": format!("made-by/{slug}"),
                   "tags": [{"Key": "team", "Value": "blocked"}]}),
        ),
        ("DescribeRepositories", true, json!({"registryId": ACCOUNT})),
        ("GetAuthorizationToken", false, json!({})),
        ("DescribeRegistry", false, json!({})),
        ("PutRegistryPolicy", false, json!({"policyText": inert_policy(&["ecr:ReplicateImage"])})),
        ("GetRegistryPolicy", false, json!({})),
        ("PutRegistryScanningConfiguration", false, json!({"scanType": "BASIC", "rules": []})),
        ("GetRegistryScanningConfiguration", false, json!({})),
        // No registryId in ECR's model: always the caller's own registry.
        (
            "BatchGetRepositoryScanningConfiguration",
            false,
            json!({"repositoryNames": [format!("made-by/{slug}")]}),
        ),
        ("DeleteRegistryPolicy", false, json!({})),
        (
            "CreateRepositoryCreationTemplate",
            false,
            json!({"prefix": prefix, "appliedFor": ["CREATE_ON_PUSH"]}),
        ),
        ("DescribeRepositoryCreationTemplates", false, json!({})),
        ("UpdateRepositoryCreationTemplate", false, json!({"prefix": prefix, "description": "updated"})),
        ("DeleteRepositoryCreationTemplate", false, json!({"prefix": prefix})),
    ]
}

/// What a caller got: the status, the exception an ECR answer names, and the whole answer as
/// text (status, the headers a client reads, body) for telling two answers apart.
struct Answer {
    status: u16,
    kind: String,
    text: String,
}

/// Headers that differ between any two answers and say nothing of the resource.
const PER_RESPONSE_HEADERS: [&str; 3] = ["date", "x-amzn-requestid", "content-length"];

async fn answer_of(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let mut headers: Vec<String> = response
        .headers()
        .iter()
        .filter(|(name, _)| !PER_RESPONSE_HEADERS.contains(&name.as_str()))
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
        .collect();
    headers.sort();
    let body = response.text().await.unwrap_or_default();
    // The ECR exception, or the OCI error code.
    let kind = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["__type"].as_str().or(v["errors"][0]["code"].as_str()).map(str::to_owned))
        .unwrap_or_default();
    Answer { status, kind, text: format!("{status}\n{}\n{body}", headers.join("\n")) }
}

/// An answer with the names that tell the existing and the missing repository apart put in the
/// same words, so that whatever else differs is a leak.
fn normalized(answer: &str) -> String {
    let named = [Shape::NoPolicy.name(), Shape::Missing.name()]
        .iter()
        .fold(answer.to_owned(), |text, name| text.replace(name, "<repository>"));
    without_clock_times(&named)
}

/// The text with every SigV4 time (`20240102T030405Z`) replaced: a refusal that quotes the
/// server's clock differs from one second to the next, and that tells nothing of a repository.
fn without_clock_times(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_time = |at: usize| {
        bytes.get(at..at + 16).is_some_and(|w| {
            w[..8].iter().all(u8::is_ascii_digit)
                && w[8] == b'T'
                && w[9..15].iter().all(u8::is_ascii_digit)
                && w[15] == b'Z'
        })
    };
    let (mut out, mut at) = (String::with_capacity(text.len()), 0);
    while at < bytes.len() {
        if is_time(at) {
            out.push_str("<time>");
            at += 16;
        } else {
            let width = text[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[at..at + width]);
            at += width;
        }
    }
    out
}

/// Calls an ECR operation as the caller: signed with its key at its clock, or unsigned.
async fn call(berth: &Berth, c: &Credentials, operation: &str, input: Value) -> Answer {
    let response = match &c.signer {
        Some((key, secret, at)) => {
            let signing = Signing { time: *at, client: Some(&c.client), ..Signing::default() };
            berth.ecr_response(key, secret, operation, input, &signing).await
        }
        None => c
            .client
            .post(format!("{}/", berth.url))
            .header("x-amz-target", format!("AmazonEC2ContainerRegistry_V20150921.{operation}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(input.to_string())
            .send()
            .await
            .expect("send"),
    };
    answer_of(response).await
}

/// A key of the catalogue as a policy names it: a family (`aws:ResourceTag/`) with the tag key
/// this test uses.
fn concrete(key: &ConditionKey) -> String {
    if key.name.ends_with('/') { format!("{}env", key.name) } else { key.name.to_owned() }
}

/// Whether the table says `key` is set on a request for `action`, given what the request does.
fn carried(
    key: &ConditionKey,
    action: Action,
    on_repository: bool,
    sets_tags: bool,
    removes_tags: bool,
) -> bool {
    match key.presence {
        Presence::Always | Presence::Authenticated | Presence::Users | Presence::Header(_) => true,
        Presence::RepositoryTags => on_repository,
        Presence::RequestTags(actions) => sets_tags && actions.contains(&action),
        Presence::TagKeys(actions) => (sets_tags || removes_tags) && actions.contains(&action),
        Presence::Never(_) => false,
    }
}

/// Walks the condition-key table against the evaluator for every served ECR operation and
/// every OCI route: a user whose one Deny applies when a key is present (`Null: false`) must be
/// refused exactly where the table says the key is set, and nowhere else. The user sends a
/// User-Agent and a Referer; the repository is tagged `env`; tagging requests set or remove
/// tags.
#[tokio::test]
async fn every_condition_key_is_set_exactly_where_the_table_says() {
    let mut berth = Berth::start().await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("user-agent", reqwest::header::HeaderValue::from_static("berth-tests/1"));
    headers.insert("referer", reqwest::header::HeaderValue::from_static("https://example.com/"));
    berth.client = reqwest::Client::builder().default_headers(headers).build().expect("client");

    let name = "keys/app";
    let r = repo(name);
    let (status, out) = berth
        .ecr("CreateRepository", json!({"repositoryName": name, "tags": [{"Key": "env", "Value": "x"}]}))
        .await;
    assert_eq!(status, 200, "{out}");
    let layer_bytes = b"condition keys layer";
    let (manifest, digest) = berth.image_manifest(&r, br#"{"keys":1}"#, layer_bytes).await;
    assert_eq!(berth.put_manifest(&r, "v1", OCI_MANIFEST, &manifest).await.status(), 201);
    let begun = berth.req(Method::POST, &format!("/v2/{r}/blobs/uploads/")).send().await.expect("send");
    let location = begun.headers()["location"].to_str().expect("location").to_owned();
    let subject = Subject {
        shape: Shape::NoPolicy,
        repo: r.clone(),
        manifest,
        digest,
        layer: sha256(layer_bytes),
        oci_upload: location.strip_prefix(&berth.url).unwrap_or(&location).to_owned(),
        part_upload: ecr_upload_in(&berth, name).await,
        complete_upload: ecr_upload_in(&berth, name).await,
    };

    let allow_all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]});
    let (key, secret) = berth.user_with_policy(ACCOUNT, "walker", &allow_all);
    let password = berth.password_for(&key, &secret).await;
    let caller = Credentials {
        client: berth.client.clone(),
        password: Some(password),
        signer: Some((key, secret, SystemTime::now())),
    };

    let (mut cells, mut wrong) = (0, Vec::new());
    for entry in CONDITION_KEYS {
        let key_name = concrete(entry);
        let mut deny = allow_all.clone();
        deny["Statement"].as_array_mut().expect("statements").push(
            json!({"Effect": "Deny", "Action": "ecr:*", "Resource": "*", "Condition": {"Null": {key_name.as_str(): "false"}}}),
        );
        berth.put_user_policy(ACCOUNT, "walker", &deny);
        let caller = Credentials {
            client: berth.client.clone(),
            signer: caller.signer.as_ref().map(|(k, s, _)| (k.clone(), s.clone(), SystemTime::now())),
            password: caller.password.clone(),
        };

        let slug: String = key_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect();
        let mut requests: Vec<(&str, Value, bool)> = repository_operations(&subject)
            .into_iter()
            .map(|(operation, mut input)| {
                let arn = format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}");
                match operation {
                    "TagResource" => {
                        input = json!({"resourceArn": arn, "tags": [{"Key": "env", "Value": "x"}]})
                    }
                    "UntagResource" => input = json!({"resourceArn": arn, "tagKeys": ["absent"]}),
                    _ => {}
                }
                (operation, input, true)
            })
            .collect();
        for (operation, _, input) in registry_operations(Who::OwnerUserWithPolicy) {
            let input = match operation {
                "CreateRepository" => {
                    json!({"repositoryName": format!("made-for/{slug}"), "tags": [{"Key": "env", "Value": "x"}]})
                }
                "DescribeRepositories" => json!({}),
                _ => input,
            };
            requests.push((operation, input, false));
        }
        for (operation, input, on_repository) in requests {
            let action = Action::from_name(&action_of(operation)).expect("a served action");
            let sets = matches!(operation, "TagResource" | "CreateRepository");
            let removes = operation == "UntagResource";
            let expect_denied = carried(entry, action, on_repository, sets, removes);
            let Answer { status, kind, .. } = call(&berth, &caller, operation, input).await;
            cells += 1;
            if (kind == "AccessDeniedException") != expect_denied || status >= 500 {
                wrong.push(format!(
                    "{key_name} {operation}: expected denied={expect_denied}, got {status} {kind}"
                ));
            }
        }
        let mut routes = oci_routes(&subject, std::slice::from_ref(&r));
        routes.push(route("ecr:DescribeRepositories", Method::GET, "/v2/_catalog".to_owned()));
        for Route { action, method, path, .. } in routes {
            let action = Action::from_name(action).expect("a served action");
            let on_repository = !path.starts_with("/v2/_catalog");
            let expect_denied = carried(entry, action, on_repository, false, false);
            let response = oci_cell(&berth, &caller, &subject, method.clone(), &path).await;
            let status = response.status().as_u16();
            cells += 1;
            // The catalog lists nothing rather than refusing.
            let denied = if on_repository {
                status == 403
            } else {
                response.json_or_null().await["repositories"].as_array().is_none_or(Vec::is_empty)
            };
            if denied != expect_denied || status >= 500 {
                wrong.push(format!(
                    "{key_name} {method} {path}: expected denied={expect_denied}, got {status}"
                ));
            }
        }
    }
    println!(
        "condition keys: {} keys of the table walked over every served operation and OCI route, {cells} cells, {} \
         disagree with the table",
        CONDITION_KEYS.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "cells where a key's presence disagrees with the table:\n{}", wrong.join("\n"));
}

async fn ecr_upload_in(berth: &Berth, name: &str) -> String {
    let (status, out) = berth.ecr("InitiateLayerUpload", json!({"repositoryName": name})).await;
    assert_eq!(status, 200, "{out}");
    out["uploadId"].as_str().expect("uploadId").to_owned()
}
