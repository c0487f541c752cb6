//! infradeck: a terminal dashboard and command line over one local SQLite "master inventory".
//!
//! Data flows one way: source HTTP APIs → `sources` (fetch + normalize into [`model`] records) →
//! `sync` (compare, write, audit) → [`store`] → UI / CLI. The [`store`] module is the only code
//! that speaks SQL.

pub mod bench;
pub mod changes;
pub mod cli;
pub mod config;
pub mod identity;
pub mod logging;
pub mod model;
pub mod netbox;
pub mod process;
pub mod sanitize;
pub mod search;
pub mod sim;
pub mod sources;
pub mod store;
pub mod sync;
pub mod time;
pub mod ui;
pub mod xml;
