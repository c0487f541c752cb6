//! NetBox's object types as the simulator models them: endpoints, fields, relations, choices,
//! and which relations protect an object from deletion.

/// NetBox's default `MAX_PAGE_SIZE`.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;
pub(super) const DEFAULT_PAGE_SIZE: usize = 50;

/// One object type: its endpoint, model label and write rules.
pub(super) struct ObjType {
    pub(super) endpoint: &'static str,
    pub(super) model: &'static str,
    pub(super) required: &'static [&'static str],
    /// Plain (non-relational, non-choice) writable fields.
    pub(super) plain: &'static [&'static str],
    /// (field, target endpoint)
    pub(super) fks: &'static [(&'static str, &'static str)],
    /// (field, choices, default)
    pub(super) choices: &'static [(&'static str, &'static [&'static str], Option<&'static str>)],
}

pub(super) const STATUS_DEVICE: &[&str] = &[
    "offline",
    "active",
    "planned",
    "staged",
    "failed",
    "inventory",
    "decommissioning",
];
pub(super) const STATUS_VM: &[&str] = &[
    "offline",
    "active",
    "planned",
    "staged",
    "failed",
    "decommissioning",
    "paused",
];
pub(super) const CUSTOM_FIELD_TYPES: &[&str] = &[
    "text",
    "longtext",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "url",
    "json",
    "select",
    "multiselect",
    "object",
    "multiobject",
];
pub(super) const STATUS_PREFIX: &[&str] = &["container", "active", "reserved", "deprecated"];
pub(super) const STATUS_IP: &[&str] = &["active", "reserved", "deprecated", "dhcp", "slaac"];
pub(super) const STATUS_SITE: &[&str] =
    &["planned", "staging", "active", "decommissioning", "retired"];
pub(super) const STATUS_CLUSTER: &[&str] =
    &["planned", "staging", "active", "decommissioning", "offline"];
pub(super) const IFACE_TYPES: &[&str] = &[
    "virtual",
    "other",
    "1000base-t",
    "10gbase-x-sfpp",
    "25gbase-x-sfp28",
    "40gbase-x-qsfpp",
    "100gbase-x-qsfp28",
    "lag",
];
pub(super) const STATUS_CABLE: &[&str] = &["connected", "planned", "decommissioning"];
pub(super) const ASSIGNABLE: &[&str] = &["dcim.interface", "virtualization.vminterface"];

