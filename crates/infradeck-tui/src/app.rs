//! The dashboard's state and its reaction to input, independent of any real terminal: the event
//! loop in `ui::run` feeds it keys and ticks and draws it; tests feed it the same keys and draw it
//! into a `TestBackend`.

use super::header::Header;
use super::keys::{self, Action, Scope};
use super::theme::Theme;
use super::views;
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
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
    Apply {
        batch_id: String,
    },
    DryRun {
        batch_id: String,
    },
    /// A new NetBox plan (the batch id is empty).
    Plan,
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
}

enum Mode {
    Normal,
    Command { input: String },
    Filter { input: String, before: String },
    Help { scroll: u16 },
    Modal(Modal),
}

/// A `:` command: its name, the shorter spellings it answers to, and what it opens.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) help: &'static str,
}

pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "devices",
        aliases: &["d", "dev", "all"],
        help: "every device",
    },
    Command {
        name: "vms",
        aliases: &["vm", "v"],
        help: "virtual machines",
    },
    Command {
        name: "hosts",
        aliases: &["host", "servers", "server"],
        help: "physical servers",
    },
    Command {
        name: "network",
        aliases: &["net", "n", "switches"],
        help: "network devices",
    },
    Command {
        name: "storage",
        aliases: &["sto", "arrays"],
        help: "storage arrays",
    },
    Command {
        name: "clusters",
        aliases: &["cluster"],
        help: "clusters",
    },
    Command {
        name: "tree",
        aliases: &["t", "xray"],
        help: "relationship tree of the selected device; `:tree all`: every cluster and array",
    },
    Command {
        name: "configs",
        aliases: &["config", "c", "diff"],
        help: "network device configs and their versions",
    },
    Command {
        name: "sync",
        aliases: &["s", "syncs", "runs"],
        help: "sources, runs, live progress",
    },
    Command {
        name: "netbox",
        aliases: &["nb", "queue", "approvals"],
        help: "NetBox review queue",
    },
    Command {
        name: "search",
        aliases: &["find", "f"],
        help: "full-text search: :search TEXT",
    },
    Command {
        name: "history",
        aliases: &["h", "audit", "changes"],
        help: "every change syncs made",
    },
    Command {
        name: "help",
        aliases: &["?"],
        help: "keys and commands",
    },
    Command {
        name: "quit",
        aliases: &["q", "q!", "exit"],
        help: "leave infradeck",
    },
];

