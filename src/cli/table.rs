//! Plain text tables for terminal output. Every cell is sanitized here, so commands can pass
//! source text straight in.

use crate::sanitize;
use unicode_width::UnicodeWidthStr;

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| sanitize::for_terminal(c).into_owned())
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
