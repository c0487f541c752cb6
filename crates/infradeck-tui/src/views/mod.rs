//! One file per view. Each implements [`crate::app::Screen`].

pub mod configs;
pub mod detail;
pub mod devices;
pub mod history;
pub mod netbox;
pub mod search;
pub mod sync;
pub mod tree;
