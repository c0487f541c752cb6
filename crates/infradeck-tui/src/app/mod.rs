//! The dashboard's state and its reaction to input, independent of any real terminal: the event
//! loop in `ui::run` feeds it keys and ticks and draws it; tests feed it the same keys and draw it
//! into a `TestBackend`.

mod command_line;
mod draw;
mod modes;

use command_line::{COMMANDS, complete_command};

use super::header::Header;
use super::keys::{self, Action, Scope};
use super::theme::Theme;
use super::views;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use infradeck_core::config::SourceConfig;
use infradeck_core::store::Store;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use std::collections::VecDeque;
use tui_textarea::TextArea;

/// What the dashboard knows about where it runs; fixed for the session.
#[derive(Debug, Clone)]
pub struct Env {
    /// The database (file name or profile) shown in the header.
    pub database_label: String,
    /// `user@host`, also the reviewer recorded on approvals.
    pub identity: String,
    pub reviewer: String,
    pub read_only: bool,
    pub theme: Theme,
    pub sources: Vec<SourceConfig>,
    pub volatile_lines: Vec<regex::Regex>,
    /// Rows not confirmed for this long are drawn dimmed.
    pub stale_after: chrono::Duration,
    /// A fixed clock makes snapshot tests reproducible.
    pub fixed_now: Option<DateTime<Utc>>,
    /// Whether NetBox apply/rollback are available (a `[netbox]` section exists).
    pub netbox_configured: bool,
    /// `[dashboard] environment`: shown in the header, production in red.
    pub environment: Option<String>,
    /// `[machines]` and `[health]`: how machines are judged (the past is recomputed with them,
    /// and a volume crossing a threshold is a change).
    pub machine_rules: infradeck_core::machines::MachineRules,
    /// When this user last looked before this session (the changes since then are new).
    pub last_look: Option<String>,
    /// `[dashboard] landing`: the page the dashboard opens on.
    pub landing: infradeck_core::config::Landing,
    /// `[embeddings]` is configured: search asks the service for hybrid ranking (it embeds the
    /// query) and shows full-text hits until the answer comes.
    pub semantic_search: bool,
}

impl Env {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.fixed_now.unwrap_or_else(Utc::now)
    }
}

/// What a view gets to work with.
pub(crate) struct Cx<'a> {
    pub(crate) store: &'a mut Store,
    pub(crate) env: &'a Env,
    pub(crate) now: DateTime<Utc>,
    pub(crate) log: &'a VecDeque<String>,
}

/// Work the dashboard asks the event loop to do: anything that talks to the network or the
/// terminal outside ratatui.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Sync(Vec<SourceConfig>),
    Cancel {
        sync_id: String,
    },
    Copy(String),
    /// Open a URL in a browser where there is one; elsewhere it is copied instead.
    OpenUrl(String),
    Apply {
        batch_id: String,
    },
    DryRun {
        batch_id: String,
    },
    /// A new NetBox plan (the batch id is empty).
    Plan,
    /// Hybrid search (the service embeds the query); the answer goes to [`App::search_answer`].
    Search {
        query: String,
        limit: usize,
    },
    Rollback {
        batch_id: String,
    },
}

/// A one-line message in the footer until the next key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Flash {
    pub(crate) text: String,
    pub(crate) error: bool,
}

impl Flash {
    pub(crate) fn info(text: impl Into<String>) -> Flash {
        Flash {
            text: text.into(),
            error: false,
        }
    }
    pub(crate) fn error(text: impl Into<String>) -> Flash {
        Flash {
            text: text.into(),
            error: true,
        }
    }
}

type ReasonSubmit = Box<dyn FnOnce(&mut Store, &str) -> anyhow::Result<String>>;
type ConfirmAction = Box<dyn FnOnce(&mut Store) -> anyhow::Result<(String, Option<Effect>)>>;

/// A dialog over the current view.
pub(crate) enum Modal {
    /// Asks for a reason (a rejection), then calls `submit` with it.
    Reason {
        title: String,
        textarea: Box<TextArea<'static>>,
        submit: ReasonSubmit,
    },
    /// Yes/No with Cancel focused; `require` must be typed first when set.
    Confirm {
        title: String,
        body: Vec<String>,
        require: Option<String>,
        typed: String,
        yes_focused: bool,
        on_yes: ConfirmAction,
    },
    /// Read-only text, such as a run's full error.
    Text {
        title: String,
        lines: Vec<String>,
        scroll: u16,
    },
}

