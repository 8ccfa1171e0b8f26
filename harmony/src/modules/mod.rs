//! The Scores and the services behind them.

pub mod boot;
pub mod discovery;
pub mod okd;
