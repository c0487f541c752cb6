//! The NetBox review queue: batches, their items with a field-by-field before/after view, and
//! approve / reject (with a reason) by item, marked range or whole batch. Apply and rollback ask
//! for confirmation with Cancel focused; a batch with deletes needs its id typed.

use crate::app::{Cx, Effect, Flash, Modal, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::theme::Theme;
use crate::widgets::cursor::Cursor;
use infradeck_core::app::review;
use infradeck_core::model::{ApprovalAction, ApprovalStatus};
use infradeck_core::store::{ApprovalItem, Batch};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Wrap};
use tui_textarea::TextArea;

fn reject_modal(batch: String, ids: Vec<i64>, what: String, reviewer: String) -> Modal {
    let mut textarea = TextArea::default();
    textarea.set_placeholder_text("why? (required; the planner and the audit trail see it)");
    Modal::Reason {
        title: format!("reject {what}"),
        textarea: Box::new(textarea),
        submit: Box::new(move |store, reason| {
            let moved = review(
                store,
                &batch,
                &ids,
                ApprovalStatus::Rejected,
                &reviewer,
                Some(reason),
            )?
            .moved;
            Ok(moved_message(moved, "rejected"))
        }),
    }
}

fn moved_message(moved: usize, verb: &str) -> String {
    match moved {
        0 => format!(
            "nothing {verb}: the items were no longer pending (someone else may have reviewed them)"
        ),
        1 => format!("1 item {verb}"),
        n => format!("{n} items {verb}"),
    }
}

fn batch_action(batch: &Batch, action: Action, cx: &Cx) -> anyhow::Result<Outcome> {
    let reviewer = cx.env.reviewer.clone();
    let id = batch.batch_id.clone();
    Ok(match action {
        Action::ApproveBatch => {
            if batch.pending == 0 {
                return Ok(Outcome::Flash(Flash::info(
                    "nothing to approve: no item of this batch is pending",
                )));
            }
            // Only the pending items move: the rejected and the already reviewed are not counted.
            let body = vec![
                format!("approve all {} pending items of batch {id}?", batch.pending),
                batch.pending_by_action.text(),
            ];
            Outcome::Modal(Modal::Confirm {
                title: "approve batch".into(),
                body,
                require: None,
                typed: String::new(),
                yes_focused: false,
                on_yes: Box::new(move |store| {
                    let outcome =
                        review(store, &id, &[], ApprovalStatus::Approved, &reviewer, None)?;
                    let mut message = moved_message(outcome.moved, "approved");
                    if outcome.left_to_choose > 0 {
                        message.push_str(&format!(
                            "; {} left pending: claims of an address two machines claim, approve the one that holds it",
                            outcome.left_to_choose
                        ));
                    }
                    Ok((message, None))
                }),
            })
        }
        Action::RejectBatch => Outcome::Modal(reject_modal(
            id.clone(),
            Vec::new(),
            format!("every pending item of {id}"),
            reviewer,
        )),
        Action::DryRun if cx.env.netbox_configured => {
            Outcome::Effect(Effect::DryRun { batch_id: id })
        }
        Action::Apply | Action::Rollback => {
            if !cx.env.netbox_configured {
                return Ok(Outcome::Flash(Flash::error(
                    "no [netbox] section in the config",
                )));
            }
            let apply = action == Action::Apply;
            // What will be sent, exactly: approved items for apply, applied ones for rollback.
            let sent = if apply {
                batch.to_apply
            } else {
                batch.applied_by_action
            };
            if sent.total() == 0 {
                return Ok(Outcome::Flash(Flash::info(if apply {
                    "nothing to apply: no item of this batch is approved (a approves, A the whole batch)"
                } else {
                    "nothing to roll back: no item of this batch is applied"
                })));
            }
            let body = if apply {
                vec![
                    format!(
                        "write the {} approved items of {id} to NetBox?{}",
                        sent.total(),
                        if batch.failed > 0 {
                            " (failed ones are retried)"
                        } else {
                            ""
                        }
                    ),
                    sent.text(),
                    "each object is re-read first; anything changed since the plan becomes a conflict".into(),
                ]
            } else {
                vec![
                    format!("undo the {} applied items of {id} in NetBox?", sent.total()),
                    format!(
                        "{} created objects deleted · {} updates reverted · {} deleted objects recreated",
                        sent.creates, sent.updates, sent.deletes
                    ),
                    "each object is restored to what it was before apply".into(),
                ]
            };
            // Deleting in NetBox asks for the batch id typed: apply's deletes, rollback's creates.
            let deletes = if apply { sent.deletes } else { sent.creates };
            Outcome::Modal(Modal::Confirm {
                title: if apply {
                    "apply batch".into()
                } else {
                    "roll back batch".into()
                },
                body,
                require: (deletes > 0).then(|| id.clone()),
                typed: String::new(),
                yes_focused: false,
                on_yes: Box::new(move |_| {
                    Ok(if apply {
                        (
                            format!("applying {id}…"),
                            Some(Effect::Apply { batch_id: id }),
                        )
                    } else {
                        (
                            format!("rolling back {id}…"),
                            Some(Effect::Rollback { batch_id: id }),
                        )
                    })
                }),
            })
        }
        _ => Outcome::Ignored,
    })
}

