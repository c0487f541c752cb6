//! The relationship tree: cluster → hosts → VMs, array → volumes, correlated records. Walks
//! down (what depends on this device) or up (what it depends on); `r` re-roots at the selected
//! node and turns around. Children are read when a node is first expanded.

use crate::app::{Cx, Outcome, Screen};
use crate::keys::{Action, Scope};
use crate::widgets::cursor::Cursor;
use infradeck_core::model::DeviceType;
use infradeck_core::store::{Device, DeviceQuery, Direction, Store, TreeNode, VolumeRow};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

struct Node {
    device: Device,
    relation: Option<String>,
    /// `None` until read.
    children: Option<Vec<Node>>,
    /// An array's volumes, shown as leaves after its children; read with the children.
    volumes: Vec<VolumeRow>,
    expanded: bool,
}

/// How a node relates to the one above it; a `connects_to` names its cables (host NIC → switch
/// port, from CDP/LLDP: untrusted text, sanitized).
fn relation_label(
    relationship: infradeck_core::model::RelationshipType,
    metadata: Option<&str>,
) -> String {
    let cables: Vec<String> = metadata
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|m| m["cables"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            infradeck_core::sanitize::for_terminal(&format!(
                "{}→{}",
                c["host_nic"].as_str().unwrap_or("?"),
                c["switch_port"].as_str().unwrap_or("?")
            ))
            .into_owned()
        })
        .collect();
    if relationship == infradeck_core::model::RelationshipType::ConnectsTo && !cables.is_empty() {
        format!("{} {}", relationship.as_str(), cables.join(", "))
    } else {
        relationship.as_str().to_string()
    }
}

impl Node {
    fn from_tree(tree: TreeNode, expand_levels: usize) -> Node {
        // A node where the walk stopped has children nobody has read yet.
        let unread = tree.truncated && tree.children.is_empty();
        let children: Vec<Node> = tree
            .children
            .into_iter()
            .map(|c| Node::from_tree(c, expand_levels.saturating_sub(1)))
            .collect();
        let relation = tree
            .relationship_type
            .map(|r| relation_label(r, tree.link_metadata.as_deref()));
        Node {
            device: tree.device,
            relation,
            expanded: expand_levels > 0 && !children.is_empty(),
            children: if unread { None } else { Some(children) },
            volumes: Vec::new(),
        }
    }

    fn has_content(&self) -> bool {
        self.children.as_ref().is_some_and(|c| !c.is_empty()) || !self.volumes.is_empty()
    }

    /// Reads the volumes of every array whose children have been read, at any depth.
    fn attach_volumes(&mut self, store: &Store) -> anyhow::Result<()> {
        if self.device.device_type == DeviceType::Storage
            && self.children.is_some()
            && self.volumes.is_empty()
        {
            self.volumes = store.volumes_of_device(self.device.id)?;
        }
        for child in self.children.iter_mut().flatten() {
            child.attach_volumes(store)?;
        }
        Ok(())
    }
}

pub(crate) struct TreeView {
    root_device: Option<i64>,
    direction: Direction,
    roots: Vec<Node>,
    /// The visible rows: path (child indexes from the roots), depth, and for a volume row the
    /// index of the volume in the node at that path.
    rows: Vec<(Vec<usize>, usize, Option<usize>)>,
    cursor: Cursor,
    height: usize,
    loaded: bool,
    /// Each shown device's machine health, read as rows come on screen.
    health: std::collections::HashMap<i64, infradeck_core::model::Health>,
}

impl TreeView {
    /// The tree around `device`, or every cluster and array when there is none.
    pub(crate) fn new(device: Option<i64>) -> TreeView {
        TreeView {
            root_device: device,
            direction: Direction::Down,
            roots: Vec::new(),
            rows: Vec::new(),
            cursor: Cursor::default(),
            height: 20,
            loaded: false,
            health: std::collections::HashMap::new(),
        }
    }

    fn node(&self, path: &[usize]) -> Option<&Node> {
        let (first, rest) = path.split_first()?;
        let mut node = self.roots.get(*first)?;
        for i in rest {
            node = node.children.as_ref()?.get(*i)?;
        }
        Some(node)
    }

    fn node_mut(&mut self, path: &[usize]) -> Option<&mut Node> {
        let (first, rest) = path.split_first()?;
        let mut node = self.roots.get_mut(*first)?;
        for i in rest {
            node = node.children.as_mut()?.get_mut(*i)?;
        }
        Some(node)
    }

    fn flatten(&mut self) {
        type Rows = Vec<(Vec<usize>, usize, Option<usize>)>;
        fn walk(nodes: &[Node], path: &mut Vec<usize>, out: &mut Rows) {
            for (i, node) in nodes.iter().enumerate() {
                path.push(i);
                out.push((path.clone(), path.len() - 1, None));
                if node.expanded {
                    if let Some(children) = &node.children {
                        walk(children, path, out);
                    }
                    for v in 0..node.volumes.len() {
                        out.push((path.clone(), path.len(), Some(v)));
                    }
                }
                path.pop();
            }
        }
        let mut rows = Vec::new();
        walk(&self.roots, &mut Vec::new(), &mut rows);
        self.rows = rows;
    }

