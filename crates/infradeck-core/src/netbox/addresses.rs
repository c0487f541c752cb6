//! IP addresses: each address an interface of ours holds (VM guest addresses per adapter, switch
//! interface addresses, a server's address on its NIC) as an `ipam/ip-addresses` object assigned
//! to that interface, with its prefix length; and each VM's and device's primary IPv4 and IPv6.
//!
//! - The prefix length is the one the source reported (`10.0.0.5/24`), else that of the longest
//!   NetBox prefix containing the address; an address with neither is skipped, with the reason.
//! - An address NetBox has on another interface (tagged) is proposed as a move, not a second
//!   object. An address two machines claim is one item per machine, marked as a choice: a
//!   person approves the one that holds it (bulk approval passes them by; apply refuses two).
//! - Addresses are never deleted: a VM that is off reports none and keeps what NetBox has.
//! - Primary, per family: the address the machine's name resolves to in the inventory (what
//!   Foreman, PuppetDB or Oxidized call its `ip`), else the one on a management interface, else
//!   the first. The review shows which rule chose it.

use super::client::NetboxClient;
use super::plan::{
    DEVICE_IFACES, DEVICES, IFACES, IPS, PREFIXES, SITES, Target, VMS, from_nothing, is_tagged,
    item, lookup, observed, write_body,
};
use crate::app::PlanReport;
use crate::model::ApprovalAction;
use crate::store::NewApprovalItem;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A VM or device of ours, with the addresses the inventory gives its interfaces.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holder {
    pub(crate) name: String,
    /// The device's site slug; None for a VM.
    pub(crate) site: Option<String>,
    /// Its inventory record, for the items.
    pub(crate) device_id: Option<i64>,
    /// (interface, addresses as reported, management interface), in interface order.
    pub(crate) interfaces: Vec<(String, Vec<String>, bool)>,
    /// (address, source) its name resolves to in the inventory.
    pub(crate) resolves_to: Vec<(String, String)>,
    /// NetBox's primary IPv4 and IPv6 now (`10.0.0.5/24`), when it has the object.
    pub(crate) primary: [Option<String>; 2],
    /// Its NetBox id, when NetBox has it already.
    pub(crate) netbox_id: Option<i64>,
}

impl Holder {
    fn endpoint(&self) -> &'static str {
        if self.site.is_some() { DEVICES } else { VMS }
    }

    fn reference(&self) -> Value {
        match &self.site {
            Some(site) => lookup(
                DEVICES,
                json!({"name": self.name, "site_id": lookup(SITES, json!({"slug": site}))}),
            ),
            None => lookup(VMS, json!({"name": self.name})),
        }
    }

    fn interface_reference(&self, interface: &str) -> Value {
        match &self.site {
            Some(_) => lookup(
                DEVICE_IFACES,
                json!({"name": interface, "device_id": self.reference()}),
            ),
            None => lookup(
                IFACES,
                json!({"name": interface, "virtual_machine_id": self.reference()}),
            ),
        }
    }

    fn interface_model(&self) -> &'static str {
        if self.site.is_some() {
            "dcim.interface"
        } else {
            "virtualization.vminterface"
        }
    }

    /// The key of the interface's item (`iface:web-01/eth0`, `interface:sw1/Ethernet1`).
    fn interface_key(&self, interface: &str) -> String {
        match self.site {
            Some(_) => format!("interface:{}/{interface}", self.name),
            None => format!("iface:{}/{interface}", self.name),
        }
    }

    fn key(&self) -> String {
        match self.site {
            Some(_) => format!("device:{}", self.name),
            None => format!("vm:{}", self.name),
        }
    }
}

/// A NetBox VM's or device's primary IPv4 and IPv6 addresses (`10.0.0.5/24`), if any.
pub(crate) fn primaries_of(object: Option<&Value>) -> [Option<String>; 2] {
    ["primary_ip4", "primary_ip6"].map(|field| {
        object
            .and_then(|o| o.get(field)?.get("address")?.as_str())
            .map(str::to_string)
    })
}

/// The address part of `10.0.0.5/24` (or of a bare address), parsed.
pub(crate) fn host_of(address: &str) -> Option<IpAddr> {
    address.split('/').next()?.trim().parse().ok()
}

