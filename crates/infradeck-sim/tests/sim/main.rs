//! The simulators against the wire formats of the systems they stand in for.

mod simulators;
