//! The load balancer as the os-haproxy plugin (`api/haproxy/settings/…`):
//! per service one frontend and one backend named after it, and one server
//! per backend host named `<service>_<host>` (`_` is in no service or host
//! name, so the prefix is unambiguous); applied with
//! `api/haproxy/service/reconfigure` (a soft reload). Search rows carry
//! raw values from 25.7 and labels before: references are matched by UUID
//! or by name, modes by their first word.
//!
//! The plugin's health check is switched on per backend
//! (`healthCheckEnabled`); the interval, fall and rise of
//! [`LbHealthCheck`] are not in the documented fields, so the plugin's
//! defaults apply and [`LoadBalancer::services`] reports the default.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::client::{OpnSenseError, field_text, field_values};
use super::{OpnSenseSite, cap};
use crate::domain::{
    CapResult, Change, Hostname, LbBackend, LbHealthCheck, LbMode, LbServiceName, LoadBalancer,
    LoadBalancerService,
};

const RECONFIGURE: &str = "haproxy/service/reconfigure";

#[derive(Debug, Clone)]
struct Row {
    uuid: String,
    raw: Value,
}

impl Row {
    fn text(&self, f: &str) -> String {
        field_text(&self.raw, f)
    }
}

#[derive(Debug)]
struct State {
    servers: Vec<Row>,
    backends: Vec<Row>,
    frontends: Vec<Row>,
}

fn rows(v: Vec<Value>) -> Vec<Row> {
    v.into_iter()
        .filter_map(|raw| {
            let uuid = raw.get("uuid")?.as_str()?.to_string();
            Some(Row { uuid, raw })
        })
        .collect()
}

fn server_name(service: &LbServiceName, host: &Hostname) -> String {
    format!("{service}_{host}")
}

fn first_word(s: &str) -> String {
    s.split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

impl State {
    fn named<'a>(list: &'a [Row], name: &str) -> Option<&'a Row> {
        list.iter().find(|r| r.text("name") == name)
    }

    /// The UUIDs a reference field names (by UUID, or by name in labels).
    fn refs(list: &[Row], row: &Row, field: &str) -> BTreeSet<String> {
        field_values(row.raw.get(field))
            .into_iter()
            .filter_map(|v| {
                list.iter()
                    .find(|r| r.uuid == v || r.text("name") == v)
                    .map(|r| r.uuid.clone())
            })
            .collect()
    }
}

impl OpnSenseSite {
    async fn lb_state(&self) -> Result<State, OpnSenseError> {
        Ok(State {
            servers: rows(
                self.client
                    .search("haproxy/settings/search_servers")
                    .await?,
            ),
            backends: rows(
                self.client
                    .search("haproxy/settings/search_backends")
                    .await?,
            ),
            frontends: rows(
                self.client
                    .search("haproxy/settings/search_frontends")
                    .await?,
            ),
        })
    }

    /// Adds (`uuid` None) or sets an item; returns its UUID.
    async fn lb_put(
        &self,
        kind: &str,
        uuid: Option<&str>,
        body: Value,
    ) -> Result<String, OpnSenseError> {
        match uuid {
            Some(u) => {
                self.client
                    .save(&format!("haproxy/settings/set_{kind}/{u}"), &body)
                    .await?;
                Ok(u.to_string())
            }
            None => {
                let ep = format!("haproxy/settings/add_{kind}");
                self.client
                    .save(&ep, &body)
                    .await?
                    .ok_or_else(|| OpnSenseError::Failed {
                        endpoint: ep.clone(),
                        reason: "saved without a uuid in the answer".into(),
                    })
            }
        }
    }

    fn backend_body(name: &str, linked: &BTreeSet<String>, check: bool) -> Value {
        json!({"backend": {
            "name": name, "mode": "tcp", "algorithm": "roundrobin",
            "linkedServers": linked.iter().cloned().collect::<Vec<_>>().join(","),
            "healthCheckEnabled": if check { "1" } else { "0" },
        }})
    }

    async fn lb_set_service(&self, svc: &LoadBalancerService) -> Result<Change, OpnSenseError> {
        let st = self.lb_state().await?;
        let mut changed = false;
        let mut linked = BTreeSet::new();
        let mut wanted_names = BTreeSet::new();
        for b in &svc.backends {
            let name = server_name(&svc.name, &b.hostname);
            wanted_names.insert(name.clone());
            let existing = State::named(&st.servers, &name);
            if let Some(r) = existing
                && r.text("address") == b.ip.to_string()
                && r.text("port") == b.port.to_string()
            {
                linked.insert(r.uuid.clone());
                continue;
            }
            changed = true;
            let body = json!({"server": {
                "enabled": "1", "name": name, "address": b.ip.to_string(),
                "port": b.port.to_string(), "type": "static", "mode": "active",
            }});
            linked.insert(
                self.lb_put("server", existing.map(|r| r.uuid.as_str()), body)
                    .await?,
            );
        }
        let check = svc.health_check.is_some();
        let backend = State::named(&st.backends, svc.name.as_str());
        let backend_ok = backend.is_some_and(|r| {
            first_word(&r.text("mode")) == "tcp"
                && r.text("algorithm")
                    .to_ascii_lowercase()
                    .replace([' ', '-'], "")
                    == "roundrobin"
                && State::refs(&st.servers, r, "linkedServers") == linked
                && (r.text("healthCheckEnabled") == "1") == check
        });
        let backend_uuid = match backend {
            Some(r) if backend_ok => r.uuid.clone(),
            _ => {
                changed = true;
                let body = Self::backend_body(svc.name.as_str(), &linked, check);
                self.lb_put("backend", backend.map(|r| r.uuid.as_str()), body)
                    .await?
            }
        };
        let bind = svc.bind.to_string();
        let frontend = State::named(&st.frontends, svc.name.as_str());
        let frontend_ok = frontend.is_some_and(|r| {
            field_values(r.raw.get("bind")) == [bind.clone()]
                && first_word(&r.text("mode")) == "tcp"
                && State::refs(&st.backends, r, "defaultBackend")
                    .into_iter()
                    .collect::<Vec<_>>()
                    == [backend_uuid.clone()]
        });
        if !frontend_ok {
            changed = true;
            let body = json!({"frontend": {
                "enabled": "1", "name": svc.name.as_str(), "bind": bind, "mode": "tcp",
                "defaultBackend": backend_uuid,
            }});
            self.lb_put("frontend", frontend.map(|r| r.uuid.as_str()), body)
                .await?;
        }
        let prefix = format!("{}_", svc.name);
        for r in &st.servers {
            let name = r.text("name");
            if name.starts_with(&prefix) && !wanted_names.contains(&name) {
                changed = true;
                self.client
                    .delete(&format!("haproxy/settings/del_server/{}", r.uuid))
                    .await?;
            }
        }
        if !changed {
            return Ok(Change::Unchanged);
        }
        self.client.reconfigure(RECONFIGURE).await?;
        Ok(Change::Applied)
    }
}

