//! The modes over a view, each with its keys from the binding table: the `/` filter line and
//! the dialogs (text view, reason box, confirmation), and what their keys cannot do right now.

use super::*;

impl App {
    /// Why `action` would do nothing in the open mode (an empty line has nothing to delete).
    pub(super) fn mode_unavailable(&self, action: Action) -> Option<&'static str> {
        match (&self.mode, action) {
            (Mode::Command { input } | Mode::Filter { input, .. }, Action::ClearLine)
                if input.is_empty() =>
            {
                Some("the line is empty")
            }
            (Mode::Command { input }, Action::Complete) if input.is_empty() => {
                Some("type the start of a command first")
            }
            (Mode::Command { input }, Action::Complete) if input.contains(' ') => {
                Some("the command name is complete")
            }
            (Mode::Command { input }, Action::Complete) if complete_command(input).is_empty() => {
                Some("no command starts so")
            }
            (Mode::Help { scroll: 0 }, Action::Up) => Some("already at the top"),
            (Mode::Modal(Modal::Text { scroll: 0, .. }), Action::Up) => Some("already at the top"),
            (Mode::Modal(Modal::Confirm { require, typed, .. }), Action::Erase)
                if require.is_none() || typed.is_empty() =>
            {
                Some("nothing typed")
            }
            _ => None,
        }
    }

    pub(super) fn filter_key(
        &mut self,
        key: KeyEvent,
        action: Option<Action>,
        mut input: String,
        before: String,
    ) -> anyhow::Result<()> {
        let changed = match action {
            Some(Action::Submit) => return Ok(()),
            Some(Action::Cancel) => {
                input = before;
                let (mut cx, views) = self.cx();
                if let Some(view) = views.last_mut() {
                    view.set_filter(&input, &mut cx)?;
                }
                return Ok(());
            }
            // Backspace on an empty line leaves it, as in vim.
            Some(Action::Erase) if input.is_empty() => return Ok(()),
            Some(Action::Erase) => input.pop().is_some(),
            Some(Action::ClearLine) => {
                input.clear();
                true
            }
            Some(Action::Type) => match keys::typed(&key) {
                Some(c) => {
                    input.push(c);
                    true
                }
                None => false,
            },
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

    pub(super) fn modal_key(
        &mut self,
        key: KeyEvent,
        action: Option<Action>,
        modal: Modal,
    ) -> anyhow::Result<()> {
        match modal {
            Modal::Text {
                title,
                lines,
                scroll,
            } => {
                let scroll =
                    match action {
                        Some(Action::Down) => scroll + 1,
                        Some(Action::Up) => scroll.saturating_sub(1),
                        Some(Action::Copy) => {
                            self.effects.push(Effect::Copy(
                                infradeck_core::sanitize::for_clipboard(&lines.join("\n"), true),
                            ));
                            self.flash = Some(Flash::info("copied the text to the clipboard"));
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
            } => match action {
                Some(Action::Cancel) => {
                    self.flash = Some(Flash::info("cancelled; nothing changed"))
                }
                Some(Action::Submit) => {
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
                    // Typing, Alt-Enter and the editing keys are the text box's own.
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
                match action {
                    Some(Action::Cancel) => {
                        self.flash = Some(Flash::info("cancelled; nothing changed"));
                        return Ok(());
                    }
                    Some(Action::SwitchFocus) => yes_focused = !yes_focused,
                    Some(Action::Submit) => {
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
                    Some(Action::Erase) => {
                        typed.pop();
                    }
                    Some(Action::Type) if require.is_some() => typed.extend(keys::typed(&key)),
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
}
