//! Contract tests of the Cisco backend against a local SSH server (russh's
//! server side) on 127.0.0.1 that plays an IOS or NX-OS CLI: a PTY shell
//! with `NAME#` / `NAME(config)#` / `NAME(config-if)#` prompts, echo, the
//! `show` output in the documented formats (vendor-apis.md §3: ntc-templates
//! `show interfaces status`, `show interface status` [C1, C2], `show
//! etherchannel summary`, `show port-channel summary` [C3, C4], genieparser
//! `show lacp neighbor` [C5]), configuration commands applied to its state,
//! `% Invalid input detected at '^' marker.` for anything else; it records
//! every command line received. Faults are injected per test: a refused
//! line, a line accepted but not applied, output past the cap, no answer,
//! a hostile row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony::domain::{
    Change, HostKeyFingerprint, LacpOptions, LagId, PortMode, Switch, SwitchError, SwitchPort,
    VlanId,
};
use harmony::infra::cisco::{CiscoConfig, CiscoSwitch, CliAuth, CliLimits, Platform};
use harmony::infra::device_login::DeviceLogin;
use harmony::infra::process::Program;
use russh::keys::{HashAlg, PrivateKey};
use russh::server::{Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId};

const USER: &str = "netops";
const PASSWORD: &str = "Cisco-Secret-1";
const SYS: &str = "001e.49ff.a3e6";

#[derive(Debug, Clone)]
struct Port {
    vlan: u16,
    admin_up: bool,
    channel: Option<u16>,
    /// The partner's port state byte, if a partner speaks LACP.
    partner: Option<u8>,
    /// `lacp rate fast` configured.
    fast_rate: bool,
}

#[derive(Default)]
struct Device {
    nxos: bool,
    ports: BTreeMap<String, Port>,
    /// port-channel id -> (vlan, no lacp suspend-individual)
    channels: BTreeMap<u16, (u16, bool)>,
    log: Vec<String>,
    /// Faults: refuse this line; accept this line once without applying
    /// it; answer this line with this many bytes; never answer this line;
    /// add this row to the status output.
    refuse: Option<String>,
    ignore_once: Option<String>,
    flood: Option<(String, usize)>,
    hang: Option<String>,
    extra_row: Option<String>,
    sessions: u32,
}

enum Mode {
    Exec,
    Config,
    If(String),
    Po(u16),
}

impl Device {
    fn short(&self, name: &str) -> String {
        if self.nxos {
            name.replace("Ethernet", "Eth")
        } else {
            name.replace("GigabitEthernet", "Gi")
        }
    }

    fn status(&self) -> String {
        let mut out = String::new();
        let groups = self.channels.keys().copied().collect::<Vec<_>>();
        let mut rows: Vec<(String, &str, String)> = Vec::new();
        for (name, p) in &self.ports {
            let status = if !p.admin_up {
                "disabled"
            } else if self.nxos {
                "notconnec"
            } else {
                "notconnect"
            };
            let status = if p.admin_up && (p.channel.is_none() || p.partner.is_some()) {
                "connected"
            } else {
                status
            };
            rows.push((self.short(name), status, p.vlan.to_string()));
        }
        for g in groups {
            let (vlan, _) = self.channels[&g];
            rows.push((format!("Po{g}"), "connected", vlan.to_string()));
        }
        if self.nxos {
            out.push_str("--------------------------------------------------------------------------------\n");
            out.push_str(
                "Port          Name               Status    Vlan      Duplex  Speed   Type\n",
            );
            out.push_str("--------------------------------------------------------------------------------\n");
            for (p, s, v) in rows {
                out.push_str(&format!(
                    "{p:<14}{:<19}{s:<10}{v:<10}{:<8}{:<8}{}\n",
                    "--", "full", "10G", "10Gbase-SR"
                ));
            }
        } else {
            out.push_str(
                "Port      Name               Status       Vlan       Duplex  Speed Type\n",
            );
            for (p, s, v) in rows {
                out.push_str(&format!(
                    "{p:<10}{:<19}{s:<13}{v:<11}{:>6} {:>6} {}\n",
                    "host nic", "a-full", "a-1000", "10/100/1000BaseTX"
                ));
            }
        }
        if let Some(extra) = &self.extra_row {
            out.push_str(extra);
            out.push('\n');
        }
        out
    }

