//! One ECR API call, signed with SigV4 as the AWS SDKs sign it: how the harness sets a registry up
//! for a workload (a creation template that puts repositories under a customer key).

use std::path::Path;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::Error;

/// The access key id and secret of a credentials-file profile (the first one in `file`).
fn credentials(file: &Path) -> Result<(String, String), Error> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .ok_or_else(|| format!("{} has no {name}", file.display()))
    };
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?))
}

/// Calls `operation` with `input` on the registry at `url` as the credentials in `file`; the
/// answer, or an error carrying the registry's.
pub(crate) async fn call(url: &str, file: &Path, operation: &str, input: &Value) -> Result<Value, Error> {
    let (key, secret) = credentials(file)?;
    let uri: http::Uri = url.parse().map_err(|e| format!("registry URL {url:?}: {e}"))?;
    let authority = uri.authority().ok_or_else(|| format!("registry URL {url:?} has no host"))?.to_string();
    let body = input.to_string();
    let target = format!("AmazonEC2ContainerRegistry_V20150921.{operation}");
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", authority.as_str()),
        ("x-amz-target", target.as_str()),
    ];
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "berth-bench").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("ecr")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let endpoint = format!("http://{authority}/");
    let signable = SignableRequest::new(
        "POST",
        &endpoint,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut request = Request::post("/");
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;

    let stream =
        tokio::net::TcpStream::connect(&authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends with the call; a failure shows in the response.
        let _ = connection.await;
    });
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{operation}: {status}: {}", String::from_utf8_lossy(&bytes)).into());
    }
    Ok(answer)
}
