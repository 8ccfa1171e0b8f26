//! The Scores and the services behind them.

pub mod assets;
pub mod boot;
pub mod discovery;
pub mod http_files;
pub mod okd;
pub mod switch_automation;