pub(super) const TYPES: &[ObjType] = &[
    ObjType {
        endpoint: "dcim/sites",
        model: "dcim.site",
        required: &["name", "slug"],
        plain: &["name", "slug", "description", "comments"],
        fks: &[],
        choices: &[("status", STATUS_SITE, Some("active"))],
    },
    ObjType {
        endpoint: "dcim/manufacturers",
        model: "dcim.manufacturer",
        required: &["name", "slug"],
        plain: &["name", "slug", "description"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/device-types",
        model: "dcim.devicetype",
        required: &["manufacturer", "model", "slug"],
        plain: &["model", "slug", "description", "u_height"],
        fks: &[("manufacturer", "dcim/manufacturers")],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/device-roles",
        model: "dcim.devicerole",
        required: &["name", "slug"],
        plain: &["name", "slug", "color", "description", "vm_role"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "dcim/devices",
        model: "dcim.device",
        required: &["device_type", "role", "site"],
        plain: &["name", "serial", "asset_tag", "description", "comments"],
        fks: &[
            ("device_type", "dcim/device-types"),
            ("role", "dcim/device-roles"),
            ("site", "dcim/sites"),
            ("cluster", "virtualization/clusters"),
            ("platform", "dcim/platforms"),
            ("primary_ip4", "ipam/ip-addresses"),
            ("primary_ip6", "ipam/ip-addresses"),
        ],
        choices: &[("status", STATUS_DEVICE, Some("active"))],
    },
    ObjType {
        endpoint: "dcim/interfaces",
        model: "dcim.interface",
        required: &["device", "name", "type"],
        plain: &[
            "name",
            "enabled",
            "description",
            "mtu",
            "mgmt_only",
            "speed",
        ],
        fks: &[
            ("device", "dcim/devices"),
            ("primary_mac_address", "dcim/mac-addresses"),
        ],
        choices: &[("type", IFACE_TYPES, None)],
    },
    ObjType {
        endpoint: "dcim/mac-addresses",
        model: "dcim.macaddress",
        required: &["mac_address"],
        plain: &[
            "mac_address",
            "description",
            "comments",
            "assigned_object_type",
            "assigned_object_id",
        ],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "virtualization/cluster-types",
        model: "virtualization.clustertype",
        required: &["name", "slug"],
        plain: &["name", "slug", "description", "comments"],
        fks: &[],
        choices: &[],
    },
    ObjType {
        endpoint: "virtualization/clusters",
        model: "virtualization.cluster",
        required: &["name", "type"],
        // NetBox 4.2+: a cluster's place is a generic scope (`dcim.site` + id), not `site`.
        plain: &["name", "description", "comments", "scope_type", "scope_id"],
        fks: &[("type", "virtualization/cluster-types")],
        choices: &[("status", STATUS_CLUSTER, Some("active"))],
    },
    ObjType {
        endpoint: "virtualization/virtual-machines",
        model: "virtualization.virtualmachine",
        required: &["name"],
        plain: &[
            "name",
            "vcpus",
            "memory",
            "disk",
            "serial",
            "description",
            "comments",
        ],
        fks: &[
            ("cluster", "virtualization/clusters"),
            ("site", "dcim/sites"),
            ("device", "dcim/devices"),
            ("role", "dcim/device-roles"),
            ("primary_ip4", "ipam/ip-addresses"),
            ("primary_ip6", "ipam/ip-addresses"),
        ],
        choices: &[("status", STATUS_VM, Some("active"))],
    },
    ObjType {
        endpoint: "virtualization/interfaces",
        model: "virtualization.vminterface",
        required: &["virtual_machine", "name"],
        plain: &["name", "enabled", "description", "mtu"],
        fks: &[
            ("virtual_machine", "virtualization/virtual-machines"),
            ("primary_mac_address", "dcim/mac-addresses"),
        ],
        choices: &[],
    },
    ObjType {
        endpoint: "ipam/ip-addresses",
        model: "ipam.ipaddress",
        required: &["address"],
        plain: &[
            "address",
            "dns_name",
            "description",
            "assigned_object_type",
            "assigned_object_id",
        ],
        fks: &[],
        choices: &[("status", STATUS_IP, Some("active"))],
    },
    ObjType {
        endpoint: "extras/tags",
        model: "extras.tag",
        required: &["name", "slug"],
        plain: &["name", "slug", "color", "description"],
        fks: &[],
        choices: &[],
    },
    // Last, so the indexes above stay as they are.
    ObjType {
        endpoint: "dcim/platforms",
        model: "dcim.platform",
        required: &["name", "slug"],
        plain: &["name", "slug", "description"],
        fks: &[("manufacturer", "dcim/manufacturers")],
        choices: &[],
    },
    ObjType {
        endpoint: "extras/custom-fields",
        model: "extras.customfield",
        required: &["name", "type", "object_types"],
        plain: &[
            "name",
            "label",
            "object_types",
            "description",
            "ui_editable",
        ],
        fks: &[],
        choices: &[("type", CUSTOM_FIELD_TYPES, None)],
    },
    ObjType {
        endpoint: "ipam/prefixes",
        model: "ipam.prefix",
        required: &["prefix"],
        plain: &["prefix", "description"],
        fks: &[],
        choices: &[("status", STATUS_PREFIX, Some("active"))],
    },
    // Its ends (`a_terminations`, `b_terminations`: interface ids) are written and read by
    // their own rules (write.rs `terminations`, read.rs `render`).
    ObjType {
        endpoint: "dcim/cables",
        model: "dcim.cable",
        required: &[],
        plain: &["label", "description", "comments"],
        fks: &[],
        choices: &[("status", STATUS_CABLE, Some("connected"))],
    },
];

/// Deleting a target is refused while these (endpoint, field) reference it.
pub(super) const PROTECTED_BY: &[(&str, &str, &str)] = &[
    ("dcim/sites", "dcim/devices", "site"),
    ("dcim/manufacturers", "dcim/device-types", "manufacturer"),
    ("dcim/device-types", "dcim/devices", "device_type"),
    ("dcim/device-roles", "dcim/devices", "role"),
    // NetBox: a VM's device is PROTECT (its cluster and platform are SET_NULL).
    ("dcim/devices", "virtualization/virtual-machines", "device"),
    (
        "virtualization/cluster-types",
        "virtualization/clusters",
        "type",
    ),
    (
        "virtualization/clusters",
        "virtualization/virtual-machines",
        "cluster",
    ),
];

/// Custom fields defined on devices and VMs.
pub(super) const CUSTOM_FIELDS: &[&str] = &["inventory_source", "last_seen"];

pub(super) fn obj_type(endpoint: &str) -> Option<&'static ObjType> {
    TYPES.iter().find(|t| t.endpoint == endpoint)
}

pub(super) fn type_by_model(model: &str) -> Option<&'static ObjType> {
    TYPES.iter().find(|t| t.model == model)
}
