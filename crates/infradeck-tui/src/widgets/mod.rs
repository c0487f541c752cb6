//! Pieces several views share.

pub mod cursor;
pub mod diff;
pub mod table;
