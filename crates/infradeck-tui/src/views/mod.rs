//! One file per view. Each implements [`crate::app::Screen`].

pub(crate) mod changes;
pub(crate) mod configs;
pub(crate) mod conflicts;
pub(crate) mod detail;
pub(crate) mod devices;
pub(crate) mod history;
pub(crate) mod netbox;
pub(crate) mod past;
pub(crate) mod reader;
pub(crate) mod search;
pub(crate) mod sync;
pub(crate) mod tree;
