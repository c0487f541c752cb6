//! Reading: pages with absolute `next` links, list filters as NetBox validates and applies them,
//! and objects rendered the way its serializers do (brief nested objects, `{value, label}`
//! choices).

use super::*;

/// limit/offset paging with absolute `next`/`previous` links.
pub(super) fn page(base: &str, path: &str, q: &Query, items: Vec<Value>) -> Response {
    let limit = match q.number("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(0) => MAX_PAGE_SIZE,
        Some(n) => (n as usize).min(MAX_PAGE_SIZE),
    };
    let offset = q.number("offset").unwrap_or(0) as usize;
    let count = items.len();
    let link = |offset: usize| -> String {
        let mut params: Vec<(String, String)> =
            q.0.iter()
                .filter(|(k, _)| k != "limit" && k != "offset")
                .cloned()
                .collect();
        params.push(("limit".into(), limit.to_string()));
        if offset > 0 {
            params.push(("offset".into(), offset.to_string()));
        }
        let qs = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        format!("{base}{path}?{qs}")
    };
    let next = (offset + limit < count).then(|| link(offset + limit));
    let previous = (offset > 0).then(|| link(offset.saturating_sub(limit)));
    let results: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json(
        StatusCode::OK,
        json!({"count": count, "next": next, "previous": previous, "results": results}),
    )
}

pub(super) fn list_filter(
    db: &NetboxDb,
    ty: &ObjType,
    object: &Map<String, Value>,
    q: &Query,
) -> bool {
    let mut keys: Vec<&str> = q.0.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter().all(|key| {
        let wanted = q.all(key);
        let text = |field: &str| {
            object.get(field).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        match key {
            "limit" | "offset" | "brief" | "exclude" | "fields" | "omit" | "ordering" => true,
            "id" => wanted
                .iter()
                .any(|w| object.get("id").map(|v| v.to_string()).as_deref() == Some(*w)),
            "id__gt" => wanted.iter().all(|w| {
                let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
                w.parse::<u64>().is_ok_and(|floor| id > floor)
            }),
            "q" | "name__ic" => wanted.iter().any(|w| {
                text("name").is_some_and(|n| n.to_lowercase().contains(&w.to_lowercase()))
            }),
            "tag" => wanted.iter().any(|w| {
                object
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|tags| {
                        tags.iter().any(|t| {
                            tag_by_id(db, t.as_u64().unwrap_or(0))
                                .is_some_and(|tag| tag["slug"] == *w)
                        })
                    })
            }),
            "mac_address" => wanted
                .iter()
                .any(|w| text("mac_address").is_some_and(|m| m.eq_ignore_ascii_case(w))),
            // MACs and IP addresses by the VM interface they are assigned to.
            "vminterface_id" if ty.plain.contains(&"assigned_object_id") => {
                wanted.iter().any(|w| {
                    object.get("assigned_object_type").and_then(Value::as_str)
                        == Some("virtualization.vminterface")
                        && text("assigned_object_id").as_deref() == Some(*w)
                })
            }
            // A cable by the interfaces (or the devices) at either end.
            "interface_id" | "device_id" if ty.endpoint == "dcim/cables" => {
                let device_of = |interface: &Value| {
                    interface
                        .as_u64()
                        .and_then(|i| db.objects.get("dcim/interfaces")?.get(&i))
                        .and_then(|i| i.get("device"))
                        .map(Value::to_string)
                };
                ["a_terminations", "b_terminations"]
                    .iter()
                    .flat_map(|end| {
                        object
                            .get(*end)
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    })
                    .any(|interface| {
                        let value = if key == "interface_id" {
                            Some(interface.to_string())
                        } else {
                            device_of(interface)
                        };
                        value.is_some_and(|v| wanted.contains(&v.as_str()))
                    })
            }
            // A cluster's site is its scope.
            "site_id" if ty.endpoint == "virtualization/clusters" => wanted.iter().any(|w| {
                object.get("scope_type").and_then(Value::as_str) == Some("dcim.site")
                    && text("scope_id").as_deref() == Some(*w)
            }),
            // Names compare case-insensitively, as NetBox's `name` filter does.
            "name" => wanted
                .iter()
                .any(|w| text("name").is_some_and(|n| n.to_lowercase() == w.to_lowercase())),
            k if fk_filter(k).is_some_and(|field| ty.fks.iter().any(|(f, _)| *f == field)) => {
                let field = fk_filter(k).unwrap_or(k);
                wanted.iter().any(|w| text(field).as_deref() == Some(*w))
            }
            k => match text(k) {
                Some(actual) => wanted.iter().any(|w| actual == *w),
                // NetBox ignores parameters that are not filters of this endpoint.
                None => !ty.plain.contains(&k) && !ty.choices.iter().any(|(f, _, _)| *f == k),
            },
        }
    })
}

