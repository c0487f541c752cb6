//! NetBox: plan what the inventory implies, let people review it item by item, apply exactly
//! what was approved (only where NetBox still looks as planned), and undo it.

pub mod apply;
pub mod client;
pub mod plan;

pub use apply::{ApplyOptions, ApplyReport, apply, rollback};
pub use client::NetboxClient;
pub use plan::{PlanReport, plan};
