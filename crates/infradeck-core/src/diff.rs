//! A line diff of two texts, for the dashboard's diff view and `infradeck diff`: hunks with
//! context, the original line numbers on both sides, and the changed words inside a changed line,
//! computed only when asked for (a screen shows a few dozen rows of a 100,000-line diff).
//!
//! Lines are compared as stored (two lines that differ only in a control character are
//! different); what is shown goes through the sanitizer, and the word ranges are ranges of the
//! sanitized text, so what is highlighted is exactly what is drawn. Lines matching a "volatile"
//! pattern (timestamps, counters) can be left out of the comparison; numbers stay the original
//! ones.
//!
//! The line diff is imara-diff's histogram algorithm (git's), which keeps a 100,000-line pair
//! within GNU diff's time; the word diff inside a line is `similar`'s.

use imara_diff::{Algorithm, Diff, InternedInput, Interner, Token};
use std::borrow::Cow;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Hunk,
    Context,
    Removed,
    Added,
}

/// One row of the diff. `old` and `new` index the compared (kept) lines of each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    old: Option<u32>,
    new: Option<u32>,
    /// The row this changed line is paired with for word highlights (the i-th removed line of
    /// a change with its i-th added line).
    partner: Option<u32>,
}

/// A hunk's header: where it starts and how many lines it spans on each side, as `diff -u`
/// prints it (a side with no lines gives the number of the line before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkHeader {
    pub old_start: usize,
    pub old_len: usize,
    pub new_start: usize,
    pub new_len: usize,
}

impl std::fmt::Display for HunkHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "@@ -{} +{} @@",
            range_text(self.old_start, self.old_len),
            range_text(self.new_start, self.new_len)
        )
    }
}

/// `diff -u`'s range: `start,len`, or just `start` for one line.
fn range_text(start: usize, len: usize) -> String {
    if len == 1 {
        start.to_string()
    } else {
        format!("{start},{len}")
    }
}

/// One side of a diff: the text, the byte spans of the lines compared and, when some lines were
/// left out, the original numbers of those kept (else a kept line's number is its index + 1).
#[derive(Debug, Clone, Default)]
struct Side {
    text: String,
    spans: Vec<Range<usize>>,
    numbers: Option<Vec<u32>>,
}

impl Side {
    fn new(text: String, hide: &[regex::Regex], hidden: &mut usize) -> Side {
        // Lines are found with memchr: splitting is a third of the time of a large diff.
        let bytes = text.as_bytes();
        let mut spans = Vec::with_capacity(bytes.len() / 24 + 1);
        let mut starts = memchr::memchr_iter(b'\n', bytes)
            .map(|at| at + 1)
            .peekable();
        let mut start = 0usize;
        while start < bytes.len() {
            let next = starts.next().unwrap_or(bytes.len());
            let mut end = if bytes[next - 1] == b'\n' {
                next - 1
            } else {
                next
            };
            if end > start && bytes[end - 1] == b'\r' {
                end -= 1;
            }
            spans.push(start..end);
            start = next;
        }
        let mut side = Side {
            text,
            spans,
            numbers: None,
        };
        if !hide.is_empty() {
            let mut kept = Vec::with_capacity(side.spans.len());
            let mut numbers = Vec::with_capacity(side.spans.len());
            for (i, span) in side.spans.iter().enumerate() {
                let line = side.text.get(span.clone()).unwrap_or_default();
                if hide.iter().any(|r| r.is_match(line)) {
                    *hidden += 1;
                } else {
                    kept.push(span.clone());
                    numbers.push(i as u32 + 1);
                }
            }
            side.spans = kept;
            side.numbers = Some(numbers);
        }
        side
    }

    fn line(&self, index: u32) -> &str {
        // Spans end at `\n` or `\r` (ASCII), so they fall on character boundaries and `get`
        // always finds the line.
        self.text
            .get(self.spans[index as usize].clone())
            .unwrap_or_default()
    }

    fn number(&self, index: u32) -> usize {
        match &self.numbers {
            Some(numbers) => numbers[index as usize] as usize,
            None => index as usize + 1,
        }
    }

    /// The number of the last line compared (0 for none).
    fn last_number(&self) -> usize {
        self.len()
            .checked_sub(1)
            .map_or(0, |last| self.number(last))
    }

    fn len(&self) -> u32 {
        // The spans are built from a String, whose length fits in usize; a diff of more than
        // u32::MAX lines is beyond what a config holds and what imara-diff accepts.
        u32::try_from(self.spans.len()).unwrap_or(u32::MAX)
    }