/// The batches.
#[derive(Default)]
pub(crate) struct NetboxView {
    batches: Vec<Batch>,
    cursor: Cursor,
    height: usize,
}

impl Screen for NetboxView {
    fn title(&self) -> String {
        "netbox".into()
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match action {
            Action::Mark | Action::Approve | Action::Reject | Action::NextKind => {
                Some("items are reviewed inside a batch: Enter opens it")
            }
            Action::Open
            | Action::ApproveBatch
            | Action::RejectBatch
            | Action::Apply
            | Action::DryRun
            | Action::Rollback
                if self.batches.is_empty() =>
            {
                Some("no batch yet: p plans one")
            }
            _ => None,
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Netbox, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.batches = cx.store.batches()?;
        Ok(())
    }

    fn copy_text(&self) -> Option<String> {
        self.batches
            .get(self.cursor.selected)
            .map(|b| b.batch_id.clone())
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.batches.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        if action == Action::Plan {
            return Ok(if cx.env.netbox_configured {
                Outcome::Effect(Effect::Plan)
            } else {
                Outcome::Flash(Flash::error("no [netbox] section in the config"))
            });
        }
        let Some(batch) = self.batches.get(self.cursor.selected) else {
            return Ok(Outcome::Ignored);
        };
        match action {
            Action::Open => Ok(Outcome::Push(Box::new(BatchView::new(&batch.batch_id)))),
            _ => batch_action(batch, action, cx),
        }
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.batches.len(), self.height);
        self.cursor
            .drawn_at(area.y + 1, self.height, self.batches.len(), 1);
        if self.batches.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "no NetBox batches yet: `infradeck netbox plan` makes one",
                    theme.muted(),
                )),
                area,
            );
            return;
        }
        let rows: Vec<Row> = self
            .batches
            .iter()
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, b)| {
                let mut review = format!(
                    "{} pending · {} ok · {} no · {} applied",
                    b.pending, b.approved, b.rejected, b.applied
                );
                if b.rolled_back > 0 {
                    review.push_str(&format!(" · {} rolled back", b.rolled_back));
                }
                if b.failed > 0 {
                    review.push_str(&format!(" · {} failed", b.failed));
                }
                let row = Row::new(vec![
                    infradeck_core::sanitize::for_terminal(&b.batch_id).into_owned(),
                    b.planned_at.clone().unwrap_or_default(),
                    format!("+{} ~{} -{}", b.creates, b.updates, b.deletes),
                    review,
                    infradeck_core::sanitize::for_terminal(b.state.as_deref().unwrap_or(""))
                        .into_owned(),
                ]);
                crate::widgets::table::select(row, i == self.cursor.selected, theme)
            })
            .collect();
        // Columns as wide as their widest value (a batch id must be readable whole to be
        // typed); the review column takes what is left.
        let widest = |cell: &dyn Fn(&Batch) -> String, header: &str| {
            self.batches
                .iter()
                .map(|b| cell(b).chars().count())
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0) as u16
        };
        let widths = [
            Constraint::Length(widest(&|b| b.batch_id.clone(), "BATCH")),
            Constraint::Length(19),
            Constraint::Length(widest(
                &|b| format!("+{} ~{} -{}", b.creates, b.updates, b.deletes),
                "CHANGES",
            )),
            Constraint::Min(20),
            Constraint::Length(widest(&|b| b.state.clone().unwrap_or_default(), "STATE")),
        ];
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &widths,
                &["BATCH", "PLANNED", "CHANGES", "REVIEW", "STATE"],
                theme,
            ),
            area,
        );
    }
}

