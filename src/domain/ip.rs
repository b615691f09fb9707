//! IP restrictions: single addresses and CIDR ranges, IPv4 and IPv6.

use std::net::IpAddr;

use ipnet::IpNet;

/// The set of networks a token may be used from. Empty means "from anywhere".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRestriction(Vec<IpNet>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRestrictionError {
    #[error("entry {index} is not an IP address or CIDR range")]
    InvalidEntry { index: usize },
    #[error("at most {max} IP entries are allowed")]
    TooMany { max: usize },
}

impl IpRestriction {
    pub const MAX_ENTRIES: usize = 100;

    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// Parses `"203.0.113.7"`, `"10.0.0.0/8"`, `"2001:db8::/32"`, `"::ffff:1.2.3.4"` …
    /// An IPv4-mapped IPv6 entry becomes its IPv4 form; host bits of a range are cleared
    /// (`10.1.2.3/8` is stored as `10.0.0.0/8`); duplicates are dropped.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, IpRestrictionError> {
        if entries.len() > Self::MAX_ENTRIES {
            return Err(IpRestrictionError::TooMany {
                max: Self::MAX_ENTRIES,
            });
        }
        let mut nets: Vec<IpNet> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let net = parse_entry(entry.as_ref().trim())
                .ok_or(IpRestrictionError::InvalidEntry { index })?;
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(Self(nets))
    }

    pub fn is_unrestricted(&self) -> bool {
        self.0.is_empty()
    }

    /// True when unrestricted or when the (normalised) address lies in one of the networks.
    pub fn allows(&self, ip: Option<IpAddr>) -> bool {
        if self.is_unrestricted() {
            return true;
        }
        let Some(ip) = ip else { return false };
        let ip = normalize(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The stored form (riavzon's): `None` for no restriction, else a JSON array of entries.
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_unrestricted()).then(|| serde_json::Value::from(self.entries()).to_string())
    }

    /// Reads the stored form back (`None` column = no restriction); `None` when it is not one.
    pub fn from_stored(column: Option<&str>) -> Option<Self> {
        let Some(json) = column else {
            return Some(Self::unrestricted());
        };
        let entries: Vec<String> = serde_json::from_str(json).ok()?;
        Self::parse(&entries).ok()
    }

    /// Canonical text of each entry: a bare address for a single host, else `addr/len`.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(entry_text).collect()
    }
}

/// `::ffff:a.b.c.d` is the IPv4 address `a.b.c.d` (dual-stack sockets report it that way).
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_entry(text: &str) -> Option<IpNet> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(IpNet::from(normalize(ip)));
    }
    let net: IpNet = text.parse().ok()?;
    Some(
        match net {
            IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).ok()?,
                None => net,
            },
            other => other,
        }
        .trunc(),
    )
}

fn entry_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn exact_addresses_and_ranges_match() {
        let r = IpRestriction::parse(&["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]).unwrap();
        assert!(r.allows(ip("203.0.113.7")));
        assert!(!r.allows(ip("203.0.113.8")));
        assert!(r.allows(ip("10.200.1.1")));
        assert!(r.allows(ip("2001:db8::1")));
        assert!(!r.allows(ip("2001:db9::1")));
        assert!(!r.allows(None));
    }

    #[test]
    fn ipv4_mapped_ipv6_clients_match_ipv4_entries_and_back() {
        let r = IpRestriction::parse(&["1.2.3.4"]).unwrap();
        assert!(r.allows(ip("::ffff:1.2.3.4")));
        let mapped = IpRestriction::parse(&["::ffff:1.2.3.0/120"]).unwrap();
        assert_eq!(mapped.entries(), vec!["1.2.3.0/24"]);
        assert!(mapped.allows(ip("1.2.3.99")));
    }

    #[test]
    fn entries_are_canonical_and_invalid_ones_rejected() {
        let r = IpRestriction::parse(&["10.1.2.3/8", "1.2.3.4", "1.2.3.4"]).unwrap();
        assert_eq!(r.entries(), vec!["10.0.0.0/8", "1.2.3.4"]);
        for bad in ["", "1.2.3", "1.2.3.4/33", "example.com", "1.2.3.4; DROP"] {
            assert!(IpRestriction::parse(&[bad]).is_err(), "{bad:?}");
        }
        assert!(IpRestriction::parse::<&str>(&[]).unwrap().allows(None));
    }
}
