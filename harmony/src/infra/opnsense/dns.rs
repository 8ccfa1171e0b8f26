//! DNS as Unbound host overrides (`api/unbound/settings/*_host_override`,
//! body key `host`: `hostname`, `domain`, `rr` A/AAAA, `server`), applied
//! with `api/unbound/service/reconfigure`.
//!
//! A wildcard `*.apps.example.com` is the override with hostname `*` and
//! domain `apps.example.com`: opnsense/core `models/OPNsense/Unbound/
//! Unbound.xml` gives `hosts.host.hostname` `HostWildcardAllowed=Y`, and
//! `service/templates/OPNsense/Unbound/core/host_entries.conf` renders a
//! `*` host as `local-zone: "<domain>" redirect` plus `local-data:
//! "<domain> IN A <server>"`, which answers every name below the domain
//! (and the domain itself).

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::client::{OpnSenseError, field_text};
use super::dhcp::split_name;
use super::{OpnSenseSite, cap};
use crate::domain::{CapResult, CapabilityError, Change, DnsName, DnsRecord, DnsServer};

const SEARCH: &str = "unbound/settings/search_host_override";
const RECONFIGURE: &str = "unbound/service/reconfigure";

#[derive(Debug)]
struct Override {
    uuid: String,
    name: String,
    ip: Option<IpAddr>,
}

impl OpnSenseSite {
    /// Address overrides (A/AAAA: those whose `server` is an address).
    async fn overrides(&self) -> Result<Vec<Override>, OpnSenseError> {
        let rows = self.client.search(SEARCH).await?;
        Ok(rows
            .iter()
            .filter_map(|r: &Value| {
                let uuid = r.get("uuid")?.as_str()?.to_string();
                let (h, d) = (field_text(r, "hostname"), field_text(r, "domain"));
                let name = if h.is_empty() { d } else { format!("{h}.{d}") };
                Some(Override {
                    uuid,
                    name: name.to_ascii_lowercase(),
                    ip: field_text(r, "server").parse().ok(),
                })
            })
            .filter(|o| o.ip.is_some())
            .collect())
    }
}

/// The override's (hostname, domain) for `name`: `*` and the base for a
/// wildcard.
fn override_parts(name: &DnsName) -> CapResult<(String, String)> {
    match name {
        DnsName::Wildcard(base) => Ok(("*".to_string(), base.as_str().to_string())),
        DnsName::Exact(host) => match split_name(host) {
            (_, d) if d.is_empty() => Err(CapabilityError::new(
                "dns",
                format!("{host}: a host override needs a domain (a name with a dot)"),
            )),
            parts => Ok(parts),
        },
    }
}

#[async_trait]
impl DnsServer for OpnSenseSite {
    async fn set_record(&self, record: &DnsRecord) -> CapResult<Change> {
        let c = cap("dns");
        let (hostname, domain) = override_parts(&record.name)?;
        let wanted = record.name.to_string();
        let found: Vec<Override> = self
            .overrides()
            .await
            .map_err(&c)?
            .into_iter()
            .filter(|o| o.name == wanted)
            .collect();
        if found.len() == 1 && found[0].ip == Some(record.ip) {
            return Ok(Change::Unchanged);
        }
        let rr = if record.ip.is_ipv4() { "A" } else { "AAAA" };
        let body = json!({"host": {
            "enabled": "1", "hostname": hostname, "domain": domain, "rr": rr,
            "server": record.ip.to_string(), "description": "harmony",
        }});
        match found.split_first() {
            Some((first, rest)) => {
                self.client
                    .save(
                        &format!("unbound/settings/set_host_override/{}", first.uuid),
                        &body,
                    )
                    .await
                    .map_err(&c)?;
                for o in rest {
                    self.client
                        .delete(&format!("unbound/settings/del_host_override/{}", o.uuid))
                        .await
                        .map_err(&c)?;
                }
            }
            None => {
                self.client
                    .save("unbound/settings/add_host_override", &body)
                    .await
                    .map_err(&c)?;
            }
        }
        self.client.reconfigure(RECONFIGURE).await.map_err(&c)?;
        Ok(Change::Applied)
    }

    async fn remove_record(&self, name: &DnsName) -> CapResult<Change> {
        let c = cap("dns");
        override_parts(name)?;
        let wanted = name.to_string();
        let rows = self.overrides().await.map_err(&c)?;
        let doomed: Vec<String> = rows
            .iter()
            .filter(|o| o.name == wanted)
            .map(|o| format!("unbound/settings/del_host_override/{}", o.uuid))
            .collect();
        let changed = self
            .client
            .delete_all_then_apply(doomed, RECONFIGURE)
            .await
            .map_err(&c)?;
        Ok(Change::applied_if(changed))
    }

    async fn records(&self) -> CapResult<Vec<DnsRecord>> {
        let mut out = Vec::new();
        for o in self.overrides().await.map_err(cap("dns"))? {
            match (o.name.parse::<DnsName>(), o.ip) {
                (Ok(name), Some(ip)) => out.push(DnsRecord { name, ip }),
                _ => {
                    tracing::warn!(uuid = %o.uuid, "Unbound host override left out: not a valid name")
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