/// The command a typed word names, by name, alias or unique prefix.
pub(crate) fn resolve_command(word: &str) -> Option<&'static Command> {
    let word = word.trim().to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    if let Some(c) = COMMANDS
        .iter()
        .find(|c| c.name == word || c.aliases.contains(&word.as_str()))
    {
        return Some(c);
    }
    let mut prefixed = COMMANDS.iter().filter(|c| c.name.starts_with(&word));
    match (prefixed.next(), prefixed.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Completions of a partly typed command name.
pub(crate) fn complete_command(word: &str) -> Vec<&'static str> {
    let word = word.trim().to_ascii_lowercase();
    COMMANDS
        .iter()
        .filter(|c| c.name.starts_with(&word))
        .map(|c| c.name)
        .collect()
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
    pub quit: bool,
}

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
            quit: false,
        };
        let devices = views::devices::DevicesView::new(None);
        app.push(Box::new(devices))?;
        app.reload_if_changed()?;
        Ok(app)
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
        let generation = self.store.data_generation()?;
        if self.generation == Some(generation) {
            return Ok(false);
        }
        self.generation = Some(generation);
        let transitions = self.header.refresh(&self.store)?;
        for line in transitions {
            self.log_line(line);
        }
        let (mut cx, views) = self.cx();
        if let Some(view) = views.last_mut() {
            view.refresh(&mut cx)?;
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
        true
    }

    fn handle_key(&mut self, key: KeyEvent) -> anyhow::Result<()> {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            self.quit = true;
            return Ok(());
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key),
            Mode::Command { input } => self.command_key(key, input),
            Mode::Filter { input, before } => self.filter_key(key, input, before),
            Mode::Help { scroll } => {
                self.mode = match key.code {
                    KeyCode::Down | KeyCode::Char('j') => Mode::Help { scroll: scroll + 1 },
                    KeyCode::Up | KeyCode::Char('k') => Mode::Help {
                        scroll: scroll.saturating_sub(1),
                    },
                    KeyCode::Char('q') => {
                        self.quit = true;
                        Mode::Normal
                    }
                    _ => Mode::Normal,
                };
                Ok(())
            }
            Mode::Modal(modal) => self.modal_key(key, modal),
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
        if self.views.len() > 1 {
            self.views.pop();
            let (mut cx, views) = self.cx();
            if let Some(view) = views.last_mut() {
                view.refresh(&mut cx)?;
            }
        }
        Ok(())
    }

    fn command_key(&mut self, key: KeyEvent, mut input: String) -> anyhow::Result<()> {
        match key.code {
            KeyCode::Esc => {}
            KeyCode::Enter => self.run_command(&input)?,
            KeyCode::Tab => {
                let (word, rest) = input.split_once(' ').unwrap_or((input.as_str(), ""));
                if rest.is_empty() {
                    let candidates = complete_command(word);
                    if let Some(first) = candidates.first() {
                        let common = shared_prefix(&candidates);
                        input = if candidates.len() == 1 {
                            format!("{first} ")
                        } else {
                            common.to_string()
                        };
                        if candidates.len() > 1 {
                            self.flash = Some(Flash::info(candidates.join("  ")));
                        }
                    }
                }
                self.mode = Mode::Command { input };
            }
            KeyCode::Backspace => {
                if input.pop().is_some() {
                    self.mode = Mode::Command { input };
                }
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.mode = Mode::Command {
                    input: String::new(),
                }
            }
            KeyCode::Char(c) => {
                input.push(c);
                self.mode = Mode::Command { input };
            }
            _ => self.mode = Mode::Command { input },
        }
        Ok(())
    }

    /// Runs a `:` command line.
    pub(crate) fn run_command(&mut self, line: &str) -> anyhow::Result<()> {
        let line = line.trim();
        let (word, argument) = line.split_once(' ').unwrap_or((line, ""));
        let argument = argument.trim();
        if word.is_empty() {
            return Ok(());
        }
        let Some(command) = resolve_command(word) else {
            let choices = complete_command(word);
            self.flash = Some(Flash::error(if choices.is_empty() {
                format!(
                    "no command `{}`; try :help",
                    infradeck_core::sanitize::for_terminal(word)
                )
            } else {
                format!("`{word}` could be: {}", choices.join(", "))
            }));
            return Ok(());
        };
        use infradeck_core::model::DeviceType;
        let selected = self.selected_device();
        let view: Box<dyn Screen> = match command.name {
            "quit" => {
                self.quit = true;
                return Ok(());
            }
            "help" => {
                self.mode = Mode::Help { scroll: 0 };
                return Ok(());
            }
            "devices" => Box::new(views::devices::DevicesView::with_filter(None, argument)),
            "vms" => Box::new(views::devices::DevicesView::with_filter(
                Some(DeviceType::Vm),
                argument,
            )),
            "hosts" => Box::new(views::devices::DevicesView::with_filter(
                Some(DeviceType::Server),
                argument,
            )),
            "network" => Box::new(views::devices::DevicesView::with_filter(
                Some(DeviceType::NetworkDevice),
                argument,
            )),
            "storage" => Box::new(views::devices::DevicesView::with_filter(
                Some(DeviceType::Storage),
                argument,
            )),
            "clusters" => Box::new(views::devices::DevicesView::with_filter(
                Some(DeviceType::Cluster),
                argument,
            )),
            "tree" if argument == "all" => Box::new(views::tree::TreeView::new(None)),
            "tree" => Box::new(views::tree::TreeView::new(selected)),
            "configs" => match selected {
                Some(id) if !self.store.config_versions(id)?.is_empty() => {
                    Box::new(views::configs::ConfigsView::for_device(id))
                }
                _ => Box::new(views::configs::ConfigsView::all()),
            },
            "sync" => Box::new(views::sync::SyncView::default()),
            "netbox" => Box::new(views::netbox::NetboxView::default()),
            "search" => Box::new(views::search::SearchView::new(argument)),
            "history" => Box::new(views::history::HistoryView::new(None)),
            other => anyhow::bail!("command {other} has no view"),
        };
        // A command starts a new trail, as in k9s.
        self.views.clear();
        self.push(view)
    }

    /// The device the current view is about or has selected, for `:tree` and `:configs`.
    fn selected_device(&self) -> Option<i64> {
        self.views.last().and_then(|v| v.device())
    }

    fn filter_key(
        &mut self,
        key: KeyEvent,
        mut input: String,
        before: String,
    ) -> anyhow::Result<()> {
        let changed = match key.code {
            KeyCode::Enter => return Ok(()),
            KeyCode::Esc => {
                input = before;
                let (mut cx, views) = self.cx();
                if let Some(view) = views.last_mut() {
                    view.set_filter(&input, &mut cx)?;
                }
                return Ok(());
            }
            KeyCode::Backspace => input.pop().is_some(),
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                input.clear();
                true
            }
            KeyCode::Char(c) => {
                input.push(c);
                true
            }
            _ => false,
        };
        if changed {
            let (mut cx, views) = self.cx();
            if let Some(view) = views.last_mut() {
                view.set_filter(&input, &mut cx)?;
            }
        }
        self.mode = Mode::Filter { input, before };
        Ok(())
    }

    fn modal_key(&mut self, key: KeyEvent, modal: Modal) -> anyhow::Result<()> {
        match modal {
            Modal::Text {
                title,
                lines,
                scroll,
            } => {
                let scroll =
                    match key.code {
                        KeyCode::Down | KeyCode::Char('j') => scroll + 1,
                        KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                        KeyCode::Char('y') => {
                            self.effects.push(Effect::Copy(
                                infradeck_core::sanitize::for_clipboard(&lines.join("\n"), true),
                            ));
                            scroll
                        }
                        _ => return Ok(()),
                    };
                self.mode = Mode::Modal(Modal::Text {
                    title,
                    lines,
                    scroll,
                });
            }
            Modal::Reason {
                title,
                mut textarea,
                submit,
            } => match key.code {
                KeyCode::Esc => self.flash = Some(Flash::info("cancelled; nothing changed")),
                KeyCode::Enter if !key.modifiers.contains(KeyModifiers::ALT) => {
                    let reason = textarea.lines().join("\n");
                    if reason.trim().is_empty() {
                        self.flash = Some(Flash::error("a rejection needs a reason"));
                        self.mode = Mode::Modal(Modal::Reason {
                            title,
                            textarea,
                            submit,
                        });
                    } else {
                        let message = submit(&mut self.store, reason.trim())?;
                        self.flash = Some(Flash::info(message));
                        self.force_reload()?;
                    }
                }
                _ => {
                    textarea.input(key);
                    self.mode = Mode::Modal(Modal::Reason {
                        title,
                        textarea,
                        submit,
                    });
                }
            },
            Modal::Confirm {
                title,
                body,
                require,
                mut typed,
                mut yes_focused,
                on_yes,
            } => {
                match key.code {
                    KeyCode::Esc => {
                        self.flash = Some(Flash::info("cancelled; nothing changed"));
                        return Ok(());
                    }
                    KeyCode::Tab | KeyCode::Left | KeyCode::Right | KeyCode::BackTab => {
                        yes_focused = !yes_focused
                    }
                    KeyCode::Enter => {
                        if !yes_focused {
                            self.flash = Some(Flash::info("cancelled; nothing changed"));
                            return Ok(());
                        }
                        if require.as_ref().is_some_and(|r| *r != typed) {
                            self.flash = Some(Flash::error("type the batch id exactly to confirm"));
                        } else {
                            let (message, effect) = on_yes(&mut self.store)?;
                            self.flash = Some(Flash::info(message));
                            self.effects.extend(effect);
                            self.force_reload()?;
                            return Ok(());
                        }
                    }
                    KeyCode::Backspace if require.is_some() => {
                        typed.pop();
                    }
                    KeyCode::Char(c) if require.is_some() => typed.push(c),
                    _ => {}
                }
                self.mode = Mode::Modal(Modal::Confirm {
                    title,
                    body,
                    require,
                    typed,
                    yes_focused,
                    on_yes,
                });
            }
        }
        Ok(())
    }

    fn force_reload(&mut self) -> anyhow::Result<()> {
        self.generation = None;
        self.reload_if_changed().map(|_| ())
    }

    /// Draws the whole screen.
    pub fn draw(&mut self, frame: &mut Frame) {
        let area = frame.area();
        let theme = self.env.theme;
        let [header_area, body_area, footer_area] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        let now = self.env.now();
        self.header.draw(frame, header_area, &self.env, now);

        let trail = self.breadcrumb().join(" › ");
        let filter = self
            .views
            .last()
            .and_then(|v| v.filter())
            .unwrap_or_default();
        let mut title = vec![Span::styled(format!(" {trail} "), theme.title())];
        if !filter.is_empty() {
            title.push(Span::styled(
                format!("[/{}] ", infradeck_core::sanitize::for_terminal(filter)),
                theme.key(),
            ));
        }
        let block = Block::default()
            .borders(Borders::TOP)
            .title(Line::from(title));
        let inner = block.inner(body_area);
        frame.render_widget(block, body_area);
        let (mut cx, views) = self.cx();
        if let Some(view) = views.last_mut() {
            view.draw(frame, inner, &mut cx);
        }
        self.draw_footer(frame, footer_area);
        if let Mode::Help { scroll } = &self.mode {
            let unavailable = |action| self.unavailable(action);
            draw_help(frame, area, &self.views, &self.env, *scroll, &unavailable);
        }
        if let Mode::Modal(modal) = &mut self.mode {
            draw_modal(frame, area, modal, theme);
        }
    }

    fn draw_footer(&self, frame: &mut Frame, area: Rect) {
        let theme = self.env.theme;
        let line = match &self.mode {
            Mode::Command { input } => {
                let completions = complete_command(input.split(' ').next().unwrap_or_default());
                let mut spans = vec![
                    Span::styled(":", theme.key()),
                    Span::raw(infradeck_core::sanitize::for_terminal(input).into_owned()),
                    Span::styled("█", theme.muted()),
                ];
                if !input.contains(' ') && !input.is_empty() && completions.len() > 1 {
                    spans.push(Span::styled(
                        format!("   {}", completions.join(" ")),
                        theme.muted(),
                    ));
                }
                Line::from(spans)
            }
            Mode::Filter { input, .. } => Line::from(vec![
                Span::styled("/", theme.key()),
                Span::raw(infradeck_core::sanitize::for_terminal(input).into_owned()),
                Span::styled("█", theme.muted()),
                Span::styled(
                    "   Enter keep · Esc undo · !text inverts · type: source: status:",
                    theme.muted(),
                ),
            ]),
            _ => match &self.flash {
                Some(flash) => Line::from(Span::styled(
                    infradeck_core::sanitize::for_terminal(&flash.text).into_owned(),
                    if flash.error {
                        theme.error()
                    } else {
                        theme.ok()
                    },
                )),
                None => {
                    let scopes = self
                        .views
                        .last()
                        .map_or(&[Scope::Global][..], |v| v.scopes());
                    let mut spans = Vec::new();
                    let available = |action| self.unavailable(action).is_none();
                    for (label, hint) in keys::hints(scopes, self.env.read_only, &available) {
                        spans.push(Span::styled(format!("<{label}>"), theme.key()));
                        spans.push(Span::styled(format!("{hint} "), theme.muted()));
                    }
                    Line::from(spans)
                }
            },
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

fn shared_prefix<'a>(words: &[&'a str]) -> &'a str {
    let Some(first) = words.first() else {
        return "";
    };
    words[1..].iter().fold(*first, |prefix, w| {
        infradeck_core::text::common_prefix(prefix, w)
    })
}

