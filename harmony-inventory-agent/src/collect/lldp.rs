//! LLDP: learn which switch and port each NIC is cabled to.
//! STUB: to be implemented.

use std::time::Duration;

use crate::model::Lldp;

/// Why LLDP could not be read on an interface.
#[derive(Debug, thiserror::Error)]
pub enum LldpError {
    #[error("malformed LLDP frame: {0}")]
    Malformed(String),
    #[error("raw socket on {iface} not permitted (needs root or CAP_NET_RAW)")]
    PermissionDenied { iface: String },
    #[error("LLDP socket on {iface}: {source}")]
    Io {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// Decodes one Ethernet frame carrying an LLDPDU.
pub fn parse_frame(frame: &[u8]) -> Result<Lldp, LldpError> {
    let _ = frame;
    Err(LldpError::Malformed("not implemented".into()))
}

/// Listens on `iface` for up to `window`; returns the first neighbour seen.
pub fn listen(iface: &str, window: Duration) -> Result<Option<Lldp>, LldpError> {
    let _ = (iface, window);
    Ok(None)
}
