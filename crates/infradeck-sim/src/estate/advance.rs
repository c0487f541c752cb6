//! Time passing in an estate: what changes between two syncs (VMs born, moved, powered off and
//! removed, configs committed, pages and tickets edited), as the real systems would show it.

use super::*;

impl Estate {
    /// Applies one step of change, deterministic for the seed and step number:
    /// with `k = max(1, scale / 200)`, it creates `k` VMs, deletes `k` (from vCenter only),
    /// powers off `k` running VMs, migrates `k` running VMs to another connected host,
    /// takes one connected host offline (`NOT_RESPONDING`), gives `max(1, nodes / 10)` Oxidized
    /// nodes a new config version and files `max(1, tickets / 20)` new Jira issues. The sets are
    /// disjoint, and the clock moves one hour.
    pub(crate) fn advance(&mut self) -> AdvanceReport {
        self.step += 1;
        self.puppet_runs += 1;
        self.now += Duration::hours(1);
        let mut rng = Rng::derive(self.seed, &format!("advance-{}", self.step));
        let mut report = AdvanceReport {
            step: self.step,
            ..AdvanceReport::default()
        };
        let k = (self.scale / 200).max(1);

        // Candidates are live VMs on connected hosts, chosen before anything changes.
        let eligible: Vec<usize> = (0..self.vms.len())
            .filter(|&i| {
                !self.vms[i].deleted && self.hosts[self.vms[i].host].connection_state == "CONNECTED"
            })
            .collect();
        let picks = rng.sample(eligible.len(), 3 * k);
        let mut picked: Vec<usize> = picks.into_iter().map(|p| eligible[p]).collect();
        // Deterministic but mixed: spread the picks over the three roles.
        let mut shuffled = Vec::with_capacity(picked.len());
        while !picked.is_empty() {
            let i = rng.below(picked.len() as u64) as usize;
            shuffled.push(picked.swap_remove(i));
        }
        let mut used = std::collections::HashSet::new();
        for &i in &shuffled {
            if report.deleted_vms.len() < k {
                self.vms[i].deleted = true;
                report.deleted_vms.push(self.vms[i].moid.clone());
                used.insert(i);
            }
        }
        for &i in &shuffled {
            if used.contains(&i) || report.powered_off_vms.len() >= k {
                continue;
            }
            if self.vms[i].power_state == PowerState::On {
                self.vms[i].power_state = PowerState::Off;
                self.vms[i].tools_running = false;
                report.powered_off_vms.push(self.vms[i].moid.clone());
                used.insert(i);
            }
        }
        for &i in &shuffled {
            if used.contains(&i) || report.migrated_vms.len() >= k {
                continue;
            }
            let from = self.vms[i].host;
            let cluster = self.hosts[from].cluster;
            let targets: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| {
                    h != from
                        && self.hosts[h].connection_state == "CONNECTED"
                        && self.hosts[h].cluster == cluster
                        && !self.hosts[h].standalone
                        && !self.hosts[from].standalone
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            let to = *rng.pick(&targets);
            self.vms[i].host = to;
            report.migrated_vms.push((
                self.vms[i].moid.clone(),
                self.hosts[from].moid.clone(),
                self.hosts[to].moid.clone(),
            ));
            used.insert(i);
        }
        // A host goes offline; not one that just received or lost a migrated VM.
        let touched: std::collections::HashSet<&str> = report
            .migrated_vms
            .iter()
            .flat_map(|(_, from, to)| [from.as_str(), to.as_str()])
            .collect();
        let offline_candidates: Vec<usize> = (0..self.hosts.len())
            .filter(|&h| {
                self.hosts[h].connection_state == "CONNECTED"
                    && !touched.contains(self.hosts[h].moid.as_str())
            })
            .collect();
        if offline_candidates.len() > 1 {
            let h = *rng.pick(&offline_candidates);
            self.hosts[h].connection_state = "NOT_RESPONDING".into();
            report.offline_host = Some(self.hosts[h].moid.clone());
        }
        for _ in 0..k {
            let i = self.add_vm(&mut rng, false);
            report.created_vms.push(self.vms[i].moid.clone());
        }
        let editable: Vec<usize> = (0..self.net_devices.len())
            .filter(|&d| self.net_devices[d].last_status == "success")
            .collect();
        let edits = (self.net_devices.len() / 10).max(1).min(editable.len());
        for pick in rng.sample(editable.len(), edits) {
            let device = &mut self.net_devices[editable[pick]];
            let edits = device.versions.last().map_or(0, |v| v.edits) + 1;
            device.versions.push(ConfigVersion {
                oid: hex(&mut rng, 40),
                time: self.now,
                edits,
            });
            device.last_time = self.now;
            report.edited_configs.push(device.name.clone());
        }
        let new_tickets = (self.tickets.len() / 20).max(1);
        for _ in 0..new_tickets {
            let key = self.add_ticket(&mut rng);
            report.new_tickets.push(key);
        }
        self.update_datastore_usage();
        report
    }
}