    /// `diff -u`'s start for a hunk beginning at kept line `index` and spanning `len` lines.
    fn start_number(&self, index: u32, len: usize) -> usize {
        if len > 0 {
            return self.number(index);
        }
        // No line on this side: the number of the line before the position (0 at the top).
        match index.checked_sub(1) {
            Some(before) => self.number(before),
            None => 0,
        }
    }
}

/// The diff of two texts.
#[derive(Debug, Clone, Default)]
pub struct LineDiff {
    old: Side,
    new: Side,
    rows: Vec<Row>,
    /// Indexes of the hunk header rows, and their headers.
    hunks: Vec<usize>,
    headers: Vec<HunkHeader>,
    pub added: usize,
    pub removed: usize,
    /// Lines left out of the comparison as volatile, both sides together.
    pub hidden: usize,
}

impl LineDiff {
    /// Diffs `old` against `new` with `context` lines around each change, leaving out the lines
    /// that match `hide`.
    pub fn compute(old: String, new: String, hide: &[regex::Regex], context: usize) -> LineDiff {
        // The two sides are split on two threads: a large text's lines are a fifth of the time.
        let (old, new, hidden) = std::thread::scope(|scope| {
            let old = scope.spawn(|| {
                let mut hidden = 0;
                (Side::new(old, hide, &mut hidden), hidden)
            });
            let mut hidden = 0;
            let new = Side::new(new, hide, &mut hidden);
            // A panic while splitting is a bug: carry it over rather than hide it.
            let (old, old_hidden) = old
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (old, new, old_hidden + hidden)
        });
        let changes = changed_ranges(&old, &new);
        let mut diff = LineDiff {
            old,
            new,
            hidden,
            ..LineDiff::default()
        };
        diff.build_rows(&changes, context as u32);
        diff
    }

    /// Groups the changes into hunks with `context` lines of context and lays out the rows.
    fn build_rows(&mut self, changes: &[(Range<u32>, Range<u32>)], context: u32) {
        let (old_len, new_len) = (self.old.len(), self.new.len());
        let mut i = 0;
        while i < changes.len() {
            // A hunk takes every change whose gap to the previous one is within two contexts.
            let mut j = i;
            while j + 1 < changes.len() && changes[j + 1].0.start - changes[j].0.end <= 2 * context
            {
                j += 1;
            }
            let (first, last) = (&changes[i], &changes[j]);
            let lead = context.min(first.0.start).min(first.1.start);
            let old_from = first.0.start - lead;
            let new_from = first.1.start - lead;
            let trail = context.min(old_len - last.0.end).min(new_len - last.1.end);
            let old_to = last.0.end + trail;
            let new_to = last.1.end + trail;
            let header = HunkHeader {
                old_start: self
                    .old
                    .start_number(old_from, (old_to - old_from) as usize),
                old_len: (old_to - old_from) as usize,
                new_start: self
                    .new
                    .start_number(new_from, (new_to - new_from) as usize),
                new_len: (new_to - new_from) as usize,
            };
            self.hunks.push(self.rows.len());
            self.headers.push(header);
            self.rows.push(Row {
                kind: RowKind::Hunk,
                old: None,
                new: None,
                partner: None,
            });
            let (mut o, mut n) = (old_from, new_from);
            for (removed, added) in &changes[i..=j] {
                self.push_context(o..removed.start, n);
                self.push_change(removed.clone(), added.clone());
                o = removed.end;
                n = added.end;
            }
            self.push_context(o..old_to, n);
            i = j + 1;
        }
    }

    fn push_context(&mut self, old: Range<u32>, new_from: u32) {
        for (k, o) in old.enumerate() {
            self.rows.push(Row {
                kind: RowKind::Context,
                old: Some(o),
                new: Some(new_from + k as u32),
                partner: None,
            });
        }
    }

