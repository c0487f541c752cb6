//! The selection and scroll position of a list, shared by every list view.

use crate::keys::Action;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) selected: usize,
    pub(crate) top: usize,
    /// Where the rows were last drawn, so that a mouse click can be mapped to a row.
    drawn: Drawn,
}

/// The screen rows a list's rows were last drawn on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Drawn {
    /// The screen row of the row at `top`.
    first_y: u16,
    /// How many rows are on screen.
    rows: usize,
    /// Screen lines per row (a search hit takes two).
    lines_per_row: u16,
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

    /// Records that the rows from `top` were drawn from screen row `first_y` down, in a window
    /// of `height` rows of `lines_per_row` lines each, out of `len`. Views call it where they
    /// draw, after [`Cursor::clamp`].
    pub(crate) fn drawn_at(&mut self, first_y: u16, height: usize, len: usize, lines_per_row: u16) {
        self.drawn = Drawn {
            first_y,
            rows: len.saturating_sub(self.top).min(height),
            lines_per_row: lines_per_row.max(1),
        };
    }

    /// The row drawn at screen row `y`, if one is.
    pub(crate) fn row_at(&self, y: u16) -> Option<usize> {
        let lines = self.drawn.lines_per_row.max(1); // 0 before the first draw
        let offset = usize::from(y.checked_sub(self.drawn.first_y)? / lines);
        (offset < self.drawn.rows).then_some(self.top + offset)
    }

    /// Selects the row drawn at screen row `y`; true when there is one there.
    pub(crate) fn click(&mut self, y: u16) -> bool {
        match self.row_at(y) {
            Some(row) => {
                self.selected = row;
                true
            }
            None => false,
        }
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

    #[test]
    fn a_click_selects_the_row_drawn_there_and_nothing_past_the_last() {
        let mut c = Cursor::default();
        assert!(!c.click(5), "nothing drawn yet");
        c.apply(Action::Bottom, 25, 10);
        c.clamp(25, 10);
        // Rows 15..25 drawn from screen row 4, one line each.
        c.drawn_at(4, 10, 25, 1);
        assert_eq!(c.row_at(3), None);
        assert_eq!(c.row_at(4), Some(15));
        assert_eq!(c.row_at(13), Some(24));
        assert_eq!(c.row_at(14), None);
        assert!(c.click(6));
        assert_eq!(c.selected, 17);
        // Two lines per row, and fewer rows than the window: rows 0..3 from screen row 2.
        let mut c = Cursor::default();
        c.clamp(3, 10);
        c.drawn_at(2, 10, 3, 2);
        assert_eq!(c.row_at(3), Some(0));
        assert_eq!(c.row_at(4), Some(1));
        assert_eq!(c.row_at(7), Some(2));
        assert_eq!(c.row_at(8), None);
    }
}
