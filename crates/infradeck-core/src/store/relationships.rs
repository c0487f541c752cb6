//! `device_relationships`: links between devices and the trees they form.

use super::devices::{DEVICE_COLUMNS, device_from_row};
use super::{Change, Device, Result, Store, Writer, json_text, parse_text_enum};
use crate::model::RelationshipType;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashSet;

/// A device related to another one, seen from that other one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    pub(crate) relationship_id: i64,
    pub relationship_type: RelationshipType,
    /// True when the related device is the parent (e.g. the host of this VM).
    pub is_parent: bool,
    pub device: Device,
    pub metadata: Option<String>,
}

/// A node of a relationship tree: a device and the devices reached from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode {
    pub device: Device,
    /// How this node relates to its parent in the tree; `None` at the root.
    pub relationship_type: Option<RelationshipType>,
    /// That link's metadata (JSON), e.g. the cables of a `connects_to`.
    pub link_metadata: Option<String>,
    pub children: Vec<TreeNode>,
    /// True when the walk stopped here (depth limit or a cycle) although links continue.
    pub truncated: bool,
}

/// Which way a tree walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From parents to children: cluster → hosts → VMs; what depends on this device.
    Down,
    /// From children to parents: VM → host → cluster; what this device depends on.
    Up,
}