/// A rectangle of `percent_x` × `height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Every binding, the current view's first; those that do nothing here now say why.
fn draw_help(
    frame: &mut Frame,
    area: Rect,
    views: &[Box<dyn Screen>],
    env: &Env,
    scroll: u16,
    unavailable: &dyn Fn(Action) -> Option<&'static str>,
) {
    let theme = env.theme;
    let scopes = views.last().map_or(&[Scope::Global][..], |v| v.scopes());
    let mut lines = Vec::new();
    for (scope, rows) in keys::help(scopes) {
        lines.push(Line::from(Span::styled(scope.title(), theme.title())));
        let here = scopes.contains(&scope);
        for b in rows {
            let reason = if env.read_only && b.writes {
                Some("read-only mode")
            } else if here {
                unavailable(b.action)
            } else {
                None
            };
            let mut spans = vec![
                Span::styled(format!("  {:<9}", b.label), theme.key()),
                Span::styled(
                    b.help,
                    if reason.is_some() {
                        theme.muted()
                    } else {
                        theme.base()
                    },
                ),
            ];
            if let Some(reason) = reason {
                spans.push(Span::styled(
                    format!("  — not now: {reason}"),
                    theme.muted(),
                ));
            }
            lines.push(Line::from(spans));
        }
    }
    lines.push(Line::from(Span::styled("commands", theme.title())));
    for c in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("  :{:<9}", c.name), theme.key()),
            Span::raw(c.help),
            Span::styled(
                if c.aliases.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", c.aliases.join(" "))
                },
                theme.muted(),
            ),
        ]));
    }
    if env.read_only {
        lines.push(Line::from(Span::styled(
            "read-only: actions that write are refused (marked above)",
            theme.warn(),
        )));
    }
    let popup = centered(area, 90, area.height.saturating_sub(2));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(Block::bordered().title(Span::styled(
                " help · ↑↓ scroll · any key closes ",
                theme.title(),
            ))),
        popup,
    );
}

