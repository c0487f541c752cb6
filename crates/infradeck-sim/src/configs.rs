//! Renders network device configs from the vendor templates under `assets/configs/`.
//!
//! A device's version `n` is its first config with `n` deterministic edits applied (a changed
//! interface description, a shut port, a new VLAN, ...). Every version also carries the volatile
//! lines real configs have (`! Last configuration change at ...`, `## Last commit: ...`), so a
//! diff shows both real edits and noise that the dashboard can hide.

use super::estate::{ConfigVersion, NetDevice, NetInterface, SITES};
use super::rng::Rng;

const IOS: &str = include_str!("../assets/configs/ios.txt");
const NXOS: &str = include_str!("../assets/configs/nxos.txt");
const EOS: &str = include_str!("../assets/configs/eos.txt");
const JUNOS: &str = include_str!("../assets/configs/junos.txt");

/// The config text of one version of a device.
pub(crate) fn render(device: &NetDevice, version: &ConfigVersion) -> String {
    let mut interfaces = device.interfaces.clone();
    let mut vlans: Vec<u16> = interfaces.iter().filter_map(|i| i.vlan).collect();
    vlans.sort_unstable();
    vlans.dedup();
    let mut rng = Rng::new(device.seed);
    for edit in 0..version.edits {
        let port = rng.below(interfaces.len() as u64) as usize;
        match edit % 4 {
            0 => {
                interfaces[port].description = format!(
                    "change {}: moved to {}",
                    edit + 1,
                    ["rack B12", "patch panel 3", "new ESXi host", "spare"][rng.below(4) as usize]
                )
            }
            1 => interfaces[port].shutdown = !interfaces[port].shutdown,
            2 => vlans.push(300 + edit as u16),
            _ => interfaces[port].vlan = interfaces[port].vlan.map(|v| v + 1),
        }
    }
    let template = match device.model.as_str() {
        "NXOS" => NXOS,
        "EOS" => EOS,
        "JunOS" => JUNOS,
        _ => IOS,
    };
    let site = SITES[device.site];
    let octets: Vec<&str> = device.ip.split('.').collect();
    let gateway = format!("{}.{}.{}.1", octets[0], octets[1], octets[2]);
    let users = ["netops", "admin", "rancid", "jdoe"];
    let user = users[(version.edits as usize + device.name.len()) % users.len()];
    template
        .replace("{{hostname}}", &device.name)
        .replace("{{domain}}", site.1)
        .replace("{{mgmt_gw}}", &gateway)
        .replace("{{dns1}}", "10.0.0.2")
        .replace("{{dns2}}", "10.0.0.3")
        .replace("{{ntp1}}", "10.0.0.4")
        .replace("{{ntp2}}", "10.0.0.5")
        .replace("{{location}}", &format!("{} hall 1", site.0.to_uppercase()))
        .replace("{{change_user}}", user)
        .replace(
            "{{timestamp_ios}}",
            &version.time.format("%H:%M:%S UTC %a %b %-d %Y").to_string(),
        )
        .replace(
            "{{timestamp_junos}}",
            &version.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
        .replace("{{vlans}}", &render_vlans(&device.model, &vlans))
        .replace("{{interfaces}}", &render_interfaces(device, &interfaces))
}

fn render_vlans(model: &str, vlans: &[u16]) -> String {
    match model {
        "JunOS" => {
            if vlans.is_empty() {
                return String::new();
            }
            let mut out = String::from("vlans {\n");
            for v in vlans {
                out.push_str(&format!("    vlan{v} {{\n        vlan-id {v};\n    }}\n"));
            }
            out.push('}');
            out
        }
        _ => vlans
            .iter()
            .map(|v| format!("vlan {v}\n  name VLAN{v}"))
            .collect::<Vec<_>>()
            .join("\n!\n"),
    }
}

fn render_interfaces(device: &NetDevice, interfaces: &[NetInterface]) -> String {
    let mut out = String::new();
    if device.model == "JunOS" {
        out.push_str("interfaces {\n");
        for iface in interfaces {
            out.push_str(&format!("    {} {{\n", iface.name));
            out.push_str(&format!("        description \"{}\";\n", iface.description));
            if iface.shutdown {
                out.push_str("        disable;\n");
            }
            out.push_str("        unit 0 {\n");
            match (&iface.address, iface.vlan) {
                (Some(address), _) => out.push_str(&format!(
                    "            family inet {{\n                address {address};\n            }}\n"
                )),
                (None, Some(vlan)) => out.push_str(&format!(
                    "            family ethernet-switching {{\n                vlan {{\n                    members vlan{vlan};\n                }}\n            }}\n"
                )),
                (None, None) => {}
            }
            out.push_str("        }\n    }\n");
        }
        out.push_str(&format!(
            "    fxp0 {{\n        unit 0 {{\n            family inet {{\n                address {}/24;\n            }}\n        }}\n    }}\n}}",
            device.ip
        ));
        return out;
    }
    let indent = if device.model == "EOS" { "   " } else { " " };
    for iface in interfaces {
        out.push_str(&format!("interface {}\n", iface.name));
        out.push_str(&format!("{indent}description {}\n", iface.description));
        match (&iface.address, iface.vlan) {
            (Some(address), _) => {
                if device.model != "IOS" {
                    out.push_str(&format!("{indent}no switchport\n"));
                }
                let (ip, prefix) = address.split_once('/').unwrap_or((address, "30"));
                if device.model == "IOS" {
                    out.push_str(&format!("{indent}ip address {ip} {}\n", netmask(prefix)));
                } else {
                    out.push_str(&format!("{indent}ip address {address}\n"));
                }
                let _ = prefix;
            }
            (None, Some(vlan)) => {
                out.push_str(&format!("{indent}switchport mode access\n"));
                out.push_str(&format!("{indent}switchport access vlan {vlan}\n"));
            }
            (None, None) => {}
        }
        if iface.shutdown {
            out.push_str(&format!("{indent}shutdown\n"));
        } else if device.model == "NXOS" {
            out.push_str(&format!("{indent}no shutdown\n"));
        }
        out.push_str("!\n");
    }
    let mgmt = match device.model.as_str() {
        "NXOS" => "mgmt0",
        "EOS" => "Management1",
        _ => "Vlan1",
    };
    out.push_str(&format!("interface {mgmt}\n"));
    out.push_str(&format!("{indent}description management\n"));
    if device.model == "IOS" {
        out.push_str(&format!("{indent}ip address {} 255.255.255.0", device.ip));
    } else {
        out.push_str(&format!("{indent}ip address {}/24", device.ip));
    }
    out
}

fn netmask(prefix: &str) -> String {
    let bits: u32 = prefix.parse().unwrap_or(24).min(32);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    format!(
        "{}.{}.{}.{}",
        mask >> 24,
        (mask >> 16) & 0xff,
        (mask >> 8) & 0xff,
        mask & 0xff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::Estate;

    #[test]
    fn every_vendor_renders_and_versions_differ() {
        let estate = Estate::generate(1, 600);
        let mut models = std::collections::BTreeSet::new();
        for device in estate.net_devices.iter().filter(|d| d.versions.len() >= 2) {
            let first = render(device, &device.versions[0]);
            let last = render(device, device.versions.last().unwrap());
            assert!(
                !first.contains("{{"),
                "unfilled placeholder in {}:\n{first}",
                device.model
            );
            assert!(first.contains(&device.name));
            assert_ne!(first, last);
            assert_eq!(
                last,
                render(device, device.versions.last().unwrap()),
                "deterministic"
            );
            models.insert(device.model.clone());
        }
        assert!(models.len() >= 3, "{models:?}");
        assert_eq!(netmask("30"), "255.255.255.252");
    }
}
