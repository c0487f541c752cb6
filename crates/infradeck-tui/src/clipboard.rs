//! Copy to the clipboard of the terminal the engineer sits at, through OSC 52: it travels over
//! SSH and works on a bastion with no X server. Inside tmux the sequence is wrapped in tmux's
//! passthrough so it reaches the outer terminal.

use base64::Engine;

/// The escape sequence that puts `text` on the clipboard.
pub(crate) fn osc52(text: &str, inside_tmux: bool) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let sequence = format!("\x1b]52;c;{encoded}\x07");
    if inside_tmux {
        // tmux passthrough: DCS tmux; <sequence with every ESC doubled> ST
        format!("\x1bPtmux;{}\x1b\\", sequence.replace('\x1b', "\x1b\x1b"))
    } else {
        sequence
    }
}

/// Puts `text` on the clipboard of the terminal the dashboard is drawn on.
pub(crate) fn copy(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(osc52(text, inside_tmux()).as_bytes());
    let _ = out.flush();
}

/// Opens an http(s) URL with `$BROWSER` or `xdg-open` when there is a display to show it on.
/// On a bastion reached over SSH there is none: the reason comes back and the caller copies.
pub(crate) fn open_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(char::is_control)
    {
        return Err("only http and https links open".into());
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let program = match (browser, display) {
        (Some(browser), _) => browser,
        (None, true) => "xdg-open".to_string(),
        (None, false) => return Err("no browser here (no $BROWSER, no display)".into()),
    };
    std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("could not run {program} ({e})"))
}

/// Whether we run inside tmux.
pub(crate) fn inside_tmux() -> bool {
    std::env::var_os("TMUX").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tmux_wrapped() {
        assert_eq!(osc52("web-01", false), "\x1b]52;c;d2ViLTAx\x07");
        assert_eq!(
            osc52("web-01", true),
            "\x1bPtmux;\x1b\x1b]52;c;d2ViLTAx\x07\x1b\\"
        );
    }
}