    fn summary(&self) -> String {
        let mut out = String::new();
        if self.nxos {
            out.push_str("Flags:  D - Down        P - Up in port-channel (members)\n        I - Individual  H - Hot-standby (LACP only)\n        s - Suspended   r - Module-removed\n        S - Switched    R - Routed\n        U - Up (port-channel)\n--------------------------------------------------------------------------------\nGroup Port-       Type     Protocol  Member Ports\n      Channel\n--------------------------------------------------------------------------------\n");
        } else {
            out.push_str("Flags:  D - down        P - bundled in port-channel\n        I - stand-alone s - suspended\n        R - Layer3      S - Layer2\n        U - in use      N - not in use, no aggregation\n\nNumber of channel-groups in use: 1\n\nGroup  Port-channel  Protocol    Ports\n------+-------------+-----------+-----------------------------------------------\n");
        }
        for g in self.channels.keys() {
            let members: Vec<String> = self
                .ports
                .iter()
                .filter(|(_, p)| p.channel == Some(*g))
                .map(|(n, p)| {
                    format!(
                        "{}({})",
                        self.short(n),
                        if p.partner.is_some() { "P" } else { "s" }
                    )
                })
                .collect();
            let po = format!("Po{g}(SU)");
            if self.nxos {
                out.push_str(&format!(
                    "{g:<6}{po:<12}Eth      LACP      {}\n",
                    members.join("    ")
                ));
            } else {
                out.push_str(&format!(
                    "{g:<7}{po:<16}LACP      {}\n",
                    members.join("       ")
                ));
            }
        }
        out
    }

    fn neighbors(&self) -> String {
        let mut out = String::from(
            "Flags:  S - Device is requesting Slow LACPDUs\n        F - Device is requesting Fast LACPDUs\n        A - Device is in Active mode       P - Device is in Passive mode\n\n",
        );
        for g in self.channels.keys() {
            if self.nxos {
                out.push_str(&format!("port-channel{g} neighbors\n"));
            } else {
                out.push_str(&format!("Channel group {g} neighbors\n\n                  LACP port                        Admin  Oper   Port    Port\nPort      Flags   Priority  Dev ID          Age    key    Key    Number  State\n"));
            }
            for (n, p) in self.ports.iter().filter(|(_, p)| p.channel == Some(*g)) {
                let Some(state) = p.partner else { continue };
                let n = self.short(n);
                if self.nxos {
                    out.push_str(&format!("Partner's information\n            Partner                Partner                     Partner\nPort        System ID              Port Number     Age         Flags\n{n:<12}32768,0-1e-49-ff-a3-e6     0x101           1140        SA\n\n            LACP Partner           Partner                     Partner\n            Port Priority          Oper Key                    Port State\n            32768                  0x8000                      0x{state:x}\n\n"));
                } else {
                    out.push_str(&format!(
                        "{n:<10}SA      32768     {SYS}  25s    0x0    0x1    0x1     0x{state:X}\n"
                    ));
                }
            }
        }
        out
    }

    fn port_name(&self, name: &str) -> Option<String> {
        self.ports
            .keys()
            .find(|k| k.as_str() == name || self.short(k) == name)
            .cloned()
    }

