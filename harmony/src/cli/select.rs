//! How a user names a host on the command line: its id (`uuid:`,
//! `serial:`, `macs:`), the IP address it answered on, or its assigned host
//! name (full or short). Parsing validates; finding asks the repository.

use std::net::IpAddr;

use super::CliError;
use crate::domain::{HostId, HostRecord, Hostname, InventoryRepository};

/// A host as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSelector {
    Id(HostId),
    Ip(IpAddr),
    Name(Hostname),
}

impl HostSelector {
    /// A host id if it parses as one, else an IP address, else a host name.
    pub fn parse(s: &str) -> Result<Self, CliError> {
        if let Ok(id) = s.parse::<HostId>() {
            return Ok(Self::Id(id));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        s.parse::<Hostname>()
            .map(Self::Name)
            .map_err(|e| CliError::InvalidHost {
                value: e.value,
                reason: e.reason,
            })
    }

    /// The one stored host this names; none or several is an error.
    pub fn find(&self, repo: &dyn InventoryRepository) -> Result<HostRecord, CliError> {
        if let Self::Id(id) = self {
            return repo
                .host(id)?
                .ok_or_else(|| CliError::NoSuchHost(id.clone()));
        }
        let mut found: Vec<HostRecord> = repo
            .hosts()?
            .into_iter()
            .filter(|h| self.matches(h))
            .collect();
        match found.len() {
            0 => Err(CliError::NoMatch { what: self.what() }),
            1 => Ok(found.remove(0)),
            count => Err(CliError::Ambiguous {
                count,
                what: self.what(),
            }),
        }
    }

    fn matches(&self, h: &HostRecord) -> bool {
        match self {
            Self::Id(id) => h.id == *id,
            Self::Ip(ip) => h.ip == *ip,
            Self::Name(n) => h
                .hostname
                .as_ref()
                .is_some_and(|hn| hn == n || hn.short() == n.as_str()),
        }
    }

    fn what(&self) -> String {
        match self {
            Self::Ip(ip) => format!("IP {ip}"),
            Self::Name(n) => format!("host name {n}"),
            Self::Id(id) => id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_addresses_and_names_are_told_apart() {
        assert!(matches!(
            HostSelector::parse("uuid:4c4c4544-0000-4000-8000-0000000000ff"),
            Ok(HostSelector::Id(_))
        ));
        assert!(matches!(
            HostSelector::parse("10.0.0.1"),
            Ok(HostSelector::Ip(_))
        ));
        assert!(matches!(
            HostSelector::parse("::1"),
            Ok(HostSelector::Ip(_))
        ));
        assert!(matches!(
            HostSelector::parse("master-0"),
            Ok(HostSelector::Name(_))
        ));
    }

    #[test]
    fn hostile_input_is_invalid_input_naming_the_value() {
        let e = HostSelector::parse("\"; reboot").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(m.starts_with("invalid host \"\\\"; reboot\""), "{m}");
    }
}
