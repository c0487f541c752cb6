//! Domain types shared by the sources, the sync engine, the store and the UI.

mod records;

pub(crate) use records::ConfigRecord;
pub use records::{DeviceBundle, Item, LinkRecord};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares a closed set of values stored as lowercase text, with parsing, display and serde.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// [`Self::as_str`] as a reference to a `'static` `&str`, for SQL parameter lists.
            pub fn as_str_ref(self) -> &'static &'static str {
                match self { $($name::$variant => &$text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: stringify!($name),
                        value: text.to_string(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

/// A value outside a closed set, with the values that would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {})", expected.join(", "))]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

text_enum!(
    /// A kind of change, as the changes digest groups them (`change_findings.kind`), in the
    /// order digests list their counts.
    ChangeKind {
        Appeared => "appeared",
        Gone => "gone",
        Moved => "moved",
        Power => "power",
        Health => "health",
        Resized => "resized",
        Addresses => "addresses",
        Config => "config",
        Volume => "volume",
        Relationships => "relationships",
        Fields => "fields",
        Netbox => "netbox",
    }
);

text_enum!(
    /// What kind of thing a device row describes (seed: `devices.device_type`).
    DeviceType {
        Server => "server",
        Vm => "vm",
        NetworkDevice => "network_device",
        Storage => "storage",
        Container => "container",
        Cluster => "cluster",
    }
);

text_enum!(
    /// Whether a device is still confirmed by its source (seed: `devices.status`).
    DeviceStatus {
        Active => "active",
        Inactive => "inactive",
        Unknown => "unknown",
    }
);

text_enum!(
    /// How a machine is doing, worst last (so `max` over reasons is the machine's health).
    Health {
        Ok => "ok",
        Warn => "warn",
        Crit => "crit",
    }
);

text_enum!(
    /// How two devices relate (seed: `device_relationships.relationship_type`, plus `same_as`
    /// for records of one machine seen by several sources).
    RelationshipType {
        Hosts => "hosts",
        ConnectsTo => "connects_to",
        BacksUp => "backs_up",
        Manages => "manages",
        SameAs => "same_as",
    }
);

text_enum!(
    /// The kinds of source system infradeck reads. The text is the `source_system` column value.
    SourceKind {
        Vcenter => "vcenter",
        Foreman => "foreman",
        Puppetdb => "puppetdb",
        Oxidized => "oxidized",
        Netapp => "netapp",
        Dorado => "dorado",
        Confluence => "confluence",
        Jira => "jira",
    }
);

text_enum!(
    /// The state of one sync run (`sync_runs.status`).
    RunStatus {
        Running => "running",
        Success => "success",
        Partial => "partial",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// A NetBox plan item's review state (`netbox_sync_approvals.approval_status`).
    ApprovalStatus {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Applied => "applied",
        Conflict => "conflict",
        Failed => "failed",
        Superseded => "superseded",
        RolledBack => "rolled_back",
        Applying => "applying",
    }
);

text_enum!(
    /// What a NetBox plan item does.
    ApprovalAction {
        Create => "create",
        Update => "update",
        Delete => "delete",
    }
);

/// A device as a source reports it, normalized: the input of a device upsert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub source_system: String,
    /// The configured source instance (`id` in the config), so two vCenters can both have `vm-1001`.
    pub source_identifier: String,
    pub source_id: String,
    pub name: String,
    pub device_type: DeviceType,
    /// Source-specific fields, namespaced by source system as in the seed: `{"vcenter": {...}}`.
    pub metadata: serde_json::Value,
}

/// VM details for the `vms` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmRecord {
    pub instance_uuid: Option<String>,
    pub guest_os: Option<String>,
    pub cpu_count: Option<i64>,
    pub memory_mb: Option<i64>,
    pub power_state: Option<String>,
    pub tools_running: Option<bool>,
    /// JSON array of IP address strings.
    pub ip_addresses: serde_json::Value,
    /// JSON array of disks.
    pub disks: serde_json::Value,
    /// JSON array of snapshots; the vCenter REST API does not expose them, so it stays `null`.
    pub snapshots: serde_json::Value,
    pub total_disk_capacity_bytes: Option<i64>,
    pub total_snapshot_size_bytes: Option<i64>,
}

/// One row of `network_interfaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InterfaceRecord {
    pub interface_name: String,
    pub mac_address: Option<String>,
    /// IP addresses, with prefix length where known (`10.0.10.21/24`).
    pub ip_addresses: Vec<String>,
    pub speed_mbps: Option<i64>,
    /// `up`, `down` or `disabled`.
    pub status: Option<String>,
    /// `physical`, `virtual` or `loopback`.
    pub interface_type: Option<String>,
    pub metadata: serde_json::Value,
}

/// One row of `storage_volumes`, keyed like devices by source system, instance and source id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub source_system: String,
    pub source_identifier: String,
    pub source_id: String,
    pub name: String,
    /// `lun`, `filesystem`, `datastore` or `qtree`.
    pub volume_type: Option<String>,
    pub capacity_bytes: Option<i64>,
    pub used_bytes: Option<i64>,
    pub storage_array: Option<String>,
    pub raid_level: Option<String>,
    pub thin_provisioned: Option<bool>,
    pub metadata: serde_json::Value,
    /// The device this volume belongs to, if it is modelled as one.
    pub device_id: Option<i64>,
}

impl VolumeRecord {
    /// Used share in percent, when both figures are known and the volume has a size.
    pub fn used_percent(&self) -> Option<f64> {
        used_percent(self.capacity_bytes, self.used_bytes)
    }
}

/// `used` of `capacity` in percent; `None` when either is unknown or the capacity is zero.
pub fn used_percent(capacity: Option<i64>, used: Option<i64>) -> Option<f64> {
    match (capacity, used) {
        (Some(capacity), Some(used)) if capacity > 0 => Some(used as f64 * 100.0 / capacity as f64),
        _ => None,
    }
}

/// A cached Confluence page (`kb_articles`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KbArticleRecord {
    pub source_id: String,
    pub space_key: Option<String>,
    pub title: String,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub url: Option<String>,
    pub parent_id: Option<String>,
    pub labels: Vec<String>,
    pub created_at: Option<String>,
    pub last_updated: Option<String>,
}