    /// The answer to one line, and the mode after it; `None`: no answer.
    fn answer(&mut self, line: &str, mode: &mut Mode) -> Option<String> {
        self.log.push(line.to_string());
        if self.hang.as_deref() == Some(line) {
            return None;
        }
        if let Some((l, n)) = &self.flood
            && l == line
        {
            return Some("x".repeat(*n));
        }
        let invalid =
            || Some("             ^\n% Invalid input detected at '^' marker.\n".to_string());
        if self.refuse.as_deref() == Some(line) {
            return invalid();
        }
        let ignored = self.ignore_once.as_deref() == Some(line);
        if ignored {
            self.ignore_once = None;
            return Some(String::new());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match (&*mode, words.as_slice()) {
            (Mode::Exec, ["terminal", "length", "0"]) => Some(String::new()),
            (Mode::Exec, ["show", "interfaces", "status"]) if !self.nxos => Some(self.status()),
            (Mode::Exec, ["show", "interface", "status"]) if self.nxos => Some(self.status()),
            (Mode::Exec, ["show", "etherchannel", "summary"]) if !self.nxos => Some(self.summary()),
            (Mode::Exec, ["show", "port-channel", "summary"]) if self.nxos => Some(self.summary()),
            (Mode::Exec, ["show", "lacp", "neighbor"]) => Some(self.neighbors()),
            (Mode::Exec, ["show", "running-config", "interface", po]) if self.nxos => {
                let g: u16 = po.strip_prefix("port-channel")?.parse().ok()?;
                let (vlan, no_suspend) = self.channels.get(&g).copied()?;
                Some(format!(
                    "\n!Command: show running-config interface port-channel{g}\n!Time: Mon Aug  3 10:00:00 2026\n\nversion 9.3(8) Bios:version 05.45\n\ninterface port-channel{g}\n  switchport access vlan {vlan}\n{}",
                    if no_suspend {
                        "  no lacp suspend-individual\n"
                    } else {
                        ""
                    }
                ))
            }
            (Mode::Exec, ["configure", "terminal"]) => {
                *mode = Mode::Config;
                Some(String::new())
            }
            (Mode::Config | Mode::If(_) | Mode::Po(_), ["end"]) => {
                *mode = Mode::Exec;
                Some(String::new())
            }
            (Mode::Config, ["feature", "lacp"]) if self.nxos => Some(String::new()),
            // The global form: taken in any configuration mode (which it
            // leaves); removing a port-channel releases its members.
            (Mode::Config | Mode::If(_) | Mode::Po(_), ["no", "interface", name]) => {
                let g = name
                    .strip_prefix(if self.nxos {
                        "port-channel"
                    } else {
                        "Port-channel"
                    })
                    .and_then(|n| n.parse::<u16>().ok());
                let Some(g) = g.filter(|g| self.channels.contains_key(g)) else {
                    return invalid();
                };
                self.channels.remove(&g);
                for p in self.ports.values_mut().filter(|p| p.channel == Some(g)) {
                    p.channel = None;
                }
                *mode = Mode::Config;
                Some(String::new())
            }
            (Mode::Config | Mode::If(_) | Mode::Po(_), ["interface", name]) => {
                let po = name
                    .strip_prefix(if self.nxos {
                        "port-channel"
                    } else {
                        "Port-channel"
                    })
                    .and_then(|n| n.parse::<u16>().ok());
                if let Some(g) = po {
                    self.channels.entry(g).or_insert((1, false));
                    *mode = Mode::Po(g);
                } else if let Some(p) = self.port_name(name) {
                    *mode = Mode::If(p);
                } else {
                    return invalid();
                }
                Some(String::new())
            }
            (Mode::If(p), words) => {
                let p = p.clone();
                let port = self.ports.get_mut(&p)?;
                match words {
                    ["switchport", "mode", "access"] => {}
                    ["switchport", "access", "vlan", v] => port.vlan = v.parse().ok()?,
                    ["channel-group", g, "mode", "active"] => {
                        let g: u16 = g.parse().ok()?;
                        port.channel = Some(g);
                        self.channels.entry(g).or_insert((port.vlan, false));
                    }
                    ["no", "channel-group"] => port.channel = None,
                    ["lacp", "rate", "fast"] if port.channel.is_some() => port.fast_rate = true,
                    ["shutdown"] => port.admin_up = false,
                    ["no", "shutdown"] => port.admin_up = true,
                    _ => return invalid(),
                }
                Some(String::new())
            }
            (Mode::Po(g), words) => {
                let g = *g;
                let ch = self.channels.get_mut(&g)?;
                match words {
                    ["switchport", "mode", "access"] | ["shutdown"] | ["no", "shutdown"] => {}
                    ["switchport", "access", "vlan", v] => ch.0 = v.parse().ok()?,
                    ["no", "lacp", "suspend-individual"] if self.nxos => ch.1 = true,
                    ["lacp", "suspend-individual"] if self.nxos => ch.1 = false,
                    _ => return invalid(),
                }
                Some(String::new())
            }
            _ => invalid(),
        }
    }
}

fn prompt(mode: &Mode) -> &'static str {
    match mode {
        Mode::Exec => "leaf-1#",
        Mode::Config => "leaf-1(config)#",
        Mode::If(_) | Mode::Po(_) => "leaf-1(config-if)#",
    }
}

#[derive(Clone)]
struct Server {
    device: Arc<Mutex<Device>>,
}

struct Conn {
    device: Arc<Mutex<Device>>,
    line: Vec<u8>,
    mode: Mode,
}

