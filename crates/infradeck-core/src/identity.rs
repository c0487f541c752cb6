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

/// Who approves or rejects, as each review records it: the configured name (`[netbox]
/// reviewer`) or else the login name, then what the session proves beyond that name. That is
/// the user who ran `sudo` (`SUDO_USER`), and the SSH key the session logged in with (its
/// SHA-256 fingerprint as `ssh-keygen -l` prints it, from `SSH_AUTH_INFO_0` or the file
/// `SSH_USER_AUTH` names; sshd provides these with `ExposeAuthInfo yes`). A shared account
/// (`root` by sudo, `oncall` reached with many keys) is then still a person.
pub fn reviewer(configured: Option<&str>) -> String {
    let auth_info = std::env::var("SSH_AUTH_INFO_0")
        .ok()
        .filter(|info| !info.trim().is_empty())
        .or_else(|| {
            let path = std::env::var_os("SSH_USER_AUTH")?;
            std::fs::read_to_string(path).ok()
        });
    reviewer_from(
        configured,
        &os_user(),
        std::env::var("SUDO_USER").ok().as_deref(),
        auth_info.as_deref(),
    )
}

fn reviewer_from(
    configured: Option<&str>,
    user: &str,
    sudo_user: Option<&str>,
    auth_info: Option<&str>,
) -> String {
    let configured = configured.map(str::trim).filter(|name| !name.is_empty());
    let mut proofs = Vec::new();
    if configured.is_some_and(|name| name != user) {
        proofs.push(format!("user {user}"));
    }
    if let Some(sudo) = sudo_user.filter(|s| !s.is_empty() && *s != user) {
        proofs.push(format!("sudo by {sudo}"));
    }
    if let Some(key) = auth_info.and_then(key_fingerprint) {
        proofs.push(format!("key {key}"));
    }
    let name = configured.unwrap_or(user);
    if proofs.is_empty() {
        name.to_string()
    } else {
        format!("{name} ({})", proofs.join(", "))
    }
}

/// The fingerprint of the first public key in sshd's auth info (lines such as
/// `publickey ssh-ed25519 AAAA…`): `SHA256:` and the unpadded base64 of the key blob's SHA-256.
fn key_fingerprint(auth_info: &str) -> Option<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use sha2::Digest;
    auth_info.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != "publickey" {
            return None;
        }
        let _key_type = words.next()?;
        let blob = STANDARD.decode(words.next()?).ok()?;
        Some(format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reviewer_is_named_with_what_the_session_proves() {
        assert_eq!(reviewer_from(None, "alice", None, None), "alice");
        assert_eq!(
            reviewer_from(Some("  "), "alice", Some("alice"), None),
            "alice"
        );
        assert_eq!(
            reviewer_from(None, "root", Some("bob"), None),
            "root (sudo by bob)"
        );
        // The fingerprint `ssh-keygen -l` prints for this key.
        let info = "password\npublickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBtc0npmBh89MuVOIqbnc3Skwo8DsSzuPnM/LGT+W+v\n";
        assert_eq!(
            reviewer_from(Some("Alice Example"), "oncall", None, Some(info)),
            "Alice Example (user oncall, key SHA256:qfe+hvAznwSvcFRRyXvI4giiAXdDDi3liJRWOmccHsw)"
        );
        assert_eq!(
            reviewer_from(
                None,
                "oncall",
                None,
                Some("publickey ssh-ed25519 not-base64!")
            ),
            "oncall",
            "a key that cannot be read proves nothing"
        );
    }
}
