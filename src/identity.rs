//! Who and where: the OS user recorded as reviewer/performer, and the host name shown in headers
//! and run locks.

/// The login name of the user running infradeck.
pub fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` on this machine is gone, or is no longer an infradeck (the pid was
/// reused by another program). Decided by `kill(pid, 0)`: "no such process" is gone; a process
/// we may not signal (another user's) exists. Unknown counts as alive — only the heartbeat
/// timeout then frees the lock, which is the safe side.
pub fn process_is_gone(pid: i64) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 || pid == i64::from(std::process::id()) {
        return false;
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks that the process exists.
    let exists = unsafe { libc::kill(raw, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    if !exists {
        return true;
    }
    // It exists: is it still an infradeck? Only a readable executable link can say it is not.
    let Ok(exe) = std::fs::read_link(format!("/proc/{raw}/exe")) else {
        return false;
    };
    let name = |p: &std::path::Path| {
        p.file_name().map(|n| {
            n.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
    };
    let ours = std::env::current_exe().ok();
    match (name(&exe), ours.as_deref().and_then(name)) {
        (Some(theirs), Some(mine)) => theirs != mine && !theirs.starts_with("infradeck"),
        _ => false,
    }
}
