//! The dashboard over a TestBackend: what each screen shows (snapshots at 80×24 and 160×48),
//! what each key does, and that no hint on screen is dead. The real binary in a real terminal is
//! tested in the `infradeck` crate (`dashboard_in_tmux`).

mod screens;