/// What a view did with an action.
pub(crate) enum Outcome {
    Ignored,
    Handled,
    Push(Box<dyn Screen>),
    Effect(Effect),
    Flash(Flash),
    Modal(Modal),
}

/// One view of the dashboard.
pub(crate) trait Screen {
    /// The breadcrumb label.
    fn title(&self) -> String;
    /// Binding scopes, most specific first.
    fn scopes(&self) -> &'static [Scope];
    /// Re-reads the view's data from the store.
    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()>;
    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx);
    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome>;
    /// Why `action` does nothing here right now (nothing selected, the wrong level of a
    /// hierarchy), or `None` when it is available. The footer shows only available keys, and an
    /// unavailable key says why when pressed.
    fn unavailable(&self, _action: Action) -> Option<&'static str> {
        None
    }
    /// The list's selection, for views that are a list (a mouse click selects in it).
    fn cursor_mut(&mut self) -> Option<&mut crate::widgets::cursor::Cursor> {
        None
    }
    /// Selects the row drawn at screen row `y` (a mouse click); true when there was one.
    fn click(&mut self, y: u16, _cx: &mut Cx) -> anyhow::Result<bool> {
        Ok(self.cursor_mut().is_some_and(|cursor| cursor.click(y)))
    }
    /// Work the view wants done outside it (a search the service answers), taken once.
    fn take_request(&mut self) -> Option<Effect> {
        None
    }
    /// The service's answer to a search this view asked for; true when it was this view's
    /// current query and is now shown.
    fn search_answer(&mut self, _query: &str, _answer: &infradeck_core::app::SearchAnswer) -> bool {
        false
    }
    /// The filter (or search) text, for views that have one.
    fn filter(&self) -> Option<&str> {
        None
    }
    fn set_filter(&mut self, _text: &str, _cx: &mut Cx) -> anyhow::Result<()> {
        Ok(())
    }
    /// What `y` copies.
    fn copy_text(&self) -> Option<String> {
        None
    }
    /// The device this view is about or has selected, for `:tree` and `:configs`.
    fn device(&self) -> Option<i64> {
        None
    }
    /// The past time this view shows (`:at`), for the header's marker.
    fn as_of(&self) -> Option<&str> {
        None
    }
}

enum Mode {
    Normal,
    Command { input: String },
    Filter { input: String, before: String },
    Help { scroll: u16 },
    Modal(Modal),
}

impl Mode {
    /// The binding scope of the open mode; `None` in normal mode (the view's scopes apply).
    fn scope(&self) -> Option<Scope> {
        match self {
            Mode::Normal => None,
            Mode::Command { .. } => Some(Scope::CommandLine),
            Mode::Filter { .. } => Some(Scope::FilterLine),
            Mode::Help { .. } => Some(Scope::HelpScreen),
            Mode::Modal(Modal::Text { .. }) => Some(Scope::TextView),
            Mode::Modal(Modal::Reason { .. }) => Some(Scope::ReasonBox),
            Mode::Modal(Modal::Confirm { .. }) => Some(Scope::Confirm),
        }
    }
}

/// The whole dashboard.
pub struct App {
    store: Store,
    pub(crate) env: Env,
    views: Vec<Box<dyn Screen>>,
    mode: Mode,
    header: Header,
    flash: Option<Flash>,
    generation: Option<(i64, u64)>,
    effects: Vec<Effect>,
    log: VecDeque<String>,
    /// Where the breadcrumb's views were drawn (screen row, and each one's columns), so a click
    /// on one goes back to it.
    crumbs: (u16, Vec<std::ops::Range<u16>>),
    /// The last left click (when, column, row), to tell a double click.
    last_click: Option<(std::time::Instant, u16, u16)>,
    pub quit: bool,
}

/// Two clicks on the same cell closer than this are a double click (the common desktop default).
const DOUBLE_CLICK: std::time::Duration = std::time::Duration::from_millis(400);

impl App {
    /// Opens on the device list. Reads only what the first frame shows.
    pub fn new(store: Store, env: Env) -> anyhow::Result<App> {
        let mut app = App {
            store,
            env,
            views: Vec::new(),
            mode: Mode::Normal,
            header: Header::default(),
            flash: None,
            generation: None,
            effects: Vec::new(),
            log: VecDeque::new(),
            crumbs: (0, Vec::new()),
            last_click: None,
            quit: false,
        };
        let devices = views::devices::DevicesView::new(None);
        match app.landing()? {
            // The machine list is read when Esc brings it on top (a pop refreshes the view).
            Some(changes) => {
                app.views.push(Box::new(devices));
                app.views.push(Box::new(changes));
            }
            None => app.push(Box::new(devices))?,
        }
        app.reload_header_if_changed()?;
        Ok(app)
    }

