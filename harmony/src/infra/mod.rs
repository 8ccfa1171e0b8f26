//! Capabilities implemented against real systems. One module per system;
//! each is the only place that knows that system's syntax.

pub mod aoscx;
pub mod arp_sweep;
pub mod caddy;
pub mod cisco;
pub mod device_login;
pub mod digest_cache;
pub mod dnsmasq;
pub mod fakes;
pub mod fs;
pub mod haproxy;
pub mod http_client;
pub mod http_root;
pub mod kube;
pub mod lab;
pub mod linux_site;
pub mod opnsense;
pub mod ovs;
pub mod process;
pub mod resolve;
pub mod ssh;
pub mod syn_sweep;
