//! `harmony site check --site FILE`: reads and validates a site file
//! ([`crate::site::SiteFile`]), plans the topology it names
//! ([`crate::site::topology::plan`]: which backend, which services, where)
//! and prints both on stdout; an invalid file or a value the backend
//! cannot use is a [`CliError::Site`] (exit 2) naming each field and value.
//! Nothing is started or contacted, and no secret is read.

use super::args::SiteCmd;
use super::error::CliError;
use crate::site::topology::{SiteTopologyError, plan};
use crate::site::{Problem, SiteError, SiteFile};

pub fn run(cmd: SiteCmd) -> Result<(), CliError> {
    match cmd {
        SiteCmd::Check { site } => {
            let file = SiteFile::load(&site)?;
            let planned = plan(&file).map_err(invalid)?;
            print!("{}", file.summary());
            print!("{}", planned.describe());
            Ok(())
        }
    }
}

/// A planning error as the site file's error (the field, the value, why).
pub(super) fn invalid(e: SiteTopologyError) -> SiteError {
    match e {
        SiteTopologyError::Field {
            origin,
            field,
            value,
            reason,
        } => SiteError::Invalid {
            origin,
            problems: vec![Problem {
                field,
                value,
                reason,
            }],
        },
        other => SiteError::Invalid {
            origin: String::new(),
            problems: vec![Problem {
                field: "services".into(),
                value: String::new(),
                reason: other.to_string(),
            }],
        },
    }
}