#[async_trait]
impl LoadBalancer for OpnSenseSite {
    async fn set_service(&self, service: &LoadBalancerService) -> CapResult<Change> {
        self.lb_set_service(service)
            .await
            .map_err(cap("load balancer"))
    }

    async fn remove_backend(
        &self,
        service: &LbServiceName,
        backend: &Hostname,
    ) -> CapResult<Change> {
        let c = cap("load balancer");
        let st = self.lb_state().await.map_err(&c)?;
        let Some(server) = State::named(&st.servers, &server_name(service, backend)) else {
            return Ok(Change::Unchanged);
        };
        if let Some(b) = State::named(&st.backends, service.as_str()) {
            let mut linked = State::refs(&st.servers, b, "linkedServers");
            if linked.remove(&server.uuid) {
                let check = b.text("healthCheckEnabled") == "1";
                let body = Self::backend_body(service.as_str(), &linked, check);
                self.lb_put("backend", Some(&b.uuid), body)
                    .await
                    .map_err(&c)?;
            }
        }
        self.client
            .delete(&format!("haproxy/settings/del_server/{}", server.uuid))
            .await
            .map_err(&c)?;
        self.client.reconfigure(RECONFIGURE).await.map_err(&c)?;
        Ok(Change::Applied)
    }

    async fn remove_service(&self, service: &LbServiceName) -> CapResult<Change> {
        let c = cap("load balancer");
        let st = self.lb_state().await.map_err(&c)?;
        let mut gone = Vec::new();
        if let Some(f) = State::named(&st.frontends, service.as_str()) {
            gone.push(format!("haproxy/settings/del_frontend/{}", f.uuid));
        }
        if let Some(b) = State::named(&st.backends, service.as_str()) {
            gone.push(format!("haproxy/settings/del_backend/{}", b.uuid));
        }
        let prefix = format!("{service}_");
        for s in st
            .servers
            .iter()
            .filter(|s| s.text("name").starts_with(&prefix))
        {
            gone.push(format!("haproxy/settings/del_server/{}", s.uuid));
        }
        if gone.is_empty() {
            return Ok(Change::Unchanged);
        }
        for ep in gone {
            self.client.delete(&ep).await.map_err(&c)?;
        }
        self.client.reconfigure(RECONFIGURE).await.map_err(&c)?;
        Ok(Change::Applied)
    }

    /// Frontends whose name is a service name, whose bind is one address
    /// and whose default backend has that name; others are left out.
    async fn services(&self) -> CapResult<Vec<LoadBalancerService>> {
        let st = self.lb_state().await.map_err(cap("load balancer"))?;
        let mut out = Vec::new();
        for f in &st.frontends {
            let Ok(name) = f.text("name").parse::<LbServiceName>() else {
                continue;
            };
            let Ok(bind) = f.text("bind").parse::<SocketAddr>() else {
                continue;
            };
            let Some(b) = State::named(&st.backends, name.as_str()) else {
                continue;
            };
            let prefix = format!("{name}_");
            let mut backends = Vec::new();
            for uuid in State::refs(&st.servers, b, "linkedServers") {
                let Some(s) = st.servers.iter().find(|s| s.uuid == uuid) else {
                    continue;
                };
                let host = s
                    .text("name")
                    .strip_prefix(&prefix)
                    .and_then(|h| h.parse::<Hostname>().ok());
                let ip = s.text("address").parse::<IpAddr>().ok();
                let port = s.text("port").parse::<u16>().ok();
                match (host, ip, port) {
                    (Some(hostname), Some(ip), Some(port)) => {
                        backends.push(LbBackend { hostname, ip, port })
                    }
                    _ => {
                        tracing::warn!(server = %s.uuid, "HAProxy server left out: not one Harmony made")
                    }
                }
            }
            backends.sort_by(|a, b| a.hostname.cmp(&b.hostname));
            out.push(LoadBalancerService {
                name,
                bind,
                mode: LbMode::Tcp,
                backends,
                health_check: (b.text("healthCheckEnabled") == "1").then(LbHealthCheck::default),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
