//! What an Interpret did ([`Outcome`]) or why it failed
//! ([`InterpretError`]). Kept apart from `score` so that events and the
//! saga runner use them without depending on Scores (no import cycle).

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

/// Why an Interpret failed: what it was doing, and the state it left.
#[derive(Debug, thiserror::Error)]
#[error("{score}: {action} failed: {message} (state left: {state_left})")]
pub struct InterpretError {
    pub score: String,
    pub action: String,
    pub message: String,
    pub state_left: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InterpretError {
    pub fn new(
        score: impl Into<String>,
        action: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            score: score.into(),
            action: action.into(),
            message: message.into(),
            state_left: "unchanged".into(),
            source: None,
        }
    }

    pub fn with_state_left(mut self, state: impl Into<String>) -> Self {
        self.state_left = state.into();
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}