    /// The changes to open over the machine list, read, when `[dashboard] landing` asks for
    /// them: always (`changes`), or when something changed since the user's last look
    /// (`auto`). Esc goes back to the machines.
    fn landing(&mut self) -> anyhow::Result<Option<views::changes::ChangesView>> {
        use infradeck_core::config::Landing;
        let always = match self.env.landing {
            Landing::Devices => return Ok(None),
            Landing::Changes => true,
            Landing::Auto if self.env.last_look.is_some() => false,
            Landing::Auto => return Ok(None),
        };
        let mut changes = views::changes::ChangesView::new(
            self.default_changes_range(),
            self.env.last_look.clone(),
        );
        let (mut cx, _) = self.cx();
        changes.refresh(&mut cx)?;
        Ok((always || !changes.is_empty()).then_some(changes))
    }

    /// The breadcrumb trail, root first.
    pub fn breadcrumb(&self) -> Vec<String> {
        self.views.iter().map(|v| v.title()).collect()
    }

    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// A line for the run log (engine events of this process).
    pub(crate) fn log_line(&mut self, line: String) {
        if self.log.len() >= 500 {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    pub(crate) fn flash(&mut self, flash: Flash) {
        self.flash = Some(flash);
    }

    /// Shows lines of text over the current view (apply results, a dry-run preview).
    pub(crate) fn show_text(&mut self, title: &str, lines: Vec<String>) {
        self.mode = Mode::Modal(Modal::Text {
            title: title.to_string(),
            lines,
            scroll: 0,
        });
    }

    /// Prepares for filtering while nothing else happens (after the first frame, on `/`): the
    /// name index makes every keystroke of a filter over 100,000 devices a sub-millisecond lookup.
    pub fn warm(&mut self) {
        if let Err(err) = self.store.warm_name_index() {
            tracing::warn!(error = %err, "cannot build the device name index");
        }
        if let Err(err) = self.store.warm_machine_index() {
            tracing::warn!(error = %err, "cannot build the machine index");
        }
    }

    /// Whether anything is running, so the caller polls more often.
    pub(crate) fn busy(&self) -> bool {
        !self.header.running.is_empty()
    }

    fn cx(&mut self) -> (Cx<'_>, &mut Vec<Box<dyn Screen>>) {
        let now = self.env.now();
        (
            Cx {
                store: &mut self.store,
                env: &self.env,
                now,
                log: &self.log,
            },
            &mut self.views,
        )
    }

    fn push(&mut self, mut view: Box<dyn Screen>) -> anyhow::Result<()> {
        let (mut cx, views) = self.cx();
        view.refresh(&mut cx)?;
        views.push(view);
        Ok(())
    }

    /// Re-reads the header and the current view when the database moved. True when it did.
    pub(crate) fn reload_if_changed(&mut self) -> anyhow::Result<bool> {
        if !self.reload_header_if_changed()? {
            return Ok(false);
        }
        let (mut cx, views) = self.cx();
        if let Some(view) = views.last_mut() {
            view.refresh(&mut cx)?;
        }
        Ok(true)
    }

    /// Re-reads the header when the database moved (the views are the caller's). True when it
    /// did.
    fn reload_header_if_changed(&mut self) -> anyhow::Result<bool> {
        let generation = self.store.data_generation()?;
        if self.generation == Some(generation) {
            return Ok(false);
        }
        self.generation = Some(generation);
        let transitions = self.header.refresh(&self.store)?;
        for line in transitions {
            self.log_line(line);
        }
        Ok(true)
    }

    /// [`App::reload_if_changed`] for the event loop: a database that cannot be read is shown
    /// in the footer, and the dashboard stays up (the next change may well be readable).
    pub(crate) fn refresh(&mut self) -> bool {
        match self.reload_if_changed() {
            Ok(changed) => changed,
            Err(err) => {
                self.flash = Some(Flash::error(format!("cannot read the database: {err:#}")));
                true
            }
        }
    }

    /// Handles one key. True when the screen should be redrawn.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        if let Err(err) = self.handle_key(key) {
            self.flash = Some(Flash::error(format!("{err:#}")));
        }
        self.take_view_requests();
        true
    }

