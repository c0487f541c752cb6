//! Interfaces out of network device configs: IOS / NX-OS / EOS `interface` blocks and Junos
//! `interfaces { }` hierarchies. Admin state comes from `shutdown` / `disable`; description and
//! VLAN go to metadata, as the seed's Oxidized flow asks.

use crate::model::InterfaceRecord;
use serde_json::json;

/// Parses the interfaces of a config in the style of `model` (Oxidized's class name).
pub(crate) fn parse_interfaces(model: &str, config: &str) -> Vec<InterfaceRecord> {
    let junos = model.eq_ignore_ascii_case("junos")
        || config
            .lines()
            .any(|l| l.trim_start().starts_with("interfaces {"));
    let mut interfaces = if junos {
        parse_junos(config)
    } else {
        parse_ios_like(config)
    };
    interfaces.sort_by(|a, b| a.interface_name.cmp(&b.interface_name));
    interfaces
}

fn kind_of(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("loopback") || lower.starts_with("lo0") {
        "loopback"
    } else if lower.starts_with("vlan")
        || lower.starts_with("port-channel")
        || lower.starts_with("ae")
        || lower.starts_with("irb")
        || lower.starts_with("tunnel")
    {
        "virtual"
    } else {
        "physical"
    }
}

fn mask_to_prefix(mask: &str) -> Option<u32> {
    let octets: Vec<u8> = mask
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    (octets.len() == 4).then(|| octets.iter().map(|o| o.count_ones()).sum())
}

struct Building {
    name: String,
    description: Option<String>,
    addresses: Vec<String>,
    vlan: Option<u64>,
    disabled: bool,
}

impl Building {
    fn new(name: &str) -> Building {
        Building {
            name: name.to_string(),
            description: None,
            addresses: Vec::new(),
            vlan: None,
            disabled: false,
        }
    }

    fn finish(self) -> InterfaceRecord {
        InterfaceRecord {
            interface_type: Some(kind_of(&self.name).to_string()),
            interface_name: self.name,
            mac_address: None,
            ip_addresses: self.addresses,
            speed_mbps: None,
            status: Some(if self.disabled { "disabled" } else { "up" }.to_string()),
            metadata: json!({"description": self.description, "vlan": self.vlan}),
        }
    }
}

fn parse_ios_like(config: &str) -> Vec<InterfaceRecord> {
    let mut out = Vec::new();
    let mut current: Option<Building> = None;
    for line in config.lines() {
        let starts_block = !line.starts_with([' ', '\t']);
        if starts_block {
            if let Some(done) = current.take() {
                out.push(done.finish());
            }
            if let Some(name) = line.strip_prefix("interface ") {
                current = Some(Building::new(name.trim()));
            }
            continue;
        }
        let Some(iface) = current.as_mut() else {
            continue;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["description", rest @ ..] => iface.description = Some(rest.join(" ")),
            ["shutdown"] => iface.disabled = true,
            ["no", "shutdown"] => iface.disabled = false,
            ["ip", "address", addr, mask, ..] if mask.contains('.') => {
                if let Some(prefix) = mask_to_prefix(mask) {
                    iface.addresses.push(format!("{addr}/{prefix}"));
                }
            }
            ["ip", "address", addr, ..] if addr.contains('/') => {
                iface.addresses.push((*addr).to_string())
            }
            ["switchport", "access", "vlan", vlan] => iface.vlan = vlan.parse().ok(),
            _ => {}
        }
    }
    if let Some(done) = current.take() {
        out.push(done.finish());
    }
    out
}

fn parse_junos(config: &str) -> Vec<InterfaceRecord> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_interfaces = false;
    let mut current: Option<Building> = None;
    for raw in config.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let opens = line.ends_with('{');
        let closes = line == "}";
        if opens {
            let head = line.trim_end_matches('{').trim();
            if depth == 0 && head == "interfaces" {
                in_interfaces = true;
            } else if in_interfaces && depth == 1 {
                current = Some(Building::new(head));
            }
            depth += 1;
            continue;
        }
        if closes {
            depth = depth.saturating_sub(1);
            if in_interfaces && depth == 1 {
                if let Some(done) = current.take() {
                    out.push(done.finish());
                }
            } else if in_interfaces && depth == 0 {
                in_interfaces = false;
            }
            continue;
        }
        let Some(iface) = current.as_mut() else {
            continue;
        };
        let statement = line.trim_end_matches(';');
        let words: Vec<&str> = statement.split_whitespace().collect();
        match words.as_slice() {
            ["description", rest @ ..] => {
                iface.description = Some(rest.join(" ").trim_matches('"').to_string())
            }
            ["disable"] => iface.disabled = true,
            ["address", addr] => iface.addresses.push((*addr).to_string()),
            ["members", vlan] => iface.vlan = vlan.trim_start_matches("vlan").parse().ok(),
            ["vlan-id", vlan] => iface.vlan = vlan.parse().ok(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ios_blocks() {
        let config = "hostname r1\n!\ninterface GigabitEthernet0/1\n description uplink to core\n ip address 10.0.0.1 255.255.255.252\n shutdown\n!\ninterface Vlan1\n ip address 10.1.1.1 255.255.255.0\n!\nip route 0.0.0.0 0.0.0.0 10.0.0.2\n";
        let ifaces = parse_interfaces("IOS", config);
        assert_eq!(ifaces.len(), 2);
        assert_eq!(ifaces[0].interface_name, "GigabitEthernet0/1");
        assert_eq!(ifaces[0].ip_addresses, ["10.0.0.1/30"]);
        assert_eq!(ifaces[0].status.as_deref(), Some("disabled"));
        assert_eq!(ifaces[0].metadata["description"], "uplink to core");
        assert_eq!(ifaces[1].interface_type.as_deref(), Some("virtual"));
    }

    #[test]
    fn eos_and_nxos_indentation_and_vlans() {
        let config = "interface Ethernet3\n   description esx01 vmnic0\n   switchport mode access\n   switchport access vlan 110\n!\ninterface Management1\n   ip address 10.255.0.11/24\n";
        let ifaces = parse_interfaces("EOS", config);
        assert_eq!(ifaces[0].metadata["vlan"], 110);
        assert_eq!(ifaces[1].ip_addresses, ["10.255.0.11/24"]);
    }

    #[test]
    fn junos_hierarchy() {
        let config = "system {\n    host-name fw1;\n}\ninterfaces {\n    ge-0/0/0 {\n        description \"wan uplink\";\n        disable;\n        unit 0 {\n            family inet {\n                address 10.250.1.1/30;\n            }\n        }\n    }\n    ge-0/0/1 {\n        unit 0 {\n            family ethernet-switching {\n                vlan {\n                    members vlan120;\n                }\n            }\n        }\n    }\n}\nsnmp {\n    location \"x\";\n}\n";
        let ifaces = parse_interfaces("JunOS", config);
        assert_eq!(ifaces.len(), 2);
        assert_eq!(ifaces[0].metadata["description"], "wan uplink");
        assert_eq!(ifaces[0].status.as_deref(), Some("disabled"));
        assert_eq!(ifaces[0].ip_addresses, ["10.250.1.1/30"]);
        assert_eq!(ifaces[1].metadata["vlan"], 120);
    }
}
