//! DHCP through OPNsense's Dnsmasq (`api/dnsmasq/settings/*_host`, 25.1.2+;
//! tags, options and boot entries 25.1.6+): a reservation is a `host` item
//! with `hwaddr`, `ip`, `host` and `domain`; PXE boot is the docs' recipe:
//! `match` options on client-arch (93) 0 / 7 and on iPXE's option 175 set
//! tags, and a `boot` entry per tag names the file.

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::client::{OpnSenseError, field_text, field_values};
use super::{OpnSenseSite, cap};
use crate::domain::{
    CapResult, CapabilityError, Change, DhcpLease, DhcpReservation, DhcpServer, Hostname, HttpUrl,
    MacAddress,
};

const SEARCH_HOST: &str = "dnsmasq/settings/search_host";
const RECONFIGURE: &str = "dnsmasq/service/reconfigure";

/// The boot files handed out: BIOS (`client-arch` 0) and UEFI x86-64 (7)
/// over TFTP, and iPXE (which sends option 175) the script URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxeBoot {
    pub bios_file: String,
    pub uefi_file: String,
    pub ipxe_script: HttpUrl,
}

/// A reservation as OPNsense holds it.
#[derive(Debug, Clone)]
struct HostRow {
    uuid: String,
    host: String,
    domain: String,
    ips: Vec<String>,
    macs: Vec<String>,
}

fn host_rows(rows: &[Value]) -> Vec<HostRow> {
    rows.iter()
        .filter_map(|r| {
            Some(HostRow {
                uuid: r.get("uuid")?.as_str()?.to_string(),
                host: field_text(r, "host"),
                domain: field_text(r, "domain"),
                ips: field_values(r.get("ip")),
                macs: field_values(r.get("hwaddr"))
                    .into_iter()
                    .map(|m| m.to_ascii_lowercase())
                    .collect(),
            })
        })
        .collect()
}

/// `m0.ocp.example.com` → (`m0`, `ocp.example.com`).
pub(super) fn split_name(name: &Hostname) -> (String, String) {
    match name.as_str().split_once('.') {
        Some((h, d)) => (h.to_string(), d.to_string()),
        None => (name.as_str().to_string(), String::new()),
    }
}

fn host_body(r: &DhcpReservation) -> Value {
    let (host, domain) = split_name(&r.hostname);
    json!({"host": {
        "host": host,
        "domain": domain,
        "ip": r.ip.to_string(),
        "hwaddr": r.mac.to_string(),
        "descr": "harmony",
    }})
}

impl OpnSenseSite {
    async fn hosts(&self) -> Result<Vec<HostRow>, OpnSenseError> {
        Ok(host_rows(&self.client.search(SEARCH_HOST).await?))
    }

    /// Makes Dnsmasq hand out `boot` (tags, match options and boot entries,
    /// created or corrected; `Unchanged` when all are as asked).
    pub async fn set_pxe_boot(&self, boot: &PxeBoot) -> CapResult<Change> {
        let c = cap("dhcp");
        let mut changed = false;
        // (tag name, option code, option value, boot file)
        let wanted = [
            ("harmony-bios", "93", "0", boot.bios_file.clone()),
            ("harmony-uefi", "93", "7", boot.uefi_file.clone()),
            ("harmony-ipxe", "175", "", boot.ipxe_script.to_string()),
        ];
        for file in [&boot.bios_file, &boot.uefi_file] {
            if file.is_empty()
                || file.len() > 128
                || !file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
            {
                return Err(CapabilityError::new(
                    "dhcp",
                    format!("boot file {file:?}: must be 1 to 128 of A-Z a-z 0-9 . _ - /"),
                ));
            }
        }
        let tags = self
            .client
            .search("dnsmasq/settings/search_tag")
            .await
            .map_err(&c)?;
        let options = self
            .client
            .search("dnsmasq/settings/search_option")
            .await
            .map_err(&c)?;
        let boots = self
            .client
            .search("dnsmasq/settings/search_boot")
            .await
            .map_err(&c)?;
        for (tag_name, code, value, file) in wanted {
            let uuid_of = |r: &Value| r.get("uuid").and_then(Value::as_str).map(str::to_string);
            let tag = match tags
                .iter()
                .find(|r| field_text(r, "tag") == tag_name)
                .and_then(uuid_of)
            {
                Some(u) => u,
                None => {
                    changed = true;
                    self.client
                        .save(
                            "dnsmasq/settings/add_tag",
                            &json!({"tag": {"tag": tag_name}}),
                        )
                        .await
                        .map_err(&c)?
                        .ok_or_else(|| {
                            CapabilityError::new(
                                "dhcp",
                                "dnsmasq/settings/add_tag: no uuid in the answer",
                            )
                        })?
                }
            };
            // Search rows carry the tag's UUID (25.7+) or its name (older).
            let is_tag = |v: &[String]| v.iter().any(|t| *t == tag || t == tag_name);
            let has_option = options.iter().any(|r| {
                field_text(r, "type") == "match"
                    && field_text(r, "option") == code
                    && field_text(r, "value") == value
                    && is_tag(&field_values(r.get("set_tag")))
            });
            if !has_option {
                changed = true;
                self.client
                    .save(
                        "dnsmasq/settings/add_option",
                        &json!({"option": {"type": "match", "option": code, "value": value, "set_tag": tag}}),
                    )
                    .await
                    .map_err(&c)?;
            }
            let body = json!({"boot": {"tag": tag, "filename": file}});
            match boots.iter().find(|r| is_tag(&field_values(r.get("tag")))) {
                Some(r) if field_text(r, "filename") == file => {}
                Some(r) => {
                    changed = true;
                    let uuid = uuid_of(r).unwrap_or_default();
                    self.client
                        .save(&format!("dnsmasq/settings/set_boot/{uuid}"), &body)
                        .await
                        .map_err(&c)?;
                }
                None => {
                    changed = true;
                    self.client
                        .save("dnsmasq/settings/add_boot", &body)
                        .await
                        .map_err(&c)?;
                }
            }
        }
        if !changed {
            return Ok(Change::Unchanged);
        }
        self.client.reconfigure(RECONFIGURE).await.map_err(&c)?;
        Ok(Change::Applied)
    }
}

