//! The Scores and the services behind them.

pub mod discovery;
pub mod okd;