    fn selected_path(&self) -> Option<Vec<usize>> {
        self.rows
            .get(self.cursor.selected)
            .map(|(p, _, _)| p.clone())
    }

    fn load(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        self.roots = match self.root_device {
            Some(id) => {
                if !self.loaded {
                    // A device that hangs under something (a VM) starts looking up, towards its
                    // host and cluster; anything else starts looking down at what it carries.
                    let up = cx.store.relationship_tree(id, Direction::Up, 1)?;
                    let has_parent = up.as_ref().is_some_and(|t| {
                        t.children
                            .iter()
                            .any(|c| c.relationship_type.is_some_and(|r| r.as_str() != "same_as"))
                    });
                    let down = cx.store.relationship_tree(id, Direction::Down, 1)?;
                    let has_children = down.as_ref().is_some_and(|t| {
                        t.children
                            .iter()
                            .any(|c| c.relationship_type.is_some_and(|r| r.as_str() != "same_as"))
                    });
                    self.direction = if has_parent && !has_children {
                        Direction::Up
                    } else {
                        Direction::Down
                    };
                }
                cx.store
                    .relationship_tree(id, self.direction, 3)?
                    .map(|t| vec![Node::from_tree(t, 2)])
                    .unwrap_or_default()
            }
            None => {
                let mut roots = Vec::new();
                for device_type in [DeviceType::Cluster, DeviceType::Storage] {
                    let devices = cx.store.query_devices(&DeviceQuery {
                        device_type: Some(device_type),
                        ..DeviceQuery::default()
                    })?;
                    roots.extend(devices.into_iter().map(|device| Node {
                        device,
                        relation: None,
                        children: None,
                        volumes: Vec::new(),
                        expanded: false,
                    }));
                }
                roots
            }
        };
        for root in &mut self.roots {
            root.attach_volumes(cx.store)?;
            if self.root_device.is_some() && root.has_content() {
                root.expanded = true;
            }
        }
        self.loaded = true;
        self.flatten();
        Ok(())
    }

    fn toggle(&mut self, path: &[usize], cx: &mut Cx) -> anyhow::Result<()> {
        let direction = self.direction;
        let Some(node) = self.node_mut(path) else {
            return Ok(());
        };
        if node.children.is_none() {
            let tree = cx.store.relationship_tree(node.device.id, direction, 1)?;
            node.children = Some(
                tree.map(|t| {
                    t.children
                        .into_iter()
                        .map(|c| Node::from_tree(c, 0))
                        .collect()
                })
                .unwrap_or_default(),
            );
            node.attach_volumes(cx.store)?;
        }
        node.expanded = !node.expanded && node.has_content();
        self.flatten();
        Ok(())
    }
}

impl Screen for TreeView {
    fn title(&self) -> String {
        let direction = match self.direction {
            Direction::Down => "what depends on it",
            Direction::Up => "what it depends on",
        };
        match self.roots.first().filter(|_| self.root_device.is_some()) {
            Some(root) => format!(
                "tree {} ({direction})",
                infradeck_core::sanitize::for_terminal(&root.device.name)
            ),
            None => "tree".into(),
        }
    }