/// The field a relation filter names: `site_id` filters on `site`.
pub(super) fn fk_filter(key: &str) -> Option<&str> {
    key.strip_suffix("_id")
}

/// NetBox validates a relation filter's ids: `?virtual_machine_id=999999` is a 400 ("Select a
/// valid choice"), not an empty list.
pub(super) fn invalid_choice(db: &NetboxDb, ty: &ObjType, q: &Query) -> Option<Response> {
    for (key, value) in &q.0 {
        let Some(field) = key.strip_suffix("_id") else {
            continue;
        };
        let Some((_, target)) = ty.fks.iter().find(|(f, _)| *f == field) else {
            continue;
        };
        let known = value
            .parse::<u64>()
            .ok()
            .is_some_and(|id| db.objects.get(target).is_some_and(|o| o.contains_key(&id)));
        if !known {
            return Some(json(
                StatusCode::BAD_REQUEST,
                json!({key.clone(): [format!("Select a valid choice. {value} is not one of the available choices.")]}),
            ));
        }
    }
    None
}

pub(super) fn tag_by_id(db: &NetboxDb, id: u64) -> Option<&Map<String, Value>> {
    db.objects.get("extras/tags").and_then(|t| t.get(&id))
}

pub(super) fn url(base: &str, endpoint: &str, id: u64) -> String {
    format!("{base}/api/{endpoint}/{id}/")
}

pub(super) fn display(ty: &ObjType, object: &Map<String, Value>) -> String {
    let field = match ty.endpoint {
        "dcim/cables" => {
            return format!("#{}", object.get("id").unwrap_or(&Value::Null));
        }
        "dcim/device-types" => "model",
        "ipam/ip-addresses" => "address",
        "dcim/mac-addresses" => "mac_address",
        _ => "name",
    };
    match object.get(field) {
        Some(Value::String(s)) => s.clone(),
        _ => format!("{} {}", ty.model, object.get("id").unwrap_or(&Value::Null)),
    }
}

/// The nested (brief) representation of an object.
pub(super) fn brief_of(
    db: &NetboxDb,
    base: &str,
    ty: &ObjType,
    object: &Map<String, Value>,
) -> Value {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut out =
        json!({"id": id, "url": url(base, ty.endpoint, id), "display": display(ty, object)});
    let copy = |out: &mut Value, fields: &[&str]| {
        for f in fields {
            out[*f] = object.get(*f).cloned().unwrap_or(Value::Null);
        }
    };
    match ty.endpoint {
        "dcim/device-types" => {
            copy(&mut out, &["model", "slug", "description"]);
            out["manufacturer"] =
                related(db, base, "dcim/manufacturers", object.get("manufacturer"));
        }
        "dcim/devices" | "virtualization/clusters" | "virtualization/virtual-machines" => {
            copy(&mut out, &["name", "description"])
        }
        "dcim/interfaces" => {
            copy(&mut out, &["name", "description"]);
            out["device"] = related(db, base, "dcim/devices", object.get("device"));
            let cable = cable_of(db, id);
            out["cable"] = cable.map_or(Value::Null, |(c, _)| {
                related(db, base, "dcim/cables", Some(&json!(c)))
            });
            out["_occupied"] = json!(cable.is_some());
        }
        "virtualization/interfaces" => {
            copy(&mut out, &["name", "description"]);
            out["virtual_machine"] = related(
                db,
                base,
                "virtualization/virtual-machines",
                object.get("virtual_machine"),
            );
        }
        "ipam/ip-addresses" => {
            copy(&mut out, &["address", "description"]);
            out["family"] = json!({"value": 4, "label": "IPv4"});
        }
        "dcim/mac-addresses" => copy(&mut out, &["mac_address", "description"]),
        "extras/tags" => copy(&mut out, &["name", "slug", "color", "description"]),
        "dcim/cables" => copy(&mut out, &["label", "description"]),
        _ => copy(&mut out, &["name", "slug", "description"]),
    }
    out
}

