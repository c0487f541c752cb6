//! infradeck's core: the model, the configuration, the store (the only code that speaks SQL), the
//! source connectors, the sync engine, NetBox planning and apply, search, and the application
//! service both front ends drive. No terminal and no HTTP server code lives here.
//!
//! Data flows one way: source HTTP APIs → `sources` (fetch + normalize into [`model`] records) →
//! `sync` (compare, write, audit) → [`store`] → the front ends.

pub mod changes;
pub mod config;
pub mod identity;
pub mod logging;
pub mod model;
pub mod netbox;
pub mod process;
pub mod sanitize;
pub mod search;
pub mod sources;
pub mod store;
pub mod sync;
pub mod text;
pub mod time;
pub mod xml;
