//! Pieces several views share.

pub(crate) mod cursor;
pub mod table;