    fn push_change(&mut self, removed: Range<u32>, added: Range<u32>) {
        let first_removed = self.rows.len() as u32;
        let pairs = removed.len().min(added.len()) as u32;
        let first_added = first_removed + removed.len() as u32;
        self.removed += removed.len();
        self.added += added.len();
        for (k, o) in removed.clone().enumerate() {
            let k = k as u32;
            self.rows.push(Row {
                kind: RowKind::Removed,
                old: Some(o),
                new: None,
                partner: (k < pairs).then_some(first_added + k),
            });
        }
        for (k, n) in added.enumerate() {
            let k = k as u32;
            self.rows.push(Row {
                kind: RowKind::Added,
                old: None,
                new: Some(n),
                partner: (k < pairs).then_some(first_removed + k),
            });
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Row indexes of the hunk headers.
    pub fn hunks(&self) -> &[usize] {
        &self.hunks
    }

    /// The header of the hunk whose header row is `row`.
    pub fn header(&self, row: usize) -> Option<&HunkHeader> {
        let at = self.hunks.binary_search(&row).ok()?;
        self.headers.get(at)
    }

    /// The original (1-based) line number of the row on the old side.
    pub fn old_no(&self, row: usize) -> Option<usize> {
        self.rows[row].old.map(|i| self.old.number(i))
    }

    /// The original (1-based) line number of the row on the new side.
    pub fn new_no(&self, row: usize) -> Option<usize> {
        self.rows[row].new.map(|i| self.new.number(i))
    }

    /// The largest line number shown, for the width of the number columns.
    pub fn largest_number(&self) -> usize {
        self.old.last_number().max(self.new.last_number()).max(1)
    }

    /// The row's line as stored (a hunk row: its header).
    pub fn raw_text(&self, row: usize) -> Cow<'_, str> {
        let r = &self.rows[row];
        match (r.kind, r.old, r.new) {
            (RowKind::Hunk, ..) => Cow::Owned(
                self.header(row)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ),
            (RowKind::Added, _, Some(n)) => Cow::Borrowed(self.new.line(n)),
            (_, Some(o), _) => Cow::Borrowed(self.old.line(o)),
            (_, None, Some(n)) => Cow::Borrowed(self.new.line(n)),
            (_, None, None) => Cow::Borrowed(""),
        }
    }

    /// The row's line as it may be drawn: sanitized, tabs expanded.
    pub fn text(&self, row: usize) -> Cow<'_, str> {
        match self.raw_text(row) {
            Cow::Borrowed(line) => crate::sanitize::line_for_terminal(line),
            Cow::Owned(header) => Cow::Owned(header),
        }
    }

    /// Byte ranges of [`LineDiff::text`] that changed against the paired line, word by word;
    /// empty for context, hunk rows and lines without a partner.
    pub fn words(&self, row: usize) -> Vec<Range<usize>> {
        let r = &self.rows[row];
        let Some(partner) = r.partner else {
            return Vec::new();
        };
        let (this, other) = (self.text(row), self.text(partner as usize));
        match r.kind {
            RowKind::Removed => word_changes(&this, &other).0,
            RowKind::Added => word_changes(&other, &this).1,
            RowKind::Hunk | RowKind::Context => Vec::new(),
        }
    }

