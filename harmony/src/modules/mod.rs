//! The Scores and the services behind them.

pub mod discovery;
