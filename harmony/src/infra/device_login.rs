//! The user name and password Harmony logs in to a network device with
//! (Cisco over SSH, Aruba AOS-CX over REST): read from a file or from
//! environment variables, never logged (`Debug` redacts the password).

use std::fmt;
use std::path::Path;

/// Largest credentials file read.
const MAX_FILE: u64 = 4096;

/// Why credentials could not be read. Never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device credentials: {0}")]
pub struct LoginError(String);

/// A device login. `Debug` shows the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceLogin {
    user: String,
    password: String,
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl DeviceLogin {
    /// User: 1 to 64 of `[A-Za-z0-9._@-]`; password: 1 to 256 visible
    /// ASCII characters (no spaces or control characters).
    pub fn new(user: &str, password: &str) -> Result<Self, LoginError> {
        let user_ok = !user.is_empty()
            && user.len() <= 64
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        if !user_ok {
            return Err(LoginError(
                "the user must be 1 to 64 of letters, digits and . _ @ -".into(),
            ));
        }
        if password.is_empty()
            || password.len() > 256
            || !password.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(LoginError(
                "the password must be 1 to 256 visible ASCII characters".into(),
            ));
        }
        Ok(Self {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password, for the one place that sends it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A file with `username=…` and `password=…` lines. A file readable by
    /// others than its owner is warned about.
    pub fn from_file(path: &Path) -> Result<Self, LoginError> {
        let bad = |why: String| LoginError(format!("{}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_FILE {
            return Err(bad(format!("larger than {MAX_FILE} bytes")));
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "the device credentials file is readable by others than its owner; make it 0600"
                );
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let (mut user, mut password) = (None, None);
        for line in text.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("username=") {
                user = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("password=") {
                password = Some(v.trim());
            }
        }
        match (user, password) {
            (Some(u), Some(p)) => Self::new(u, p).map_err(|e| bad(e.0)),
            (None, _) => Err(bad("no username= line".into())),
            (_, None) => Err(bad("no password= line".into())),
        }
    }

    /// From two environment variables (their names, never their values,
    /// appear in errors).
    pub fn from_env(user_var: &str, password_var: &str) -> Result<Self, LoginError> {
        let read = |var: &str| {
            std::env::var(var)
                .map_err(|_| LoginError(format!("environment variable {var} is not set")))
        };
        Self::new(&read(user_var)?, &read(password_var)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_input_is_checked() {
        let l = DeviceLogin::new("admin", "s3cret!").unwrap();
        let d = format!("{l:?}");
        assert!(d.contains("admin") && !d.contains("s3cret"), "{d}");
        assert!(DeviceLogin::new("ad min", "x").is_err());
        assert!(DeviceLogin::new("admin", "a b").is_err());
        assert!(DeviceLogin::new("admin", "").is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("login");
        std::fs::write(&f, "username=admin\npassword=s3cret!\n").unwrap();
        assert_eq!(DeviceLogin::from_file(&f).unwrap(), l);
        std::fs::write(&f, "username=admin\n").unwrap();
        let e = DeviceLogin::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("no password= line"), "{e}");
        let e = DeviceLogin::from_env("HARMONY_NO_SUCH_USER_VAR", "X").unwrap_err();
        assert!(e.to_string().contains("HARMONY_NO_SUCH_USER_VAR"));
    }
}