impl russh::server::Server for Server {
    type Handler = Conn;
    fn new_client(&mut self, _: Option<SocketAddr>) -> Conn {
        Conn {
            device: Arc::clone(&self.device),
            line: Vec::new(),
            mode: Mode::Exec,
        }
    }
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if user == USER && password == PASSWORD {
            self.device.lock().unwrap().sessions += 1;
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _c: u32,
        _r: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        session.data(
            channel,
            crlf("\nUser Access Verification\n\nleaf-1#").into_bytes(),
        )?;
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        for &b in data {
            if b != b'\n' && b != b'\r' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
            let answer = self.device.lock().unwrap().answer(&line, &mut self.mode);
            let Some(answer) = answer else { continue };
            // Echo, output, prompt.
            let text = format!("{line}\n{answer}{}", prompt(&self.mode));
            session.data(channel, crlf(&text).into_bytes())?;
        }
        Ok(())
    }
}

struct Fixture {
    device: Arc<Mutex<Device>>,
    addr: SocketAddr,
    fingerprint: HostKeyFingerprint,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn log(&self) -> Vec<String> {
        std::mem::take(&mut self.device.lock().unwrap().log)
    }
    fn with(&self, f: impl FnOnce(&mut Device)) {
        f(&mut self.device.lock().unwrap())
    }
    fn switch(&self, platform: Platform) -> CiscoSwitch {
        self.switch_with(platform, |_| {})
    }
    fn switch_with(&self, platform: Platform, f: impl FnOnce(&mut CiscoConfig)) -> CiscoSwitch {
        let mut c = CiscoConfig::new(
            "leaf-1",
            self.addr,
            platform,
            self.fingerprint.clone(),
            CliAuth::Password(DeviceLogin::new(USER, PASSWORD).unwrap()),
        );
        c.limits = CliLimits {
            connect: Duration::from_secs(5),
            command: Duration::from_secs(2),
            max_output: 64 * 1024,
        };
        c.settle = Duration::from_millis(300);
        c.poll = Duration::from_millis(50);
        f(&mut c);
        CiscoSwitch::new(c)
    }
}

async fn start(nxos: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("host_key");
    Program::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fake-switch", "-f"])
        .arg(&key_path)
        .run_blocking()
        .unwrap();
    let key: PrivateKey =
        russh::keys::decode_secret_key(&std::fs::read_to_string(&key_path).unwrap(), None).unwrap();
    let fingerprint = key
        .public_key()
        .fingerprint(HashAlg::Sha256)
        .to_string()
        .parse()
        .unwrap();
    let (a, b, c, d) = if nxos {
        ("Ethernet1/1", "Ethernet1/2", "Ethernet1/3", "Ethernet1/4")
    } else {
        (
            "GigabitEthernet1/0/1",
            "GigabitEthernet1/0/2",
            "GigabitEthernet1/0/3",
            "GigabitEthernet1/0/4",
        )
    };
    let mut device = Device {
        nxos,
        ..Default::default()
    };
    let access = |vlan| Port {
        vlan,
        admin_up: true,
        channel: None,
        partner: Some(0x3D),
        fast_rate: false,
    };
    device.ports.insert(a.into(), access(10));
    device.ports.insert(b.into(), access(10));
    device.ports.insert(
        c.into(),
        Port {
            channel: Some(7),
            vlan: 20,
            ..access(20)
        },
    );
    device.ports.insert(
        d.into(),
        Port {
            channel: Some(7),
            vlan: 20,
            ..access(20)
        },
    );
    device.channels.insert(7, (20, false));
    let device = Arc::new(Mutex::new(device));
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::from_millis(10),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let socket = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let mut server = Server {
        device: Arc::clone(&device),
    };
    tokio::spawn(async move {
        let _ = server.run_on_socket(config, &socket).await;
    });
    Fixture {
        device,
        addr,
        fingerprint,
        _dir: dir,
    }
}

fn ports(names: &[&str]) -> Vec<SwitchPort> {
    names.iter().map(|n| n.parse().unwrap()).collect()
}

fn vlan(v: u16) -> VlanId {
    VlanId::try_from(v).unwrap()
}

fn lag(v: u16) -> LagId {
    LagId::try_from(v).unwrap()
}

const IOS_READ: [&str; 3] = [
    "show interfaces status",
    "show etherchannel summary",
    "show lacp neighbor",
];

