//! The `:` command line: the commands, their completion, and running one.

use super::*;

/// A `:` command: its name, the shorter spellings it answers to, and what it opens.
pub(crate) struct Command {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) help: &'static str,
}

pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "changes",
        aliases: &["ch", "what", "since"],
        help: "what changed, by machine and kind: :changes [WHEN] (8h, 2026-12-01 22:00)",
    },
    Command {
        name: "diff-at",
        aliases: &["between"],
        help: "what changed between two times: :diff-at A B",
    },
    Command {
        name: "at",
        aliases: &["asof", "past"],
        help: "the machines as they were: :at WHEN (read-only)",
    },
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
        help: "search names, addresses, runbooks, tickets (type:device|kb|issue narrows): :search [TEXT]",
    },
    Command {
        name: "conflicts",
        aliases: &["conflict", "disagree"],
        help: "machines whose sources disagree",
    },
    Command {
        name: "history",
        aliases: &["h", "audit", "log"],
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

impl App {
    pub(super) fn command_key(
        &mut self,
        key: KeyEvent,
        action: Option<Action>,
        mut input: String,
    ) -> anyhow::Result<()> {
        match action {
            Some(Action::Cancel) => {}
            Some(Action::Submit) => self.run_command(&input)?,
            Some(Action::Complete) => {
                let candidates = complete_command(&input);
                if let Some(first) = candidates.first() {
                    input = if candidates.len() == 1 {
                        format!("{first} ")
                    } else {
                        shared_prefix(&candidates).to_string()
                    };
                    if candidates.len() > 1 {
                        self.flash = Some(Flash::info(candidates.join("  ")));
                    }
                }
                self.mode = Mode::Command { input };
            }
            // Backspace on an empty line leaves it, as in vim.
            Some(Action::Erase) if input.is_empty() => {}
            Some(Action::Erase) => {
                input.pop();
                self.mode = Mode::Command { input };
            }
            Some(Action::ClearLine) => {
                self.mode = Mode::Command {
                    input: String::new(),
                }
            }
            Some(Action::Type) => {
                if let Some(c) = keys::typed(&key) {
                    input.push(c);
                }
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
            "conflicts" => Box::new(views::conflicts::ConflictsView::default()),
            "changes" => {
                let range = if argument.is_empty() {
                    self.default_changes_range()
                } else {
                    views::changes::Range::Since(self.time_argument(argument)?)
                };
                Box::new(views::changes::ChangesView::new(
                    range,
                    self.env.last_look.clone(),
                ))
            }
            "diff-at" => {
                let Some((a, b)) = split_times(argument) else {
                    self.flash = Some(Flash::error(
                        "usage: :diff-at A B (each a time such as 2026-12-01T22:00 or a duration back such as 8h)",
                    ));
                    return Ok(());
                };
                let (a, b) = (self.time_argument(&a)?, self.time_argument(&b)?);
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                Box::new(views::changes::ChangesView::new(
                    views::changes::Range::Between(a, b),
                    self.env.last_look.clone(),
                ))
            }
            "at" => {
                if argument.is_empty() {
                    self.flash = Some(Flash::error(
                        "usage: :at WHEN (2026-12-01 22:00 UTC, or a duration back such as 8h)",
                    ));
                    return Ok(());
                }
                Box::new(views::past::PastView::new(self.time_argument(argument)?))
            }
            other => anyhow::bail!("command {other} has no view"),
        };
        // A command starts a new trail, as in k9s.
        self.views.clear();
        self.push(view)?;
        // `:search` with nothing after it: what is typed next is the search.
        if command.name == "search" && argument.is_empty() {
            self.mode = Mode::Filter {
                input: String::new(),
                before: String::new(),
            };
        }
        Ok(())
    }
}

/// `A B` where each may itself hold a space (`2026-12-01 22:00`): split where the words make
/// two times.
fn split_times(argument: &str) -> Option<(String, String)> {
    let words: Vec<&str> = argument.split_whitespace().collect();
    match words.len() {
        2 => Some((words[0].into(), words[1].into())),
        3 | 4 => {
            // A date followed by a clock time belongs together.
            let is_date = |w: &str| w.len() == 10 && w.as_bytes()[4] == b'-';
            let first = if is_date(words[0]) && words[1].contains(':') {
                2
            } else {
                1
            };
            Some((words[..first].join(" "), words[first..].join(" ")))
        }
        _ => None,
    }
}

impl App {
    /// The range the changes open on: since the last look when there is one, else 24 hours.
    pub(crate) fn default_changes_range(&self) -> views::changes::Range {
        match &self.env.last_look {
            Some(at) => views::changes::Range::LastLook(at.clone()),
            None => views::changes::Range::Hours(24),
        }
    }

    /// A time a command names, as a database timestamp; a clear error otherwise.
    fn time_argument(&self, text: &str) -> anyhow::Result<String> {
        infradeck_core::changes::resolve_time(text, self.env.now(), self.env.last_look.as_deref())
            .map(infradeck_core::time::format)
            .map_err(|e| anyhow::anyhow!(e))
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
