//! The one binding table: every key the dashboard understands, in every mode (the views, the
//! help screen, the `:` command line, the `/` filter line, the text view, the reason box and
//! the confirmation), what it does, where it applies, and the words the footer hints and the
//! help screen show. Keys, hints and help cannot drift apart because they are all read from
//! [`BINDINGS`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something a key asks for. Views interpret the ones in their scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Quit,
    Back,
    Help,
    Command,
    Filter,
    Redraw,
    Copy,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Left,
    Right,
    Open,
    SortNext,
    SortReverse,
    SortName,
    SortType,
    SortSources,
    SortHealth,
    SortPower,
    SortSeen,
    ToggleRecords,
    NextRange,
    Tree,
    Configs,
    NextSection,
    PrevSection,
    Toggle,
    ReverseTree,
    Mark,
    Diff,
    NextHunk,
    PrevHunk,
    NextMatch,
    PrevMatch,
    SideBySide,
    HideVolatile,
    /// Open a link's URL in a browser (the reader).
    OpenUrl,
    SyncSelected,
    SyncAll,
    CancelRun,
    Approve,
    Reject,
    /// Show only the next object kind of the batch (then all again).
    NextKind,
    ApproveBatch,
    RejectBatch,
    Apply,
    Plan,
    DryRun,
    Rollback,
    // In the line editors and dialogs.
    /// Enter: run the command, keep the filter, submit the reason, press the focused button.
    Submit,
    /// Esc: leave without doing anything (the filter goes back to what it was).
    Cancel,
    /// Tab on the command line: complete the command name.
    Complete,
    /// Backspace: delete the character before the cursor.
    Erase,
    /// Ctrl-U: clear the line.
    ClearLine,
    /// Tab or arrows in a confirmation: move the focus between Cancel and the action.
    SwitchFocus,
    /// Alt-Enter in the reason box.
    NewLine,
    /// A character typed into a line or a box. Bound to no key in the table: what is not
    /// bound in a text-entry scope is typed.
    Type,
}

/// Where a binding applies. A view lists its scopes, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Looked up first in every mode, text boxes included: the way out that always works.
    Anywhere,
    Global,
    List,
    Devices,
    Detail,
    Tree,
    Configs,
    Changes,
    Diff,
    Reader,
    Sync,
    Netbox,
    // Modes over the views; each is looked up alone while it is open.
    HelpScreen,
    CommandLine,
    FilterLine,
    TextView,
    ReasonBox,
    Confirm,
}

impl Scope {
    pub(crate) fn title(self) -> &'static str {
        match self {
            Scope::Anywhere => "in every mode",
            Scope::Global => "everywhere",
            Scope::List => "lists",
            Scope::Devices => "devices",
            Scope::Detail => "device detail",
            Scope::Tree => "relationship tree",
            Scope::Configs => "config versions",
            Scope::Changes => "changes",
            Scope::Diff => "config diff",
            Scope::Reader => "runbook or ticket",
            Scope::Sync => "sync",
            Scope::Netbox => "NetBox queue",
            Scope::HelpScreen => "this help",
            Scope::CommandLine => "command line (:)",
            Scope::FilterLine => "filter line (/)",
            Scope::TextView => "text view",
            Scope::ReasonBox => "reason box",
            Scope::Confirm => "confirmation",
        }
    }

    /// Whether characters not bound in this scope are typed into it.
    pub(crate) fn takes_text(self) -> bool {
        matches!(
            self,
            Scope::CommandLine | Scope::FilterLine | Scope::ReasonBox | Scope::Confirm
        )
    }
}

/// A key with its modifiers (Shift is folded into the character for letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) code: KeyCode,
    pub(crate) ctrl: bool,
    pub(crate) alt: bool,
}

const fn k(c: char) -> Key {
    code(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
        alt: false,
    }
}

const fn ctrl_code(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: true,
        alt: false,
    }
}

const fn alt(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: false,
        alt: true,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: false,
        alt: false,
    }
}

/// One line of the table.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) keys: &'static [Key],
    /// How the keys are written in hints and help.
    pub(crate) label: &'static str,
    pub(crate) action: Action,
    pub(crate) scope: Scope,
    /// The footer word, for the bindings worth a hint.
    pub(crate) hint: Option<&'static str>,
    pub(crate) help: &'static str,
    /// Writes to the database or a remote system: hidden and refused when read-only.
    pub(crate) writes: bool,
}