/// A cached Jira issue (`issues`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IssueRecord {
    pub issue_key: String,
    pub project_key: Option<String>,
    pub issue_type: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub status: Option<String>,
    pub resolution: Option<String>,
    pub assignee: Option<String>,
    pub reporter: Option<String>,
    pub priority: Option<String>,
    pub labels: Vec<String>,
    /// JSON array of `{author, body, created}` objects.
    pub comments: serde_json::Value,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub resolved_at: Option<String>,
}

/// Lower-case, colon-separated MAC, or `None` for something that is not a MAC.
pub(crate) fn normalize_mac(mac: &str) -> Option<String> {
    let hex: String = mac.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if hex.len() != 12 {
        return None;
    }
    let lower: Vec<char> = hex.to_ascii_lowercase().chars().collect();
    Some(
        lower
            .chunks(2)
            .map(|pair| pair.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// The short host name: case-folded, domain stripped. A host registered by its IP address keeps
/// the whole address: "10" of 10.0.0.5 would make every such host the same machine.
pub(crate) fn short_hostname(name: &str) -> String {
    let name = name.trim();
    if name.parse::<std::net::IpAddr>().is_ok() {
        return name.to_ascii_lowercase();
    }
    name.split('.')
        .next()
        .unwrap_or(name)
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip_and_reject_unknown() {
        for t in DeviceType::ALL {
            assert_eq!(t.as_str().parse::<DeviceType>().unwrap(), *t);
        }
        let err = "router".parse::<DeviceType>().unwrap_err();
        assert!(err.to_string().contains("network_device"), "{err}");
        assert_eq!(
            serde_json::to_string(&RelationshipType::SameAs).unwrap(),
            "\"same_as\""
        );
    }
}
