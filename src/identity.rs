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
/// reused by another program). Unknown (no `/proc`) counts as alive: only the heartbeat timeout
/// then frees a lock, which is the safe side.
pub fn process_is_gone(pid: i64) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid == i64::from(std::process::id()) {
        return false;
    }
    let proc_dir = std::path::Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return false;
    }
    let exe = match std::fs::read_link(proc_dir.join(pid.to_string()).join("exe")) {
        Ok(exe) => exe,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return true,
        // Another user's process, say: cannot tell, so not gone.
        Err(_) => return !proc_dir.join(pid.to_string()).exists(),
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
