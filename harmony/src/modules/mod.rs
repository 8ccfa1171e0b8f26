//! The Scores and the services behind them.

pub mod assets;
pub mod discovery;
pub mod okd;