fn draw_modal(frame: &mut Frame, area: Rect, modal: &mut Modal, theme: Theme) {
    match modal {
        Modal::Text {
            title,
            lines,
            scroll,
        } => {
            let popup = centered(area, 100, area.height.saturating_sub(4));
            frame.render_widget(Clear, popup);
            let text: Vec<Line> = lines
                .iter()
                .map(|l| Line::raw(infradeck_core::sanitize::line_for_terminal(l).into_owned()))
                .collect();
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .scroll((*scroll, 0))
                    .block(Block::bordered().title(Span::styled(
                        format!(
                            " {} · y copy · Esc close ",
                            infradeck_core::sanitize::for_terminal(title)
                        ),
                        theme.title(),
                    ))),
                popup,
            );
        }
        Modal::Reason {
            title, textarea, ..
        } => {
            let popup = centered(area, 70, 8);
            frame.render_widget(Clear, popup);
            textarea.set_block(Block::bordered().title(Span::styled(
                format!(
                    " {} · Enter submit · Esc cancel ",
                    infradeck_core::sanitize::for_terminal(title)
                ),
                theme.title(),
            )));
            frame.render_widget(&**textarea, popup);
        }
        Modal::Confirm {
            title,
            body,
            require,
            typed,
            yes_focused,
            ..
        } => {
            let height = body.len() as u16 + if require.is_some() { 7 } else { 5 };
            let popup = centered(area, 72, height);
            frame.render_widget(Clear, popup);
            let mut lines: Vec<Line> = body
                .iter()
                .map(|l| Line::raw(infradeck_core::sanitize::for_terminal(l).into_owned()))
                .collect();
            if let Some(required) = require {
                lines.push(Line::raw(""));
                lines.push(Line::from(vec![
                    Span::raw(format!(
                        "type {} to confirm: ",
                        infradeck_core::sanitize::for_terminal(required)
                    )),
                    Span::styled(
                        infradeck_core::sanitize::for_terminal(typed).into_owned(),
                        theme.key(),
                    ),
                    Span::styled("█", theme.muted()),
                ]));
            }
            lines.push(Line::raw(""));
            let (cancel, yes) = if *yes_focused {
                (Style::default(), theme.selected())
            } else {
                (theme.selected(), Style::default())
            };
            lines.push(Line::from(vec![
                Span::styled(" [ Cancel ] ", cancel),
                Span::raw("   "),
                Span::styled(" [ Yes ] ", yes),
                Span::styled(
                    "   Tab switches · Enter chooses · Esc cancels",
                    theme.muted(),
                ),
            ]));
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(Span::styled(
                        format!(" {} ", infradeck_core::sanitize::for_terminal(title)),
                        theme.warn(),
                    ))),
                popup,
            );
        }
    }
}
