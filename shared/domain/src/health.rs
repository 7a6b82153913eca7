//! Health checks by URL: an optional HTTP check per service (the team's service map), polled as part of
//! verification. A URL a team types is a request the agent will make from inside the deployment, so it is held to
//! what a health check needs and nothing more:
//!
//! - a cluster-internal Service name (`http://checkout.shop.svc:8080/healthz`, also `….svc.cluster.local`),
//!   reached through the Kubernetes API server's service proxy — never by resolving the name here;
//! - or a host the deployment's operators put on the allow-list, reached directly: every address it resolves to
//!   is checked, and loopback, link-local (the cloud metadata service), unspecified, multicast and the
//!   metadata services' own addresses are refused, and the connection goes to the checked address;
//! - never an IP literal, never credentials in the URL, only `http`/`https`; redirects are not followed.

use std::net::IpAddr;

use crate::names::is_dns1123_label;

/// Where a health check goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthTarget {
    /// A Service in the cluster, through the API server's proxy (`…/services/{scheme:}{name}:{port}/proxy/{path}`).
    Service { https: bool, namespace: String, name: String, port: u16, path: String },
    /// An allow-listed host, reached directly.
    External { url: String, host: String, port: u16 },
}

impl HealthTarget {
    /// The URL as the team wrote it (for messages).
    pub fn describe(&self) -> String {
        match self {
            Self::Service { https, namespace, name, port, path } => {
                format!("{}://{name}.{namespace}.svc:{port}{path}", if *https { "https" } else { "http" })
            }
            Self::External { url, .. } => url.clone(),
        }
    }
}

/// Addresses a health check may never reach, whatever name led there.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                // 0.0.0.0/8 and the AWS/GCP/Azure metadata address (link-local already, named for clarity).
                || v4.octets()[0] == 0
                || v4.octets() == [169, 254, 169, 254]
                // Alibaba's metadata service.
                || v4.octets() == [100, 100, 100, 200]
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_ip(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fe80::/10 link-local
                || (seg[0] & 0xffc0) == 0xfe80
                // The EC2 metadata service over IPv6.
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Reads a health URL: `Err` says why it is not allowed.
pub fn parse_health_url(raw: &str, allow_hosts: &[String]) -> Result<HealthTarget, String> {
    let raw = raw.trim();
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("at most 2048 characters, without spaces or control characters".into());
    }
    let u = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    let https = match u.scheme() {
        "http" => false,
        "https" => true,
        s => return Err(format!("scheme {s:?}: only http and https")),
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err("no credentials in the URL".into());
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err("an IP address: name a cluster Service (NAME.NAMESPACE.svc) or an allow-listed host".into());
        }
        None => return Err("no host".into()),
    };
    let port = u.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path = format!("{path}?{q}");
    }
    let labels: Vec<&str> = host.split('.').collect();
    let service = match labels.as_slice() {
        [name, ns, "svc"] | [name, ns, "svc", "cluster", "local"] => Some((*name, *ns)),
        _ => None,
    };
    if let Some((name, ns)) = service {
        if !is_dns1123_label(name) || !is_dns1123_label(ns) {
            return Err(format!("{host:?} is not NAME.NAMESPACE.svc"));
        }
        if matches!(ns, "kube-system" | "kube-public" | "kube-node-lease") {
            return Err(format!("{ns} is the cluster's own namespace"));
        }
        return Ok(HealthTarget::Service { https, namespace: ns.into(), name: name.into(), port, path });
    }
    if allow_hosts.iter().any(|a| a.trim_end_matches('.').eq_ignore_ascii_case(&host)) {
        return Ok(HealthTarget::External { url: u.to_string(), host, port });
    }
    Err(format!(
        "{host} is neither a cluster Service (NAME.NAMESPACE.svc) nor on the deployment's health-check allow-list"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_and_allow_listed_hosts_only() {
        let allow = vec!["status.example.com".to_owned()];
        assert_eq!(
            parse_health_url("http://checkout.shop.svc:8080/healthz?deep=1", &allow),
            Ok(HealthTarget::Service {
                https: false,
                namespace: "shop".into(),
                name: "checkout".into(),
                port: 8080,
                path: "/healthz?deep=1".into()
            })
        );
        assert!(matches!(
            parse_health_url("https://checkout.shop.svc.cluster.local/", &allow),
            Ok(HealthTarget::Service { https: true, port: 443, .. })
        ));
        assert!(matches!(
            parse_health_url("https://STATUS.example.com./ping", &allow),
            Ok(HealthTarget::External { port: 443, .. })
        ));
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://localhost/",
            "http://metadata.google.internal/",
            "http://user:pw@checkout.shop.svc/",
            "file:///etc/passwd",
            "gopher://checkout.shop.svc/",
            "http://kube-dns.kube-system.svc/",
            "http://evil.com#@checkout.shop.svc/",
            "http://checkout.shop.svc.evil.com/",
            "http://status.example.com.evil.com/",
            "http://checkout.shop.svc /x",
        ] {
            assert!(parse_health_url(bad, &allow).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "224.0.0.1",
            "100.100.100.200",
        ] {
            assert!(is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.3.7", "192.168.1.10", "93.184.216.34", "2606:4700::1111"] {
            assert!(!is_forbidden_ip(ip.parse().unwrap()), "{ip}");
        }
    }
}
