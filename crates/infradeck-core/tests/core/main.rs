//! The core's integration tests, one module per behaviour, in one binary (link time dominates
//! on two cores). Syncs, NetBox and the front ends are tested end to end in the `infradeck`
//! crate's tests, which may use the simulators; the core's may not (it must not depend on them).

mod schema;
mod store;
