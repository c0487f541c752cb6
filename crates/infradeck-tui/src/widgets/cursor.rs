//! The selection and scroll position of a list, shared by every list view.

use crate::keys::Action;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) selected: usize,
    pub(crate) top: usize,
}

impl Cursor {
    /// Applies a movement; true when it was one.
    pub(crate) fn apply(&mut self, action: Action, len: usize, height: usize) -> bool {
        let page = height.max(1);
        let last = len.saturating_sub(1);
        self.selected = match action {
            Action::Down => (self.selected + 1).min(last),
            Action::Up => self.selected.saturating_sub(1),
            Action::PageDown => (self.selected + page).min(last),
            Action::PageUp => self.selected.saturating_sub(page),
            Action::Top => 0,
            Action::Bottom => last,
            _ => return false,
        };
        true
    }

    /// Keeps the selection inside `len` rows and visible in a window of `height` rows.
    pub(crate) fn clamp(&mut self, len: usize, height: usize) {
        let height = height.max(1);
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.top {
            self.top = self.selected;
        } else if self.selected >= self.top + height {
            self.top = self.selected + 1 - height;
        }
        self.top = self.top.min(len.saturating_sub(height));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_stay_inside_and_the_selection_stays_visible() {
        let mut c = Cursor::default();
        c.apply(Action::Bottom, 100, 10);
        c.clamp(100, 10);
        assert_eq!((c.selected, c.top), (99, 90));
        c.apply(Action::PageUp, 100, 10);
        c.clamp(100, 10);
        assert_eq!((c.selected, c.top), (89, 89));
        c.apply(Action::Top, 100, 10);
        c.clamp(100, 10);
        assert_eq!((c.selected, c.top), (0, 0));
        c.apply(Action::Up, 100, 10);
        assert_eq!(c.selected, 0);
        c.clamp(0, 10);
        assert_eq!((c.selected, c.top), (0, 0));
    }
}