    /// What the current view asks to have done outside it becomes an effect.
    fn take_view_requests(&mut self) {
        if let Some(effect) = self.views.last_mut().and_then(|v| v.take_request()) {
            self.effects.push(effect);
        }
    }

    /// The service's answer to a search: shown when the current view asked for exactly that
    /// query (an answer to an older keystroke is dropped). True when the screen changed.
    pub fn search_answer(
        &mut self,
        query: &str,
        result: Result<infradeck_core::app::SearchAnswer, String>,
    ) -> bool {
        let Some(view) = self.views.last_mut() else {
            return false;
        };
        match result {
            Ok(answer) => {
                let shown = view.search_answer(query, &answer);
                if let (true, Some(notice)) = (shown, answer.notice) {
                    self.flash = Some(Flash::info(notice));
                }
                shown
            }
            Err(err) if view.filter() == Some(query) => {
                self.flash = Some(Flash::error(format!(
                    "semantic search failed ({err}): full-text results"
                )));
                true
            }
            Err(_) => false,
        }
    }

    /// Handles one mouse event that happened `at` (passed in so tests can tell double clicks):
    /// the wheel moves the selection, a click selects the row under it or goes back to a view
    /// in the breadcrumb, a double click opens the row. True when the screen should be redrawn.
    pub fn on_mouse(&mut self, mouse: MouseEvent, at: std::time::Instant) -> bool {
        let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
        match mouse.kind {
            MouseEventKind::ScrollDown => self.on_key(key(KeyCode::Down)),
            MouseEventKind::ScrollUp => self.on_key(key(KeyCode::Up)),
            MouseEventKind::Down(MouseButton::Left) => {
                let double = self.last_click.is_some_and(|(when, column, row)| {
                    (column, row) == (mouse.column, mouse.row)
                        && at.saturating_duration_since(when) <= DOUBLE_CLICK
                });
                // A third click starts a new pair.
                self.last_click = (!double).then_some((at, mouse.column, mouse.row));
                match self.click(mouse.column, mouse.row) {
                    Ok(true) if double => self.on_key(key(KeyCode::Enter)),
                    Ok(selected) => selected,
                    Err(err) => {
                        self.flash = Some(Flash::error(format!("{err:#}")));
                        true
                    }
                }
            }
            _ => false,
        }
    }

    /// A left click at (`column`, `row`): true when it selected a row (a double click opens it).
    fn click(&mut self, column: u16, row: u16) -> anyhow::Result<bool> {
        // Dialogs, the help screen and the line being edited are driven by keys.
        if !matches!(self.mode, Mode::Normal) {
            return Ok(false);
        }
        self.flash = None;
        let (crumb_row, crumbs) = &self.crumbs;
        if row == *crumb_row {
            let clicked = crumbs.iter().position(|range| range.contains(&column));
            if let Some(index) = clicked {
                self.back_to(index + 1)?;
            }
            return Ok(false);
        }
        let (mut cx, views) = self.cx();
        match views.last_mut() {
            Some(view) => view.click(row, &mut cx),
            None => Ok(false),
        }
    }