/// The items of one batch.
pub(crate) struct BatchView {
    batch_id: String,
    batch: Option<Batch>,
    /// Grouped by kind (in the order apply writes them), each kind by item number.
    items: Vec<ApprovalItem>,
    /// Each item's number within its batch (`#3`), as `netbox review` and `approve` name it.
    numbers: std::collections::HashMap<i64, usize>,
    /// The kinds of object in the batch, in `items` order, with how many items each has.
    kinds: Vec<(String, usize)>,
    /// The one kind shown (`K` steps through them), or every kind.
    kind: Option<String>,
    /// Indexes into `items` of those the filter lets through, in order.
    visible: Vec<usize>,
    filter: String,
    cursor: Cursor,
    anchor: Option<usize>,
    height: usize,
}

/// One word of the item filter: `action:`, `type:` (object type), `status:`, `device:`, or text
/// anywhere (device, object type, the proposed change); `!` in front inverts it.
fn item_matches(item: &ApprovalItem, word: &str) -> bool {
    let (negated, word) = match word.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let lower = word.to_lowercase();
    let contains =
        |text: Option<&str>, needle: &str| text.is_some_and(|t| t.to_lowercase().contains(needle));
    let matched = match lower.split_once(':') {
        Some(("action", v)) => item.action.as_str().starts_with(v),
        Some(("type" | "object", v)) => contains(item.netbox_object_type.as_deref(), v),
        Some(("status", v)) => item.approval_status.as_str().starts_with(v),
        Some(("device", v)) => contains(item.device_name.as_deref(), v),
        _ => {
            contains(item.device_name.as_deref(), &lower)
                || contains(item.netbox_object_type.as_deref(), &lower)
                || contains(item.proposed_changes.as_deref(), &lower)
                || item.action.as_str() == lower
                || item.approval_status.as_str() == lower
        }
    };
    matched != negated
}

impl BatchView {
    pub(crate) fn new(batch_id: &str) -> BatchView {
        BatchView {
            batch_id: batch_id.to_string(),
            batch: None,
            items: Vec::new(),
            numbers: Default::default(),
            kinds: Vec::new(),
            kind: None,
            visible: Vec::new(),
            filter: String::new(),
            cursor: Cursor::default(),
            anchor: None,
            height: 10,
        }
    }

    fn apply_filter(&mut self) {
        let words: Vec<&str> = self.filter.split_whitespace().collect();
        let kind = self.kind.as_deref();
        self.visible = (0..self.items.len())
            .filter(|&i| kind.is_none_or(|k| kind_of(&self.items[i]) == k))
            .filter(|&i| words.iter().all(|w| item_matches(&self.items[i], w)))
            .collect();
    }

    /// Takes the batch's items: numbered and grouped by kind as `netbox review` shows them,
    /// counted per kind.
    fn set_items(&mut self, items: Vec<ApprovalItem>) {
        self.numbers = infradeck_core::store::item_numbers(&items);
        self.items = infradeck_core::store::grouped_by_kind(items);
        self.kinds.clear();
        for item in &self.items {
            match self.kinds.last_mut() {
                Some((kind, n)) if kind == kind_of(item) => *n += 1,
                _ => self.kinds.push((kind_of(item).to_string(), 1)),
            }
        }
        if self
            .kind
            .as_ref()
            .is_some_and(|k| !self.kinds.iter().any(|(kind, _)| kind == k))
        {
            self.kind = None;
        }
        self.apply_filter();
    }

    /// The kinds line: every kind with its count, the one shown marked.
    fn kinds_line(&self, theme: Theme) -> Line<'static> {
        let mut spans = vec![Span::styled(
            format!(" all {} ", self.items.len()),
            if self.kind.is_none() {
                theme.selected()
            } else {
                theme.muted()
            },
        )];
        for (kind, n) in &self.kinds {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!(
                    " {} {n} ",
                    infradeck_core::sanitize::for_terminal(short_kind(kind))
                ),
                if self.kind.as_deref() == Some(kind) {
                    theme.selected()
                } else {
                    theme.base()
                },
            ));
        }
        Line::from(spans)
    }

    fn selected(&self) -> Option<&ApprovalItem> {
        self.visible
            .get(self.cursor.selected)
            .and_then(|&i| self.items.get(i))
    }

    fn marked_range(&self) -> std::ops::RangeInclusive<usize> {
        match self.anchor {
            Some(a) => a.min(self.cursor.selected)..=a.max(self.cursor.selected),
            None => self.cursor.selected..=self.cursor.selected,
        }
    }

    /// The items of the marked range (of the visible rows: a filter narrows what a range takes).
    fn marked_ids(&self) -> Vec<i64> {
        self.marked_range()
            .filter_map(|row| self.visible.get(row))
            .filter_map(|&i| self.items.get(i))
            .map(|i| i.id)
            .collect()
    }
}

