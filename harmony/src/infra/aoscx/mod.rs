//! Aruba AOS-CX switches as a [`Switch`], through the documented REST API
//! (v10.04 or later; vendor-apis.md §2): [`client`] logs in (form fields,
//! session cookie, CSRF header echoed) and always logs out; [`model`]
//! reads interfaces and LAGs and builds bodies.
//!
//! PUT replaces every writable attribute, so a change reads the object
//! with `selector=writable`, modifies what Harmony manages and PUTs the
//! whole body back (pyaoscx `DESIGN.md` [A5]; the trunk list pyaoscx wiped
//! with partial bodies, aruba/pyaoscx#36 [I8]); PATCH is not used (its
//! support per firmware is unconfirmed). An access port is `vlan_mode:
//! access`, `vlan_tag`, `routing: false`; a LAG is `lagN` (`type: lag`,
//! `lacp: active`, `other_config."lacp-time": fast`, `"lacp-fallback"` as
//! asked: AOS-CX `lacp fallback` forwards on one member while no partner
//! speaks LACP), created by POST when absent, its members carrying
//! `other_config."lacp-aggregation-key"`.
//!
//! The saved writable bodies are what a failed change PUTs back (and a LAG
//! the change created is deleted); then the ports are read back, and the
//! error names the switch, the ports, both states and whether the restore
//! held. A LAG member's LACP partner is read from its `lacp_status`
//! ([`model::partner_of`]); a change asked to wait for the partner reads
//! back until every member hears one partner collecting and distributing
//! (or the wait ends, and the change is put back).

pub mod client;
pub mod model;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::domain::switch::check_ports;
use crate::domain::{
    Change, ChangeFailure, FoundState, HttpUrl, LacpOptions, LagId, PortList, PortMode, PortStatus,
    Restore, Switch, SwitchCapabilities, SwitchError, SwitchPort, Topology, VlanId, WantedState,
};
use crate::infra::device_login::DeviceLogin;
use crate::infra::http_client::{HttpClient, HttpProfile};

pub use client::AosCxError;
use client::Session;
use model::Iface;

/// The REST API version in paths: `v10.04` to `v10.99`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(String);

