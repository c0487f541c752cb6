//! Plain text tables for terminal output. Every cell is sanitized here, so commands can pass
//! source text straight in.

use infradeck_core::sanitize;
use unicode_width::UnicodeWidthStr;

/// Widest a cell may be when the output is not a terminal (documented in the README).
pub(crate) const DEFAULT_CELL_WIDTH: usize = 80;

static WIDE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--wide`: cells are never cut.
pub fn set_wide(wide: bool) {
    WIDE.store(wide, std::sync::atomic::Ordering::Relaxed);
}

/// How wide one cell may be: the terminal's width, else [`DEFAULT_CELL_WIDTH`]; `None` with
/// `--wide`. One 100,000-character name must not turn a 50-row table into megabytes of padding.
fn cell_cap() -> Option<usize> {
    use std::io::IsTerminal;
    if WIDE.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let terminal = std::io::stdout()
        .is_terminal()
        .then(|| crossterm::terminal::size().ok())
        .flatten()
        .map(|(columns, _)| usize::from(columns).max(20));
    Some(terminal.unwrap_or(DEFAULT_CELL_WIDTH))
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub(crate) fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_capped(headers, rows, cell_cap())
}

/// [`render`] with an explicit cell cap (`None`: no cap).
pub(crate) fn render_capped(headers: &[&str], rows: &[Vec<String>], cap: Option<usize>) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| {
                    let safe = sanitize::for_terminal(c);
                    match cap {
                        Some(cap) => infradeck_core::text::clip_width(&safe, cap).into_owned(),
                        None => safe.into_owned(),
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.width());
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |row: &[String]| {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.width()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    push_row(&header_row);
    for row in &cells {
        push_row(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_with_an_ellipsis_by_display_width() {
        let long = "x".repeat(100_000);
        let rows = vec![vec![long.clone(), "ok".to_string()]];
        let out = render_capped(&["NAME", "STATUS"], &rows, Some(80));
        assert!(out.len() < 400, "{} bytes", out.len());
        assert!(out.contains(&format!("{}…  ok", "x".repeat(79))), "{out}");
        let whole = render_capped(&["NAME", "STATUS"], &rows, None);
        assert!(whole.contains(&long));
        assert_eq!(
            infradeck_core::text::clip_width("日本語テキスト", 7),
            "日本語…"
        );
        assert_eq!(infradeck_core::text::clip_width("short", 80), "short");
    }
}
