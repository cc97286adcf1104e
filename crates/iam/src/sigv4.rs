//! Verification of AWS Signature Version 4 on ECR API requests.
//!
//! berth parses the `Authorization` header, checks the credential scope and the clock, and then
//! asks the `aws-sigv4` crate (the signer AWS's own SDKs use) for the signature the request
//! should carry, over exactly the headers the client says it signed. The payload hash is
//! computed here from the body, since ECR clients send no `X-Amz-Content-Sha256`.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// How far a request's clock may be from the server's.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// Longest `Authorization` header accepted (a real one is a few hundred bytes).
const MAX_AUTHORIZATION_LEN: usize = 8192;
/// Most headers a request may claim to have signed.
const MAX_SIGNED_HEADERS: usize = 64;

/// Why a request's signature was refused, with the exception name AWS uses for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("{0}")]
    Invalid(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
}

impl SigV4Error {
    /// The AWS exception name a client expects for this failure.
    pub fn exception(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::Invalid(_) => "InvalidSignatureException",
            Self::UnknownKey => "UnrecognizedClientException",
        }
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// The scope's date, `yyyymmdd`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// What of an HTTP request the signature covers. Header names are lower case.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

fn incomplete(reason: &str) -> SigV4Error {
    SigV4Error::Incomplete(reason.to_owned())
}

/// Parses the `Authorization` header of a SigV4-signed request.
pub fn parse_authorization(header: &str) -> Result<Authorization, SigV4Error> {
    if header.len() > MAX_AUTHORIZATION_LEN {
        return Err(incomplete("Authorization header is too long."));
    }
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm."))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or_else(|| {
            incomplete("Authorization header requires each component to be of the form key=value.")
        })?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let credential =
        credential.ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter."))?;
    let signed =
        signed.ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter."))?;
    let signature =
        signature.ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter."))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.",
        ));
    };
    if terminator != "aws4_request"
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
        || access_key_id.is_empty()
        || region.is_empty()
    {
        return Err(incomplete(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.",
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
    if signed_headers.len() > MAX_SIGNED_HEADERS || signed_headers.iter().any(|h| h.is_empty()) {
        return Err(incomplete("SignedHeaders must be a ;-separated list of header names."));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(incomplete("Signature must be 64 hexadecimal characters."));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// Parses `yyyymmddThhmmssZ` into a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse().ok() };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !crate::time::valid(month, day, hour, minute, second) {
        return None;
    }
    let days = crate::time::days_from_civil(year, month, day);
    crate::time::from_unix(days * 86_400 + hour * 3600 + minute * 60 + second)
}

fn format_amz_date(time: SystemTime) -> String {
    let secs = crate::time::unix_seconds(time);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::time::civil_from_days(days);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// What a server expects of every request it verifies.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The service in the credential scope (`ecr`).
    pub service: &'a str,
    /// The region the server serves; a scope naming another is refused.
    pub region: &'a str,
    /// Headers that must be among the signed ones besides `host` and `x-amz-date`: for AWS's
    /// JSON protocols, `x-amz-target` (the operation) and `content-type`, so that neither can be
    /// changed under a valid signature.
    pub signed_headers: &'a [&'a str],
}

/// Checks everything that does not need the body: the scope, which headers are signed, and the
/// clock. Returns the signing time. A request that fails here is refused before its body is read.
pub fn check_envelope(
    auth: &Authorization,
    headers: &[(String, String)],
    expect: &Expectations<'_>,
    now: SystemTime,
) -> Result<SystemTime, SigV4Error> {
    if auth.service != expect.service {
        return Err(SigV4Error::Invalid(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect.service
        )));
    }
    if auth.region != expect.region {
        return Err(SigV4Error::Invalid(format!(
            "Credential should be scoped to a valid region: this registry serves '{}', not '{}'. Set the \
             client's region to '{}'.",
            expect.region, auth.region, expect.region
        )));
    }
    for required in ["host", "x-amz-date"].iter().chain(expect.signed_headers) {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(SigV4Error::Invalid(format!(
                "'{}' must be a 'SignedHeader' in the AWS Authorization.",
                display_name(required)
            )));
        }
    }
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let amz_date = header("x-amz-date").ok_or_else(|| {
        incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    })?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| incomplete("X-Amz-Date must have the format yyyyMMddTHHmmssZ."))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SigV4Error::Invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP."
                .to_owned(),
        ));
    }
    if signed_at + MAX_CLOCK_SKEW < now {
        return Err(SigV4Error::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now - MAX_CLOCK_SKEW),
            format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_CLOCK_SKEW {
        return Err(SigV4Error::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(now + MAX_CLOCK_SKEW),
            format_amz_date(now)
        )));
    }
    Ok(signed_at)
}