/// Whether `ip` is in the network `prefix` (`10.0.0.0/16`); its length when it is.
pub(crate) fn contains(prefix: &str, ip: IpAddr) -> Option<u8> {
    let (network, length) = prefix.split_once('/')?;
    let length: u8 = length.parse().ok()?;
    let network: IpAddr = network.parse().ok()?;
    let inside = match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if length <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if length <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    };
    inside.then_some(length)
}

/// Addresses not worth a NetBox object: loopback, link-local, unspecified.
fn is_noise(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Where a NetBox address object is assigned, as `holder interface` (`web-01 eth0`).
fn assigned_to(object: &Value) -> Option<String> {
    let assigned = object.get("assigned_object")?;
    let parent = assigned
        .pointer("/virtual_machine/name")
        .or_else(|| assigned.pointer("/device/name"))?
        .as_str()?;
    Some(format!("{parent} {}", assigned.get("name")?.as_str()?))
}

/// One address as the plan wants it.
struct Wanted<'a> {
    holder: &'a Holder,
    /// Its index in `holders`.
    h: usize,
    interface: String,
    /// With its prefix length.
    address: String,
    ip: IpAddr,
    /// Set when several machines claim the address: every holder that does, for the review.
    claimed_by: Option<Vec<String>>,
}

/// The address items for `holders`, and each holder's primary IPs.
pub(crate) async fn plan(
    client: &NetboxClient,
    holders: &[Holder],
    report: &mut PlanReport,
) -> anyhow::Result<Vec<NewApprovalItem>> {
    let tag = client.tag.clone();
    // Every address claimed, by address: two holders claiming one is for a person to decide.
    let mut claims: BTreeMap<IpAddr, Vec<(usize, &str, &str)>> = BTreeMap::new();
    for (h, holder) in holders.iter().enumerate() {
        for (interface, addresses, _) in &holder.interfaces {
            for address in addresses {
                if let Some(ip) = host_of(address).filter(|ip| !is_noise(*ip)) {
                    claims.entry(ip).or_default().push((h, interface, address));
                }
            }
        }
    }
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let bare = claims
        .values()
        .any(|c| c.iter().any(|(_, _, address)| !address.contains('/')));
    let prefixes: Vec<String> = if bare {
        client
            .list(PREFIXES, &[])
            .await?
            .iter()
            .filter_map(|p| p.get("prefix")?.as_str().map(str::to_string))
            .collect()
    } else {
        Vec::new()
    };
    let mut wanted: Vec<Wanted> = Vec::new();
    for (ip, claimants) in &claims {
        let mut owners: Vec<&str> = claimants
            .iter()
            .map(|(h, _, _)| holders[*h].name.as_str())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        // Several machines claim it: one alternative per machine (its first claim), for a
        // person to approve one and reject the rest.
        let contested = owners.len() > 1;
        let mut seen_holders = std::collections::HashSet::new();
        for &(h, interface, address) in claimants {
            if !seen_holders.insert(h) {
                continue;
            }
            let holder = &holders[h];
            let address = if address.contains('/') {
                address.to_string()
            } else {
                match prefixes.iter().filter_map(|p| contains(p, *ip)).max() {
                    Some(length) => format!("{ip}/{length}"),
                    None => {
                        report.unmapped.push(format!(
                        "{ip} on {} {interface}: no prefix length (the source gives none and no NetBox prefix contains it)",
                        holder.name
                    ));
                        continue;
                    }
                }
            };
            wanted.push(Wanted {
                holder,
                h,
                interface: interface.to_string(),
                address,
                ip: *ip,
                claimed_by: contested.then(|| owners.iter().map(|o| o.to_string()).collect()),
            });
            if !contested {
                break;
            }
        }
    }

    let netbox_ips = client.list(IPS, &[]).await?;
    let mut by_host: HashMap<IpAddr, Vec<&Value>> = HashMap::new();
    for object in &netbox_ips {
        if let Some(ip) = object
            .get("address")
            .and_then(Value::as_str)
            .and_then(host_of)
        {
            by_host.entry(ip).or_default().push(object);
        }
    }
    // Whose primary each address is now, among the holders: moving it needs it released first.
    let mut primary_of: HashMap<IpAddr, (usize, usize)> = HashMap::new();
    for (h, holder) in holders.iter().enumerate() {
        for (family, address) in holder.primary.iter().enumerate() {
            if let Some(ip) = address.as_deref().and_then(host_of) {
                primary_of.insert(ip, (h, family));
            }
        }
    }
    // Primaries this plan releases: (holder, family).
    let mut released: std::collections::HashSet<(usize, usize)> = Default::default();
    let mut items = Vec::new();
    // Which addresses this plan creates: their primary is set once they exist.
    let mut created: HashMap<IpAddr, usize> = HashMap::new();
    let mut moved: HashMap<IpAddr, usize> = HashMap::new();
    for want in &wanted {
        let holder = want.holder;
        let on = format!("{} {}", holder.name, want.interface);
        let existing = by_host.get(&want.ip).cloned().unwrap_or_default();
        // A contested address: each alternative is its own item (keyed by its machine), marked
        // as one of a choice so that bulk approval passes it by and apply refuses two.
        let (key, choice) = match &want.claimed_by {
            None => (format!("ip:{}", want.ip), None),
            Some(owners) => (
                format!("ip:{}@{}", want.ip, holder.name),
                Some(json!({
                    "group": format!("ip:{}", want.ip),
                    "claimed_by": owners,
                    "why": format!(
                        "{} is claimed by {}: approve the one that holds it, reject the rest",
                        want.ip,
                        owners.join(" and ")
                    ),
                })),
            ),
        };
        let with_choice = |mut extra: Value| {
            if let Some(choice) = &choice {
                extra["choice"] = choice.clone();
            }
            extra
        };
        let assign = json!({
            "address": want.address,
            "assigned_object_type": holder.interface_model(),
            "assigned_object_id": holder.interface_reference(&want.interface),
        });
        match existing.as_slice() {
            [] => {
                // NetBox's own fields (rollback compares them); `on` says it for people.
                let fields = BTreeMap::from([
                    ("address".to_string(), json!(want.address)),
                    (
                        "assigned_object_type".to_string(),
                        json!(holder.interface_model()),
                    ),
                    (
                        "assigned_object_id".to_string(),
                        holder.interface_reference(&want.interface),
                    ),
                ]);
                let mut body = assign.clone();
                body["status"] = json!("active");
                body["tags"] = json!([{"slug": tag}]);
                if choice.is_none() {
                    created.insert(want.ip, items.len());
                }
                items.push(item(
                    ApprovalAction::Create,
                    IPS,
                    Target {
                        device_id: holder.device_id,
                        object_id: None,
                        key,
                    },
                    from_nothing(&fields),
                    body,
                    with_choice(json!({
                        "match": {"address": want.address},
                        "on": on,
                        "needs": [format!("tag:{tag}"), holder.interface_key(&want.interface)],
                    })),
                ));
            }
            [object] => {
                let now_on = assigned_to(object);
                let now_address = object.get("address").and_then(Value::as_str);
                if now_on
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(&on))
                    && now_address == Some(want.address.as_str())
                {
                    continue;
                }
                if !is_tagged(object, &tag) {
                    report.untagged.push(format!(
                        "{} (on {}; the inventory has it on {on})",
                        want.ip,
                        now_on.as_deref().unwrap_or("nothing")
                    ));
                    continue;
                }
                // A move: the fields are NetBox's own, so apply can check them and rollback
                // can put them back.
                let seen = observed(IPS, object);
                let fields = json!({
                    "address": {"from": seen["address"], "to": want.address},
                    "assigned_object_type": {"from": seen["assigned_object_type"], "to": holder.interface_model()},
                    "assigned_object_id": {"from": seen["assigned_object_id"], "to": holder.interface_reference(&want.interface)},
                });
                if choice.is_some() && primary_of.contains_key(&want.ip) {
                    report.unmapped.push(format!(
                        "{}: claimed by {} and a primary IP in NetBox now; not proposed: a person decides which one holds it",
                        want.ip,
                        want.claimed_by.iter().flatten().cloned().collect::<Vec<_>>().join(" and ")
                    ));
                    continue;
                }
                if let Some(&(h, family)) = primary_of.get(&want.ip) {
                    let owner = &holders[h];
                    if let Some(id) = owner.netbox_id {
                        let field = ["primary_ip4", "primary_ip6"][family];
                        let current = owner.primary[family].clone();
                        released.insert((h, family));
                        items.push(item(
                            ApprovalAction::Update,
                            owner.endpoint(),
                            Target {
                                device_id: owner.device_id,
                                object_id: Some(id),
                                key: owner.key(),
                            },
                            json!({field: {"from": current, "to": null}}),
                            json!({field: null}),
                            json!({
                                "seen": {field: current},
                                "why": format!("released so that {} can move to {on} (NetBox does not move a primary IP)", want.ip),
                            }),
                        ));
                    }
                }
                if choice.is_none() {
                    moved.insert(want.ip, items.len());
                }
                items.push(item(
                    ApprovalAction::Update,
                    IPS,
                    Target {
                        device_id: holder.device_id,
                        object_id: object.get("id").and_then(Value::as_i64),
                        key,
                    },
                    fields,
                    assign,
                    with_choice(json!({
                        "seen": seen,
                        "on": on,
                        "was_on": now_on,
                        "needs": [holder.interface_key(&want.interface)],
                    })),
                ));
            }
            many => report.unmapped.push(format!(
                "{}: NetBox has {} objects for this address (VRFs?); not guessing which",
                want.ip,
                many.len()
            )),
        }
    }

    // Primary IPs.
    let mut by_holder: Vec<Vec<&Wanted>> = vec![Vec::new(); holders.len()];
    // A contested address is no one's primary until a person has decided whose it is.
    for want in wanted.iter().filter(|w| w.claimed_by.is_none()) {
        by_holder[want.h].push(want);
    }
    for (h, holder) in holders.iter().enumerate() {
        let mine = &by_holder[h];
        for (family, field) in [(4u8, "primary_ip4"), (6, "primary_ip6")] {
            let of_family: Vec<&&Wanted> = mine
                .iter()
                .filter(|w| (family == 4) == w.ip.is_ipv4())
                .collect();
            let resolved = of_family.iter().find_map(|w| {
                holder
                    .resolves_to
                    .iter()
                    .find(|(ip, _)| host_of(ip) == Some(w.ip))
                    .map(|(_, source)| {
                        (
                            w,
                            format!("the address {} resolves to ({source})", holder.name),
                        )
                    })
            });
            let management = || {
                of_family.iter().find_map(|w| {
                    holder
                        .interfaces
                        .iter()
                        .any(|(name, _, mgmt)| *mgmt && *name == w.interface)
                        .then(|| (w, format!("on the management interface {}", w.interface)))
                })
            };
            let first = || {
                of_family
                    .first()
                    .map(|w| (w, format!("the first address ({})", w.interface)))
            };
            let Some((chosen, why)) = resolved.or_else(management).or_else(first) else {
                continue;
            };
            let slot = usize::from(family == 6);
            let current = if released.contains(&(h, slot)) {
                None // released above, so set again once the address has moved
            } else {
                holder.primary[slot].as_deref()
            };
            if current == Some(chosen.address.as_str()) {
                continue;
            }
            let label = format!("primary IPv{family} of {}: {why}", holder.name);
            if let Some(&at) = created.get(&chosen.ip) {
                // Created by this plan: made primary right after it exists.
                let changes = &mut items[at].proposed_changes;
                changes["primary_of"] = json!({"target": holder.reference(), "field": field});
                changes["why"] = json!(label);
                continue;
            }
            let Some(netbox_id) = holder.netbox_id else {
                // Neither exists yet in a way this batch can point at: the next plan will.
                continue;
            };
            let mut needs = Vec::new();
            if moved.contains_key(&chosen.ip) {
                needs.push(format!("ip:{}", chosen.ip));
            }
            items.push(item(
                ApprovalAction::Update,
                holder.endpoint(),
                Target {
                    device_id: holder.device_id,
                    object_id: Some(netbox_id),
                    key: holder.key(),
                },
                json!({field: {"from": current, "to": chosen.address}}),
                write_body(
                    holder.endpoint(),
                    &BTreeMap::from([(field.to_string(), json!(chosen.address))]),
                ),
                json!({"seen": {field: current}, "needs": needs, "why": label}),
            ));
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_contain_addresses_of_their_family() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(contains("10.16.0.0/16", ip("10.16.3.4")), Some(16));
        assert_eq!(contains("10.16.0.0/24", ip("10.16.3.4")), None);
        assert_eq!(contains("0.0.0.0/0", ip("10.16.3.4")), Some(0));
        assert_eq!(contains("2001:db8::/32", ip("2001:db8::1")), Some(32));
        assert_eq!(contains("2001:db8::/32", ip("10.0.0.1")), None);
        assert_eq!(host_of("10.0.0.5/24"), Some(ip("10.0.0.5")));
        assert!(is_noise(ip("fe80::1")) && is_noise(ip("127.0.0.1")));
        assert!(!is_noise(ip("10.0.0.1")));
    }
}