    fn scopes(&self) -> &'static [Scope] {
        &[Scope::Tree, Scope::List, Scope::Global]
    }
    fn cursor_mut(&mut self) -> Option<&mut Cursor> {
        Some(&mut self.cursor)
    }

    fn refresh(&mut self, cx: &mut Cx) -> anyhow::Result<()> {
        if !self.loaded {
            self.load(cx)?;
        }
        // The inventory changed: health is read again as rows are drawn.
        self.health.clear();
        Ok(())
    }

    fn device(&self) -> Option<i64> {
        self.selected_path()
            .and_then(|p| self.node(&p).map(|n| n.device.id))
    }

    fn copy_text(&self) -> Option<String> {
        let (path, _, volume) = self.rows.get(self.cursor.selected)?;
        let node = self.node(path)?;
        Some(match volume {
            Some(v) => node.volumes.get(*v)?.volume.name.clone(),
            None => node.device.name.clone(),
        })
    }

    fn act(&mut self, action: Action, cx: &mut Cx) -> anyhow::Result<Outcome> {
        if self.cursor.apply(action, self.rows.len(), self.height) {
            return Ok(Outcome::Handled);
        }
        let Some(path) = self.selected_path() else {
            return Ok(Outcome::Ignored);
        };
        Ok(match action {
            Action::Toggle => {
                self.toggle(&path, cx)?;
                Outcome::Handled
            }
            Action::Left => {
                if self.node(&path).is_some_and(|n| n.expanded) {
                    self.toggle(&path, cx)?;
                } else if path.len() > 1 {
                    let parent = &path[..path.len() - 1];
                    if let Some(index) = self
                        .rows
                        .iter()
                        .position(|(p, _, v)| p == parent && v.is_none())
                    {
                        self.cursor.selected = index;
                    }
                }
                Outcome::Handled
            }
            Action::Open => match self.node(&path) {
                Some(node) => {
                    Outcome::Push(Box::new(super::detail::DetailView::new(node.device.id)))
                }
                None => Outcome::Ignored,
            },
            Action::ReverseTree => {
                if let Some(node) = self.node(&path) {
                    self.root_device = Some(node.device.id);
                    self.direction = match self.direction {
                        Direction::Down => Direction::Up,
                        Direction::Up => Direction::Down,
                    };
                    self.cursor = Cursor::default();
                    self.load(cx)?;
                }
                Outcome::Handled
            }
            _ => Outcome::Ignored,
        })
    }

    fn draw(&mut self, frame: &mut Frame, area: Rect, cx: &mut Cx) {
        let theme = cx.env.theme;
        self.height = area.height.max(1) as usize;
        self.cursor.clamp(self.rows.len(), self.height);
        self.cursor
            .drawn_at(area.y, self.height, self.rows.len(), 1);
        if self.rows.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled(
                    "no clusters or arrays yet; run a sync (:sync)",
                    theme.muted(),
                )),
                area,
            );
            return;
        }
        let shown = self.cursor.top..(self.cursor.top + self.height).min(self.rows.len());
        let unknown: Vec<i64> = shown
            .clone()
            .filter_map(|index| self.node(&self.rows[index].0).map(|n| n.device.id))
            .filter(|id| !self.health.contains_key(id))
            .collect();
        for id in unknown {
            // No clock-moved reasons here (a source gone stale): the list and the detail add those.
            let machine = cx
                .store
                .machine_of_device(id, &std::collections::BTreeMap::new())
                .ok()
                .flatten();
            self.health.insert(
                id,
                machine.map_or(infradeck_core::model::Health::Ok, |m| m.health),
            );
        }
        let mut lines = Vec::new();
        for index in shown {
            let (path, depth, volume) = &self.rows[index];
            let Some(node) = self.node(path) else {
                continue;
            };
            if let Some(volume) = volume.and_then(|v| node.volumes.get(v)) {
                let v = &volume.volume;
                let mut line = Line::from(vec![
                    Span::raw("  ".repeat(*depth)),
                    Span::styled("  volume ▸ ", theme.muted()),
                    Span::raw(infradeck_core::sanitize::for_terminal(&v.name).into_owned()),
                    Span::styled(
                        format!(
                            "  {} · {}",
                            v.volume_type.as_deref().unwrap_or("volume"),
                            v.capacity_bytes.map_or("?".into(), super::detail::bytes)
                        ),
                        theme.muted(),
                    ),
                ]);
                if index == self.cursor.selected {
                    line = line.patch_style(theme.selected());
                }
                lines.push(line);
                continue;
            }
            let marker = match (&node.children, node.expanded) {
                (Some(c), _) if c.is_empty() && node.volumes.is_empty() => "  ",
                (_, true) => "▾ ",
                (_, false) => "▸ ",
            };
            let relation = match (&node.relation, self.direction) {
                (Some(r), Direction::Down) => format!("{r} ▸ "),
                (Some(r), Direction::Up) => format!("◂ {r} "),
                (None, _) => String::new(),
            };
            let count = node
                .children
                .as_ref()
                .filter(|c| !c.is_empty() && !node.expanded)
                .map(|c| format!("  ({})", c.len()))
                .unwrap_or_default();
            let health = self
                .health
                .get(&node.device.id)
                .copied()
                .unwrap_or(infradeck_core::model::Health::Ok);
            let mut line = Line::from(vec![
                Span::raw("  ".repeat(*depth)),
                Span::styled(marker, theme.key()),
                Span::styled(relation, theme.muted()),
                Span::raw(infradeck_core::sanitize::for_terminal(&node.device.name).into_owned()),
                Span::styled(
                    format!(
                        "  {} · {}{count}",
                        node.device.device_type.as_str(),
                        infradeck_core::sanitize::for_terminal(&node.device.source_system)
                    ),
                    if node.device.status == infradeck_core::model::DeviceStatus::Inactive {
                        theme.stale()
                    } else {
                        theme.muted()
                    },
                ),
                Span::styled(format!("  {}", health.as_str()), theme.health(health)),
            ]);
            if index == self.cursor.selected {
                line = line.patch_style(theme.selected());
            }
            lines.push(line);
        }
        frame.render_widget(Paragraph::new(lines), area);
    }
}
