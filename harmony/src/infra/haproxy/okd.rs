//! The load-balanced services an OKD cluster needs, built from its hosts'
//! roles: the API (6443) and the machine config server (22623) on the
//! bootstrap and the control plane, ingress HTTP (80) and HTTPS (443) on
//! the workers, or on the control plane when there are none. Pure: any
//! [`crate::domain::LoadBalancer`] takes the result.

use std::net::{IpAddr, SocketAddr};

use crate::domain::{
    Hostname, LbBackend, LbHealthCheck, LbMode, LbServiceName, LoadBalancerService, Role,
};

/// One host of the cluster as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHost {
    pub role: Role,
    pub hostname: Hostname,
    pub ip: IpAddr,
}

/// Names and ports of the four services.
pub const API: (&str, u16) = ("api", 6443);
pub const MACHINE_CONFIG: (&str, u16) = ("machine-config", 22623);
pub const INGRESS_HTTP: (&str, u16) = ("ingress-http", 80);
pub const INGRESS_HTTPS: (&str, u16) = ("ingress-https", 443);

/// The four services, frontends on `bind` (the load balancer's address),
/// each with a TCP health check; backends sorted by host name. Remove the
/// bootstrap with [`crate::domain::LoadBalancer::remove_backend`] once the
/// control plane has taken over.
pub fn okd_services(bind: IpAddr, hosts: &[ClusterHost]) -> Vec<LoadBalancerService> {
    let with = |roles: &[Role]| {
        let mut v: Vec<&ClusterHost> = hosts.iter().filter(|h| roles.contains(&h.role)).collect();
        v.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        v
    };
    let control = with(&[Role::Bootstrap, Role::ControlPlane]);
    let workers = with(&[Role::Worker]);
    let ingress = if workers.is_empty() {
        with(&[Role::ControlPlane])
    } else {
        workers
    };
    [
        (API, &control),
        (MACHINE_CONFIG, &control),
        (INGRESS_HTTP, &ingress),
        (INGRESS_HTTPS, &ingress),
    ]
    .into_iter()
    .map(|((name, port), backends)| LoadBalancerService {
        name: LbServiceName::from_trusted(name),
        bind: SocketAddr::new(bind, port),
        mode: LbMode::Tcp,
        backends: backends
            .iter()
            .map(|h| LbBackend {
                hostname: h.hostname.clone(),
                ip: h.ip,
                port,
            })
            .collect(),
        health_check: Some(LbHealthCheck::default()),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(role: Role, name: &str, ip: &str) -> ClusterHost {
        ClusterHost {
            role,
            hostname: name.parse().unwrap(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn ingress_falls_back_to_the_control_plane() {
        let hosts = [
            host(Role::ControlPlane, "cp-1", "10.0.0.11"),
            host(Role::Bootstrap, "bootstrap", "10.0.0.5"),
            host(Role::ControlPlane, "cp-0", "10.0.0.10"),
        ];
        let s = okd_services("10.0.0.1".parse().unwrap(), &hosts);
        let names =
            |i: usize| -> Vec<&str> { s[i].backends.iter().map(|b| b.hostname.as_str()).collect() };
        assert_eq!(s[0].name.as_str(), "api");
        assert_eq!(names(0), ["bootstrap", "cp-0", "cp-1"]);
        assert_eq!(names(1), ["bootstrap", "cp-0", "cp-1"]);
        assert_eq!(names(2), ["cp-0", "cp-1"]);
        assert_eq!(s[3].bind.port(), 443);
        assert!(s[3].backends.iter().all(|b| b.port == 443));
        let mut with_worker = hosts.to_vec();
        with_worker.push(host(Role::Worker, "w-0", "10.0.0.20"));
        let s = okd_services("10.0.0.1".parse().unwrap(), &with_worker);
        assert_eq!(s[2].backends.len(), 1);
        assert_eq!(s[2].backends[0].hostname.as_str(), "w-0");
    }
}
