//! Where a request came from: the peer address the listener recorded, or, when the peer is a
//! trusted reverse proxy, the client its `X-Forwarded-For` names. Policies see it as
//! `aws:SourceIp`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use berth_core::Cidr;
use berth_registry::RequestOrigin;
use http::request::Parts;

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the nearest
/// address in `X-Forwarded-For` (read from the right) that is not itself a trusted proxy.
/// Addresses a client put there itself are never believed, since they sit left of the hops
/// the trusted proxies appended.
fn client_ip(parts: &Parts, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<&str> = hops.flat_map(|v| v.split(',')).collect();
    for hop in hops.iter().rev() {
        // An entry that is not an address ends the chain: the last trusted hop is all we know.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// What the transport knows of a request, for the condition keys policies may test.
pub(crate) fn of(parts: &Parts, trusted_proxies: &[Cidr]) -> RequestOrigin {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    RequestOrigin {
        source_ip: client_ip(parts, trusted_proxies),
        // Over the listener's own TLS; a proxy's TLS in front is not the client's transport here.
        secure_transport: parts
            .extensions
            .get::<crate::listener::SecureTransport>()
            .is_some_and(|secure| secure.0),
        user_agent: header("user-agent"),
        referer: header("referer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut builder = http::Request::get("/");
        for value in forwarded {
            builder = builder.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = builder.body(()).expect("request").into_parts();
        parts.extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().expect("peer")));
        parts
    }

    fn ip(parts: &Parts, trusted: &[&str]) -> Option<String> {
        let trusted: Vec<Cidr> = trusted.iter().map(|t| t.parse().expect("cidr")).collect();
        client_ip(parts, &trusted).map(|ip| ip.to_string())
    }

    #[test]
    fn the_peer_unless_it_is_a_trusted_proxy() {
        let direct = parts("203.0.113.9:4000", &["198.51.100.1"]);
        assert_eq!(ip(&direct, &[]).as_deref(), Some("203.0.113.9"), "no proxy is trusted by default");
        assert_eq!(
            ip(&direct, &["10.0.0.0/8"]).as_deref(),
            Some("203.0.113.9"),
            "an untrusted peer's header is ignored"
        );
        let proxied = parts("10.0.0.5:4000", &["198.51.100.1, 10.0.0.7"]);
        assert_eq!(
            ip(&proxied, &["10.0.0.0/8"]).as_deref(),
            Some("198.51.100.1"),
            "trusted hops are skipped"
        );
        let spoofed = parts("10.0.0.5:4000", &["127.0.0.1, 198.51.100.1"]);
        assert_eq!(
            ip(&spoofed, &["10.0.0.0/8"]).as_deref(),
            Some("198.51.100.1"),
            "what the client wrote left of the proxy's entry is not believed"
        );
        let garbage = parts("10.0.0.5:4000", &["nonsense"]);
        assert_eq!(ip(&garbage, &["10.0.0.0/8"]).as_deref(), Some("10.0.0.5"));
        let two_headers = parts("10.0.0.5:4000", &["198.51.100.1", "10.0.0.6"]);
        assert_eq!(ip(&two_headers, &["10.0.0.0/8"]).as_deref(), Some("198.51.100.1"));
    }
}
