//! LAGG devices as the `Switch` (`api/interfaces/lagg_settings/…`, 23.7+):
//! the "ports" are the firewall's interface devices (`igb0`, `ix1`). A LAG
//! Harmony manages is a LAGG whose `descr` is `harmony-lag-<N>` (the
//! `laggif` is assigned by OPNsense and cannot be chosen), `proto` `lacp`
//! and `lacp_fast_timeout` on; "access mode" removes it (the members go
//! back to plain interfaces). What LAGG cannot express is refused as
//! [`SwitchError::Unsupported`]: a VLAN other than the site's untagged
//! one, LACP fallback, and the partner (the API reports configuration,
//! not LACP state). The API has no link state either: a member reads as
//! admin up (configured), oper state unknown (reported down).

use async_trait::async_trait;
use serde_json::{Value, json};

use super::OpnSenseSite;
use super::client::{OpnSenseError, field_text, field_values};
use crate::domain::switch::check_ports;
use crate::domain::{
    Change, ChangeFailure, FoundState, LacpOptions, LagId, PortList, PortMode, PortStatus, Restore,
    Switch, SwitchCapabilities, SwitchError, SwitchPort, VlanId, WantedState,
};

const SEARCH: &str = "interfaces/lagg_settings/search_item";
const RECONFIGURE: &str = "interfaces/lagg_settings/reconfigure";

#[derive(Debug, Clone)]
struct Lagg {
    uuid: String,
    members: Vec<String>,
    proto: String,
    fast: bool,
    /// The Harmony LAG id from `descr`, when it is one.
    lag: Option<LagId>,
}

fn lag_descr(lag: LagId) -> String {
    format!("harmony-lag-{lag}")
}

fn laggs(rows: &[Value]) -> Vec<Lagg> {
    rows.iter()
        .filter_map(|r| {
            Some(Lagg {
                uuid: r.get("uuid")?.as_str()?.to_string(),
                members: field_values(r.get("members")),
                proto: field_text(r, "proto").to_ascii_lowercase(),
                fast: field_text(r, "lacp_fast_timeout") == "1",
                lag: field_text(r, "descr")
                    .strip_prefix("harmony-lag-")
                    .and_then(|n| n.parse().ok()),
            })
        })
        .collect()
}

fn lagg_body(members: &[SwitchPort], lag: LagId) -> Value {
    let members: Vec<&str> = members.iter().map(SwitchPort::as_str).collect();
    json!({"lagg": {
        "members": members.join(","), "proto": "lacp", "lacp_fast_timeout": "1",
        "descr": lag_descr(lag),
    }})
}

impl OpnSenseSite {
    fn backend_err(&self, e: OpnSenseError) -> SwitchError {
        SwitchError::Backend {
            switch: self.switch_name().to_string(),
            message: e.to_string(),
        }
    }

    fn unsupported(&self, feature: &'static str) -> SwitchError {
        SwitchError::Unsupported {
            switch: self.switch_name().to_string(),
            feature,
        }
    }

    fn check_vlan(&self, vlan: VlanId) -> Result<(), SwitchError> {
        if self.untagged_vlan == Some(vlan) {
            Ok(())
        } else {
            Err(self
                .unsupported("a VLAN other than the site's untagged VLAN on a LAGG or interface"))
        }
    }

    async fn read_laggs(&self) -> Result<Vec<Lagg>, SwitchError> {
        let rows = self
            .client
            .search(SEARCH)
            .await
            .map_err(|e| self.backend_err(e))?;
        Ok(laggs(&rows))
    }

    fn status_of(&self, port: &SwitchPort, all: &[Lagg]) -> PortStatus {
        let mut st = PortStatus::detached(port.clone());
        st.admin_up = true;
        match all
            .iter()
            .find(|l| l.members.iter().any(|m| m == port.as_str()))
        {
            Some(l) => match (l.lag, l.proto.as_str(), l.fast) {
                (Some(lag), "lacp", true) => {
                    st.mode = PortMode::LacpMember { lag };
                    st.lag = Some(lag);
                    st.vlan = self.untagged_vlan;
                }
                _ => st.mode = PortMode::Other,
            },
            None => match self.untagged_vlan {
                Some(vlan) => {
                    st.mode = PortMode::Access { vlan };
                    st.vlan = Some(vlan);
                }
                None => st.mode = PortMode::Other,
            },
        }
        st
    }