/// An item's kind of object: its NetBox endpoint (`dcim/interfaces`).
fn kind_of(item: &ApprovalItem) -> &str {
    item.netbox_object_type.as_deref().unwrap_or("?")
}

/// A kind as people say it: `dcim/interfaces` → `interfaces`.
fn short_kind(kind: &str) -> &str {
    kind.rsplit(['/', '.']).next().unwrap_or(kind)
}

/// A field-by-field view of an item's proposed change.
fn change_lines(item: &ApprovalItem, theme: Theme) -> Vec<Line<'static>> {
    let clean = |v: &serde_json::Value| -> String {
        let text = match v {
            serde_json::Value::Null => "—".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        infradeck_core::sanitize::for_terminal(&text).into_owned()
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", item.action.as_str()), theme.title()),
        Span::raw(
            infradeck_core::sanitize::for_terminal(
                item.netbox_object_type.as_deref().unwrap_or("?"),
            )
            .into_owned(),
        ),
        Span::styled(
            // NetBox's own id, said so: `#n` means an item's number within its batch.
            item.netbox_object_id
                .map(|id| format!(" (NetBox id {id})"))
                .unwrap_or_else(|| " (new)".into()),
            theme.muted(),
        ),
        Span::styled(
            // Reviewer and comment were typed by people (or another tool): sanitized too.
            match (&item.approved_by, &item.review_comment) {
                (Some(by), Some(comment)) => format!(
                    "  {} by {}: {}",
                    item.approval_status.as_str(),
                    infradeck_core::sanitize::for_terminal(by),
                    infradeck_core::sanitize::for_terminal(comment)
                ),
                (Some(by), None) => format!(
                    "  {} by {}",
                    item.approval_status.as_str(),
                    infradeck_core::sanitize::for_terminal(by)
                ),
                _ => format!("  {}", item.approval_status.as_str()),
            },
            theme.muted(),
        ),
    ])];
    let changes: serde_json::Value = item
        .proposed_changes
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(serde_json::Value::Null);
    match changes.get("fields").and_then(|f| f.as_object()) {
        Some(fields) => {
            for (name, change) in fields {
                let from = change.get("from").unwrap_or(&serde_json::Value::Null);
                let to = change.get("to").unwrap_or(&serde_json::Value::Null);
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {:<22}", infradeck_core::sanitize::for_terminal(name)),
                        theme.muted(),
                    ),
                    Span::styled(
                        format!("- {}", clean(from)),
                        if from.is_null() {
                            theme.muted()
                        } else {
                            theme.removed()
                        },
                    ),
                    Span::raw("   "),
                    Span::styled(
                        format!("+ {}", clean(to)),
                        if to.is_null() {
                            theme.muted()
                        } else {
                            theme.added()
                        },
                    ),
                ]));
            }
        }
        None => lines.push(Line::raw(
            infradeck_core::sanitize::for_terminal(&changes.to_string()).into_owned(),
        )),
    }
    // Apply will refuse it: what it would send is not what was approved.
    if let Some(why) = item.changed_since_approval() {
        lines.push(Line::from(Span::styled(
            format!(
                "  changed since approval: {}",
                infradeck_core::sanitize::for_terminal(&why)
            ),
            theme.conflict(),
        )));
    }
    // Why a person must decide, or what approving it means for an object made by hand.
    let notes = [
        changes
            .pointer("/choice/why")
            .and_then(|v| v.as_str())
            .map(|why| format!("  choose: {why}")),
        changes
            .pointer("/adopt/matched_by")
            .and_then(|v| v.as_str())
            .map(|by| {
                format!(
                    "  adopt: made by hand in NetBox (untagged), the same machine by {by}; approving tags it ours"
                )
            }),
        changes
            .get("why")
            .and_then(|v| v.as_str())
            .map(|why| format!("  why: {why}")),
    ];
    for note in notes.into_iter().flatten() {
        lines.push(Line::from(Span::styled(
            infradeck_core::sanitize::for_terminal(&note).into_owned(),
            theme.warn(),
        )));
    }
    if let Some(conflict) = changes.get("conflict") {
        lines.push(Line::from(Span::styled(
            format!(
                "  conflict: NetBox now has {}",
                infradeck_core::sanitize::for_terminal(&conflict.to_string())
            ),
            theme.conflict(),
        )));
    }
    lines
}