#[tokio::test]
async fn contract_ios_status_reads_the_documented_commands() {
    let fx = start(false).await;
    let sw = fx.switch(Platform::Ios);
    let st = sw
        .get_port_status(&ports(&["GigabitEthernet1/0/1", "Gi1/0/3", "Gi1/0/4"]))
        .await
        .unwrap();
    assert_eq!(
        fx.log(),
        ["terminal length 0", IOS_READ[0], IOS_READ[1], IOS_READ[2]]
    );
    assert_eq!(st[0].mode, PortMode::Access { vlan: vlan(10) });
    assert!(st[0].admin_up && st[0].oper_up);
    assert_eq!(st[0].speed_mbps, Some(1000));
    assert_eq!(st[1].mode, PortMode::LacpMember { lag: lag(7) });
    assert_eq!(st[1].vlan, Some(vlan(20)));
    let p = st[2].partner.as_ref().unwrap();
    assert!(p.is_forwarding());
    assert_eq!(p.system_id, "00:1e:49:ff:a3:e6".parse().unwrap());
    // Access ports only: no LACP read.
    sw.get_port_status(&ports(&["Gi1/0/2"])).await.unwrap();
    assert_eq!(fx.log(), ["terminal length 0", IOS_READ[0], IOS_READ[1]]);
}

#[tokio::test]
async fn contract_ios_access_mode_dissolves_the_lag_and_is_idempotent() {
    let fx = start(false).await;
    let sw = fx.switch(Platform::Ios);
    let change = sw
        .set_ports_access_mode(&ports(&["Gi1/0/3", "Gi1/0/4"]), vlan(10))
        .await
        .unwrap();
    assert_eq!(change, Change::Applied);
    let log = fx.log();
    assert_eq!(
        &log[..4],
        ["terminal length 0", IOS_READ[0], IOS_READ[1], IOS_READ[2]]
    );
    assert_eq!(
        &log[4..18],
        [
            "configure terminal",
            "interface Gi1/0/3",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            "interface Gi1/0/4",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            // Port-channel7 is left without members: removed, and the read
            // back (the summary) shows it gone.
            "no interface Port-channel7",
            "end",
            IOS_READ[0],
        ]
    );
    assert_eq!(&log[18..], [IOS_READ[1]]);
    fx.with(|d| assert!(d.channels.is_empty(), "{:?}", d.channels));
    let again = sw
        .set_ports_access_mode(&ports(&["Gi1/0/3", "Gi1/0/4"]), vlan(10))
        .await
        .unwrap();
    assert_eq!(again, Change::Unchanged);
    assert_eq!(fx.log(), ["terminal length 0", IOS_READ[0], IOS_READ[1]]);
}

#[tokio::test]
async fn contract_ios_lacp_without_fallback_and_fallback_unsupported() {
    let fx = start(false).await;
    let sw = fx.switch(Platform::Ios);
    assert!(!sw.capabilities().lacp_fallback);
    let two = ports(&["Gi1/0/1", "Gi1/0/2"]);
    let e = sw
        .set_ports_lacp_mode(
            &two,
            lag(5),
            vlan(10),
            LacpOptions {
                fallback: true,
                partner_within: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SwitchError::Unsupported { .. }), "{e}");
    assert!(
        fx.log().is_empty(),
        "nothing sent for an unsupported request"
    );
    let options = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_secs(2)),
    };
    let change = sw
        .set_ports_lacp_mode(&two, lag(5), vlan(10), options)
        .await
        .unwrap();
    assert_eq!(change, Change::Applied);
    let log = fx.log();
    assert_eq!(
        &log[3..20],
        [
            "configure terminal",
            "interface Gi1/0/1",
            "switchport mode access",
            "switchport access vlan 10",
            "channel-group 5 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface Gi1/0/2",
            "switchport mode access",
            "switchport access vlan 10",
            "channel-group 5 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface Port-channel5",
            "switchport mode access",
            "switchport access vlan 10",
            "end",
        ]
    );
    assert_eq!(&log[20..], IOS_READ);
    fx.with(|d| {
        assert!(d.ports["GigabitEthernet1/0/1"].fast_rate);
        assert!(d.ports["GigabitEthernet1/0/2"].fast_rate);
    });
    let st = sw.get_port_status(&two).await.unwrap();
    assert!(
        st.iter()
            .all(|s| s.mode == PortMode::LacpMember { lag: lag(5) })
    );
}

