//! A line diff of two texts for display: hunks with context, old and new line numbers, the
//! changed words inside each changed line, and optional hiding of volatile lines (timestamps,
//! counters) before comparing. Lines are sanitized before they are compared, so what is
//! highlighted is exactly what is drawn.

use similar::{ChangeTag, DiffTag, TextDiff};
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowKind {
    Hunk,
    Context,
    Removed,
    Added,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub(crate) kind: RowKind,
    /// 1-based line numbers in the original texts.
    pub(crate) old_no: Option<usize>,
    pub(crate) new_no: Option<usize>,
    pub(crate) text: String,
    /// Byte ranges of `text` that changed within the line.
    pub(crate) words: Vec<Range<usize>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffModel {
    pub rows: Vec<DiffRow>,
    /// Indexes of the hunk header rows.
    pub hunks: Vec<usize>,
    pub added: usize,
    pub removed: usize,
    /// Lines left out of the comparison as volatile, both sides together.
    pub(crate) hidden: usize,
}

/// Lines of `text`, sanitized, with their 1-based numbers, minus those matching `hide`.
fn lines(text: &str, hide: &[regex::Regex], hidden: &mut usize) -> (Vec<String>, Vec<usize>) {
    let mut kept = Vec::new();
    let mut numbers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if hide.iter().any(|r| r.is_match(line)) {
            *hidden += 1;
            continue;
        }
        kept.push(infradeck_core::sanitize::line_for_terminal(line).into_owned());
        numbers.push(i + 1);
    }
    (kept, numbers)
}

/// Diffs `old` against `new` with `context` lines around each change.
pub fn diff(old: &str, new: &str, hide: &[regex::Regex], context: usize) -> DiffModel {
    let mut model = DiffModel::default();
    let (old_lines, old_numbers) = lines(old, hide, &mut model.hidden);
    let (new_lines, new_numbers) = lines(new, hide, &mut model.hidden);
    let old_refs: Vec<&str> = old_lines.iter().map(String::as_str).collect();
    let new_refs: Vec<&str> = new_lines.iter().map(String::as_str).collect();
    let text_diff = TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_slices(&old_refs, &new_refs);
    for group in text_diff.grouped_ops(context) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_start = first.old_range().start;
        let new_start = first.new_range().start;
        let old_len = last.old_range().end - old_start;
        let new_len = last.new_range().end - new_start;
        model.hunks.push(model.rows.len());
        model.rows.push(DiffRow {
            kind: RowKind::Hunk,
            old_no: None,
            new_no: None,
            text: format!(
                "@@ -{},{old_len} +{},{new_len} @@",
                old_numbers.get(old_start).copied().unwrap_or(old_start + 1),
                new_numbers.get(new_start).copied().unwrap_or(new_start + 1)
            ),
            words: Vec::new(),
        });
        for op in &group {
            let (tag, old_range, new_range) = op.as_tag_tuple();
            match tag {
                DiffTag::Equal => {
                    for (o, n) in old_range.zip(new_range) {
                        model.rows.push(DiffRow {
                            kind: RowKind::Context,
                            old_no: Some(old_numbers[o]),
                            new_no: Some(new_numbers[n]),
                            text: old_lines[o].clone(),
                            words: Vec::new(),
                        });
                    }
                }
                DiffTag::Delete | DiffTag::Insert | DiffTag::Replace => {
                    // Pair the i-th removed line with the i-th added one for word highlights.
                    let pairs = old_range.len().min(new_range.len());
                    let mut old_words = vec![Vec::new(); old_range.len()];
                    let mut new_words = vec![Vec::new(); new_range.len()];
                    for i in 0..pairs {
                        let (o, n) = word_changes(
                            &old_lines[old_range.start + i],
                            &new_lines[new_range.start + i],
                        );
                        old_words[i] = o;
                        new_words[i] = n;
                    }
                    for (i, o) in old_range.clone().enumerate() {
                        model.removed += 1;
                        model.rows.push(DiffRow {
                            kind: RowKind::Removed,
                            old_no: Some(old_numbers[o]),
                            new_no: None,
                            text: old_lines[o].clone(),
                            words: std::mem::take(&mut old_words[i]),
                        });
                    }
                    for (i, n) in new_range.clone().enumerate() {
                        model.added += 1;
                        model.rows.push(DiffRow {
                            kind: RowKind::Added,
                            old_no: None,
                            new_no: Some(new_numbers[n]),
                            text: new_lines[n].clone(),
                            words: std::mem::take(&mut new_words[i]),
                        });
                    }
                }
            }
        }
    }
    model
}

