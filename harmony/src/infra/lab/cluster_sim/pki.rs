//! The simulated cluster's certificates, made by rcgen at start: the API
//! server's CA and serving certificate (SANs: the names and addresses the
//! caller gives), a client CA and the `admin` client certificate
//! (`CN=system:admin, O=system:masters`, as the installer's admin
//! kubeconfig has), the rustls server configuration asking for a client
//! certificate (mutual TLS), and the kubeconfig shaped like
//! `openshift-install`'s `auth/kubeconfig`
//! (openshift/installer `pkg/asset/kubeconfig/{admin,kubeconfig}.go`).

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The certificates and the server's TLS configuration.
pub struct SimPki {
    /// The CA the kubeconfig trusts (PEM).
    pub server_ca_pem: String,
    /// The admin client certificate and key (PEM).
    pub admin_cert_pem: String,
    admin_key_pem: String,
    pub tls: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPki").finish_non_exhaustive()
    }
}

fn ca(name: &str) -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert, Issuer::new(p, key)))
}

impl SimPki {
    /// New CAs and certificates; the server certificate names `dns_names`
    /// and `ips`.
    pub fn new(dns_names: &[String], ips: &[IpAddr]) -> Result<Self, String> {
        let (server_ca, server_issuer) = ca("kube-apiserver-lb-signer (simulated)")?;
        let (client_ca, client_issuer) = ca("admin-kubeconfig-signer (simulated)")?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut leaf = CertificateParams::new(dns_names.to_vec()).map_err(|e| e.to_string())?;
        leaf.distinguished_name
            .push(DnType::CommonName, "kube-apiserver (simulated)");
        leaf.subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let cert = leaf
            .signed_by(&key, &server_issuer)
            .map_err(|e| e.to_string())?;

        let admin_key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        admin
            .distinguished_name
            .push(DnType::CommonName, "system:admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        let admin = admin
            .signed_by(&admin_key, &client_issuer)
            .map_err(|e| e.to_string())?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(client_ca.der().clone())
            .map_err(|e| e.to_string())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(|e| e.to_string())?;
        Ok(Self {
            server_ca_pem: server_ca.pem(),
            admin_cert_pem: admin.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            tls: Arc::new(tls),
        })
    }

    /// The kubeconfig text: cluster `cluster` at `server` with the CA,
    /// user and context `admin` with the client certificate and key.
    pub fn kubeconfig(&self, cluster: &str, server: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {cluster}\n\
             contexts:\n- context:\n    cluster: {cluster}\n    user: admin\n  name: admin\ncurrent-context: admin\npreferences: {{}}\n\
             users:\n- name: admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n",
            ca = b64(&self.server_ca_pem),
            cert = b64(&self.admin_cert_pem),
            key = b64(&self.admin_key_pem),
        )
    }
}
