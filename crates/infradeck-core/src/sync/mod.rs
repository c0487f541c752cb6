//! The sync engine: runs, schedule, locks and cancellation (`engine`), compare-write-audit-sweep
//! (`reconcile`), and cross-source correlation (`correlate`).

pub mod correlate;
pub mod engine;
pub mod reconcile;

pub use engine::Engine;