/// Byte ranges that differ between two versions of a line, word by word.
fn word_changes(old: &str, new: &str) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let diff = TextDiff::from_words(old, new);
    let (mut old_at, mut new_at) = (0usize, 0usize);
    let (mut old_ranges, mut new_ranges): (Vec<Range<usize>>, Vec<Range<usize>>) =
        (Vec::new(), Vec::new());
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            let len = change.value().len();
            match change.tag() {
                ChangeTag::Equal => {
                    old_at += len;
                    new_at += len;
                }
                ChangeTag::Delete => {
                    push_range(&mut old_ranges, old_at..old_at + len);
                    old_at += len;
                }
                ChangeTag::Insert => {
                    push_range(&mut new_ranges, new_at..new_at + len);
                    new_at += len;
                }
            }
        }
    }
    (old_ranges, new_ranges)
}

/// Appends, merging with the previous range when they touch.
fn push_range(ranges: &mut Vec<Range<usize>>, range: Range<usize>) {
    if let Some(last) = ranges.last_mut()
        && last.end == range.start
    {
        last.end = range.end;
        return;
    }
    ranges.push(range);
}

/// Side-by-side pairing: each visual row has an optional left and right row index.
pub(crate) fn side_by_side(model: &DiffModel) -> Vec<(Option<usize>, Option<usize>)> {
    let mut out = Vec::with_capacity(model.rows.len());
    let mut i = 0;
    while i < model.rows.len() {
        match model.rows[i].kind {
            RowKind::Hunk | RowKind::Context => {
                out.push((Some(i), Some(i)));
                i += 1;
            }
            RowKind::Removed | RowKind::Added => {
                let removed_start = i;
                while i < model.rows.len() && model.rows[i].kind == RowKind::Removed {
                    i += 1;
                }
                let added_start = i;
                while i < model.rows.len() && model.rows[i].kind == RowKind::Added {
                    i += 1;
                }
                let removed = added_start - removed_start;
                let added = i - added_start;
                for k in 0..removed.max(added) {
                    out.push((
                        (k < removed).then_some(removed_start + k),
                        (k < added).then_some(added_start + k),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunks_numbers_and_changed_words() {
        let old = "hostname sw1\n! Last configuration change at 10:00\ninterface Gi0/1\n description uplink to rack B12\n shutdown\nend\n";
        let new = "hostname sw1\n! Last configuration change at 11:00\ninterface Gi0/1\n description uplink to rack C07\nend\n";
        let model = diff(old, new, &[], 1);
        assert_eq!((model.added, model.removed), (2, 3));
        let changed: Vec<&DiffRow> = model
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Added)
            .collect();
        let description = changed.iter().find(|r| r.text.contains("C07")).unwrap();
        assert_eq!(description.new_no, Some(4));
        assert_eq!(
            description.text.get(description.words[0].clone()),
            Some("C07")
        );

        let hide = [regex::Regex::new("^! Last configuration change").unwrap()];
        let quiet = diff(old, new, &hide, 1);
        assert_eq!(quiet.hidden, 2);
        assert!(
            !quiet
                .rows
                .iter()
                .any(|r| r.text.contains("Last configuration"))
        );
        assert_eq!((quiet.added, quiet.removed), (1, 2));
        assert_eq!(quiet.hunks.len(), 1);
        let pairs = side_by_side(&quiet);
        assert!(
            pairs.iter().any(|(l, r)| l.is_some() && r.is_none()),
            "the shutdown line has no partner"
        );
    }

    #[test]
    fn escape_sequences_are_sanitized_before_comparison() {
        let model = diff("a\n", "a\x1b[2J\n", &[], 0);
        assert!(model.rows.iter().all(|r| !r.text.contains('\x1b')));
        assert!(model.rows.iter().any(|r| r.text.contains('␛')));
    }
}
