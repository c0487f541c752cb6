//! What a process that runs syncs does on its way out, however it goes: a dropped SSH session
//! (SIGHUP), SIGTERM, Ctrl-C, quitting the dashboard, or a panic. Its runs are recorded as
//! ended so that no `running` row outlives the process and locks the source.

use std::path::PathBuf;

/// After SIGHUP the terminal is gone: writing to it fails, and Rust's `print!`/`eprint!` panic
/// on a failed write — which would kill the process before it records its runs as ended.
/// Standard input, output and error are pointed at `/dev/null` instead.
pub fn detach_from_terminal() {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    for fd in 0..=2 {
        // SAFETY: dup2 on two valid descriptors; it replaces fd 0–2 atomically and touches no
        // memory of ours. `null` stays open until the end of this function, after the calls.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// Chains a panic hook that, after the usual report, records this process's running syncs in
/// `database` as cancelled — when the panic ends the process, that is, when it is the main
/// thread's. A panic on a worker (a sync task, the reconciler thread) is caught and reported by
/// its owner while the other runs go on; ending them all then would drop locks of live runs.
pub fn end_runs_on_panic(database: PathBuf) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if std::thread::current().name() == Some("main") {
            end_own_runs(&database, "cancelled: the process panicked");
        }
    }));
}

/// `infradeck devices | head` must end quietly when `head` closes the pipe, as every Unix tool
/// does: the default action of SIGPIPE (ended by the signal, nothing printed). Rust ignores
/// SIGPIPE, which turns the closed pipe into a panic at the next `println!`. Only for commands
/// that read and print; those that write (sync, apply) keep running and are quieted by
/// `quiet_broken_pipe` instead, so a closed pipe never cuts a write short.
pub fn die_on_broken_pipe() {
    // SAFETY: signal(2) with SIG_DFL only changes this process's disposition of SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A `println!` into a closed pipe panics ("failed printing to stdout: Broken pipe"): exit with
/// 141 (128 + SIGPIPE, as a shell reports it) without a panic message. Installed before any
/// other hook, so hooks added later (ending runs) still run first.
pub fn quiet_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") && message.contains("failed printing") {
            std::process::exit(141);
        }
        previous(info);
    }));
}

/// Whether SIGHUP was ignored when this process started (`nohup`): then a hang-up is not a
/// reason to stop, and no handler may replace the ignore.
pub fn hangup_ignored() -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current one into `current`,
    // a zeroed plain-data struct of the right type.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Records every run of this process still `running` as cancelled, in `database`: the last
/// step of every way a process that runs syncs ends (quit, signal, panic), so that no run row
/// outlives its process and holds the source's lock. Best effort: returns how many were ended.
pub fn end_own_runs(database: &std::path::Path, why: &str) -> usize {
    let pid = i64::from(std::process::id());
    let host = crate::identity::host_name();
    let now = crate::time::now();
    crate::store::Store::open(
        database,
        &crate::store::OpenOptions {
            busy_timeout: std::time::Duration::from_secs(2),
        },
    )
    .and_then(|mut store| store.write(|w| w.end_runs_of_process(pid, &host, why, &now)))
    .unwrap_or(0)
}