impl std::str::FromStr for ApiVersion {
    type Err = crate::domain::ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s
            .strip_prefix("v10.")
            .is_some_and(|m| m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) && m >= "04");
        if !ok {
            return Err(crate::domain::ValueError::new(
                "AOS-CX API version",
                s,
                "must be v10.04 to v10.99 (v1 is not supported)",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

/// Where the switch is and how to reach it.
#[derive(Debug, Clone)]
pub struct AosCxConfig {
    /// For messages (`leaf-2`).
    pub name: String,
    /// `https://sw.example.com` (a port if not 443).
    pub base_url: HttpUrl,
    pub version: ApiVersion,
    pub login: DeviceLogin,
    /// PEM of the CA that signed the switch's certificate.
    pub site_ca: Option<PathBuf>,
    /// Connect and the whole of each request.
    pub call_timeout: Duration,
    pub settle: Duration,
    pub poll: Duration,
}

impl AosCxConfig {
    /// API v10.09, 10 s per request, 10 s to settle, a read back a second.
    pub fn new(name: impl Into<String>, base_url: HttpUrl, login: DeviceLogin) -> Self {
        Self {
            name: name.into(),
            base_url,
            version: ApiVersion("v10.09".into()),
            login,
            site_ca: None,
            call_timeout: Duration::from_secs(10),
            settle: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// One AOS-CX switch as a [`Switch`].
#[derive(Debug)]
pub struct AosCxSwitch {
    config: AosCxConfig,
    name: String,
    http: HttpClient,
    changing: tokio::sync::Mutex<()>,
}

/// The writable bodies a change may have to PUT back.
struct Saved {
    ports: Vec<(SwitchPort, Map<String, Value>)>,
    lags: Vec<(String, Map<String, Value>)>,
    before: Vec<PortStatus>,
}

struct Failure {
    found: Vec<PortStatus>,
    mismatches: Vec<String>,
    cause: Option<String>,
}

const ALL: &str = "/system/interfaces?depth=1";

fn one(name: &str) -> String {
    format!(
        "/system/interfaces/{}",
        name.replace('/', "%2F").replace(':', "%3A")
    )
}

impl AosCxSwitch {
    pub fn new(config: AosCxConfig) -> Result<Self, SwitchError> {
        let name = format!("aos-cx {}", config.name);
        let profile = HttpProfile {
            connect_timeout: config.call_timeout,
            total_timeout: Some(config.call_timeout),
            idle_timeout: config.call_timeout,
            max_redirects: 0,
            pooled: true,
            user_agent: "harmony",
            site_ca: config.site_ca.clone(),
        };
        let http = HttpClient::new(profile).map_err(|e| SwitchError::Backend {
            switch: name.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            config,
            name,
            http,
            changing: tokio::sync::Mutex::new(()),
        })
    }

    fn version(&self) -> &str {
        &self.config.version.0
    }

    fn backend(&self, e: AosCxError) -> SwitchError {
        SwitchError::Backend {
            switch: self.name.clone(),
            message: e.to_string(),
        }
    }

    fn refused(&self, ports: &[SwitchPort], reason: impl Into<String>) -> SwitchError {
        SwitchError::Refused {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            reason: reason.into(),
        }
    }

    async fn login(&self) -> Result<Session<'_>, SwitchError> {
        let base = format!(
            "{}/rest/{}",
            self.config.base_url.as_str().trim_end_matches('/'),
            self.version()
        );
        Session::login(&self.http, base, &self.config.login)
            .await
            .map_err(|e| self.backend(e))
    }

    async fn interfaces(&self, s: &Session<'_>) -> Result<Vec<Iface>, SwitchError> {
        let v = s.get(ALL).await.map_err(|e| self.backend(e))?;
        model::parse_interfaces(&v).map_err(|e| SwitchError::Output {
            switch: self.name.clone(),
            source_name: "GET /system/interfaces?depth=1",
            line: e.line,
            reason: e.reason,
        })
    }

    async fn writable(
        &self,
        s: &Session<'_>,
        name: &str,
    ) -> Result<Map<String, Value>, SwitchError> {
        let path = format!("{}?selector=writable", one(name));
        match s.get(&path).await.map_err(|e| self.backend(e))? {
            Value::Object(m) => Ok(m),
            _ => Err(self.backend(AosCxError::Answer {
                endpoint: path,
                reason: "expected an object".into(),
            })),
        }
    }

    async fn put(
        &self,
        s: &Session<'_>,
        name: &str,
        body: Map<String, Value>,
    ) -> Result<(), AosCxError> {
        s.call(
            Method::PUT,
            &one(name),
            Some(&Value::Object(body)),
            &[200, 204],
        )
        .await
        .map(|_| ())
    }

    fn statuses(all: &[Iface], ports: &[SwitchPort]) -> Vec<PortStatus> {
        ports.iter().map(|p| model::status_of(all, p)).collect()
    }

    async fn verify(
        &self,
        s: &Session<'_>,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + self.config.settle.max(partner_within.unwrap_or_default());
        // Bounded by the deadline.
        loop {
            let all = self.interfaces(s).await.map_err(|e| Failure {
                found: vec![],
                mismatches: vec![],
                cause: Some(format!("reading back: {e}")),
            })?;
            let found = Self::statuses(&all, ports);
            let mut mismatches = wanted.mismatches(ports, &found);
            if let WantedState::Lacp { lag, fallback, .. } = wanted {
                let name = model::lag_name(lag);
                match all.iter().find(|i| i.name.as_str() == name) {
                    Some(l) if l.fallback != fallback => {
                        mismatches.push(format!("{name}: lacp-fallback is {}", l.fallback));
                    }
                    Some(l) if l.members.len() != ports.len() => {
                        mismatches.push(format!("{name}: {} members", l.members.len()));
                    }
                    Some(_) => {}
                    None => mismatches.push(format!("{name}: absent")),
                }
            }
            if mismatches.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure {
                    found,
                    mismatches,
                    cause: None,
                });
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    async fn restore(
        &self,
        s: &Session<'_>,
        ports: &[SwitchPort],
        saved: &Saved,
        created: Option<&str>,
    ) -> Restore {
        let mut errors = Vec::new();
        if let Some(lag) = created
            && let Err(e) = s.call(Method::DELETE, &one(lag), None, &[204, 404]).await
        {
            errors.push(e.to_string());
        }
        for (name, body) in &saved.lags {
            if let Err(e) = self.put(s, name, body.clone()).await {
                errors.push(e.to_string());
            }
        }
        for (port, body) in &saved.ports {
            if let Err(e) = self.put(s, port.as_str(), body.clone()).await {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            return Restore::Failed(errors.join("; "));
        }
        match self.interfaces(s).await {
            Err(e) => Restore::Failed(format!("reading back: {e}")),
            Ok(all) => Restore::from_read_back(&saved.before, &Self::statuses(&all, ports)),
        }
    }

    async fn change(
        &self,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<Change, SwitchError> {
        check_ports(&self.name, ports)?;
        if let Some(p) = ports.iter().find(|p| p.as_str().starts_with("lag")) {
            return Err(self.refused(ports, format!("{p} is a LAG; name its member ports")));
        }
        let _one_at_a_time = self.changing.lock().await;
        let s = self.login().await?;
        let result = self.change_in(&s, ports, wanted, partner_within).await;
        s.logout().await;
        result
    }

    async fn change_in(
        &self,
        s: &Session<'_>,
        ports: &[SwitchPort],
        wanted: WantedState,
        partner_within: Option<Duration>,
    ) -> Result<Change, SwitchError> {
        let version = self.version().to_string();
        let all = self.interfaces(s).await?;
        let before = Self::statuses(&all, ports);
        let target = match wanted {
            WantedState::Lacp { lag, .. } => Some(model::lag_name(lag)),
            WantedState::Access { .. } => None,
        };
        // Refuse what could not be put back.
        for st in &before {
            match st.mode {
                PortMode::Detached => {
                    return Err(self.refused(
                        ports,
                        format!("{} is not an interface of the switch", st.port),
                    ));
                }
                PortMode::Other => {
                    return Err(self.refused(
                        ports,
                        format!(
                            "{} is configured some way Harmony does not manage (a trunk, a routed port, a static LAG); make it an access port first",
                            st.port
                        ),
                    ));
                }
                _ => {}
            }
        }
        let mut lags: Vec<String> = ports
            .iter()
            .filter_map(|p| model::lag_containing(&all, p).map(|l| l.name.to_string()))
            .collect();
        let target_exists = target
            .as_ref()
            .is_some_and(|t| all.iter().any(|i| i.name.as_str() == t));
        if target_exists {
            lags.extend(target.clone());
        }
        lags.sort();
        lags.dedup();
        for l in &lags {
            if let Some(lag) = all.iter().find(|i| i.name.as_str() == l)
                && let Some(m) = lag.members.iter().find(|m| !ports.contains(m))
            {
                return Err(self.refused(
                    ports,
                    format!("LAG {l} has the member {m} that is not named"),
                ));
            }
        }
        // Already so (the configuration; the partner is waited for below)?
        let configured = match wanted {
            WantedState::Lacp {
                lag,
                vlan,
                fallback,
                ..
            } => WantedState::Lacp {
                lag,
                vlan,
                fallback,
                partner: false,
            },
            access => access,
        };
        let mut already = configured.mismatches(ports, &before).is_empty();
        if let WantedState::Lacp { fallback, .. } = wanted {
            already &= all
                .iter()
                .any(|i| Some(i.name.as_str()) == target.as_deref() && i.fallback == fallback);
        }
        if already && partner_within.is_none() {
            return Ok(Change::Unchanged);
        }
        if already {
            // Nothing to change: only the partner is waited for.
            return match self.verify(s, ports, wanted, partner_within).await {
                Ok(()) => Ok(Change::Unchanged),
                Err(f) => Err(SwitchError::ChangeFailed(Box::new(ChangeFailure {
                    switch: self.name.clone(),
                    ports: PortList(ports.to_vec()),
                    wanted,
                    found: FoundState(f.found),
                    mismatches: f.mismatches,
                    cause: f.cause,
                    restore: Restore::Restored,
                }))),
            };
        }
        // Save what a restore PUTs back.
        let mut saved = Saved {
            ports: Vec::new(),
            lags: Vec::new(),
            before,
        };
        for l in &lags {
            saved.lags.push((l.clone(), self.writable(s, l).await?));
        }
        for p in ports {
            saved
                .ports
                .push((p.clone(), self.writable(s, p.as_str()).await?));
        }
        tracing::info!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "changing ports");
        let mut created = None;
        let applied: Result<(), AosCxError> = async {
            match wanted {
                WantedState::Access { vlan } => {
                    for (name, body) in &saved.lags {
                        self.put(s, name, model::without_members(body.clone(), ports))
                            .await?;
                    }
                    for (p, body) in &saved.ports {
                        self.put(
                            s,
                            p.as_str(),
                            model::as_access(body.clone(), &version, vlan, None),
                        )
                        .await?;
                    }
                }
                WantedState::Lacp {
                    lag,
                    vlan,
                    fallback,
                    ..
                } => {
                    let tname = model::lag_name(lag);
                    for (name, body) in &saved.lags {
                        if *name != tname {
                            self.put(s, name, model::without_members(body.clone(), ports))
                                .await?;
                        }
                    }
                    match saved.lags.iter().find(|(n, _)| *n == tname) {
                        Some((_, body)) => {
                            self.put(
                                s,
                                &tname,
                                model::as_lag(body.clone(), &version, ports, vlan, fallback),
                            )
                            .await?;
                        }
                        None => {
                            let body = model::new_lag(&version, lag, ports, vlan, fallback);
                            s.call(Method::POST, "/system/interfaces", Some(&body), &[201])
                                .await?;
                            created = Some(tname.clone());
                        }
                    }
                    for (p, body) in &saved.ports {
                        self.put(
                            s,
                            p.as_str(),
                            model::as_access(body.clone(), &version, vlan, Some(lag)),
                        )
                        .await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        let failure = match applied {
            Err(e) => Failure {
                found: match self.interfaces(s).await {
                    Ok(all) => Self::statuses(&all, ports),
                    Err(_) => vec![],
                },
                mismatches: vec![],
                cause: Some(e.to_string()),
            },
            Ok(()) => match self.verify(s, ports, wanted, partner_within).await {
                Ok(()) => return Ok(Change::Applied),
                Err(f) => f,
            },
        };
        tracing::warn!(switch = %self.name, ports = %PortList(ports.to_vec()), %wanted, "change did not hold; restoring");
        let restore = self.restore(s, ports, &saved, created.as_deref()).await;
        Err(SwitchError::ChangeFailed(Box::new(ChangeFailure {
            switch: self.name.clone(),
            ports: PortList(ports.to_vec()),
            wanted,
            found: FoundState(failure.found),
            mismatches: failure.mismatches,
            cause: failure.cause,
            restore,
        })))
    }
}

impl Topology for AosCxSwitch {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Switch for AosCxSwitch {
    fn switch_name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> SwitchCapabilities {
        SwitchCapabilities {
            lacp_fallback: true,
            reports_lacp_partner: true,
        }
    }

    async fn get_port_status(&self, ports: &[SwitchPort]) -> Result<Vec<PortStatus>, SwitchError> {
        check_ports(&self.name, ports)?;
        let s = self.login().await?;
        let all = self.interfaces(&s).await;
        s.logout().await;
        Ok(Self::statuses(&all?, ports))
    }

    async fn set_ports_access_mode(
        &self,
        ports: &[SwitchPort],
        vlan: VlanId,
    ) -> Result<Change, SwitchError> {
        self.change(ports, WantedState::Access { vlan }, None).await
    }

    async fn set_ports_lacp_mode(
        &self,
        ports: &[SwitchPort],
        lag: LagId,
        vlan: VlanId,
        options: LacpOptions,
    ) -> Result<Change, SwitchError> {
        let wanted = WantedState::Lacp {
            lag,
            vlan,
            fallback: options.fallback,
            partner: options.partner_within.is_some(),
        };
        self.change(ports, wanted, options.partner_within).await
    }
}
