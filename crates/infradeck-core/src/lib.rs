//! infradeck's core: the model, the configuration, the store (the only code that speaks SQL), the
//! source connectors, the sync engine, NetBox planning and apply, search, and the application
//! service both front ends drive. No terminal and no HTTP server code lives here.
//!
//! Data flows one way: source HTTP APIs → `sources` (fetch + normalize into [`model`] records) →
//! `sync` (compare, write, audit) → [`store`] → the front ends.

// Without the connectors, what only they use (the store's sync-side writes, secret resolution)
// is compiled but unused; the full build, where dead code would be real, keeps the warnings.
#![cfg_attr(not(feature = "connectors"), allow(dead_code, unused_imports))]

pub mod app;
pub mod changes;
pub mod config;
pub mod diff;
pub mod document;
pub(crate) mod html;
#[cfg(feature = "connectors")]
pub mod http;
pub mod identity;
pub mod logging;
pub mod machines;
pub mod model;
#[cfg(feature = "connectors")]
pub mod netbox;
pub mod process;
pub mod sanitize;
#[cfg(feature = "connectors")]
pub mod search;
#[cfg(feature = "connectors")]
pub mod sources;
pub mod store;
#[cfg(feature = "connectors")]
pub mod sync;
pub mod text;
pub mod time;
pub mod xml;