impl Screen for BatchView {
    fn title(&self) -> String {
        infradeck_core::sanitize::for_terminal(&self.batch_id).into_owned()
    }

    fn unavailable(&self, action: Action) -> Option<&'static str> {
        match action {
            Action::Plan => Some("plans are made from the batch list: Esc goes back to it"),
            Action::Mark | Action::Approve | Action::Reject if self.items.is_empty() => {
                Some("this batch has no items")
            }
            Action::Mark | Action::Approve | Action::Reject | Action::Open
                if self.visible.is_empty() =>
            {
                Some("no item matches the filter: Esc clears it")
            }
            _ => None,
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Netbox, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn filter(&self) -> Option<&str> {
        Some(&self.filter)
    }

    fn set_filter(&mut self, text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        self.filter = text.to_string();
        self.anchor = None;
        self.cursor = Cursor::default();
        self.apply_filter();
        Ok(())
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.set_items(cx.store.batch_items(&self.batch_id)?);
        self.batch = cx
            .store
            .batches()?
            .into_iter()
            .find(|b| b.batch_id == self.batch_id);
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        self.selected().and_then(|i| i.device_id)
    }

    fn copy_text(&self) -> Option<String> {
        self.selected().and_then(|i| i.proposed_changes.clone())
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.visible.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let reviewer = cx.env.reviewer.clone();
        Ok(match action {
            Action::NextKind => {
                let next = match &self.kind {
                    None => 0,
                    Some(k) => self
                        .kinds
                        .iter()
                        .position(|(kind, _)| kind == k)
                        .map_or(0, |i| i + 1),
                };
                self.kind = self.kinds.get(next).map(|(kind, _)| kind.clone());
                self.anchor = None;
                self.cursor = Cursor::default();
                self.apply_filter();
                Outcome::Handled
            }
            Action::Mark => {
                self.anchor = match self.anchor {
                    Some(_) => None,
                    None => Some(self.cursor.selected),
                };
                Outcome::Handled
            }
            Action::Approve => {
                let ids = self.marked_ids();
                let moved = review(
                    cx.store,
                    &self.batch_id,
                    &ids,
                    ApprovalStatus::Approved,
                    &reviewer,
                    None,
                )?
                .moved;
                self.anchor = None;
                self.refresh(cx)?;
                Outcome::Flash(Flash::info(moved_message(moved, "approved")))
            }
            Action::Reject => {
                let ids = self.marked_ids();
                let what = if ids.len() == 1 {
                    // Its number in the batch, as the list and `netbox review` show it.
                    format!("item #{}", self.numbers.get(&ids[0]).copied().unwrap_or(0))
                } else {
                    format!("{} items", ids.len())
                };
                self.anchor = None;
                Outcome::Modal(reject_modal(self.batch_id.clone(), ids, what, reviewer))
            }
            Action::Open => match self.device() {
                Some(id) => Outcome::Push(Box::new(super::detail::DetailView::new(id))),
                None => Outcome::Ignored,
            },
            other => match &self.batch {
                Some(batch) => batch_action(batch, other, cx)?,
                None => Outcome::Ignored,
            },
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        let list_height = (area.height / 2).max(3);
        let [progress_area, kinds_area, list_area, change_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(list_height),
            Constraint::Min(3),
        ])
        .areas(area);
        // Apply progress: of the items that were approved, how many have an outcome.
        let count = |status: ApprovalStatus| {
            self.items
                .iter()
                .filter(|i| i.approval_status == status)
                .count()
        };
        let settled = count(ApprovalStatus::Applied)
            + count(ApprovalStatus::Conflict)
            + count(ApprovalStatus::Failed);
        let to_write = settled + count(ApprovalStatus::Approved) + count(ApprovalStatus::Applying);
        // Every status that has items, so the line fits and nothing (rolled back included) is
        // left out.
        let parts: Vec<String> = [
            (ApprovalStatus::Pending, "pending"),
            (ApprovalStatus::Approved, "approved"),
            (ApprovalStatus::Applying, "applying"),
            (ApprovalStatus::Applied, "applied"),
            (ApprovalStatus::Conflict, "conflicts"),
            (ApprovalStatus::Failed, "failed"),
            (ApprovalStatus::Rejected, "rejected"),
            (ApprovalStatus::RolledBack, "rolled back"),
        ]
        .into_iter()
        .filter_map(|(status, word)| {
            let n = count(status);
            (n > 0).then(|| format!("{n} {word}"))
        })
        .collect();
        let mut label = if parts.is_empty() {
            "no items".to_string()
        } else {
            parts.join(" · ")
        };
        if !self.filter.is_empty() {
            label.push_str(&format!(
                " · showing {} of {}",
                self.visible.len(),
                self.items.len()
            ));
        }
        frame.render_widget(
            ratatui::widgets::Gauge::default()
                .gauge_style(theme.gauge())
                .ratio(if to_write == 0 {
                    0.0
                } else {
                    settled as f64 / to_write as f64
                })
                .label(label),
            progress_area,
        );
        frame.render_widget(Paragraph::new(self.kinds_line(theme)), kinds_area);
        self.height = list_area.height.saturating_sub(1).max(1) as usize;
        self.cursor.clamp(self.visible.len(), self.height);
        self.cursor
            .drawn_at(list_area.y + 1, self.height, self.visible.len(), 1);
        let marked = self.anchor.map(|_| self.marked_range());
        let rows: Vec<Row> = self
            .visible
            .iter()
            .map(|&i| &self.items[i])
            .enumerate()
            .skip(self.cursor.top)
            .take(self.height)
            .map(|(i, item)| {
                let status_style = match item.approval_status {
                    ApprovalStatus::Approved | ApprovalStatus::Applied => theme.ok(),
                    ApprovalStatus::Rejected
                    | ApprovalStatus::Conflict
                    | ApprovalStatus::Failed => theme.error(),
                    ApprovalStatus::Pending => theme.warn(),
                    _ => theme.muted(),
                };
                let action_style = match item.action {
                    ApprovalAction::Create => theme.added(),
                    ApprovalAction::Delete => theme.removed(),
                    _ => theme.base(),
                };
                let in_range = marked.as_ref().is_some_and(|r| r.contains(&i));
                let row = Row::new(vec![
                    Span::raw(if in_range { "●" } else { " " }),
                    Span::raw(format!(
                        "#{}",
                        self.numbers.get(&item.id).copied().unwrap_or(0)
                    )),
                    Span::styled(item.action.as_str(), action_style),
                    Span::raw(
                        infradeck_core::sanitize::for_terminal(
                            item.netbox_object_type.as_deref().unwrap_or(""),
                        )
                        .into_owned(),
                    ),
                    Span::raw(
                        infradeck_core::sanitize::for_terminal(
                            item.device_name.as_deref().unwrap_or(""),
                        )
                        .into_owned(),
                    ),
                    Span::styled(item.approval_status.as_str(), status_style),
                    Span::styled(
                        infradeck_core::sanitize::for_terminal(
                            item.approved_by.as_deref().unwrap_or(""),
                        )
                        .into_owned(),
                        theme.muted(),
                    ),
                ]);
                if i == self.cursor.selected {
                    row.style(theme.selected())
                } else if in_range {
                    row.style(theme.marked())
                } else {
                    row
                }
            })
            .collect();
        // Columns sized to their values, so no status or object type is cut.
        let widest = |cell: &dyn Fn(&ApprovalItem) -> usize, header: &str| {
            self.items
                .iter()
                .map(cell)
                .chain([header.chars().count()])
                .max()
                .unwrap_or(0) as u16
        };
        frame.render_widget(
            crate::widgets::table::list(
                rows,
                &[
                    Constraint::Length(1),
                    // `#` and the largest item number.
                    Constraint::Length(self.items.len().to_string().len() as u16 + 1),
                    Constraint::Length(6),
                    Constraint::Length(widest(
                        &|i| {
                            i.netbox_object_type
                                .as_deref()
                                .unwrap_or("")
                                .chars()
                                .count()
                        },
                        "OBJECT",
                    )),
                    Constraint::Min(14),
                    Constraint::Length(widest(&|i| i.approval_status.as_str().len(), "STATUS")),
                    Constraint::Length(widest(
                        &|i| {
                            i.approved_by
                                .as_deref()
                                .unwrap_or("")
                                .chars()
                                .count()
                                .min(24)
                        },
                        "REVIEWER",
                    )),
                ],
                &["", "#", "ACTION", "OBJECT", "DEVICE", "STATUS", "REVIEWER"],
                theme,
            ),
            list_area,
        );
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Span::styled(" proposed change ", theme.muted()));
        let inner = block.inner(change_area);
        frame.render_widget(block, change_area);
        if let Some(item) = self.selected() {
            frame.render_widget(
                Paragraph::new(change_lines(item, theme)).wrap(Wrap { trim: false }),
                inner,
            );
        }
    }
}
