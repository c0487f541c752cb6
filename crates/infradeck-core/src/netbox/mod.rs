//! NetBox: plan what the inventory implies, let people review it item by item, apply exactly
//! what was approved (only where NetBox still looks as planned), and undo it.

mod addresses;
pub mod apply;
pub mod client;
mod devices;
pub mod plan;
mod resolve;
mod rollback;

pub use apply::{ApplyOptions, apply};
pub use client::NetboxClient;
pub use plan::plan;
pub use rollback::{rollback, rollback_in_chunks};
