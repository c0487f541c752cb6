//! infradeck end to end, one module per behaviour, in one binary: syncs against the simulators
//! and against the real servers (PuppetDB, vcsim, NetBox: they skip with a reason when absent
//! locally and fail in CI), NetBox plan/apply/rollback, knowledge search, the command line, and
//! the dashboard driven in tmux.

mod common;

mod changes;
mod cli;
mod dashboard_in_tmux;
mod knowledge;
mod netbox;
mod real_netbox;
mod real_puppetdb;
mod real_vcenter;
mod sync;
