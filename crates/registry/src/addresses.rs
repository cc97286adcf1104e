//! The addresses clients are told to use: a repository's URI, the registry endpoint a login
//! goes to, a layer's download URL. Host style (`<account>.<domain>`) when a wildcard domain is
//! configured, else path style (`<host>/<account>/<name>`); with the scheme, host and port of the
//! configured public URL, or of the address the request itself arrived at.

use berth_core::{AccountId, InvalidInput};

use crate::Settings;

/// The scheme, host and port clients reach the registry at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl std::str::FromStr for PublicUrl {
    type Err = InvalidInput;

    /// `https://registry.example.com` or `http://registry.example.com:5000`, nothing after.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| InvalidInput::new("public URL", format!("{s:?} {why}"));
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("must start with http:// or https://"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("must start with http:// or https://"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("must be a scheme, a host and a port, with no path"));
        }
        let (host, port) = match split_port(rest) {
            (host, Some(port)) => {
                (host, Some(port.parse::<u16>().map_err(|_| bad("has a port that is not a number"))?))
            }
            (host, None) => (host, None),
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(bad("has a port that is not a number"));
        }
        // The default port of the scheme is left out, as clients write it.
        let port = port.filter(|p| !matches!((scheme, p), ("http", 80) | ("https", 443)));
        Ok(Self { scheme: scheme.to_owned(), host: host.to_owned(), port })
    }
}

/// `host[:port]` split into the host and the port, if a port is there (IPv6 in brackets kept
/// whole: `[::1]:5000`).
fn split_port(address: &str) -> (&str, Option<&str>) {
    match address.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') =>
        {
            (host, Some(port))
        }
        _ => (address, None),
    }
}

impl Settings {
    /// `host[:port]` clients dial for a registry's requests, given the `Host` of the request
    /// asking: `<account>.<domain>` in host style, with the public port or the request's.
    fn registry_host(&self, request_host: &str, account: &AccountId) -> String {
        let port = match &self.public_url {
            Some(public) => public.port.map(|p| p.to_string()),
            None => split_port(request_host).1.map(str::to_owned),
        };
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        match (&self.host_domain, &self.public_url) {
            (Some(domain), _) => format!("{account}.{domain}{port}"),
            (None, Some(public)) => format!("{}{port}", public.host),
            (None, None) => request_host.to_owned(),
        }
    }

    /// The host every path-style request works on: the public host, or the request's.
    fn path_host(&self, request_host: &str) -> String {
        match &self.public_url {
            Some(public) => match public.port {
                Some(port) => format!("{}:{port}", public.host),
                None => public.host.clone(),
            },
            None => request_host.to_owned(),
        }
    }

    fn scheme(&self) -> &str {
        let listener = if self.tls { "https" } else { "http" };
        self.public_url.as_ref().map_or(listener, |p| p.scheme.as_str())
    }

    /// A repository's address, as `docker push` takes it: `<account>.<domain>[:port]/<name>`
    /// in host style, else `<host>[:port]/<account>/<name>`.
    pub fn repository_uri(&self, request_host: &str, account: &AccountId, name: &str) -> String {
        let host = self.registry_host(request_host, account);
        match &self.host_domain {
            Some(_) => format!("{host}/{name}"),
            None => format!("{host}/{account}/{name}"),
        }
    }

    /// The endpoint `docker login` takes for an account's registry (GetAuthorizationToken's
    /// `proxyEndpoint`): scheme, host and port, no path.
    pub fn proxy_endpoint(&self, request_host: &str, account: &AccountId) -> String {
        format!("{}://{}", self.scheme(), self.registry_host(request_host, account))
    }

    /// A URL of the OCI API on any repository, path style (which every host serves):
    /// `<scheme>://<host>/v2/<account>/<name><rest>`.
    pub fn path_url(&self, request_host: &str, repository: &str, rest: &str) -> String {
        format!("{}://{}/v2/{repository}{rest}", self.scheme(), self.path_host(request_host))
    }

