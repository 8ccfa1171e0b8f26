//! [`FixedHostKey`]: the host-key pin of one host given by the operator
//! (a site file names the firewall's key), for hosts Harmony never
//! discovers. Nothing is pinned at first contact: a host offering another
//! key is refused.

use std::time::UNIX_EPOCH;

use crate::domain::{HostId, HostKey, HostKeyPins, HostKeyStoreError, PinOutcome, PinnedHostKey};

/// One host's key, fixed by configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedHostKey {
    host: HostId,
    key: HostKey,
}

impl FixedHostKey {
    pub fn new(host: HostId, key: HostKey) -> Self {
        Self { host, key }
    }

    pub fn key(&self) -> &HostKey {
        &self.key
    }
}

impl HostKeyPins for FixedHostKey {
    fn pinned_key(&self, host: &HostId) -> Result<Option<PinnedHostKey>, HostKeyStoreError> {
        Ok((*host == self.host).then(|| PinnedHostKey {
            key: self.key.clone(),
            first_seen: UNIX_EPOCH,
        }))
    }

    /// Never pins: another host is not one Harmony may trust.
    fn pin_first_key(
        &self,
        _host: &HostId,
        _key: &HostKey,
        _at: std::time::SystemTime,
    ) -> Result<PinOutcome, HostKeyStoreError> {
        Ok(PinOutcome::NotDiscovered)
    }

    fn forget_key(&self, _host: &HostId) -> Result<bool, HostKeyStoreError> {
        Ok(false)
    }
}
