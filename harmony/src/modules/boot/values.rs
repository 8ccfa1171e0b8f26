//! Typed values only the boot artefacts need: an SSH public key, a cluster name and the pull secret. Like
//! [`crate::domain::values`], each is validated at construction, so a
//! template can render it without escaping.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

use crate::domain::ValueError;

/// Key algorithms accepted in an [`SshPublicKey`].
const SSH_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One OpenSSH public key line: `ALGORITHM BASE64 [COMMENT]`.
///
/// - the algorithm is one of `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp*`
///   or their `sk-` variants;
/// - the key body is standard base64 (at most 16 KiB) whose decoded blob
///   names the same algorithm (so a truncated or pasted-wrong key fails
///   here, not at first login);
/// - the optional comment is 1 to 100 of `[A-Za-z0-9._@+=:,/-]` and single
///   spaces: nothing a kickstart, YAML or shell quote could end on.
///
/// Fields are separated by exactly one space; no tabs, newlines or quotes
/// anywhere. `Debug` shows the algorithm and comment, not the key body.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SshPublicKey(String);

impl SshPublicKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn algorithm(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }

    pub fn comment(&self) -> Option<&str> {
        self.0.splitn(3, ' ').nth(2)
    }
}

impl fmt::Debug for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshPublicKey")
            .field("algorithm", &self.algorithm())
            .field("comment", &self.comment())
            .finish_non_exhaustive()
    }
}

impl FromStr for SshPublicKey {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("SSH public key", s, reason);
        let mut parts = s.splitn(3, ' ');
        let algorithm = parts.next().unwrap_or("");
        let body = parts.next().unwrap_or("");
        let comment = parts.next();
        if !SSH_ALGORITHMS.contains(&algorithm) {
            return Err(err(
                "must start with ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 or an sk- key type",
            ));
        }
        if body.is_empty() || body.len() > 16 * 1024 {
            return Err(err("missing or oversized base64 key body"));
        }
        if !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            return Err(err("key body is not base64"));
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| err("key body is not valid base64"))?;
        let name_len = blob
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| err("key body too short"))?;
        if blob.get(4..4 + name_len) != Some(algorithm.as_bytes()) {
            return Err(err("key body does not match its algorithm"));
        }
        if let Some(c) = comment {
            let ok_chars = c.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'.' | b'_' | b'@' | b'+' | b'=' | b':' | b',' | b'/' | b'-' | b' '
                    )
            });
            if c.is_empty()
                || c.len() > 100
                || !ok_chars
                || c.starts_with(' ')
                || c.ends_with(' ')
                || c.contains("  ")
            {
                return Err(err(
                    "comment must be 1 to 100 of letters, digits, single spaces and . _ @ + = : , / -",
                ));
            }
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OpenShift cluster name (`metadata.name`): an RFC 1123 DNS label,
/// lower-case, 1 to 63 characters, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterName(String);

impl ClusterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClusterName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::new("cluster name", s, reason);
        if s.is_empty() || s.len() > 63 {
            return Err(err("must be 1 to 63 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("only lower-case letters, digits and '-' are allowed"));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) || s.ends_with('-') {
            return Err(err("must start with a letter and not end with '-'"));
        }
        Ok(Self(s.to_string()))
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a pull secret was rejected. Never carries the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pull secret: {0}")]
pub struct PullSecretError(&'static str);

/// The OpenShift pull secret: a JSON object with a non-empty `auths`
/// object. Stored in compact form (one line).
///
/// It is a secret: no `Display`, `Debug` prints `PullSecret(<redacted>)`,
/// errors never quote it. The only way out is [`PullSecret::expose_json`],
/// which the install-config template calls.
#[derive(Clone, PartialEq, Eq)]
pub struct PullSecret(String);

impl PullSecret {
    /// Largest pull secret accepted (real ones are a few KiB).
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn new(json: &str) -> Result<Self, PullSecretError> {
        if json.len() > Self::MAX_BYTES {
            return Err(PullSecretError("larger than 64 KiB"));
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|_| PullSecretError("not valid JSON"))?;
        let auths = value
            .get("auths")
            .and_then(serde_json::Value::as_object)
            .ok_or(PullSecretError("no \"auths\" object"))?;
        if auths.is_empty() {
            return Err(PullSecretError("\"auths\" is empty"));
        }
        if !auths.values().all(serde_json::Value::is_object) {
            return Err(PullSecretError("each \"auths\" entry must be an object"));
        }
        Ok(Self(value.to_string()))
    }

    /// The compact JSON, for the one template that must contain it.
    pub fn expose_json(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PullSecret(<redacted>)")
    }
}

impl FromStr for PullSecret {
    type Err = PullSecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

crate::domain::values::string_serde!(SshPublicKey);
crate::domain::values::string_serde!(ClusterName);
