//! Who and where: the OS user recorded as reviewer/performer, and the host name shown in headers
//! and run locks.

/// The login name of the user running infradeck.
pub fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(user_of_uid)
}

/// The account name of this process's user from `/etc/passwd` (USER and LOGNAME are unset
/// under cron, systemd units and some `sudo` set-ups), else `uid 1000`: a reviewer is always
/// someone who can be found.
fn user_of_uid() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let entry_uid: u32 = fields.nth(1)?.parse().ok()?;
                (entry_uid == uid && !name.is_empty()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
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
