//! The `infradeck` binary's library half: the command line (one function per subcommand) and
//! the benchmarks. The core, the simulators and the dashboard are their own crates
//! (`infradeck-core`, `infradeck-sim`, `infradeck-tui`); see ARCHITECTURE.md.

pub mod bench;
pub mod cli;