#[async_trait]
impl DhcpServer for OpnSenseSite {
    async fn reserve(&self, r: &DhcpReservation) -> CapResult<Change> {
        let c = cap("dhcp");
        let mac = r.mac.to_string();
        let (host, domain) = split_name(&r.hostname);
        let rows = self.hosts().await.map_err(&c)?;
        match rows.iter().find(|h| h.macs.contains(&mac)) {
            Some(h) if h.ips == [r.ip.to_string()] && h.host == host && h.domain == domain => {
                return Ok(Change::Unchanged);
            }
            Some(h) => {
                let ep = format!("dnsmasq/settings/set_host/{}", h.uuid);
                self.client.save(&ep, &host_body(r)).await.map_err(&c)?;
            }
            None => {
                self.client
                    .save("dnsmasq/settings/add_host", &host_body(r))
                    .await
                    .map_err(&c)?;
            }
        }
        self.client.reconfigure(RECONFIGURE).await.map_err(&c)?;
        Ok(Change::Applied)
    }

    async fn release(&self, mac: &MacAddress) -> CapResult<Change> {
        let c = cap("dhcp");
        let mac = mac.to_string();
        let rows = self.hosts().await.map_err(&c)?;
        let doomed: Vec<String> = rows
            .iter()
            .filter(|h| h.macs.contains(&mac))
            .map(|h| format!("dnsmasq/settings/del_host/{}", h.uuid))
            .collect();
        let changed = self
            .client
            .delete_all_then_apply(doomed, RECONFIGURE)
            .await
            .map_err(&c)?;
        Ok(Change::applied_if(changed))
    }

    /// Host items with one MAC, one IP and a valid name; others (DNS-only
    /// overrides, several MACs) are left out, invalid ones with a warning.
    async fn reservations(&self) -> CapResult<Vec<DhcpReservation>> {
        let rows = self.hosts().await.map_err(cap("dhcp"))?;
        let mut out = Vec::new();
        for h in rows {
            if h.macs.is_empty() {
                continue;
            }
            let name = if h.domain.is_empty() {
                h.host.clone()
            } else {
                format!("{}.{}", h.host, h.domain)
            };
            let parsed = (
                h.macs.first().and_then(|m| m.parse::<MacAddress>().ok()),
                h.ips.first().and_then(|i| i.parse::<IpAddr>().ok()),
                name.parse::<Hostname>().ok(),
            );
            match parsed {
                (Some(mac), Some(ip), Some(hostname)) if h.macs.len() == 1 && h.ips.len() == 1 => {
                    out.push(DhcpReservation { mac, ip, hostname })
                }
                _ => {
                    tracing::warn!(uuid = %h.uuid, "OPNsense dnsmasq host left out: not one valid MAC, IP and name")
                }
            }
        }
        out.sort_by_key(|r| r.mac);
        Ok(out)
    }

    /// `api/dnsmasq/leases/search` (opnsense/core `mvc/app/controllers/
    /// OPNsense/Dnsmasq/Api/LeasesController.php`, a search over `configctl
    /// dnsmasq list leases`, i.e. `scripts/dhcp/get_dnsmasq_leases.py`
    /// reading `/var/db/dnsmasq.leases`): rows with `address`, `hwaddr`
    /// (empty for DHCPv6), `hostname` (`*` when none) and `expire` (Unix
    /// seconds, 0 for an infinite lease). Rows that do not validate are
    /// left out with a warning.
    async fn leases(&self) -> CapResult<Vec<DhcpLease>> {
        let rows = self.client.search(LEASES).await.map_err(cap("dhcp"))?;
        let mut out = Vec::new();
        for row in &rows {
            match lease_of(row) {
                Some(l) => out.push(l),
                None => tracing::warn!(
                    row = %crate::domain::text::safe_text(&row.to_string(), 200),
                    "OPNsense dnsmasq lease left out: no valid MAC and address"
                ),
            }
        }
        out.sort_by_key(|l| (l.mac, l.ip));
        Ok(out)
    }
}

const LEASES: &str = "dnsmasq/leases/search";

fn lease_of(row: &Value) -> Option<DhcpLease> {
    let mac = field_text(row, "hwaddr").parse::<MacAddress>().ok()?;
    let ip = field_text(row, "address").parse::<IpAddr>().ok()?;
    let hostname = match field_text(row, "hostname").as_str() {
        "" | "*" => None,
        h => h.parse::<Hostname>().ok(),
    };
    let expires = match row.get("expire").and_then(|e| {
        e.as_u64()
            .or_else(|| e.as_str().and_then(|s| s.parse().ok()))
    }) {
        Some(0) => None,
        Some(secs) => Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)),
        None => return None,
    };
    Some(DhcpLease {
        mac,
        ip,
        hostname,
        expires,
    })
}
