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