    /// Reconfigures, reads back and checks; on a mismatch puts `undo` back.
    async fn apply_and_verify(
        &self,
        ports: &[SwitchPort],
        wanted: WantedState,
        undo: Vec<(String, Value)>,
    ) -> Result<Change, SwitchError> {
        let result = self.client.reconfigure(RECONFIGURE).await;
        let found = match &result {
            Ok(()) => self.get_port_status(ports).await?,
            Err(_) => Vec::new(),
        };
        let mismatches = wanted.mismatches(ports, &found);
        if result.is_ok() && mismatches.is_empty() {
            return Ok(Change::Applied);
        }
        let mut restore = Restore::Restored;
        for (ep, body) in undo {
            let r = if ep.contains("/del_item/") {
                self.client.delete(&ep).await.map(|_| ())
            } else {
                self.client.save(&ep, &body).await.map(|_| ())
            };
            if let Err(e) = r {
                restore = Restore::Failed(e.to_string());
            }
        }
        if restore == Restore::Restored
            && let Err(e) = self.client.reconfigure(RECONFIGURE).await
        {
            restore = Restore::Failed(e.to_string());
        }
        Err(SwitchError::ChangeFailed(Box::new(ChangeFailure {
            switch: self.switch_name().to_string(),
            ports: PortList(ports.to_vec()),
            wanted,
            found: FoundState(found),
            mismatches,
            cause: result.err().map(|e| e.to_string()),
            restore,
        })))
    }
}

#[async_trait]
impl Switch for OpnSenseSite {
    fn switch_name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            lacp_fallback: false,
            reports_lacp_partner: false,
        }
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        let all = self.read_laggs().await?;
        Ok(ports.iter().map(|p| self.status_of(p, &all)).collect())
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        check_ports(self.switch_name(), ports)?;
        self.check_vlan(vlan)?;
        let all = self.read_laggs().await?;
        let names: Vec<&str> = ports.iter().map(SwitchPort::as_str).collect();
        let touched: Vec<&Lagg> = all
            .iter()
            .filter(|l| l.members.iter().any(|m| names.contains(&m.as_str())))
            .collect();
        if touched.is_empty() {
            return Ok(Change::Unchanged);
        }
        let mut undo = Vec::new();
        for l in &touched {
            let Some(lag) = l.lag else {
                return Err(SwitchError::Refused {
                    switch: self.switch_name().to_string(),
                    ports: PortList(ports.to_vec()),
                    reason: format!("a port is in LAGG {} that Harmony does not manage", l.uuid),
                });
            };
            if let Some(m) = l.members.iter().find(|m| !names.contains(&m.as_str())) {
                return Err(SwitchError::Refused {
                    switch: self.switch_name().to_string(),
                    ports: PortList(ports.to_vec()),
                    reason: format!("LAG {lag} also has member {m}, which was not named"),
                });
            }
            let members: Vec<SwitchPort> =
                l.members.iter().filter_map(|m| m.parse().ok()).collect();
            undo.push((
                format!("interfaces/lagg_settings/set_item/{}", l.uuid),
                lagg_body(&members, lag),
            ));
        }
        for l in &touched {
            self.client
                .delete(&format!("interfaces/lagg_settings/del_item/{}", l.uuid))
                .await
                .map_err(|e| self.backend_err(e))?;
        }
        self.apply_and_verify(ports, WantedState::Access { vlan }, undo)
            .await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        check_ports(self.switch_name(), ports)?;
        if options.fallback {
            return Err(self.unsupported("LACP fallback"));
        }
        if options.partner_within.is_some() {
            return Err(
                self.unsupported("verifying the LACP partner (the LAGG API reports no LACP state)")
            );
        }
        self.check_vlan(vlan)?;
        let all = self.read_laggs().await?;
        let names: Vec<&str> = ports.iter().map(SwitchPort::as_str).collect();
        for l in &all {
            if l.lag != Some(lag) && l.members.iter().any(|m| names.contains(&m.as_str())) {
                return Err(SwitchError::Refused {
                    switch: self.switch_name().to_string(),
                    ports: PortList(ports.to_vec()),
                    reason: match l.lag {
                        Some(other) => format!(
                            "a port is a member of LAG {other}; set it to access mode first"
                        ),
                        None => {
                            format!("a port is in LAGG {} that Harmony does not manage", l.uuid)
                        }
                    },
                });
            }
        }
        let mine = all.iter().find(|l| l.lag == Some(lag));
        let wanted = WantedState::Lacp {
            lag,
            vlan,
            fallback: false,
            partner: false,
        };
        let body = lagg_body(ports, lag);
        let undo = match mine {
            Some(l) => {
                let mut have: Vec<&str> = l.members.iter().map(String::as_str).collect();
                let mut want = names.clone();
                have.sort_unstable();
                want.sort_unstable();
                if have == want && l.proto == "lacp" && l.fast {
                    return Ok(Change::Unchanged);
                }
                let old = json!({"lagg": {
                    "members": l.members.join(","), "proto": l.proto,
                    "lacp_fast_timeout": if l.fast { "1" } else { "0" }, "descr": lag_descr(lag),
                }});
                let ep = format!("interfaces/lagg_settings/set_item/{}", l.uuid);
                self.client
                    .save(&ep, &body)
                    .await
                    .map_err(|e| self.backend_err(e))?;
                vec![(ep, old)]
            }
            None => {
                let uuid = self
                    .client
                    .save("interfaces/lagg_settings/add_item", &body)
                    .await
                    .map_err(|e| self.backend_err(e))?
                    .unwrap_or_default();
                vec![(
                    format!("interfaces/lagg_settings/del_item/{uuid}"),
                    json!({}),
                )]
            }
        };
        self.apply_and_verify(ports, wanted, undo).await
    }
}