const NX_READ: [&str; 3] = [
    "show interface status",
    "show port-channel summary",
    "show lacp neighbor",
];

#[tokio::test]
async fn contract_nxos_lacp_with_fallback_and_partner() {
    let fx = start(true).await;
    let sw = fx.switch(Platform::Nxos);
    assert!(sw.capabilities().lacp_fallback);
    let two = ports(&["Ethernet1/1", "Ethernet1/2"]);
    let options = LacpOptions {
        fallback: true,
        partner_within: Some(Duration::from_secs(2)),
    };
    let change = sw
        .set_ports_lacp_mode(&two, lag(5), vlan(10), options)
        .await
        .unwrap();
    assert_eq!(change, Change::Applied);
    let log = fx.log();
    assert_eq!(&log[..3], ["terminal length 0", NX_READ[0], NX_READ[1]]);
    assert_eq!(
        &log[3..24],
        [
            "configure terminal",
            "feature lacp",
            "interface Ethernet1/1",
            "switchport mode access",
            "switchport access vlan 10",
            "channel-group 5 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface Ethernet1/2",
            "switchport mode access",
            "switchport access vlan 10",
            "channel-group 5 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface port-channel5",
            "switchport mode access",
            "switchport access vlan 10",
            "shutdown",
            "no lacp suspend-individual",
            "no shutdown",
            "end",
        ]
    );
    assert_eq!(
        &log[24..],
        [
            NX_READ[0],
            NX_READ[1],
            NX_READ[2],
            "show running-config interface port-channel5"
        ]
    );
    // The same again: read, nothing configured.
    let again = sw
        .set_ports_lacp_mode(
            &two,
            lag(5),
            vlan(10),
            LacpOptions {
                fallback: true,
                partner_within: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(again, Change::Unchanged);
    assert_eq!(
        fx.log(),
        [
            "terminal length 0",
            NX_READ[0],
            NX_READ[1],
            NX_READ[2],
            "show running-config interface port-channel5"
        ]
    );
}

#[tokio::test]
async fn contract_nxos_lacp_without_a_partner_is_rolled_back() {
    let fx = start(true).await;
    fx.with(|d| {
        for p in d.ports.values_mut() {
            p.partner = None;
        }
    });
    let sw = fx.switch(Platform::Nxos);
    let two = ports(&["Ethernet1/1", "Ethernet1/2"]);
    let options = LacpOptions {
        fallback: false,
        partner_within: Some(Duration::from_millis(300)),
    };
    let e = sw
        .set_ports_lacp_mode(&two, lag(5), vlan(10), options)
        .await
        .unwrap_err();
    let s = e.to_string();
    for part in [
        "switch cisco leaf-1",
        "ports Ethernet1/1, Ethernet1/2",
        "wanted admin up, lacp member of lag 5",
        "no current LACP partner",
        "put back as they were",
    ] {
        assert!(s.contains(part), "{part:?} missing in {s}");
    }
    let log = fx.log();
    let restore_at = log.iter().rposition(|l| l == "configure terminal").unwrap();
    assert_eq!(
        &log[restore_at..restore_at + 13],
        [
            "configure terminal",
            "interface Ethernet1/1",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            "interface Ethernet1/2",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            // The port-channel the failed change created.
            "no interface port-channel5",
            "end",
        ]
    );
    fx.with(|d| assert!(!d.channels.contains_key(&5), "{:?}", d.channels));
    let st = sw.get_port_status(&two).await.unwrap();
    assert!(
        st.iter()
            .all(|s| s.mode == PortMode::Access { vlan: vlan(10) })
    );
}

#[tokio::test]
async fn contract_nxos_dissolving_a_lag_removes_its_port_channel_or_puts_it_back() {
    let fx = start(true).await;
    // port-channel7 has fallback (no lacp suspend-individual).
    fx.with(|d| {
        d.channels.insert(7, (20, true));
        d.ignore_once = Some("no interface port-channel7".into());
    });
    let sw = fx.switch(Platform::Nxos);
    let members = ports(&["Ethernet1/3", "Ethernet1/4"]);
    // The device takes the removal but keeps the port-channel: the read
    // back says so, and the LAG is put back as it was.
    let e = sw
        .set_ports_access_mode(&members, vlan(10))
        .await
        .unwrap_err();
    let s = e.to_string();
    for part in ["port-channel7: still present", "put back as they were"] {
        assert!(s.contains(part), "{part:?} missing in {s}");
    }
    let log = fx.log();
    // Read first, with port-channel7's fallback (the restore needs it).
    let first = log.iter().position(|l| l == "configure terminal").unwrap();
    assert_eq!(
        log[first - 1],
        "show running-config interface port-channel7",
        "{log:?}"
    );
    assert_eq!(
        &log[first + 11..first + 13],
        ["no interface port-channel7", "end"]
    );
    let restore_at = log.iter().rposition(|l| l == "configure terminal").unwrap();
    assert_eq!(
        &log[restore_at..restore_at + 22],
        [
            "configure terminal",
            "feature lacp",
            "interface Ethernet1/3",
            "switchport mode access",
            "switchport access vlan 20",
            "channel-group 7 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface Ethernet1/4",
            "switchport mode access",
            "switchport access vlan 20",
            "channel-group 7 mode active",
            "lacp rate fast",
            "no shutdown",
            "interface port-channel7",
            "switchport mode access",
            "switchport access vlan 20",
            "shutdown",
            "no lacp suspend-individual",
            "no shutdown",
            "end",
            NX_READ[0],
        ]
    );
    // Now the device removes it: the port-channel is gone, the members are
    // access ports.
    let change = sw.set_ports_access_mode(&members, vlan(10)).await.unwrap();
    assert_eq!(change, Change::Applied);
    let log = fx.log();
    let first = log.iter().position(|l| l == "configure terminal").unwrap();
    assert_eq!(
        &log[first + 11..first + 14],
        ["no interface port-channel7", "end", NX_READ[0]]
    );
    fx.with(|d| assert!(d.channels.is_empty(), "{:?}", d.channels));
    let st = sw.get_port_status(&members).await.unwrap();
    assert!(
        st.iter()
            .all(|s| s.mode == PortMode::Access { vlan: vlan(10) })
    );
}

#[tokio::test]
async fn contract_ios_without_lacp_rate_fast_sends_no_rate() {
    let fx = start(false).await;
    let sw = fx.switch_with(Platform::Ios, |c| c.lacp_rate_fast = false);
    let two = ports(&["Gi1/0/1", "Gi1/0/2"]);
    sw.set_ports_lacp_mode(&two, lag(5), vlan(10), LacpOptions::default())
        .await
        .unwrap();
    let log = fx.log();
    assert!(log.contains(&"channel-group 5 mode active".to_string()));
    assert!(!log.iter().any(|l| l.starts_with("lacp rate")), "{log:?}");
}

#[tokio::test]
async fn contract_a_change_the_read_back_does_not_confirm_is_rolled_back() {
    let fx = start(false).await;
    fx.with(|d| d.ignore_once = Some("switchport access vlan 30".into()));
    let sw = fx.switch(Platform::Ios);
    let e = sw
        .set_ports_access_mode(&ports(&["Gi1/0/1"]), vlan(30))
        .await
        .unwrap_err();
    let s = e.to_string();
    for part in [
        "switch cisco leaf-1",
        "ports Gi1/0/1",
        "wanted admin up, access vlan 30",
        "found Gi1/0/1: admin up oper up, access vlan 10",
        "put back as they were",
    ] {
        assert!(s.contains(part), "{part:?} missing in {s}");
    }
    let log = fx.log();
    assert_eq!(
        &log[log.len() - 8..],
        [
            "configure terminal",
            "interface Gi1/0/1",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            "end",
            IOS_READ[0],
            IOS_READ[1],
        ]
    );
    let st = sw.get_port_status(&ports(&["Gi1/0/1"])).await.unwrap();
    assert_eq!(st[0].mode, PortMode::Access { vlan: vlan(10) });
}

#[tokio::test]
async fn contract_invalid_input_is_a_clear_error_and_rolls_back() {
    let fx = start(false).await;
    fx.with(|d| d.refuse = Some("channel-group 5 mode active".into()));
    let sw = fx.switch(Platform::Ios);
    let two = ports(&["Gi1/0/1", "Gi1/0/2"]);
    let e = sw
        .set_ports_lacp_mode(&two, lag(5), vlan(10), LacpOptions::default())
        .await
        .unwrap_err();
    let s = e.to_string();
    for part in [
        "switch cisco leaf-1",
        "`channel-group 5 mode active`",
        "% Invalid input detected at '^' marker.",
        "put back as they were",
    ] {
        assert!(s.contains(part), "{part:?} missing in {s}");
    }
    let log = fx.log();
    let refused = log
        .iter()
        .position(|l| l == "channel-group 5 mode active")
        .unwrap();
    assert_eq!(log[refused + 1], "end", "config mode left at once");
    let restore_at = log.iter().rposition(|l| l == "configure terminal").unwrap();
    assert_eq!(
        &log[restore_at..restore_at + 12],
        [
            "configure terminal",
            "interface Gi1/0/1",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            "interface Gi1/0/2",
            "no channel-group",
            "switchport mode access",
            "switchport access vlan 10",
            "no shutdown",
            "end",
        ]
    );
}

#[tokio::test]
async fn contract_truncated_output_and_timeouts_name_the_command() {
    let fx = start(false).await;
    fx.with(|d| d.flood = Some(("show interfaces status".into(), 200_000)));
    let sw = fx.switch(Platform::Ios);
    let e = sw.get_port_status(&ports(&["Gi1/0/1"])).await.unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("switch cisco leaf-1")
            && s.contains("`show interfaces status`")
            && s.contains("longer than 65536 bytes"),
        "{s}"
    );
    fx.with(|d| {
        d.flood = None;
        d.hang = Some("show etherchannel summary".into());
    });
    let e = sw.get_port_status(&ports(&["Gi1/0/1"])).await.unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("switch cisco leaf-1")
            && s.contains("`show etherchannel summary`")
            && s.contains("timed out"),
        "{s}"
    );
}