    /// Side-by-side pairing: each visual row has an optional left and right row index.
    pub fn side_by_side(&self) -> Vec<(Option<usize>, Option<usize>)> {
        let rows = &self.rows;
        let mut out = Vec::with_capacity(rows.len());
        let mut i = 0;
        while i < rows.len() {
            match rows[i].kind {
                RowKind::Hunk | RowKind::Context => {
                    out.push((Some(i), Some(i)));
                    i += 1;
                }
                RowKind::Removed | RowKind::Added => {
                    let removed_start = i;
                    while i < rows.len() && rows[i].kind == RowKind::Removed {
                        i += 1;
                    }
                    let added_start = i;
                    while i < rows.len() && rows[i].kind == RowKind::Added {
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

    /// The diff as `diff -u` prints it, under `---`/`+++` lines naming the two sides. Lines are
    /// sanitized; with `colour`, removed lines are red, added green and hunk headers cyan.
    pub fn unified(&self, old_label: &str, new_label: &str, colour: bool) -> String {
        use std::fmt::Write;
        let (red, green, cyan, bold, reset) = if colour {
            ("\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "", "", "")
        };
        let mut out = String::with_capacity(self.rows.len() * 40 + 128);
        let _ = writeln!(
            out,
            "{bold}--- {}{reset}\n{bold}+++ {}{reset}",
            crate::sanitize::for_terminal(old_label),
            crate::sanitize::for_terminal(new_label)
        );
        for (i, row) in self.rows.iter().enumerate() {
            let (sign, start) = match row.kind {
                RowKind::Hunk => ("", cyan),
                RowKind::Context => (" ", ""),
                RowKind::Removed => ("-", red),
                RowKind::Added => ("+", green),
            };
            let end = if start.is_empty() { "" } else { reset };
            let _ = writeln!(out, "{start}{sign}{}{end}", self.text(i));
        }
        out
    }
}

/// The changed ranges of kept lines, (old, new) per change, in order.
fn changed_ranges(old: &Side, new: &Side) -> Vec<(Range<u32>, Range<u32>)> {
    fn tokens<'a>(side: &'a Side, interner: &mut Interner<&'a str>) -> Vec<Token> {
        (0..side.len())
            .map(|i| interner.intern(side.line(i)))
            .collect()
    }
    let mut input: InternedInput<&str> = InternedInput {
        before: Vec::new(),
        after: Vec::new(),
        interner: Interner::new(old.spans.len() + new.spans.len()),
    };
    input.before = tokens(old, &mut input.interner);
    input.after = tokens(new, &mut input.interner);
    // Myers (with git's and GNU diff's heuristics) rather than histogram: a config repeats the
    // same lines (`!`, ` no shutdown`) thousands of times, where histogram falls back to Myers
    // after costly counting (15× slower on the bench's pair).
    let mut diff = Diff::compute(Algorithm::Myers, &input);
    diff.postprocess_lines(&input);
    diff.hunks().map(|h| (h.before, h.after)).collect()
}

/// Byte ranges that differ between two versions of a line, word by word.
fn word_changes(old: &str, new: &str) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    use similar::{ChangeTag, TextDiff};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str, context: usize) -> LineDiff {
        LineDiff::compute(old.into(), new.into(), &[], context)
    }

    /// Every row's numbers agree with its hunk header: counting from the header's starts, the
    /// old side advances on context and removed rows, the new side on context and added rows.
    fn assert_numbers_follow_headers(d: &LineDiff) {
        let (mut old_next, mut new_next) = (0usize, 0usize);
        for i in 0..d.rows().len() {
            match d.rows()[i].kind {
                RowKind::Hunk => {
                    let h = d.header(i).unwrap();
                    old_next = if h.old_len == 0 {
                        h.old_start + 1
                    } else {
                        h.old_start
                    };
                    new_next = if h.new_len == 0 {
                        h.new_start + 1
                    } else {
                        h.new_start
                    };
                }
                RowKind::Context => {
                    assert_eq!(d.old_no(i), Some(old_next), "row {i}");
                    assert_eq!(d.new_no(i), Some(new_next), "row {i}");
                    old_next += 1;
                    new_next += 1;
                }
                RowKind::Removed => {
                    assert_eq!((d.old_no(i), d.new_no(i)), (Some(old_next), None));
                    old_next += 1;
                }
                RowKind::Added => {
                    assert_eq!((d.old_no(i), d.new_no(i)), (None, Some(new_next)));
                    new_next += 1;
                }
            }
        }
    }

    fn numbered(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("line {i}")).collect()
    }

    #[test]
    fn numbers_follow_the_hunk_headers_for_insertions_and_deletions_anywhere() {
        let base = numbered(60);
        let text = |lines: &[String]| lines.join("\n") + "\n";
        let mut cases: Vec<(String, Vec<String>)> = Vec::new();
        for at in [0usize, 35, 60] {
            let mut inserted = base.clone();
            inserted.splice(at..at, ["new a".to_string(), "new b".to_string()]);
            cases.push((format!("insert at {at}"), inserted));
            let mut deleted = base.clone();
            let end = (at + 3).min(base.len());
            let from = end.saturating_sub(3);
            deleted.drain(from..end);
            cases.push((format!("delete at {at}"), deleted));
        }
        for (what, new) in &cases {
            for old_first in [true, false] {
                let (a, b) = if old_first {
                    (text(&base), text(new))
                } else {
                    (text(new), text(&base))
                };
                let d = diff(&a, &b, 3);
                assert!(!d.hunks().is_empty(), "{what}");
                assert_numbers_follow_headers(&d);
                // The unified text has the same headers GNU diff prints.
                let unified = d.unified("a", "b", false);
                assert!(unified.contains("@@ -"), "{what}: {unified}");
            }
        }
        // The case from the report: an insertion after line 38 in a hunk starting at 36.
        let mut inserted = base.clone();
        inserted.splice(38..38, ["x".into(), "y".into(), "z".into()]);
        let d = diff(&text(&base), &text(&inserted), 3);
        let header = d.header(d.hunks()[0]).unwrap();
        assert_eq!(header.to_string(), "@@ -36,6 +36,9 @@");
        let left: Vec<usize> = d
            .side_by_side()
            .iter()
            .filter_map(|(l, _)| l.and_then(|l| d.old_no(l)))
            .collect();
        assert_eq!(left, vec![36, 37, 38, 39, 40, 41]);
    }

    /// Applies a unified diff (our own output) to `old`, trusting only the hunk headers' old
    /// starts and the lines' signs: the result must be `new`.
    fn patch(old: &str, unified: &str) -> String {
        let old_lines: Vec<&str> = old.lines().collect();
        let mut out: Vec<String> = Vec::new();
        let mut at = 0usize; // old lines copied so far
        for line in unified.lines().skip(2) {
            if let Some(header) = line.strip_prefix("@@ -") {
                let range = header.split(' ').next().unwrap();
                let mut parts = range.split(',');
                let start: usize = parts.next().unwrap().parse().unwrap();
                let len: usize = parts.next().map_or(1, |l| l.parse().unwrap());
                let first = if len == 0 { start } else { start - 1 };
                out.extend(old_lines[at..first].iter().map(|l| l.to_string()));
                at = first;
            } else if let Some(text) = line.strip_prefix('+') {
                out.push(text.to_string());
            } else if let Some(text) = line.strip_prefix('-') {
                assert_eq!(old_lines[at], text, "a removed line is the old line there");
                at += 1;
            } else {
                let text = line.strip_prefix(' ').unwrap();
                assert_eq!(old_lines[at], text, "a context line is the old line there");
                out.push(text.to_string());
                at += 1;
            }
        }
        out.extend(old_lines[at..].iter().map(|l| l.to_string()));
        out.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn the_unified_text_patches_old_into_new() {
        // Deterministic edits: replace, insert and delete at pseudo-random places.
        let mut seed = 0x2545_f491_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..40 {
            let old_lines: Vec<String> = (0..200).map(|i| format!("l{} {}", i % 17, i)).collect();
            let mut new_lines = old_lines.clone();
            for _ in 0..(1 + round % 6) {
                let at = next(new_lines.len());
                match next(3) {
                    0 => new_lines[at] = format!("changed {round} {at}"),
                    1 => new_lines.insert(at, format!("inserted {round}")),
                    _ => {
                        new_lines.remove(at);
                    }
                }
            }
            let text =
                |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
            let (old, new) = (text(&old_lines), text(&new_lines));
            for context in [0, 1, 3] {
                let d = diff(&old, &new, context);
                assert_numbers_follow_headers(&d);
                assert_eq!(
                    patch(&old, &d.unified("a", "b", false)),
                    new,
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn an_empty_side_gives_diff_u_headers() {
        let d = diff("", "a\nb\n", 3);
        assert_eq!(d.header(0).unwrap().to_string(), "@@ -0,0 +1,2 @@");
        let d = diff("a\n", "", 3);
        assert_eq!(d.header(0).unwrap().to_string(), "@@ -1 +0,0 @@");
        assert!(diff("same\n", "same\n", 3).is_empty());
    }

    #[test]
    fn changed_words_and_volatile_lines() {
        let old = "hostname sw1\n! Last configuration change at 10:00\ninterface Gi0/1\n description uplink to rack B12\n shutdown\nend\n";
        let new = "hostname sw1\n! Last configuration change at 11:00\ninterface Gi0/1\n description uplink to rack C07\nend\n";
        let d = diff(old, new, 1);
        assert_eq!((d.added, d.removed), (2, 3));
        let description = (0..d.rows().len())
            .find(|&i| d.rows()[i].kind == RowKind::Added && d.text(i).contains("C07"))
            .unwrap();
        assert_eq!(d.new_no(description), Some(4));
        let words = d.words(description);
        assert_eq!(d.text(description).get(words[0].clone()), Some("C07"));

        let hide = [regex::Regex::new("^! Last configuration change").unwrap()];
        let quiet = LineDiff::compute(old.into(), new.into(), &hide, 1);
        assert_eq!(quiet.hidden, 2);
        assert!((0..quiet.rows().len()).all(|i| !quiet.text(i).contains("Last configuration")));
        assert_eq!((quiet.added, quiet.removed), (1, 2));
        assert_eq!(quiet.hunks().len(), 1);
        assert!(
            quiet
                .side_by_side()
                .iter()
                .any(|(l, r)| l.is_some() && r.is_none()),
            "the shutdown line has no partner"
        );
        assert_numbers_follow_headers(&quiet);
    }

    #[test]
    fn escape_sequences_never_reach_the_text_shown() {
        let d = diff("a\n", "a\x1b[2J\n", 0);
        assert!((0..d.rows().len()).all(|i| !d.text(i).contains('\x1b')));
        assert!((0..d.rows().len()).any(|i| d.text(i).contains('␛')));
        assert!(!d.unified("a\x1b]0;x\x07", "b", false).contains('\x1b'));
    }
}