impl Writer<'_> {
    /// Records that `parent` relates to `child`; updates the metadata if it changed.
    pub fn link(
        &self,
        parent: i64,
        child: i64,
        relationship_type: RelationshipType,
        metadata: &serde_json::Value,
        at: &str,
    ) -> Result<Change<Option<String>>> {
        let conn = self.conn();
        let metadata = json_text(metadata);
        let existing: Option<(i64, Option<String>)> = conn
            .prepare_cached(
                "SELECT id, metadata FROM device_relationships WHERE parent_device_id = ?1 \
                 AND child_device_id = ?2 AND relationship_type = ?3",
            )?
            .query_row(params![parent, child, relationship_type.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        match existing {
            Some((_, old)) if old == metadata => Ok(Change::Unchanged),
            Some((id, old)) => {
                conn.prepare_cached(
                    "UPDATE device_relationships SET metadata = ?2, updated_at = ?3 WHERE id = ?1",
                )?
                .execute(params![id, metadata, at])?;
                Ok(Change::Updated { before: old })
            }
            None => {
                conn.prepare_cached(
                    "INSERT INTO device_relationships (parent_device_id, child_device_id, \
                     relationship_type, metadata, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )?
                .execute(params![
                    parent,
                    child,
                    relationship_type.as_str(),
                    metadata,
                    at
                ])?;
                Ok(Change::Added)
            }
        }
    }
}

/// One cable of a `connects_to` link: a server's NIC to a switch port, as CDP/LLDP announced.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryCable {
    /// The server's record (the link's parent) and its NIC.
    pub server_record: i64,
    pub server_nic: String,
    /// The switch's record (the link's child) and its port.
    pub switch_record: i64,
    pub switch_port: String,
}

impl Store {
    /// Every cable the `connects_to` links carry, by server record then NIC.
    pub fn inventory_cables(&self) -> Result<Vec<InventoryCable>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT parent_device_id, child_device_id, metadata FROM device_relationships \
             WHERE relationship_type = 'connects_to' ORDER BY parent_device_id, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (server, switch, metadata) = row?;
            let metadata: serde_json::Value = metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default();
            for cable in metadata["cables"].as_array().into_iter().flatten() {
                if let (Some(nic), Some(port)) =
                    (cable["host_nic"].as_str(), cable["switch_port"].as_str())
                {
                    out.push(InventoryCable {
                        server_record: server,
                        server_nic: nic.to_string(),
                        switch_record: switch,
                        switch_port: port.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every device directly related to `device_id`, parents first, then by name.
    pub fn related(&self, device_id: i64) -> Result<Vec<Related>> {
        let columns = DEVICE_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, r.id, r.relationship_type, r.metadata, 1 AS is_parent \
             FROM device_relationships r JOIN devices d ON d.id = r.parent_device_id \
             WHERE r.child_device_id = ?1 \
             UNION ALL \
             SELECT {columns}, r.id, r.relationship_type, r.metadata, 0 AS is_parent \
             FROM device_relationships r JOIN devices d ON d.id = r.child_device_id \
             WHERE r.parent_device_id = ?1 \
             ORDER BY is_parent DESC, 2, 1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map([device_id], |r| {
            Ok(Related {
                device: device_from_row(r)?,
                relationship_id: r.get(12)?,
                relationship_type: parse_text_enum(r, 13)?,
                metadata: r.get(14)?,
                is_parent: r.get::<_, i64>(15)? == 1,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The tree reached from `root` by following links in `direction`, at most `max_depth`
    /// levels deep. A device already on the path is not expanded again, so cycles terminate.
    pub fn relationship_tree(
        &self,
        root: i64,
        direction: Direction,
        max_depth: usize,
    ) -> Result<Option<TreeNode>> {
        let Some(device) = self.device(root)? else {
            return Ok(None);
        };
        let mut path = HashSet::from([root]);
        Ok(Some(self.expand(
            device,
            (None, None),
            direction,
            max_depth,
            &mut path,
        )?))
    }

    fn expand(
        &self,
        device: Device,
        (relationship_type, link_metadata): (Option<RelationshipType>, Option<String>),
        direction: Direction,
        depth_left: usize,
        path: &mut HashSet<i64>,
    ) -> Result<TreeNode> {
        let links = self.neighbours(device.id, direction)?;
        let mut node = TreeNode {
            device,
            relationship_type,
            link_metadata,
            children: Vec::new(),
            truncated: false,
        };
        if depth_left == 0 {
            node.truncated = !links.is_empty();
            return Ok(node);
        }
        for (kind, metadata, neighbour) in links {
            if !path.insert(neighbour.id) {
                node.truncated = true;
                continue;
            }
            let id = neighbour.id;
            let child = self.expand(
                neighbour,
                (Some(kind), metadata),
                direction,
                depth_left - 1,
                path,
            )?;
            path.remove(&id);
            node.children.push(child);
        }
        Ok(node)
    }

    /// The devices one step away: down, what this one carries (its children); up, what it
    /// depends on (its parents). A `connects_to` link (server → switch) is the other way round:
    /// the server depends on its switch, and the switch carries the servers plugged into it.
    fn neighbours(
        &self,
        device_id: i64,
        direction: Direction,
    ) -> Result<Vec<(RelationshipType, Option<String>, Device)>> {
        let (join_on, match_on, join_back, match_back) = match direction {
            Direction::Down => (
                "r.child_device_id",
                "r.parent_device_id",
                "r.parent_device_id",
                "r.child_device_id",
            ),
            Direction::Up => (
                "r.parent_device_id",
                "r.child_device_id",
                "r.child_device_id",
                "r.parent_device_id",
            ),
        };
        let columns = DEVICE_COLUMNS
            .split(", ")
            .map(|c| format!("d.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, r.relationship_type, r.metadata FROM device_relationships r \
             JOIN devices d ON d.id = {join_on} \
             WHERE {match_on} = ?1 AND r.relationship_type != 'connects_to' \
             UNION ALL \
             SELECT {columns}, r.relationship_type, r.metadata FROM device_relationships r \
             JOIN devices d ON d.id = {join_back} \
             WHERE {match_back} = ?1 AND r.relationship_type = 'connects_to' \
             ORDER BY 13, 2, 1"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map([device_id], |r| {
            Ok((parse_text_enum(r, 12)?, r.get(13)?, device_from_row(r)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

/// A relationship between two devices of one source instance, as reconcile manages it.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedLink {
    pub(crate) id: i64,
    pub(crate) parent: i64,
    pub(crate) child: i64,
    pub(crate) relationship_type: RelationshipType,
    pub(crate) metadata: Option<String>,
}

impl Writer<'_> {
    /// The links (other than `same_as`) whose both ends belong to one source instance: the links
    /// that source's sync owns and may remove.
    pub(crate) fn links_within_source(
        &self,
        source_system: &str,
        source_identifier: &str,
    ) -> Result<Vec<OwnedLink>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT r.id, r.parent_device_id, r.child_device_id, r.relationship_type, r.metadata \
             FROM device_relationships r \
             JOIN devices p ON p.id = r.parent_device_id JOIN devices c ON c.id = r.child_device_id \
             WHERE p.source_system = ?1 AND p.source_identifier = ?2 \
             AND c.source_system = ?1 AND c.source_identifier = ?2 AND r.relationship_type != 'same_as'",
        )?;
        let rows = stmt.query_map(params![source_system, source_identifier], |r| {
            Ok(OwnedLink {
                id: r.get(0)?,
                parent: r.get(1)?,
                child: r.get(2)?,
                relationship_type: parse_text_enum(r, 3)?,
                metadata: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Deletes one relationship by id.
    pub(crate) fn delete_link(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM device_relationships WHERE id = ?1")?
            .execute([id])?
            > 0)
    }

    /// Every `same_as` link: (id, parent, child, metadata).
    pub(crate) fn same_as_links(&self) -> Result<Vec<OwnedLink>> {
        self.links_of_type(RelationshipType::SameAs)
    }

    /// Every link of one type.
    pub(crate) fn links_of_type(
        &self,
        relationship_type: RelationshipType,
    ) -> Result<Vec<OwnedLink>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, parent_device_id, child_device_id, relationship_type, metadata \
             FROM device_relationships WHERE relationship_type = ?1",
        )?;
        let rows = stmt.query_map([relationship_type.as_str()], |r| {
            Ok(OwnedLink {
                id: r.get(0)?,
                parent: r.get(1)?,
                child: r.get(2)?,
                relationship_type: parse_text_enum(r, 3)?,
                metadata: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