/// A header name as AWS's messages write it (`X-Amz-Date`, `Host`).
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks the signature itself, once the body is in: the request must carry the signature that
/// `secret` gives over exactly the headers the client says it signed.
pub fn verify_signature(
    auth: &Authorization,
    request: &SignedRequest<'_>,
    secret: &str,
    signed_at: SystemTime,
) -> Result<(), SigV4Error> {
    let expected = expected_signature(auth, request, secret, signed_at)?;
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(SigV4Error::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
                .to_owned(),
        ));
    }
    Ok(())
}

/// Checks a whole request against its `Authorization`, the caller's secret and the server's clock.
pub fn verify(
    auth: &Authorization,
    request: &SignedRequest<'_>,
    secret: &str,
    expect: &Expectations<'_>,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    let signed_at = check_envelope(auth, request.headers, expect, now)?;
    verify_signature(auth, request, secret, signed_at)
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signature of `request` over the headers `auth` names, computed by `aws-sigv4`.
fn expected_signature(
    auth: &Authorization,
    request: &SignedRequest<'_>,
    secret: &str,
    signed_at: SystemTime,
) -> Result<String, SigV4Error> {
    let mismatch =
        || SigV4Error::Invalid("The request signature could not be computed for this request.".to_owned());
    // Every signed header but x-amz-date, which the signer adds from the signing time itself.
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        if name == "x-amz-date" {
            continue;
        }
        let values: Vec<&str> =
            request.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        if values.is_empty() {
            return Err(SigV4Error::Invalid(format!("The signed header {name:?} is not in the request.")));
        }
        headers.push((name.as_str(), values.join(",")));
    }
    // The signer reads the host from the signed `host` header (always among them); the URI
    // contributes only its path and query.
    let uri = if request.query.is_empty() {
        format!("http://localhost{}", request.path)
    } else {
        format!("http://localhost{}?{}", request.path, request.query)
    };
    let identity =
        aws_credential_types::Credentials::new(&auth.access_key_id, secret, None, None, "berth").into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client signed, nothing less.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    let signable = SignableRequest::new(
        request.method,
        &uri,
        headers.iter().map(|(n, v)| (*n, v.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|_| mismatch())?;
    let output = sign(signable, &params).map_err(|_| mismatch())?;
    Ok(output.signature().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// botocore's SigV4Auth with the clock frozen at 2024-01-02T03:04:05Z (the reference notes).
    const BOTO_SIGNATURE: &str = "d72bc61b91243dc29bcc1122ae7045e1ddf902348d8a908f4dceb09adced8d3d";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const ECR: Expectations<'static> = Expectations {
        service: "ecr",
        region: "us-east-1",
        signed_headers: &["x-amz-target", "content-type"],
    };
    const VANILLA: Expectations<'static> =
        Expectations { service: "service", region: "us-east-1", signed_headers: &[] };

    fn boto_headers() -> Vec<(String, String)> {
        [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "localhost:5000"),
            ("x-amz-date", "20240102T030405Z"),
            ("x-amz-target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"),
            ("user-agent", "Boto3/1.44.8 (not signed)"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn boto_authorization(signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/ecr/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
        )
    }

    /// The request botocore signed, over `headers`.
    fn boto_request(headers: &[(String, String)]) -> SignedRequest<'_> {
        SignedRequest { method: "POST", path: "/", query: "", headers, body: br#"{"repositoryName": "foo"}"# }
    }

    fn at(text: &str) -> SystemTime {
        parse_amz_date(text).expect("valid date")
    }

    #[test]
    fn verifies_a_request_signed_by_botocore() {
        let headers = boto_headers();
        let request = boto_request(&headers);
        let auth = parse_authorization(&boto_authorization(BOTO_SIGNATURE)).expect("parses");
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.region, "us-east-1");
        verify(&auth, &request, SECRET, &ECR, at("20240102T031000Z")).expect("botocore's signature verifies");

        // Any change to what was signed breaks it.
        assert!(matches!(
            verify(&auth, &request, "wrong-secret", &ECR, at("20240102T031000Z")),
            Err(SigV4Error::Invalid(_))
        ));
        let tampered = SignedRequest { body: br#"{"repositoryName": "bar"}"#, ..request };
        assert!(matches!(
            verify(&auth, &tampered, SECRET, &ECR, at("20240102T031000Z")),
            Err(SigV4Error::Invalid(_))
        ));
        let mut other_target = boto_headers();
        other_target[3].1 = "AmazonEC2ContainerRegistry_V20150921.DeleteRepository".to_owned();
        let retargeted = SignedRequest { headers: &other_target, ..tampered };
        let body_ok = SignedRequest { body: br#"{"repositoryName": "foo"}"#, ..retargeted };
        assert!(verify(&auth, &body_ok, SECRET, &ECR, at("20240102T031000Z")).is_err(), "target is signed");
    }

    /// `get-vanilla` from AWS's published SigV4 test suite (the same signature is given for
    /// `get-vanilla-query`, whose query is empty).
    #[test]
    fn verifies_the_aws_suite_get_vanilla_vector() {
        let headers: Vec<(String, String)> =
            [("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")]
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                      SignedHeaders=host;x-amz-date, \
                      Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = parse_authorization(header).expect("parses");
        let request = SignedRequest { method: "GET", path: "/", query: "", headers: &headers, body: b"" };
        verify(&auth, &request, SECRET, &VANILLA, at("20150830T123600Z"))
            .expect("the suite's signature verifies");
        let post = SignedRequest { method: "POST", ..request };
        assert!(
            verify(&auth, &post, SECRET, &VANILLA, at("20150830T123600Z")).is_err(),
            "the method is signed"
        );
        let query = SignedRequest { query: "a=b", ..request };
        assert!(
            verify(&auth, &query, SECRET, &VANILLA, at("20150830T123600Z")).is_err(),
            "the query is signed"
        );
    }

    #[test]
    fn refuses_requests_outside_the_clock_window() {
        let headers = boto_headers();
        let request = boto_request(&headers);
        let auth = parse_authorization(&boto_authorization(BOTO_SIGNATURE)).expect("parses");
        let late = verify(&auth, &request, SECRET, &ECR, at("20240102T032006Z"));
        assert_eq!(
            late,
            Err(SigV4Error::Invalid(
                "Signature expired: 20240102T030405Z is now earlier than 20240102T030506Z (20240102T032006Z - 15 min.)"
                    .to_owned()
            ))
        );
        assert!(verify(&auth, &request, SECRET, &ECR, at("20240102T031904Z")).is_ok(), "inside the window");
        let early = verify(&auth, &request, SECRET, &ECR, at("20240102T024804Z"));
        assert!(matches!(early, Err(SigV4Error::Invalid(m)) if m.starts_with("Signature not yet current")));
    }

    #[test]
    fn refuses_the_wrong_service_and_unsigned_host() {
        let headers = boto_headers();
        let request = SignedRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"{}" };
        let auth = parse_authorization(&boto_authorization(BOTO_SIGNATURE).replace("/ecr/", "/s3/"))
            .expect("parses");
        assert!(
            matches!(verify(&auth, &request, SECRET, &ECR, at("20240102T030405Z")), Err(SigV4Error::Invalid(m)) if m.contains("'ecr'"))
        );
        let no_host = boto_authorization(BOTO_SIGNATURE).replace("content-type;host;", "content-type;");
        let auth = parse_authorization(&no_host).expect("parses");
        assert!(verify(&auth, &request, SECRET, &ECR, at("20240102T030405Z")).is_err());
    }

    #[test]
    fn refuses_another_region_and_an_unsigned_target_or_content_type() {
        let headers = boto_headers();
        let request = boto_request(&headers);
        let auth = parse_authorization(&boto_authorization(BOTO_SIGNATURE)).expect("parses");
        let eu = Expectations { region: "eu-west-1", ..ECR };
        let refused = verify(&auth, &request, SECRET, &eu, at("20240102T031000Z"));
        assert!(
            matches!(&refused, Err(SigV4Error::Invalid(m)) if m.contains("'eu-west-1'") && m.contains("'us-east-1'")),
            "{refused:?}"
        );
        for (dropped, shown) in [("x-amz-target", "X-Amz-Target"), ("content-type", "Content-Type")] {
            let signed = ["content-type", "host", "x-amz-date", "x-amz-target"]
                .into_iter()
                .filter(|h| *h != dropped)
                .collect::<Vec<_>>()
                .join(";");
            let header = boto_authorization(BOTO_SIGNATURE)
                .replace("content-type;host;x-amz-date;x-amz-target", &signed);
            let auth = parse_authorization(&header).expect("parses");
            let refused = check_envelope(&auth, &headers, &ECR, at("20240102T031000Z"));
            assert!(
                matches!(&refused, Err(SigV4Error::Invalid(m)) if m.contains(shown)),
                "{dropped} unsigned: {refused:?}"
            );
        }
    }

    #[test]
    fn every_refusal_names_the_exception_aws_uses() {
        assert_eq!(SigV4Error::Missing.exception(), "MissingAuthenticationTokenException");
        assert_eq!(SigV4Error::Incomplete(String::new()).exception(), "IncompleteSignatureException");
        assert_eq!(SigV4Error::Invalid(String::new()).exception(), "InvalidSignatureException");
        assert_eq!(SigV4Error::UnknownKey.exception(), "UnrecognizedClientException");
    }

    #[test]
    fn the_clock_window_is_fifteen_minutes_either_way_inclusive() {
        let headers = boto_headers();
        let auth = parse_authorization(&boto_authorization(BOTO_SIGNATURE)).expect("parses");
        // Signed at 03:04:05: accepted from 02:49:05 to 03:19:05, both included.
        for (now, accepted) in [
            ("20240102T031905Z", true),
            ("20240102T031906Z", false),
            ("20240102T024905Z", true),
            ("20240102T024904Z", false),
        ] {
            assert_eq!(check_envelope(&auth, &headers, &ECR, at(now)).is_ok(), accepted, "at {now}");
        }
    }

    #[test]
    fn each_part_of_the_credential_scope_is_checked() {
        let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/ecr/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=";
        let signature = "0".repeat(64);
        assert!(parse_authorization(&format!("{good}{signature}")).is_ok());
        for bad in [
            good.replace("aws4_request", "aws4_reques"),
            good.replace("/20240102/", "/2024010/"),
            good.replace("/20240102/", "/2024010x/"),
            good.replace("AKIDEXAMPLE/", "/"),
            good.replace("/us-east-1/", "//"),
        ] {
            assert!(parse_authorization(&format!("{bad}{signature}")).is_err(), "{bad}");
        }
        let too_many = (0..65).map(|i| format!("h{i}")).collect::<Vec<_>>().join(";");
        assert!(
            parse_authorization(&format!("{}{signature}", good.replace("host;x-amz-date", &too_many)))
                .is_err()
        );
        let most = (0..64).map(|i| format!("h{i}")).collect::<Vec<_>>().join(";");
        assert!(
            parse_authorization(&format!("{}{signature}", good.replace("host;x-amz-date", &most))).is_ok()
        );
        assert!(
            parse_authorization(&format!("{}{signature}", good.replace("host;x-amz-date", "host;"))).is_err()
        );
        assert!(parse_authorization(&format!("{good}{}", "0".repeat(63))).is_err(), "a short signature");
        assert!(parse_authorization(&format!("{good}{}", "g".repeat(64))).is_err(), "a signature not in hex");
        // The header is bounded: 8,192 characters at most.
        let padded = |len: usize| {
            let head = format!("{good}{signature}, Extra=");
            format!("{head}{}", "x".repeat(len - head.len()))
        };
        assert!(parse_authorization(&padded(8192)).is_ok());
        assert!(parse_authorization(&padded(8193)).is_err());
    }

    #[test]
    fn signing_times_have_one_exact_form() {
        assert!(parse_amz_date("20240102T030405Z").is_some());
        for bad in ["20240102X030405Z", "20240102T030405X", "20240102T0304050", "2024010T030405ZZ"] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn malformed_headers_are_incomplete_signatures() {
        for header in [
            "",
            "Basic abc",
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AKID/2024010/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=",
            "AWS4-HMAC-SHA256 Credential=AKID/20240102/us-east-1/ecr/aws4_request, SignedHeaders=;;, Signature=",
            "AWS4-HMAC-SHA256 garbage",
        ] {
            assert!(matches!(parse_authorization(header), Err(SigV4Error::Incomplete(_))), "{header:?}");
        }
    }

    #[test]
    fn dates_round_trip() {
        for text in ["20240102T030405Z", "19700101T000000Z", "20000229T235959Z", "20261128T100700Z"] {
            assert_eq!(format_amz_date(at(text)), text);
        }
        for bad in ["2024-01-02T03:04:05Z", "20241302T030405Z", "20240102T250405Z", "20240102030405Z"] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