#[tokio::test]
async fn contract_hostile_names_and_output_never_reach_a_command_line() {
    let fx = start(false).await;
    for bad in [
        "Gi1/0/1;reload",
        "Gi1/0/1\nreload",
        "Gi1/0/1 reload",
        "Gi1/0/1'",
    ] {
        assert!(bad.parse::<SwitchPort>().is_err(), "{bad:?}");
    }
    let sw = fx.switch(Platform::Ios);
    // A port-channel is not a member port.
    let e = sw
        .set_ports_access_mode(&ports(&["Po7"]), vlan(10))
        .await
        .unwrap_err();
    assert!(matches!(e, SwitchError::Refused { .. }), "{e}");
    assert!(fx.log().is_empty());
    // A hostile row in the device's output: refused, nothing configured.
    fx.with(|d| {
        d.extra_row = Some("Gi1/0/9;reload    x      connected    10  a-full a-1000 x".into())
    });
    let e = sw
        .set_ports_access_mode(&ports(&["Gi1/0/1"]), vlan(30))
        .await
        .unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, SwitchError::Output { .. }), "{s}");
    assert!(
        s.contains("show interfaces status") && s.contains("port name"),
        "{s}"
    );
    assert_eq!(fx.log(), ["terminal length 0", IOS_READ[0]]);
    fx.with(|d| d.extra_row = None);
    // A trunk (unmanaged) member of the LAG not named: refused.
    let e = sw
        .set_ports_access_mode(&ports(&["Gi1/0/3"]), vlan(10))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not named"), "{e}");
    assert!(!fx.log().iter().any(|l| l == "configure terminal"));
}

#[tokio::test]
async fn contract_wrong_host_key_or_password_is_refused() {
    let fx = start(false).await;
    let mut c = CiscoConfig::new(
        "leaf-1",
        fx.addr,
        Platform::Ios,
        "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .parse()
            .unwrap(),
        CliAuth::Password(DeviceLogin::new(USER, PASSWORD).unwrap()),
    );
    c.limits.connect = Duration::from_secs(5);
    let e = CiscoSwitch::new(c.clone())
        .get_port_status(&ports(&["Gi1/0/1"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not the pinned SHA256:AAAA") && e.contains(&fx.fingerprint.to_string()),
        "{e}"
    );
    c.host_key = fx.fingerprint.clone();
    c.auth = CliAuth::Password(DeviceLogin::new(USER, "wrong-password").unwrap());
    let e = CiscoSwitch::new(c)
        .get_port_status(&ports(&["Gi1/0/1"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("user netops refused") && !e.contains("wrong-password"),
        "{e}"
    );
    assert!(fx.log().is_empty());
    assert_eq!(fx.device.lock().unwrap().sessions, 0);
}