    /// The account a host-style `Host` header (`<account>.<domain>[:port]`) names, if any.
    pub fn account_of_host(&self, host: &str) -> Option<AccountId> {
        let domain = self.host_domain.as_deref()?;
        let (host, _) = split_port(host);
        let (account, rest) = host.split_once('.')?;
        if rest.eq_ignore_ascii_case(domain) { account.parse().ok() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        "123456789012".parse().expect("account")
    }

    fn host_style(public: Option<&str>) -> Settings {
        Settings {
            host_domain: Some("registry.example.com".to_owned()),
            public_url: public.map(|p| p.parse().expect("public URL")),
            ..Settings::default()
        }
    }

    #[test]
    fn path_style_uses_the_address_the_client_used() {
        let path = Settings::default();
        assert_eq!(
            path.repository_uri("127.0.0.1:5000", &account(), "mlops/base"),
            "127.0.0.1:5000/123456789012/mlops/base"
        );
        assert_eq!(path.proxy_endpoint("127.0.0.1:5000", &account()), "http://127.0.0.1:5000");
        let tls = Settings { tls: true, ..Settings::default() };
        assert_eq!(tls.proxy_endpoint("127.0.0.1:5000", &account()), "https://127.0.0.1:5000");
        let public = Settings {
            public_url: Some("https://ecr.example.com".parse().expect("url")),
            ..Settings::default()
        };
        assert_eq!(public.repository_uri("10.0.0.5:5000", &account(), "a"), "ecr.example.com/123456789012/a");
        assert_eq!(public.proxy_endpoint("10.0.0.5:5000", &account()), "https://ecr.example.com");
        assert_eq!(
            public.path_url("10.0.0.5:5000", "123456789012/a", "/blobs/x"),
            "https://ecr.example.com/v2/123456789012/a/blobs/x"
        );
    }

    #[test]
    fn host_style_keeps_the_port_clients_dial() {
        // The port the request came in on, when nothing else is configured.
        let host = host_style(None);
        assert_eq!(
            host.repository_uri("127.0.0.1:5000", &account(), "mlops/base"),
            "123456789012.registry.example.com:5000/mlops/base"
        );
        assert_eq!(
            host.proxy_endpoint("127.0.0.1:5000", &account()),
            "http://123456789012.registry.example.com:5000"
        );
        assert_eq!(
            host.repository_uri("registry.example.com", &account(), "a"),
            "123456789012.registry.example.com/a"
        );
        // Behind a load balancer on 443, no port; on another port, that port.
        let balanced = host_style(Some("https://registry.example.com:443"));
        assert_eq!(
            balanced.repository_uri("10.0.0.5:5000", &account(), "a"),
            "123456789012.registry.example.com/a"
        );
        assert_eq!(
            balanced.proxy_endpoint("10.0.0.5:5000", &account()),
            "https://123456789012.registry.example.com"
        );
        let odd = host_style(Some("https://registry.example.com:8443"));
        assert_eq!(
            odd.proxy_endpoint("10.0.0.5:5000", &account()),
            "https://123456789012.registry.example.com:8443"
        );
    }

    #[test]
    fn accounts_are_read_from_host_style_names_only() {
        let host = host_style(None);
        assert_eq!(host.account_of_host("123456789012.registry.example.com:5000"), Some(account()));
        assert_eq!(host.account_of_host("123456789012.REGISTRY.example.com"), Some(account()));
        assert_eq!(host.account_of_host("123456789012.other.example.com"), None);
        assert_eq!(host.account_of_host("registry.example.com"), None);
        assert_eq!(Settings::default().account_of_host("123456789012.registry.example.com"), None);
    }

    #[test]
    fn public_urls_are_a_scheme_a_host_and_a_port() {
        for good in ["http://a.example", "https://a.example:8443", "https://a.example/", "http://[::1]:5000"]
        {
            assert!(good.parse::<PublicUrl>().is_ok(), "{good}");
        }
        for bad in [
            "a.example",
            "ftp://a.example",
            "https://",
            "https://a.example/path",
            "https://a.example:x",
            "https://u@a.example",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
    }
}
