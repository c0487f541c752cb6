//! The abbreviations infrastructure people write in host names, runbook titles and tickets,
//! spelled out for the embedding model.
//!
//! all-MiniLM-L6-v2 learned English, not naming conventions: it does not know that `lb` in
//! "restart the lb service on avi-0186" is a load balancer, or that `db-0314` is a database
//! server, so "restart the load balancer" ranked an app runbook first. Each text that is
//! embedded (and each query) gets the meaning written after the first word that uses an
//! abbreviation: `How to restart the lb (load balancer) service`. The stored chunk is the
//! expanded text, so a change to this list embeds the affected content again by itself.

/// Abbreviation (lowercase, as a word or a name's part without its digits) → what it means.
/// Only abbreviations that mean one thing in an estate; the model knows `dns`, `ntp`, `nfs`.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("lb", "load balancer"),
    ("db", "database"),
    ("fw", "firewall"),
    ("sw", "switch"),
    ("rtr", "router"),
    ("esx", "hypervisor host"),
    ("esxi", "hypervisor host"),
    ("vm", "virtual machine"),
    ("mon", "monitoring"),
    ("app", "application"),
    ("k8s", "kubernetes"),
    ("ha", "high availability"),
    ("lun", "storage volume"),
    ("vmfs", "datastore"),
    ("dc", "datacenter"),
];

/// What `part` abbreviates: the part itself, or without its trailing digits (`sw02`, `dc1`).
fn meaning(part: &str) -> Option<&'static str> {
    let lower = part.to_lowercase();
    let stem = lower.trim_end_matches(|c: char| c.is_ascii_digit());
    ABBREVIATIONS
        .iter()
        .find(|(short, _)| *short == lower || *short == stem)
        .map(|(_, long)| *long)
}

/// `text` with the meaning of each abbreviation in parentheses after the first word that uses
/// it (a word's parts are split at anything not a letter or digit: `dc1-leaf-sw02`). A meaning
/// the text already says is not added again.
pub fn spell_out(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut said: Vec<&str> = Vec::new();
    let mut out = String::with_capacity(text.len() + 32);
    for word in text.split_inclusive(char::is_whitespace) {
        // `db-0314,` → `db-0314 (database),`: the meaning goes before trailing punctuation.
        let core = word.trim_end_matches(|c: char| !c.is_alphanumeric());
        let mut meanings: Vec<&str> = Vec::new();
        for long in core
            .split(|c: char| !c.is_alphanumeric())
            .filter_map(meaning)
        {
            if !said.contains(&long) && !meanings.contains(&long) && !lower.contains(long) {
                meanings.push(long);
            }
        }
        if meanings.is_empty() {
            out.push_str(word);
            continue;
        }
        said.extend(&meanings);
        out.push_str(core);
        out.push_str(" (");
        out.push_str(&meanings.join(", "));
        out.push(')');
        out.push_str(word.strip_prefix(core).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::spell_out;

    #[test]
    fn abbreviations_are_spelled_out_once_where_first_used() {
        assert_eq!(
            spell_out("How to restart the lb service on avi-0186"),
            "How to restart the lb (load balancer) service on avi-0186"
        );
        assert_eq!(
            spell_out("Disk full on db-0314, then db-0074"),
            "Disk full on db-0314 (database), then db-0074"
        );
        assert_eq!(
            spell_out("Replacing dc1-leaf-sw02\nnow"),
            "Replacing dc1-leaf-sw02 (datacenter, switch)\nnow"
        );
        // Said already, or not an abbreviation: unchanged.
        assert_eq!(spell_out("the load balancer lb"), "the load balancer lb");
        assert_eq!(spell_out("dbase swap"), "dbase swap");
        assert_eq!(spell_out(""), "");
        assert_eq!(spell_out("Ünïcode lb"), "Ünïcode lb (load balancer)");
    }
}
