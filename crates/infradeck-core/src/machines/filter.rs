//! The filter language of the device list, the same in the dashboard (`/`) and on the command
//! line (`infradeck devices PATTERN`): words match names, `key:value` qualifiers narrow, `!word`
//! inverts the name match. `web !db type:vm source:vcenter health:crit power:off`.

use crate::model::{DeviceStatus, DeviceType, Health};

/// The qualifiers the filter knows, as listed in errors.
pub const KNOWN_FILTER_KEYS: &[&str] = &["type", "source", "instance", "status", "health", "power"];

/// A parsed filter. A machine matches when every given part does; `source`, `instance`,
/// `status` and the name words match when any one of its records does. `type` is the machine's
/// own (its primary record's), the type its row shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineFilter {
    /// Case-insensitive substring of a name.
    pub name_contains: Option<String>,
    /// Keep only machines none of whose names contain `name_contains`.
    pub invert_name: bool,
    pub device_type: Option<DeviceType>,
    pub source_system: Option<String>,
    pub source_identifier: Option<String>,
    pub status: Option<DeviceStatus>,
    pub health: Option<Health>,
    /// `on`, `off`, `suspended`, `standby`, `not responding`, `disconnected`.
    pub power: Option<String>,
}

impl MachineFilter {
    /// True when nothing narrows the list.
    pub fn is_empty(&self) -> bool {
        self == &MachineFilter::default()
    }

    /// Whether `machine` passes, judged in memory (the live list asks the store's index).
    pub fn accepts(&self, machine: &crate::store::Machine) -> bool {
        let named = |needle: &str| {
            let needle = needle.to_lowercase();
            machine.name.to_lowercase().contains(&needle)
                || machine
                    .records
                    .iter()
                    .any(|r| r.name.to_lowercase().contains(&needle))
        };
        if let Some(needle) = &self.name_contains
            && named(needle) == self.invert_name
        {
            return false;
        }
        self.device_type.is_none_or(|t| t == machine.device_type)
            && self.source_system.as_ref().is_none_or(|s| {
                machine
                    .records
                    .iter()
                    .any(|r| r.source_system.eq_ignore_ascii_case(s))
            })
            && self.source_identifier.as_ref().is_none_or(|s| {
                machine
                    .records
                    .iter()
                    .any(|r| r.source_identifier.eq_ignore_ascii_case(s))
            })
            && self.status.is_none_or(|s| {
                machine.records.iter().any(|r| r.status == s) || machine.status == s
            })
            && self.health.is_none_or(|h| machine.health == h)
            && self.power.as_ref().is_none_or(|p| {
                machine
                    .power
                    .as_deref()
                    .is_some_and(|q| q.eq_ignore_ascii_case(p))
            })
    }
}

/// Why a filter could not be read; the message says what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Parses the filter syntax. A `key:value` whose key is a word and not a known qualifier is an
/// error listing the known ones (a typo must not read as "nothing matches"); a token whose key
/// part is not a word (`10.0.0.1:22`, a MAC address) is a name word.
pub fn parse_filter(text: &str) -> Result<MachineFilter, FilterError> {
    let mut filter = MachineFilter::default();
    let mut words = Vec::new();
    for token in text.split_whitespace() {
        let Some((key, value)) = token
            .split_once(':')
            .filter(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic()))
        else {
            words.push(token);
            continue;
        };
        if value.is_empty() {
            return Err(FilterError(format!("`{key}:` needs a value")));
        }
        let lower = value.to_ascii_lowercase();
        match key.to_ascii_lowercase().as_str() {
            "type" | "t" => {
                filter.device_type = Some(device_type_named(&lower).ok_or_else(|| {
                    FilterError(format!(
                        "unknown type `{value}` (vm, server, network, storage, cluster, container)"
                    ))
                })?)
            }
            "source" | "src" | "s" => filter.source_system = Some(lower),
            "instance" | "i" => filter.source_identifier = Some(value.to_string()),
            "status" | "st" => {
                filter.status = Some(match lower.as_str() {
                    "active" | "up" => DeviceStatus::Active,
                    "inactive" | "gone" | "down" => DeviceStatus::Inactive,
                    _ => {
                        return Err(FilterError(format!(
                            "unknown status `{value}` (active, inactive)"
                        )));
                    }
                })
            }
            "health" | "h" => {
                filter.health = Some(match lower.as_str() {
                    "ok" | "good" => Health::Ok,
                    "warn" | "warning" => Health::Warn,
                    "crit" | "critical" | "bad" => Health::Crit,
                    _ => {
                        return Err(FilterError(format!(
                            "unknown health `{value}` (ok, warn, crit)"
                        )));
                    }
                })
            }
            "power" | "p" => {
                filter.power = Some(match lower.replace(['_', '-'], " ").as_str() {
                    "on" | "poweredon" | "powered on" => "on".into(),
                    "off" | "poweredoff" | "powered off" => "off".into(),
                    "suspended" => "suspended".into(),
                    "standby" => "standby".into(),
                    "not responding" | "notresponding" => "not responding".into(),
                    "disconnected" => "disconnected".into(),
                    _ => {
                        return Err(FilterError(format!(
                            "unknown power state `{value}` (on, off, suspended, standby, not_responding, disconnected)"
                        )));
                    }
                })
            }
            _ => {
                return Err(FilterError(format!(
                    "unknown filter key `{key}` (known: {})",
                    KNOWN_FILTER_KEYS.join(", ")
                )));
            }
        }
    }
    let mut name = words.join(" ");
    if let Some(rest) = name.strip_prefix('!') {
        filter.invert_name = true;
        name = rest.to_string();
    }
    if !name.is_empty() {
        filter.name_contains = Some(name);
    }
    Ok(filter)
}

/// The device type a filter or flag names (`vm`, `host`, `switch`, ...).
pub fn device_type_named(value: &str) -> Option<DeviceType> {
    Some(match value.to_ascii_lowercase().as_str() {
        "vm" | "vms" => DeviceType::Vm,
        "server" | "host" | "hosts" | "servers" => DeviceType::Server,
        "network" | "net" | "network_device" | "switch" => DeviceType::NetworkDevice,
        "storage" | "array" => DeviceType::Storage,
        "cluster" | "clusters" => DeviceType::Cluster,
        "container" => DeviceType::Container,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_and_words() {
        let f = parse_filter("type:vm source:vcenter status:inactive health:crit power:off web")
            .unwrap();
        assert_eq!(f.device_type, Some(DeviceType::Vm));
        assert_eq!(f.source_system.as_deref(), Some("vcenter"));
        assert_eq!(f.status, Some(DeviceStatus::Inactive));
        assert_eq!(f.health, Some(Health::Crit));
        assert_eq!(f.power.as_deref(), Some("off"));
        assert_eq!(f.name_contains.as_deref(), Some("web"));
        let f = parse_filter("!db").unwrap();
        assert!(f.invert_name);
        assert!(parse_filter("").unwrap().is_empty());
        assert_eq!(
            parse_filter("power:not_responding")
                .unwrap()
                .power
                .as_deref(),
            Some("not responding")
        );
    }

    #[test]
    fn an_unknown_key_lists_the_known_ones_and_addresses_are_words() {
        let err = parse_filter("helth:crit").unwrap_err().0;
        assert!(
            err.contains("`helth`") && err.contains("health, power"),
            "{err}"
        );
        assert!(
            parse_filter("type:toaster")
                .unwrap_err()
                .0
                .contains("toaster")
        );
        let f = parse_filter("10.0.0.1:22").unwrap();
        assert_eq!(f.name_contains.as_deref(), Some("10.0.0.1:22"));
    }
}