const fn bind(
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    scope: Scope,
    hint: Option<&'static str>,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        scope,
        hint,
        help,
        writes: false,
    }
}

const fn writes(binding: Binding) -> Binding {
    Binding {
        writes: true,
        ..binding
    }
}

use Action as A;
use Scope as S;

pub(crate) static BINDINGS: &[Binding] = &[
    // Views first, so a view's meaning of a key wins over the list and global meanings.
    bind(
        &[k('s')],
        "s",
        A::SortNext,
        S::Devices,
        Some("sort"),
        "sort by the next column",
    ),
    bind(
        &[k('S')],
        "S",
        A::SortReverse,
        S::Devices,
        None,
        "reverse the sort order",
    ),
    bind(
        &[k('N')],
        "N",
        A::SortName,
        S::Devices,
        None,
        "sort by name (again: reverse)",
    ),
    bind(
        &[k('T')],
        "T",
        A::SortType,
        S::Devices,
        None,
        "sort by type (again: reverse)",
    ),
    bind(
        &[k('O')],
        "O",
        A::SortSources,
        S::Devices,
        None,
        "sort by sources (again: reverse)",
    ),
    bind(
        &[k('H')],
        "H",
        A::SortHealth,
        S::Devices,
        None,
        "sort by health, worst first (again: reverse)",
    ),
    bind(
        &[k('P')],
        "P",
        A::SortPower,
        S::Devices,
        None,
        "sort by power state (again: reverse)",
    ),
    bind(
        &[k('A')],
        "A",
        A::SortSeen,
        S::Devices,
        None,
        "sort by last seen, newest first (again: reverse)",
    ),
    bind(
        &[k('R')],
        "R",
        A::ToggleRecords,
        S::Devices,
        Some("records"),
        "one row per machine, or per source record",
    ),
    bind(
        &[k('t')],
        "t",
        A::Tree,
        S::Devices,
        Some("tree"),
        "relationship tree of the selected device",
    ),
    bind(
        &[k('c')],
        "c",
        A::Configs,
        S::Devices,
        None,
        "config versions of the selected device",
    ),
    bind(
        &[k('t')],
        "t",
        A::NextRange,
        S::Changes,
        Some("range"),
        "time range: since your last look, 1 h, 8 h, 24 h, 7 days (:changes WHEN for any start)",
    ),
    bind(
        &[k('/')],
        "/",
        A::Filter,
        S::Diff,
        Some("search"),
        "search the diff: the cursor goes to the next line with the text; n/N go on",
    ),
    bind(
        &[k('/')],
        "/",
        A::Filter,
        S::Netbox,
        Some("filter"),
        "filter items: text, !text, action:create|update|delete type: status: device:",
    ),
    bind(
        &[k('/')],
        "/",
        A::Filter,
        S::Changes,
        Some("filter"),
        "filter: words, kind:appeared,gone,moved,power,health,... source:vcenter",
    ),
    bind(
        &[code(KeyCode::Tab)],
        "Tab",
        A::NextSection,
        S::Reader,
        Some("next link"),
        "select the next machine mentioned or link",
    ),
    bind(
        &[code(KeyCode::BackTab)],
        "S-Tab",
        A::PrevSection,
        S::Reader,
        None,
        "select the previous machine mentioned or link",
    ),
    bind(
        &[code(KeyCode::Enter)],
        "Enter",
        A::Open,
        S::Reader,
        Some("follow"),
        "open the selected machine, or the selected link in a browser",
    ),
    bind(
        &[k('o')],
        "o",
        A::OpenUrl,
        S::Reader,
        Some("open"),
        "open the selected link (else the page) in a browser; y copies it",
    ),
    bind(
        &[k('/')],
        "/",
        A::Filter,
        S::Reader,
        Some("search"),
        "search the text; n/N go to the next/previous match",
    ),
    bind(
        &[k('n')],
        "n",
        A::NextMatch,
        S::Reader,
        None,
        "next search match",
    ),
    bind(
        &[k('N')],
        "N",
        A::PrevMatch,
        S::Reader,
        None,
        "previous search match",
    ),
    bind(
        &[k('t')],
        "t",
        A::Tree,
        S::Detail,
        Some("tree"),
        "relationship tree of this device",
    ),
    bind(
        &[k('c')],
        "c",
        A::Configs,
        S::Detail,
        Some("configs"),
        "config versions of this device",
    ),
    bind(
        &[code(KeyCode::Tab)],
        "Tab",
        A::NextSection,
        S::Detail,
        Some("section"),
        "jump to the next section",
    ),
    bind(
        &[code(KeyCode::BackTab)],
        "S-Tab",
        A::PrevSection,
        S::Detail,
        None,
        "jump to the previous section",
    ),
    bind(
        &[k(' '), code(KeyCode::Right), k('l')],
        "Space/→",
        A::Toggle,
        S::Tree,
        Some("expand"),
        "expand or collapse the node",
    ),
    bind(
        &[code(KeyCode::Left), k('h')],
        "←",
        A::Left,
        S::Tree,
        None,
        "collapse, or go to the parent node",
    ),
    bind(
        &[k('r')],
        "r",
        A::ReverseTree,
        S::Tree,
        Some("reverse"),
        "switch between what this depends on and what depends on it",
    ),
    bind(
        &[k(' ')],
        "Space",
        A::Mark,
        S::Configs,
        Some("mark"),
        "mark a version to diff against",
    ),
    bind(
        &[k('d')],
        "d",
        A::Diff,
        S::Configs,
        Some("diff"),
        "diff the marked (or previous) version with the selected one",
    ),
    bind(
        &[k(']')],
        "]",
        A::NextHunk,
        S::Diff,
        Some("hunk"),
        "next change",
    ),
    bind(
        &[k('[')],
        "[",
        A::PrevHunk,
        S::Diff,
        None,
        "previous change",
    ),
    bind(
        &[k('n')],
        "n",
        A::NextMatch,
        S::Diff,
        None,
        "next search match",
    ),
    bind(
        &[k('N')],
        "N",
        A::PrevMatch,
        S::Diff,
        None,
        "previous search match",
    ),
    bind(
        &[k('v')],
        "v",
        A::SideBySide,
        S::Diff,
        Some("split"),
        "unified or side by side",
    ),
    bind(
        &[k('i')],
        "i",
        A::HideVolatile,
        S::Diff,
        Some("noise"),
        "hide or show volatile lines (timestamps, counters)",
    ),
    bind(
        &[code(KeyCode::Left), k('h')],
        "←/h",
        A::Left,
        S::Diff,
        None,
        "scroll left",
    ),
    bind(
        &[code(KeyCode::Right), k('l')],
        "→/l",
        A::Right,
        S::Diff,
        None,
        "scroll right",
    ),
    writes(bind(
        &[k('s')],
        "s",
        A::SyncSelected,
        S::Sync,
        Some("sync"),
        "start a sync of the selected source",
    )),
    writes(bind(
        &[k('S')],
        "S",
        A::SyncAll,
        S::Sync,
        Some("sync all"),
        "start a sync of every source",
    )),
    writes(bind(
        &[k('x')],
        "x",
        A::CancelRun,
        S::Sync,
        Some("cancel"),
        "cancel the selected source's running sync",
    )),
    bind(
        &[k(' ')],
        "Space",
        A::Mark,
        S::Netbox,
        Some("mark"),
        "mark an item (marks make a range)",
    ),
    writes(bind(
        &[k('a')],
        "a",
        A::Approve,
        S::Netbox,
        Some("approve"),
        "approve the marked or selected items",
    )),
    writes(bind(
        &[k('r')],
        "r",
        A::Reject,
        S::Netbox,
        Some("reject"),
        "reject the marked or selected items, with a reason",
    )),
    writes(bind(
        &[k('A')],
        "A",
        A::ApproveBatch,
        S::Netbox,
        None,
        "approve every pending item of the batch",
    )),
    writes(bind(
        &[k('R')],
        "R",
        A::RejectBatch,
        S::Netbox,
        None,
        "reject every pending item of the batch, with a reason",
    )),
    writes(bind(
        &[k('P')],
        "P",
        A::Apply,
        S::Netbox,
        Some("apply"),
        "apply the approved items of the batch to NetBox",
    )),
    writes(bind(
        &[k('p')],
        "p",
        A::Plan,
        S::Netbox,
        Some("plan"),
        "plan: compare the inventory with NetBox and queue a new batch",
    )),
    bind(
        &[k('D')],
        "D",
        A::DryRun,
        S::Netbox,
        None,
        "preview the exact requests apply would send",
    ),
    writes(bind(
        &[k('U')],
        "U",
        A::Rollback,
        S::Netbox,
        None,
        "roll back the applied items of the batch",
    )),
    bind(
        &[k('K')],
        "K",
        A::NextKind,
        S::Netbox,
        Some("kind"),
        "show only the next kind of object (devices, interfaces, addresses, ...), then all",
    ),
    // Lists.
    bind(
        &[code(KeyCode::Down), k('j')],
        "↓/j",
        A::Down,
        S::List,
        None,
        "move down",
    ),
    bind(
        &[code(KeyCode::Up), k('k')],
        "↑/k",
        A::Up,
        S::List,
        None,
        "move up",
    ),
    bind(
        &[code(KeyCode::PageDown), ctrl('f'), ctrl('d')],
        "PgDn",
        A::PageDown,
        S::List,
        None,
        "page down",
    ),
    bind(
        &[code(KeyCode::PageUp), ctrl('b'), ctrl('u')],
        "PgUp",
        A::PageUp,
        S::List,
        None,
        "page up",
    ),
    bind(
        &[k('g'), code(KeyCode::Home)],
        "g",
        A::Top,
        S::List,
        None,
        "first row",
    ),
    bind(
        &[k('G'), code(KeyCode::End)],
        "G",
        A::Bottom,
        S::List,
        None,
        "last row",
    ),
    bind(
        &[code(KeyCode::Enter)],
        "Enter",
        A::Open,
        S::List,
        Some("open"),
        "open the selected row",
    ),
    bind(
        &[k('/')],
        "/",
        A::Filter,
        S::List,
        Some("filter"),
        "filter: text, !text, type: source: instance: status: health: power:",
    ),
    // Everywhere.
    bind(
        &[k(':')],
        ":",
        A::Command,
        S::Global,
        Some("cmd"),
        "command: changes devices vms hosts network storage conflicts tree configs sync netbox search history at diff-at",
    ),
    bind(
        &[code(KeyCode::Esc)],
        "Esc",
        A::Back,
        S::Global,
        Some("back"),
        "clear the filter, then go back",
    ),
    bind(
        &[k('y')],
        "y",
        A::Copy,
        S::Global,
        None,
        "copy the selected name, address or diff (OSC 52)",
    ),
    bind(
        &[k('?')],
        "?",
        A::Help,
        S::Global,
        Some("help"),
        "this help",
    ),
    bind(
        &[ctrl('l')],
        "C-l",
        A::Redraw,
        S::Global,
        None,
        "redraw the screen",
    ),
    bind(&[k('q')], "q", A::Quit, S::Global, Some("quit"), "quit"),
    bind(
        &[ctrl('c')],
        "C-c",
        A::Quit,
        S::Anywhere,
        None,
        "quit, whatever is open (a line being typed, a dialog)",
    ),
    // The help screen.
    bind(
        &[code(KeyCode::Down), k('j')],
        "↓/j",
        A::Down,
        S::HelpScreen,
        Some("scroll"),
        "scroll down",
    ),
    bind(
        &[code(KeyCode::Up), k('k')],
        "↑/k",
        A::Up,
        S::HelpScreen,
        None,
        "scroll up",
    ),
    bind(
        &[code(KeyCode::Esc), k('?')],
        "Esc",
        A::Cancel,
        S::HelpScreen,
        Some("close"),
        "close (so does any key not listed here)",
    ),
    bind(&[k('q')], "q", A::Quit, S::HelpScreen, Some("quit"), "quit"),
    // The `:` command line.
    bind(
        &[code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        S::CommandLine,
        Some("run"),
        "run the command",
    ),
    bind(
        &[code(KeyCode::Tab)],
        "Tab",
        A::Complete,
        S::CommandLine,
        Some("complete"),
        "complete the command name (several: the common part, and the choices)",
    ),
    bind(
        &[code(KeyCode::Backspace)],
        "BS",
        A::Erase,
        S::CommandLine,
        None,
        "delete the last character",
    ),
    bind(
        &[ctrl('u')],
        "C-u",
        A::ClearLine,
        S::CommandLine,
        None,
        "clear the line",
    ),
    bind(
        &[code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        S::CommandLine,
        Some("cancel"),
        "leave the command line",
    ),
    bind(
        &[],
        "text",
        A::Type,
        S::CommandLine,
        None,
        "type the command",
    ),
    // The `/` filter line.
    bind(
        &[code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        S::FilterLine,
        Some("keep"),
        "keep the filter and go back to the list",
    ),
    bind(
        &[code(KeyCode::Backspace)],
        "BS",
        A::Erase,
        S::FilterLine,
        None,
        "delete the last character",
    ),
    bind(
        &[ctrl('u')],
        "C-u",
        A::ClearLine,
        S::FilterLine,
        None,
        "clear the filter",
    ),
    bind(
        &[code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        S::FilterLine,
        Some("undo"),
        "put the filter back as it was",
    ),
    bind(
        &[],
        "text",
        A::Type,
        S::FilterLine,
        None,
        "type to filter as you type (!text inverts; type: source: status: narrow)",
    ),
    // A text view (a run's full error, a NetBox report).
    bind(
        &[code(KeyCode::Down), k('j')],
        "↓/j",
        A::Down,
        S::TextView,
        Some("scroll"),
        "scroll down",
    ),
    bind(
        &[code(KeyCode::Up), k('k')],
        "↑/k",
        A::Up,
        S::TextView,
        None,
        "scroll up",
    ),
    bind(
        &[k('y')],
        "y",
        A::Copy,
        S::TextView,
        Some("copy"),
        "copy the whole text",
    ),
    bind(
        &[code(KeyCode::Esc), code(KeyCode::Enter), k('q')],
        "Esc",
        A::Cancel,
        S::TextView,
        Some("close"),
        "close (so does any key not listed here)",
    ),
    // The reason box (a rejection).
    bind(
        &[code(KeyCode::Enter), ctrl_code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        S::ReasonBox,
        Some("submit"),
        "submit the reason",
    ),
    bind(
        &[alt(KeyCode::Enter)],
        "A-Enter",
        A::NewLine,
        S::ReasonBox,
        Some("new line"),
        "start a new line",
    ),
    bind(
        &[code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        S::ReasonBox,
        Some("cancel"),
        "cancel; nothing changes",
    ),
    bind(
        &[],
        "text",
        A::Type,
        S::ReasonBox,
        None,
        "type the reason (arrows, Home/End and Backspace edit it)",
    ),
    // A confirmation (apply, rollback): Cancel is focused first.
    bind(
        &[
            code(KeyCode::Tab),
            code(KeyCode::BackTab),
            code(KeyCode::Left),
            code(KeyCode::Right),
        ],
        "Tab/←→",
        A::SwitchFocus,
        S::Confirm,
        Some("switch"),
        "move the focus between Cancel and the action",
    ),
    bind(
        &[code(KeyCode::Enter)],
        "Enter",
        A::Submit,
        S::Confirm,
        Some("press"),
        "press the focused button",
    ),
    bind(
        &[code(KeyCode::Backspace)],
        "BS",
        A::Erase,
        S::Confirm,
        None,
        "delete the last character typed",
    ),
    bind(
        &[code(KeyCode::Esc)],
        "Esc",
        A::Cancel,
        S::Confirm,
        Some("cancel"),
        "cancel; nothing changes",
    ),
    bind(
        &[],
        "text",
        A::Type,
        S::Confirm,
        None,
        "type the batch id, when the confirmation asks for it",
    ),
];

/// The binding for `event` in the first of `scopes` that binds it, if any.
/// The binding of a key in these scopes, writes included (the caller refuses those in read-only
/// mode, saying so, rather than dropping the key).
pub(crate) fn lookup(event: &KeyEvent, scopes: &[Scope]) -> Option<&'static Binding> {
    let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    let alt = event.modifiers.contains(KeyModifiers::ALT);
    let code = match event.code {
        // Shift+letter arrives as the upper-case letter on most terminals; normalise the rest.
        KeyCode::Char(c) if event.modifiers.contains(KeyModifiers::SHIFT) => {
            KeyCode::Char(c.to_ascii_uppercase())
        }
        other => other,
    };
    let find = |key: Key| {
        scopes.iter().find_map(|scope| {
            BINDINGS
                .iter()
                .find(|b| b.scope == *scope && b.keys.contains(&key))
        })
    };
    // Alt with a key that has no Alt binding means the key itself (terminals send Alt for
    // Meta, and some users hold it by habit); only Alt-Enter in the reason box is its own.
    find(Key { code, ctrl, alt }).or_else(|| {
        alt.then(|| {
            find(Key {
                code,
                ctrl,
                alt: false,
            })
        })
        .flatten()
    })
}

/// The character a key types into a line or a box: a plain or shifted character, no Ctrl/Alt.
pub(crate) fn typed(event: &KeyEvent) -> Option<char> {
    match event.code {
        KeyCode::Char(c)
            if !event
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// The footer hints for `scopes`, in table order: only what is `available` now, and no writes
/// when read-only. A hint is a promise that the key does something.
pub(crate) fn hints(
    scopes: &[Scope],
    read_only: bool,
    available: &dyn Fn(Action) -> bool,
) -> Vec<(&'static str, &'static str)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for scope in scopes {
        for b in BINDINGS.iter().filter(|b| b.scope == *scope) {
            let Some(hint) = b.hint else { continue };
            if (read_only && b.writes) || seen.contains(&b.action) || !available(b.action) {
                continue;
            }
            seen.push(b.action);
            out.push((b.label, hint));
        }
    }
    out
}

/// Help rows grouped by scope, the current view's scopes first: every binding, the ones that do
/// not apply now marked by the caller with their reason.
pub(crate) fn help(scopes: &[Scope]) -> Vec<(Scope, Vec<&'static Binding>)> {
    let mut order: Vec<Scope> = scopes.to_vec();
    for scope in [
        S::Anywhere,
        S::Global,
        S::List,
        S::Devices,
        S::Detail,
        S::Tree,
        S::Configs,
        S::Diff,
        S::Reader,
        S::Sync,
        S::Netbox,
        S::HelpScreen,
        S::CommandLine,
        S::FilterLine,
        S::TextView,
        S::ReasonBox,
        S::Confirm,
    ] {
        if !order.contains(&scope) {
            order.push(scope);
        }
    }
    order
        .into_iter()
        .map(|scope| {
            // In the view's own scopes, a key a more specific scope binds does that instead
            // (Enter follows a link in the reader, not "open the selected row"): not listed.
            let earlier = scopes
                .iter()
                .position(|s| *s == scope)
                .map_or(&[][..], |at| &scopes[..at]);
            let shadowed = |b: &Binding| {
                b.keys.iter().all(|key| {
                    BINDINGS
                        .iter()
                        .any(|other| earlier.contains(&other.scope) && other.keys.contains(key))
                })
            };
            let rows = BINDINGS
                .iter()
                .filter(|b| b.scope == scope && !shadowed(b))
                .collect();
            (scope, rows)
        })
        .filter(|(_, rows): &(Scope, Vec<&Binding>)| !rows.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_leaves_out_a_key_a_more_specific_scope_of_the_view_takes() {
        let reader = help(&[S::Reader, S::List, S::Global]);
        let list = reader
            .iter()
            .find(|(scope, _)| *scope == S::List)
            .map(|(_, rows)| rows.clone())
            .unwrap_or_default();
        assert!(
            !list.iter().any(|b| b.action == Action::Open),
            "the reader's Enter is its own"
        );
        assert!(
            list.iter().any(|b| b.action == Action::Down),
            "the rest stays"
        );
        // A list view keeps it.
        let devices = help(&[S::Devices, S::List, S::Global]);
        assert!(devices.iter().any(
            |(scope, rows)| *scope == S::List && rows.iter().any(|b| b.action == Action::Open)
        ));
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn a_view_meaning_wins_and_writes_are_not_hinted_when_read_only() {
        let sync = [S::Sync, S::List, S::Global];
        let binding = lookup(&key('s'), &sync).unwrap();
        assert_eq!(binding.action, A::SyncSelected);
        // Found even when read-only, so the app can say why it refuses it.
        assert!(binding.writes);
        let devices = [S::Devices, S::List, S::Global];
        assert_eq!(lookup(&key('s'), &devices).unwrap().action, A::SortNext);
        assert_eq!(lookup(&key('j'), &devices).unwrap().action, A::Down);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&ctrl_c, &[S::Anywhere]).unwrap().action, A::Quit);
        assert!(
            lookup(&ctrl_c, &devices).is_none(),
            "Ctrl-C is looked up before any scope"
        );
        let all = |_: Action| true;
        assert!(!hints(&sync, true, &all).iter().any(|(_, h)| *h == "sync"));
        assert!(hints(&sync, false, &all).iter().any(|(_, h)| *h == "sync"));
        let not_sync = |a: Action| a != A::SyncSelected;
        assert!(
            !hints(&sync, false, &not_sync)
                .iter()
                .any(|(_, h)| *h == "sync"),
            "an unavailable action is not hinted"
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                if a.scope == b.scope {
                    for key in a.keys {
                        assert!(!b.keys.contains(key), "{key:?} twice in {:?}", a.scope);
                    }
                }
            }
        }
    }
}
