//! CertificateSigningRequests: the API object (`certificates.k8s.io/v1`)
//! read into the domain's [`NodeCsr`] (its PKCS#10 request parsed with
//! `x509-parser`), and the approval body `kubectl certificate approve`
//! sends: the full object with an `Approved` condition appended to
//! `status.conditions` (kubernetes/kubectl `pkg/cmd/certificates/
//! certificates.go` [K3]; the condition fields: docs.okd.io 4.7 REST API,
//! CertificateSigningRequest [K9]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::domain::text::safe_text;
use crate::domain::{CsrName, CsrRequest, CsrSigner, CsrState, NodeCsr};

/// The `reason` of the condition Harmony appends (kubectl writes
/// `KubectlApprove`).
pub const APPROVE_REASON: &str = "HarmonyApprove";

/// A request larger than this is not read (a node's is under 2 KiB).
const MAX_REQUEST: usize = 64 * 1024;
/// More names than this in one request are not read.
const MAX_NAMES: usize = 64;

/// The state of an object from its conditions.
pub(crate) fn state_of(obj: &CertificateSigningRequest) -> CsrState {
    let conditions = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    CsrState::from_conditions(
        conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str())),
    )
}

/// The domain's view of an object; `Err` says why it cannot be one (its
/// name), for the log.
pub(crate) fn node_csr(obj: &CertificateSigningRequest) -> Result<NodeCsr, String> {
    let raw_name = obj.metadata.name.as_deref().unwrap_or_default();
    let name: CsrName = raw_name.parse().map_err(|e| format!("{e}"))?;
    let spec = &obj.spec;
    Ok(NodeCsr {
        name,
        uid: obj.metadata.uid.clone().unwrap_or_default(),
        signer: CsrSigner::from_name(&spec.signer_name),
        username: spec.username.clone().unwrap_or_default(),
        groups: spec.groups.clone().unwrap_or_default(),
        usages: spec.usages.clone().unwrap_or_default(),
        state: state_of(obj),
        request: parse_request(&spec.request.0),
    })
}

/// The subject and alternative names of a PEM-encoded PKCS#10 request
/// (`spec.request`, base64 of the PEM in JSON). The signature is not
/// checked here: the API server checks it when the CSR is created.
pub fn parse_request(pem: &[u8]) -> Result<CsrRequest, String> {
    if pem.len() > MAX_REQUEST {
        return Err(format!("request of {} bytes is too large", pem.len()));
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("not a PEM block: {}", safe_text(&e.to_string(), 120)))?;
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(format!(
            "PEM block is {}, not CERTIFICATE REQUEST",
            safe_text(&pem.label, 60)
        ));
    }
    let (_, csr) = X509CertificationRequest::from_der(&pem.contents)
        .map_err(|e| format!("not a PKCS#10 request: {}", safe_text(&e.to_string(), 120)))?;
    let subject = &csr.certification_request_info.subject;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        a.as_str()
            .map(str::to_string)
            .map_err(|_| "a subject attribute is not a string".to_string())
    };
    let common_names = subject
        .iter_common_name()
        .map(text)
        .collect::<Result<Vec<_>, _>>()?;
    let organizations = subject
        .iter_organization()
        .map(text)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = CsrRequest {
        common_names,
        organizations,
        ..CsrRequest::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        if san.general_names.len() > MAX_NAMES {
            return Err(format!(
                "{} alternative names (at most {MAX_NAMES})",
                san.general_names.len()
            ));
        }
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns_names.push((*d).to_string()),
                GeneralName::IPAddress(bytes) => out.ip_addresses.push(ip_of(bytes)?),
                GeneralName::RFC822Name(m) => out.other_names.push(format!("email:{m}")),
                GeneralName::URI(u) => out.other_names.push(format!("URI:{u}")),
                other => out.other_names.push(format!("{other:?}")),
            }
        }
    }
    Ok(out)
}

fn ip_of(bytes: &[u8]) -> Result<IpAddr, String> {
    if let Ok(b) = <[u8; 4]>::try_from(bytes) {
        return Ok(IpAddr::V4(Ipv4Addr::from(b)));
    }
    if let Ok(b) = <[u8; 16]>::try_from(bytes) {
        return Ok(IpAddr::V6(Ipv6Addr::from(b)));
    }
    Err(format!("an IP address SAN has {} bytes", bytes.len()))
}

