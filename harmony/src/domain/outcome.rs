//! What an Interpret did ([`Outcome`]). Kept apart from `score` so that
//! events can carry outcomes without depending on Scores (no import cycle:
//! `score` -> `inventory` -> `events` -> `outcome`).

use std::fmt;

/// What an Interpret did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Something changed; each entry says what.
    Success { changes: Vec<String> },
    /// The desired state already held.
    Noop { message: String },
}

impl Outcome {
    pub fn success(changes: Vec<String>) -> Self {
        if changes.is_empty() {
            Outcome::noop("nothing to change")
        } else {
            Outcome::Success { changes }
        }
    }

    pub fn noop(message: impl Into<String>) -> Self {
        Outcome::Noop {
            message: message.into(),
        }
    }

    pub fn is_noop(&self) -> bool {
        matches!(self, Outcome::Noop { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success { changes } => write!(f, "changed: {}", changes.join("; ")),
            Outcome::Noop { message } => write!(f, "no change: {message}"),
        }
    }
}
