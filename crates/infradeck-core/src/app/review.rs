//! Approving and rejecting queued NetBox changes: one store write both front ends make (the
//! CLI's `netbox approve|reject`, the dashboard's `a`/`r`), synchronous because it only touches
//! the database.

use crate::model::ApprovalStatus;
use crate::store::{Review, Store};

/// How a review went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewOutcome {
    /// Items that moved from pending to the new status.
    pub moved: usize,
    /// Items asked for that were not pending (already reviewed, perhaps by someone else).
    pub not_pending: usize,
    /// Pending alternatives of a choice (an address two machines claim) that approving the
    /// whole batch passed by: each is approved by itself, by a person.
    pub left_to_choose: usize,
}

/// Moves the pending items `ids` of `batch` to `to` (approved or rejected), as `reviewer`, with
/// the reason a rejection needs. Items no longer pending are left as they are.
pub fn review(
    store: &mut Store,
    batch: &str,
    ids: &[i64],
    to: ApprovalStatus,
    reviewer: &str,
    reason: Option<&str>,
) -> anyhow::Result<ReviewOutcome> {
    if to == ApprovalStatus::Rejected && reason.is_none_or(|r| r.trim().is_empty()) {
        anyhow::bail!("a rejection needs a reason");
    }
    let at = crate::time::now();
    let moved = store.write(|w| {
        w.review_items(
            batch,
            ids,
            &Review {
                from: ApprovalStatus::Pending,
                to,
                reviewer,
                comment: reason,
                at: &at,
            },
        )
    })?;
    let left_to_choose = if ids.is_empty() && to == ApprovalStatus::Approved {
        store.pending_choices(batch)?
    } else {
        0
    };
    Ok(ReviewOutcome {
        moved,
        not_pending: ids.len().saturating_sub(moved),
        left_to_choose,
    })
}