/// The approval body: `current` (the object as the API server returned
/// it, every field kept) with an `Approved` condition appended.
pub(crate) fn approval_body(
    mut current: Value,
    message: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<Value, String> {
    let condition = CertificateSigningRequestCondition {
        type_: "Approved".into(),
        status: "True".into(),
        reason: Some(APPROVE_REASON.into()),
        message: Some(message.into()),
        last_update_time: Some(Time(now)),
        ..CertificateSigningRequestCondition::default()
    };
    let condition = serde_json::to_value(condition).map_err(|e| e.to_string())?;
    let obj = current
        .as_object_mut()
        .ok_or("the CSR is not a JSON object")?;
    let status = obj
        .entry("status")
        .or_insert_with(|| Value::Object(Default::default()));
    if status.is_null() {
        *status = Value::Object(Default::default());
    }
    let status = status
        .as_object_mut()
        .ok_or("the CSR's status is not an object")?;
    let conditions = status
        .entry("conditions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if conditions.is_null() {
        *conditions = Value::Array(Vec::new());
    }
    conditions
        .as_array_mut()
        .ok_or("the CSR's status.conditions is not a list")?
        .push(condition);
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    use serde_json::json;

    fn request(cn: &str, dns: &[&str], ips: &[&str]) -> String {
        let mut p =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "system:nodes");
        for ip in ips {
            p.subject_alt_names
                .push(SanType::IpAddress(ip.parse().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn a_serving_request_yields_subject_names_and_addresses() {
        let pem = request(
            "system:node:worker-0",
            &["worker-0"],
            &["10.0.0.20", "fd00::20"],
        );
        let r = parse_request(pem.as_bytes()).unwrap();
        assert_eq!(r.common_names, ["system:node:worker-0"]);
        assert_eq!(r.organizations, ["system:nodes"]);
        assert_eq!(r.dns_names, ["worker-0"]);
        assert_eq!(
            r.ip_addresses,
            [
                "10.0.0.20".parse::<IpAddr>().unwrap(),
                "fd00::20".parse().unwrap()
            ]
        );
        assert!(r.other_names.is_empty());
    }

    #[test]
    fn a_client_request_names_nothing_and_others_are_kept_as_text() {
        let r = parse_request(request("system:node:worker-1", &[], &[]).as_bytes()).unwrap();
        assert_eq!(r.common_names, ["system:node:worker-1"]);
        assert!(r.dns_names.is_empty() && r.ip_addresses.is_empty());

        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, "x");
        p.subject_alt_names = vec![
            SanType::URI("https://evil.example".try_into().unwrap()),
            SanType::Rfc822Name("a@b.example".try_into().unwrap()),
        ];
        let pem = p
            .serialize_request(&KeyPair::generate().unwrap())
            .unwrap()
            .pem()
            .unwrap();
        let r = parse_request(pem.as_bytes()).unwrap();
        assert_eq!(
            r.other_names,
            ["URI:https://evil.example", "email:a@b.example"]
        );
    }

    #[test]
    fn bad_requests_say_why() {
        assert!(
            parse_request(b"garbage")
                .unwrap_err()
                .contains("not a PEM block")
        );
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            parse_request(cert.as_bytes())
                .unwrap_err()
                .contains("PEM block is CERTIFICATE, not CERTIFICATE REQUEST")
        );
        let junk = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(
            parse_request(junk.as_bytes())
                .unwrap_err()
                .contains("not a PKCS#10 request")
        );
        assert!(
            parse_request(&vec![b'A'; MAX_REQUEST + 1])
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn the_approval_body_appends_one_condition_and_keeps_everything() {
        let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let obj = json!({"kind": "CertificateSigningRequest", "metadata": {"name": "csr-1",
            "resourceVersion": "7"}, "spec": {"request": "cmVx", "x-unknown": 1}, "status": {}});
        let body = approval_body(obj.clone(), "approved: because", now).unwrap();
        let mut want = obj;
        want["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
            "reason": "HarmonyApprove", "message": "approved: because",
            "lastUpdateTime": "2027-01-15T08:00:00Z"}]);
        assert_eq!(body, want);
        // An existing list is appended to; a missing status is made.
        let two = approval_body(body, "again", now).unwrap();
        assert_eq!(two["status"]["conditions"].as_array().unwrap().len(), 2);
        let bare = approval_body(json!({"metadata": {}}), "m", now).unwrap();
        assert_eq!(bare["status"]["conditions"][0]["type"], "Approved");
        assert!(approval_body(json!([]), "m", now).is_err());
    }
}