pub(super) fn related(db: &NetboxDb, base: &str, endpoint: &str, id: Option<&Value>) -> Value {
    let Some(id) = id.and_then(Value::as_u64) else {
        return Value::Null;
    };
    match (
        obj_type(endpoint),
        db.objects.get(endpoint).and_then(|o| o.get(&id)),
    ) {
        (Some(ty), Some(object)) => brief_of(db, base, ty, object),
        _ => Value::Null,
    }
}

/// Whether a MAC object is some interface's primary MAC.
pub(super) fn is_primary_mac(db: &NetboxDb, id: u64) -> bool {
    ["dcim/interfaces", "virtualization/interfaces"]
        .iter()
        .filter_map(|endpoint| db.objects.get(endpoint))
        .flat_map(|objects| objects.values())
        .any(|iface| iface.get("primary_mac_address") == Some(&json!(id)))
}

/// The cable an interface is on and its end ("A" or "B").
pub(super) fn cable_of(db: &NetboxDb, interface: u64) -> Option<(u64, &'static str)> {
    db.objects.get("dcim/cables")?.values().find_map(|cable| {
        let on = |end: &str| {
            cable
                .get(end)
                .and_then(Value::as_array)
                .is_some_and(|ids| ids.contains(&json!(interface)))
        };
        let side = if on("a_terminations") {
            "A"
        } else if on("b_terminations") {
            "B"
        } else {
            return None;
        };
        Some((cable.get("id")?.as_u64()?, side))
    })
}

/// A cable's ends as NetBox renders them: each interface with its device, nested.
fn ends(db: &NetboxDb, base: &str, ids: Option<&Value>) -> Value {
    let ids = ids.and_then(Value::as_array).cloned().unwrap_or_default();
    Value::Array(
        ids.iter()
            .map(|id| {
                json!({
                    "object_type": "dcim.interface",
                    "object_id": id,
                    "object": related(db, base, "dcim/interfaces", Some(id)),
                })
            })
            .collect(),
    )
}

pub(super) fn assigned(db: &NetboxDb, base: &str, object: &Map<String, Value>) -> Value {
    let model = object
        .get("assigned_object_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    match type_by_model(model) {
        Some(ty) => related(db, base, ty.endpoint, object.get("assigned_object_id")),
        None => Value::Null,
    }
}

