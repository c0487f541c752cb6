//! The application service both front ends drive. A front end turns what the user did into a
//! [`Command`] and renders the [`Event`]s that come back; what happens after a sync (the
//! pipeline), which runs a cancel touches, how a NetBox batch is applied, and how a process's
//! runs end, is decided here once.
//!
//! [`protocol`] is plain data, built without the connectors, so the dashboard's crate depends on
//! it and nothing else of the network side. [`Service`] (with the `connectors` feature) carries
//! the commands out on the caller's tokio runtime.

mod inventory;
mod past;
mod protocol;
mod review;

pub use inventory::{
    ClusterHost, KindDetail, MachineDetail, RelatedMachine, SourcedInterface, Uplink,
    machine_detail, stale_sources,
};
pub use past::{PastDetail, PastInventory, inventory_at};
pub use protocol::*;
pub use review::{ReviewOutcome, review};

#[cfg(feature = "connectors")]
mod pipeline;
#[cfg(feature = "connectors")]
mod service;

#[cfg(feature = "connectors")]
pub use service::{Service, ServiceOptions};