    fn handle_key(&mut self, key: KeyEvent) -> anyhow::Result<()> {
        if keys::lookup(&key, &[Scope::Anywhere]).is_some_and(|b| b.action == Action::Quit) {
            self.quit = true;
            return Ok(());
        }
        let Some(scope) = self.mode.scope() else {
            return self.normal_key(key);
        };
        self.flash = None;
        // A mode's keys come from the table too; what it does not bind is typed where text is
        // taken, and closes the help screen and the text view.
        let action = match keys::lookup(&key, &[scope]) {
            Some(binding) => Some(binding.action),
            None if scope.takes_text() => Some(Action::Type),
            None => None,
        };
        if let Some(reason) = action.and_then(|a| self.mode_unavailable(a)) {
            self.flash = Some(Flash::error(format!("not available: {reason}")));
            return Ok(());
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => Ok(()),
            Mode::Command { input } => self.command_key(key, action, input),
            Mode::Filter { input, before } => self.filter_key(key, action, input, before),
            Mode::Help { scroll } => {
                self.mode = match action {
                    Some(Action::Down) => Mode::Help { scroll: scroll + 1 },
                    Some(Action::Up) => Mode::Help {
                        scroll: scroll.saturating_sub(1),
                    },
                    Some(Action::Quit) => {
                        self.quit = true;
                        Mode::Normal
                    }
                    _ => Mode::Normal,
                };
                Ok(())
            }
            Mode::Modal(modal) => self.modal_key(key, action, modal),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> anyhow::Result<()> {
        self.flash = None;
        let scopes = self
            .views
            .last()
            .map_or(&[Scope::Global][..], |v| v.scopes());
        let Some(binding) = keys::lookup(&key, scopes) else {
            return Ok(());
        };
        if self.env.read_only && binding.writes {
            self.flash = Some(Flash::error(format!(
                "not available: read-only mode ({} {})",
                binding.label, binding.help
            )));
            return Ok(());
        }
        if let Some(reason) = self.unavailable(binding.action) {
            self.flash = Some(Flash::error(format!("not available: {reason}")));
            return Ok(());
        }
        match binding.action {
            Action::Quit => self.quit = true,
            Action::Help => self.mode = Mode::Help { scroll: 0 },
            Action::Command => {
                self.mode = Mode::Command {
                    input: String::new(),
                }
            }
            Action::Redraw => {}
            Action::Filter => {
                self.warm();
                let before = self
                    .views
                    .last()
                    .and_then(|v| v.filter())
                    .unwrap_or_default()
                    .to_string();
                self.mode = Mode::Filter {
                    input: before.clone(),
                    before,
                };
            }
            Action::Back => self.back()?,
            Action::Copy => match self.views.last().and_then(|v| v.copy_text()) {
                Some(text) => {
                    let shown = infradeck_core::sanitize::for_terminal(&text)
                        .chars()
                        .take(40)
                        .collect::<String>();
                    self.flash = Some(Flash::info(format!(
                        "copied {shown}{} to the clipboard",
                        if text.chars().count() > 40 { "…" } else { "" }
                    )));
                    self.effects
                        .push(Effect::Copy(infradeck_core::sanitize::for_clipboard(
                            &text, false,
                        )));
                }
                None => self.flash = Some(Flash::error("nothing to copy here")),
            },
            action => {
                let (mut cx, views) = self.cx();
                let Some(view) = views.last_mut() else {
                    return Ok(());
                };
                let outcome = view.act(action, &mut cx)?;
                self.apply(outcome)?;
            }
        }
        Ok(())
    }

    /// Why `action` would do nothing on the current view, or `None` when it is available: the
    /// app's own keys are judged here, the rest by the view.
    fn unavailable(&self, action: Action) -> Option<&'static str> {
        let view = self.views.last()?;
        match action {
            Action::Back if self.views.len() <= 1 && view.filter().is_none_or(str::is_empty) => {
                Some("this is the first view and no filter is set")
            }
            Action::Filter if view.filter().is_none() => Some("this view has no filter"),
            Action::Copy if view.copy_text().is_none() => Some("nothing selected to copy"),
            other => view.unavailable(other),
        }
    }

    fn apply(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        match outcome {
            Outcome::Ignored | Outcome::Handled => {}
            Outcome::Push(view) => self.push(view)?,
            Outcome::Effect(effect) => self.effects.push(effect),
            Outcome::Flash(flash) => self.flash = Some(flash),
            Outcome::Modal(modal) => self.mode = Mode::Modal(modal),
        }
        Ok(())
    }

    /// Esc: clear the current filter first, then go back one view (never past the first).
    fn back(&mut self) -> anyhow::Result<()> {
        let has_filter = self
            .views
            .last()
            .and_then(|v| v.filter())
            .is_some_and(|f| !f.is_empty());
        if has_filter {
            let (mut cx, views) = self.cx();
            if let Some(view) = views.last_mut() {
                view.set_filter("", &mut cx)?;
            }
            return Ok(());
        }
        self.back_to(self.views.len().saturating_sub(1))
    }

    /// Goes back until `depth` views are left (never fewer than one), re-reading the one on top;
    /// nothing happens when there are no more than that.
    fn back_to(&mut self, depth: usize) -> anyhow::Result<()> {
        let depth = depth.max(1);
        if self.views.len() <= depth {
            return Ok(());
        }
        self.views.truncate(depth);
        let (mut cx, views) = self.cx();
        if let Some(view) = views.last_mut() {
            view.refresh(&mut cx)?;
        }
        Ok(())
    }

    /// The device the current view is about or has selected, for `:tree` and `:configs`.
    fn selected_device(&self) -> Option<i64> {
        self.views.last().and_then(|v| v.device())
    }

    fn force_reload(&mut self) -> anyhow::Result<()> {
        self.generation = None;
        self.reload_if_changed().map(|_| ())
    }
}
