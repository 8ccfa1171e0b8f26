//! `harmony site check --site FILE`: reads and validates a site file
//! ([`crate::site::SiteFile`]) and prints its summary on stdout; an invalid
//! file is a [`CliError::Site`] (exit 2) naming each field and value.

use super::args::SiteCmd;
use super::error::CliError;
use crate::site::SiteFile;

pub fn run(cmd: SiteCmd) -> Result<(), CliError> {
    match cmd {
        SiteCmd::Check { site } => {
            let file = SiteFile::load(&site)?;
            print!("{}", file.summary());
            Ok(())
        }
    }
}
