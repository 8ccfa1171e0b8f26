//! `harmony-tui`: a terminal view over Harmony's inventory store and events:
//! the discovered, unassigned nodes, their hardware, role assignment and each
//! host's install phase.
//!
//! The shape follows ratatui's app pattern as omicron's wicket uses it:
//! [`app::App`] holds all state and changes only in [`app::App::update`],
//! which takes one [`app::Msg`] (key, harmony event, tick, reloaded hosts)
//! from a single channel; [`keymap`] turns keys into commands;
//! [`ui::draw`] renders `&App` and changes nothing; the binary's loop only
//! routes messages and runs the [`app::Action`]s `update` asks for.
//! [`view_model`] holds what both need (rows, boot plans, log lines,
//! layout figures): `ui` depends on `app`, `app` never on `ui`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod discovery;
pub mod keymap;
pub mod ui;
pub mod view_model;

pub use app::{Action, App, Msg, Pane};