pub(super) fn assigned_to(db: &NetboxDb, endpoint: &str, model: &str, id: u64) -> Vec<u64> {
    db.objects
        .get(endpoint)
        .map(|objs| {
            objs.values()
                .filter(|o| {
                    o.get("assigned_object_type").and_then(Value::as_str) == Some(model)
                        && o.get("assigned_object_id").and_then(Value::as_u64) == Some(id)
                })
                .filter_map(|o| o.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}

/// The full representation of an object, as a GET answers it.
pub(super) fn render(
    db: &NetboxDb,
    base: &str,
    ty: &ObjType,
    object: &Map<String, Value>,
) -> Value {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("url".into(), json!(url(base, ty.endpoint, id)));
    out.insert(
        "display_url".into(),
        json!(format!("{base}/{}/{id}/", ty.endpoint)),
    );
    out.insert("display".into(), json!(display(ty, object)));
    for (key, value) in object {
        if key == "id" {
            continue;
        }
        let rendered = if let Some((_, target)) = ty.fks.iter().find(|(f, _)| f == key) {
            related(db, base, target, Some(value))
        } else if ty.choices.iter().any(|(f, _, _)| f == key) {
            match value.as_str() {
                Some(v) => json!({"value": v, "label": title(v)}),
                None => Value::Null,
            }
        } else if key == "tags" {
            Value::Array(
                value
                    .as_array()
                    .map(|ids| {
                        ids.iter()
                            .filter_map(|t| tag_by_id(db, t.as_u64().unwrap_or(0)))
                            .map(|t| brief_of(db, base, &TYPES[12], t))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        } else {
            value.clone()
        };
        out.insert(key.clone(), rendered);
    }
    match ty.endpoint {
        "dcim/cables" => {
            for end in ["a_terminations", "b_terminations"] {
                out.insert(end.into(), ends(db, base, object.get(end)));
            }
        }
        "dcim/interfaces" | "virtualization/interfaces" => {
            if ty.endpoint == "dcim/interfaces" {
                let cable = cable_of(db, id);
                let far_end = cable.and_then(|(c, side)| {
                    let far = if side == "A" {
                        "b_terminations"
                    } else {
                        "a_terminations"
                    };
                    db.objects.get("dcim/cables")?.get(&c)?.get(far).cloned()
                });
                let peers: Vec<Value> = match ends(db, base, far_end.as_ref()) {
                    Value::Array(peers) => peers.into_iter().map(|p| p["object"].clone()).collect(),
                    _ => Vec::new(),
                };
                out.insert(
                    "cable".into(),
                    cable.map_or(Value::Null, |(c, _)| {
                        related(db, base, "dcim/cables", Some(&json!(c)))
                    }),
                );
                out.insert("cable_end".into(), json!(cable.map(|(_, side)| side)));
                out.insert(
                    "link_peers_type".into(),
                    json!((!peers.is_empty()).then_some("dcim.interface")),
                );
                out.insert("link_peers".into(), Value::Array(peers));
                out.insert("_occupied".into(), json!(cable.is_some()));
            }
            let primary = object.get("primary_mac_address").and_then(Value::as_u64);
            let mac = primary
                .and_then(|m| db.objects.get("dcim/mac-addresses").and_then(|o| o.get(&m)))
                .and_then(|m| m.get("mac_address"))
                .cloned();
            out.insert("mac_address".into(), mac.unwrap_or(Value::Null));
            let macs = assigned_to(db, "dcim/mac-addresses", ty.model, id);
            out.insert(
                "mac_addresses".into(),
                Value::Array(
                    macs.iter()
                        .map(|m| related(db, base, "dcim/mac-addresses", Some(&json!(m))))
                        .collect(),
                ),
            );
            out.insert(
                "count_ipaddresses".into(),
                json!(assigned_to(db, "ipam/ip-addresses", ty.model, id).len()),
            );
        }
        "ipam/ip-addresses" | "dcim/mac-addresses" => {
            out.insert("assigned_object".into(), assigned(db, base, object));
            if ty.endpoint == "dcim/mac-addresses" {
                out.insert("is_primary".into(), json!(is_primary_mac(db, id)));
            }
            if ty.endpoint == "ipam/ip-addresses" {
                out.insert("family".into(), json!({"value": 4, "label": "IPv4"}));
            }
        }
        "virtualization/virtual-machines" => {
            let count = db.objects.get("virtualization/interfaces").map_or(0, |o| {
                o.values()
                    .filter(|i| i.get("virtual_machine") == Some(&json!(id)))
                    .count()
            });
            out.insert("interface_count".into(), json!(count));
            out.insert("virtual_disk_count".into(), json!(0));
            out.insert("config_context".into(), json!({}));
            // A decimal field: NetBox always answers `16.0`.
            if let Some(vcpus) = object.get("vcpus").and_then(Value::as_f64) {
                out.insert("vcpus".into(), json!(vcpus));
            }
        }
        "extras/tags" => {
            let tagged = db
                .objects
                .values()
                .flat_map(|objects| objects.values())
                .filter(|o| {
                    o.get("tags")
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.contains(&json!(id)))
                })
                .count();
            out.insert("tagged_items".into(), json!(tagged));
        }
        "virtualization/cluster-types" => {
            let count = ids_where(db, "virtualization/clusters", "type", id).len();
            out.insert("cluster_count".into(), json!(count));
        }
        "virtualization/clusters" => {
            let scope = match (
                object.get("scope_type").and_then(Value::as_str),
                object.get("scope_id"),
            ) {
                (Some("dcim.site"), Some(site)) => related(db, base, "dcim/sites", Some(site)),
                _ => Value::Null,
            };
            out.insert("scope".into(), scope);
            for field in ["scope_type", "scope_id"] {
                out.entry(field).or_insert(Value::Null);
            }
        }
        "dcim/devices" => {
            let count = db.objects.get("dcim/interfaces").map_or(0, |o| {
                o.values()
                    .filter(|i| i.get("device") == Some(&json!(id)))
                    .count()
            });
            out.insert("interface_count".into(), json!(count));
        }
        _ => {}
    }
    Value::Object(out)
}

/// The object as NetBox's change log records it: relations as ids, tags as names.
pub(super) fn snapshot(db: &NetboxDb, object: &Map<String, Value>) -> Value {
    let mut out = object.clone();
    if let Some(Value::Array(tags)) = out.get("tags").cloned() {
        let names: Vec<Value> = tags
            .iter()
            .filter_map(|t| tag_by_id(db, t.as_u64().unwrap_or(0)))
            .map(|t| t["name"].clone())
            .collect();
        out.insert("tags".into(), Value::Array(names));
    }
    Value::Object(out)
}
