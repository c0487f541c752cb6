//! Writing: resolving references, validating fields as NetBox's serializers and models do,
//! create, update and delete (with the relations that protect an object), and the change log.

use super::*;

pub(super) fn log_change(
    db: &mut NetboxDb,
    ty: &ObjType,
    id: u64,
    pre: Option<Value>,
    post: Option<Value>,
    message: &str,
    request_id: &str,
) {
    // The action follows from which snapshots exist.
    let (action, label) = match (&pre, &post) {
        (None, _) => ("create", "Created"),
        (Some(_), Some(_)) => ("update", "Updated"),
        (Some(_), None) => ("delete", "Deleted"),
    };
    let repr = post
        .as_ref()
        .or(pre.as_ref())
        .and_then(|o| o.as_object())
        .map(|o| display(ty, o))
        .unwrap_or_default();
    let change_id = db.changes.len() as u64 + 9001;
    db.changes.push(json!({
        "id": change_id,
        "display": format!("{repr} ({action})"),
        "time": now_iso(),
        "user": {"id": 2, "display": "infradeck", "username": "infradeck"},
        "user_name": "infradeck",
        "request_id": request_id,
        "action": {"value": action, "label": label},
        "changed_object_type": ty.model,
        "changed_object_id": id,
        "object_repr": repr,
        "message": message,
        // NetBox records the side that does not exist as `{}`, not null.
        "prechange_data": pre.unwrap_or_else(|| json!({})),
        "postchange_data": post.unwrap_or_else(|| json!({})),
    }));
}

/// Resolves a related-object reference given as a pk, `{"id": n}` or a lookup dict.
pub(super) fn resolve(
    db: &NetboxDb,
    field: &str,
    endpoint: &str,
    value: &Value,
) -> Result<Value, FieldErrors> {
    let objects = db.objects.get(endpoint);
    match value {
        Value::Null => Ok(Value::Null),
        Value::Number(n) => {
            let id = n.as_u64().unwrap_or(0);
            if objects.is_some_and(|o| o.contains_key(&id)) {
                Ok(json!(id))
            } else {
                Err(field_error(
                    field,
                    &format!("Related object not found using the provided numeric ID: {id}"),
                ))
            }
        }
        Value::Object(lookup) => {
            let found: Vec<u64> = objects
                .map(|objs| {
                    objs.values()
                        .filter(|o| lookup.iter().all(|(k, v)| o.get(k) == Some(v)))
                        .filter_map(|o| o.get("id").and_then(Value::as_u64))
                        .collect()
                })
                .unwrap_or_default();
            match found.as_slice() {
                [id] => Ok(json!(id)),
                [] => Err(field_error(
                    field,
                    &format!(
                        "Related object not found using the provided attributes: {}",
                        python_repr(&Value::Object(lookup.clone()))
                    ),
                )),
                _ => Err(field_error(
                    field,
                    &format!(
                        "Multiple objects match the provided attributes: {}",
                        python_repr(&Value::Object(lookup.clone()))
                    ),
                )),
            }
        }
        other => Err(field_error(
            field,
            &format!(
                "Related objects must be referenced by numeric ID or by dictionary of attributes. Received an unrecognized value: {other}"
            ),
        )),
    }
}

pub(super) fn valid_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) fn valid_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::IpAddr>().is_ok() && prefix.parse::<u8>().is_ok_and(|p| p <= 128)
}

/// Applies the writable fields of `input` onto `object`, validating each.
pub(super) fn apply_fields(
    db: &NetboxDb,
    ty: &ObjType,
    object: &mut Map<String, Value>,
    input: &Map<String, Value>,
) -> Result<(), FieldErrors> {
    let mut errors = Map::new();
    for (key, value) in input {
        let result: Result<(), FieldErrors> = (|| {
            if let Some((_, target)) = ty.fks.iter().find(|(f, _)| f == key) {
                object.insert(key.clone(), resolve(db, key, target, value)?);
            } else if let Some((_, choices, _)) = ty.choices.iter().find(|(f, _, _)| f == key) {
                match value.as_str() {
                    Some(v) if choices.contains(&v) => {
                        object.insert(key.clone(), json!(v));
                    }
                    _ => return Err(field_error(key, &format!("{value} is not a valid choice."))),
                }
            } else if ty.endpoint == "dcim/cables"
                && matches!(key.as_str(), "a_terminations" | "b_terminations")
            {
                object.insert(key.clone(), terminations(db, key, value)?);
            } else if key == "tags" {
                let items = value
                    .as_array()
                    .ok_or_else(|| field_error("tags", "Expected a list of items."))?;
                let mut ids = Vec::new();
                for item in items {
                    let lookup = match item {
                        Value::String(name) => json!({"name": name}),
                        other => other.clone(),
                    };
                    ids.push(resolve(db, "tags", "extras/tags", &lookup)?);
                }
                object.insert("tags".into(), Value::Array(ids));
            } else if key == "custom_fields" {
                let fields = value.as_object().ok_or_else(|| {
                    field_error("custom_fields", "Invalid data: expected a dictionary.")
                })?;
                let mut merged = object
                    .get("custom_fields")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                // The seeded fields, and those made through `extras/custom-fields` for this
                // object type.
                let defined = |name: &str| {
                    (CUSTOM_FIELDS.contains(&name)
                        && matches!(
                            ty.endpoint,
                            "dcim/devices" | "virtualization/virtual-machines"
                        ))
                        || db
                            .objects
                            .get("extras/custom-fields")
                            .into_iter()
                            .flat_map(|o| o.values())
                            .any(|cf| {
                                cf.get("name").and_then(Value::as_str) == Some(name)
                                    && cf
                                        .get("object_types")
                                        .and_then(Value::as_array)
                                        .is_some_and(|t| t.contains(&json!(ty.model)))
                            })
                };
                for (k, v) in fields {
                    if !defined(k) {
                        return Err(field_error(
                            "custom_fields",
                            &format!("Unknown field name '{k}' in custom field data."),
                        ));
                    }
                    merged.insert(k.clone(), v.clone());
                }
                object.insert("custom_fields".into(), Value::Object(merged));
            } else if ty.plain.contains(&key.as_str()) {
                let value = match (ty.endpoint, key.as_str()) {
                    ("dcim/mac-addresses", "mac_address") => {
                        let text = value.as_str().unwrap_or("");
                        if !valid_mac(text) {
                            return Err(field_error(
                                key,
                                &format!("Invalid MAC address format: {text}"),
                            ));
                        }
                        json!(text.to_uppercase())
                    }
                    ("ipam/ip-addresses", "address") => {
                        let text = value.as_str().unwrap_or("");
                        if !valid_cidr(text) {
                            return Err(field_error(
                                key,
                                &format!(
                                    "Enter a valid IPv4 or IPv6 address with optional mask: {text}"
                                ),
                            ));
                        }
                        value.clone()
                    }
                    // Nullable in NetBox (a VM made by hand may have no size).
                    (_, "vcpus") if !value.is_null() => json!(
                        value
                            .as_f64()
                            .ok_or_else(|| field_error(key, "A valid number is required."))?
                    ),
                    (_, "memory" | "disk" | "mtu" | "assigned_object_id") if !value.is_null() => {
                        json!(
                            value
                                .as_u64()
                                .ok_or_else(|| field_error(key, "A valid integer is required."))?
                        )
                    }
                    _ => value.clone(),
                };
                object.insert(key.clone(), value);
            }
            // Read-only and unknown fields are ignored, as DRF does.
            Ok(())
        })();
        if let Err(e) = result {
            errors.extend(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A cable end as NetBox takes it, `[{"object_type": "dcim.interface", "object_id": 7}]`, kept
/// as the interfaces' ids. Unlike a relation field, `object_id` must be a number: NetBox refuses
/// a lookup dict there.
fn terminations(db: &NetboxDb, field: &str, value: &Value) -> Result<Value, FieldErrors> {
    let items = value
        .as_array()
        .ok_or_else(|| field_error(field, "Expected a list of items but got type \"dict\"."))?;
    let mut ids = Vec::new();
    for (index, end) in items.iter().enumerate() {
        // NetBox nests an end's errors under its index: {"a_terminations": {"0": {...}}}.
        let refuse = |key: &str, message: String| {
            let mut at = Map::new();
            at.insert(index.to_string(), Value::Object(field_error(key, &message)));
            let mut errors = Map::new();
            errors.insert(field.to_string(), Value::Object(at));
            errors
        };
        let object_type = end.get("object_type").and_then(Value::as_str).unwrap_or("");
        if object_type != "dcim.interface" {
            return Err(refuse(
                "object_type",
                format!("Invalid content type: {object_type}"),
            ));
        }
        let Some(id) = end.get("object_id").and_then(Value::as_u64) else {
            return Err(refuse("object_id", "A valid integer is required.".into()));
        };
        if !db
            .objects
            .get("dcim/interfaces")
            .is_some_and(|o| o.contains_key(&id))
        {
            return Err(refuse(
                "object_id",
                format!("Related object not found using the provided numeric ID: {id}"),
            ));
        }
        ids.push(json!(id));
    }
    Ok(Value::Array(ids))
}

/// Model-level rules that span fields and objects.
pub(super) fn validate(
    db: &NetboxDb,
    ty: &ObjType,
    object: &Map<String, Value>,
) -> Result<(), FieldErrors> {
    let id = object.get("id").and_then(Value::as_u64).unwrap_or(0);
    let others = || {
        db.objects
            .get(ty.endpoint)
            .into_iter()
            .flat_map(|o| o.values())
            .filter(move |o| o.get("id").and_then(Value::as_u64) != Some(id))
    };
    let same = |o: &Map<String, Value>, fields: &[&str]| {
        fields.iter().all(|f| o.get(*f) == object.get(*f))
    };
    let unique = |fields: &[&str], message: &str, field: &str| -> Result<(), FieldErrors> {
        if fields
            .iter()
            .all(|f| object.get(*f).is_some_and(|v| !v.is_null()))
            && others().any(|o| same(o, fields))
        {
            return Err(field_error(field, message));
        }
        Ok(())
    };
    match ty.endpoint {
        "extras/custom-fields" => unique(
            &["name"],
            "custom field with this name already exists.",
            "name",
        )?,
        "dcim/sites"
        | "dcim/manufacturers"
        | "dcim/device-roles"
        | "virtualization/cluster-types"
        | "extras/tags" => {
            unique(
                &["name"],
                &format!("{} with this name already exists.", ty.model),
                "name",
            )?;
            unique(
                &["slug"],
                &format!("{} with this slug already exists.", ty.model),
                "slug",
            )?;
        }
        "dcim/device-types" => {
            unique(
                &["manufacturer", "model"],
                "Device type with this manufacturer and model already exists.",
                "model",
            )?;
            unique(
                &["slug"],
                "Device type with this slug already exists.",
                "slug",
            )?;
        }
        // NetBox 4.7 allows two clusters of one name unless they share a scope (its unique
        // constraints include the scope, and NULLs never collide).
        "virtualization/clusters" if object.get("scope_id").is_some_and(|s| !s.is_null()) => {
            unique(
                &["scope_type", "scope_id", "name"],
                "A cluster with this name already exists in this scope.",
                "name",
            )?
        }
        "dcim/devices" => {
            unique(
                &["site", "name"],
                "Device name must be unique per site.",
                "name",
            )?;
            // NetBox: a device's cluster, when scoped to a site, is at the device's site.
            let cluster_site = object
                .get("cluster")
                .and_then(Value::as_u64)
                .and_then(|c| db.objects.get("virtualization/clusters")?.get(&c))
                .filter(|c| c.get("scope_type").and_then(Value::as_str) == Some("dcim.site"))
                .and_then(|c| c.get("scope_id").cloned());
            if let Some(site) = cluster_site
                && object.get("site") != Some(&site)
            {
                return Err(field_error(
                    "cluster",
                    "The assigned cluster belongs to a different site",
                ));
            }
        }
        // An interface takes one cable.
        "dcim/cables" => {
            for end in ["a_terminations", "b_terminations"] {
                let ids = object
                    .get(end)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                for interface in ids.filter_map(Value::as_u64) {
                    if let Some((other, _)) = cable_of(db, interface).filter(|(c, _)| *c != id) {
                        return Err(field_error(
                            "__all__",
                            &format!(
                                "Duplicate termination found for dcim.interface {interface}: cable {other}"
                            ),
                        ));
                    }
                }
            }
        }
        "dcim/interfaces" => unique(
            &["device", "name"],
            "Interface with this device and name already exists.",
            "name",
        )?,
        "virtualization/interfaces" => unique(
            &["virtual_machine", "name"],
            "VM interface with this virtual machine and name already exists.",
            "name",
        )?,
        "virtualization/virtual-machines" => {
            if ["site", "cluster", "device"]
                .iter()
                .all(|f| object.get(*f).is_none_or(Value::is_null))
            {
                return Err(field_error(
                    "__all__",
                    "A virtual machine must be assigned to a site, cluster, or device.",
                ));
            }
            if object.get("cluster").is_some_and(|c| !c.is_null()) {
                unique(
                    &["cluster", "name"],
                    "Virtual machine name must be unique per cluster.",
                    "name",
                )?;
            }
            // NetBox: a VM's host device must be a member of the VM's cluster.
            if let Some(device) = object.get("device").and_then(Value::as_u64) {
                let cluster = object.get("cluster").and_then(Value::as_u64);
                let Some(cluster) = cluster else {
                    return Err(field_error(
                        "device",
                        "Must specify a cluster when assigning a host device.",
                    ));
                };
                let host = db.objects.get("dcim/devices").and_then(|o| o.get(&device));
                if host.and_then(|d| d.get("cluster")).and_then(Value::as_u64) != Some(cluster) {
                    let name = |endpoint: &str, id: u64| {
                        db.objects
                            .get(endpoint)
                            .and_then(|o| o.get(&id))
                            .and_then(|o| o.get("name"))
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string()
                    };
                    return Err(field_error(
                        "device",
                        &format!(
                            "The selected device ({}) is not assigned to this cluster ({}).",
                            name("dcim/devices", device),
                            name("virtualization/clusters", cluster)
                        ),
                    ));
                }
            }
        }
        _ => {}
    }
    if matches!(ty.endpoint, "ipam/ip-addresses" | "dcim/mac-addresses") {
        match (
            object.get("assigned_object_type").and_then(Value::as_str),
            object.get("assigned_object_id").and_then(Value::as_u64),
        ) {
            (None, None) => {}
            (Some(model), Some(target)) if ASSIGNABLE.contains(&model) => {
                let endpoint = type_by_model(model).map(|t| t.endpoint).unwrap_or("");
                if !db
                    .objects
                    .get(endpoint)
                    .is_some_and(|o| o.contains_key(&target))
                {
                    return Err(field_error(
                        "assigned_object_id",
                        &format!(
                            "Related object not found using the provided numeric ID: {target}"
                        ),
                    ));
                }
            }
            (Some(model), _) if !ASSIGNABLE.contains(&model) => {
                return Err(field_error(
                    "assigned_object_type",
                    &format!("\"{model}\" is not a valid choice."),
                ));
            }
            _ => {
                return Err(field_error(
                    "assigned_object_id",
                    "Both assigned_object_type and assigned_object_id are required.",
                ));
            }
        }
    }
    for (field, ip) in ["primary_ip4", "primary_ip6"]
        .iter()
        .filter_map(|f| Some((*f, object.get(*f).and_then(Value::as_u64)?)))
    {
        let (iface_endpoint, iface_model, parent_field) = match ty.endpoint {
            "dcim/devices" => ("dcim/interfaces", "dcim.interface", "device"),
            _ => (
                "virtualization/interfaces",
                "virtualization.vminterface",
                "virtual_machine",
            ),
        };
        let address = db.objects.get("ipam/ip-addresses").and_then(|o| o.get(&ip));
        let on_own_interface = address.is_some_and(|a| {
            a.get("assigned_object_type").and_then(Value::as_str) == Some(iface_model)
                && a.get("assigned_object_id")
                    .and_then(Value::as_u64)
                    .and_then(|i| db.objects.get(iface_endpoint).and_then(|o| o.get(&i)))
                    .is_some_and(|iface| iface.get(parent_field) == Some(&json!(id)))
        });
        if !on_own_interface {
            let text = address
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            return Err(field_error(
                field,
                &format!(
                    "The specified IP address ({text}) is not assigned to this {}.",
                    if ty.endpoint == "dcim/devices" {
                        "device"
                    } else {
                        "virtual machine"
                    }
                ),
            ));
        }
    }
    if let Some(mac) = object.get("primary_mac_address").and_then(Value::as_u64) {
        let ok = db
            .objects
            .get("dcim/mac-addresses")
            .and_then(|o| o.get(&mac))
            .is_some_and(|m| {
                m.get("assigned_object_type").and_then(Value::as_str) == Some(ty.model)
                    && m.get("assigned_object_id") == Some(&json!(id))
            });
        if !ok {
            return Err(field_error(
                "primary_mac_address",
                "The specified MAC address is not assigned to this interface.",
            ));
        }
    }
    Ok(())
}

pub(super) fn create(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    input: &Value,
    request_id: &str,
) -> Result<u64, FieldErrors> {
    let input = input.as_object().ok_or_else(|| {
        field_error(
            "__all__",
            "Invalid data. Expected a dictionary, but got list.",
        )
    })?;
    let mut object = Map::new();
    apply_fields(db, ty, &mut object, input)?;
    if ty.endpoint == "dcim/cables"
        && ["a_terminations", "b_terminations"].iter().any(|end| {
            object
                .get(*end)
                .and_then(Value::as_array)
                .is_none_or(|ends| ends.is_empty())
        })
    {
        return Err(field_error(
            "__all__",
            "Must define A and B terminations when creating a new cable.",
        ));
    }
    let mut missing = Map::new();
    for field in ty.required {
        if object.get(*field).is_none_or(Value::is_null) {
            missing.insert(field.to_string(), json!(["This field is required."]));
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    for (field, _, default) in ty.choices {
        if let Some(default) = default {
            object.entry(field.to_string()).or_insert(json!(default));
        }
    }
    fill_defaults(ty, &mut object);
    if ty.endpoint == "dcim/cables" {
        // What a cable has that infradeck never sets, as NetBox answers it.
        for (field, value) in [
            ("type", Value::Null),
            ("color", json!("")),
            ("length", Value::Null),
            ("length_unit", Value::Null),
            ("profile", Value::Null),
            ("bundle", Value::Null),
        ] {
            object.insert(field.into(), value);
        }
    }
    let id = db.next_id(ty.endpoint);
    let now = now_iso();
    object.insert("id".into(), json!(id));
    object.entry("tags").or_insert(json!([]));
    if ty.endpoint != "extras/tags" {
        object.entry("custom_fields").or_insert(json!({}));
    }
    object.insert("created".into(), json!(now));
    object.insert("last_updated".into(), json!(now));
    site_from_cluster(db, ty, &mut object);
    validate(db, ty, &object)?;
    let post = snapshot(db, &object);
    db.objects
        .entry(ty.endpoint)
        .or_default()
        .insert(id, object);
    let message = input
        .get("changelog_message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    log_change(db, ty, id, None, Some(post), &message, request_id);
    Ok(id)
}

/// Every field NetBox has is in its answer, with its default when a create did not give it.
pub(super) fn fill_defaults(ty: &ObjType, object: &mut Map<String, Value>) {
    for field in ty.plain {
        object
            .entry(field.to_string())
            .or_insert_with(|| plain_default(field));
    }
    for (field, _) in ty.fks {
        object.entry(field.to_string()).or_insert(Value::Null);
    }
}

/// NetBox's default for a field a create did not give.
pub(super) fn plain_default(field: &str) -> Value {
    match field {
        "enabled" | "vm_role" => json!(true),
        "mgmt_only" => json!(false),
        "color" => json!("9e9e9e"),
        "vcpus"
        | "memory"
        | "disk"
        | "mtu"
        | "u_height"
        | "assigned_object_type"
        | "assigned_object_id"
        | "scope_type"
        | "scope_id" => Value::Null,
        _ => json!(""),
    }
}

/// A VM in a cluster scoped to a site takes that site, as NetBox sets it.
pub(super) fn site_from_cluster(db: &NetboxDb, ty: &ObjType, object: &mut Map<String, Value>) {
    if ty.endpoint != "virtualization/virtual-machines"
        || object.get("site").is_some_and(|s| !s.is_null())
    {
        return;
    }
    let site = object
        .get("cluster")
        .and_then(Value::as_u64)
        .and_then(|c| db.objects.get("virtualization/clusters")?.get(&c))
        .filter(|c| c.get("scope_type").and_then(Value::as_str) == Some("dcim.site"))
        .and_then(|c| c.get("scope_id").cloned());
    if let Some(site) = site {
        object.insert("site".into(), site);
    }
}

pub(super) fn update(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    input: &Value,
    partial: bool,
    request_id: &str,
) -> Result<u64, FieldErrors> {
    let input = input
        .as_object()
        .ok_or_else(|| field_error("__all__", "Invalid data. Expected a dictionary."))?;
    let Some(current) = db
        .objects
        .get(ty.endpoint)
        .and_then(|o| o.get(&id))
        .cloned()
    else {
        return Err(field_error(
            "id",
            &format!("Object with id {id} does not exist."),
        ));
    };
    let mut object = current.clone();
    apply_fields(db, ty, &mut object, input)?;
    if !partial {
        let missing: Vec<&&str> = ty
            .required
            .iter()
            .filter(|f| !input.contains_key(**f))
            .collect();
        if !missing.is_empty() {
            return Err(missing
                .iter()
                .flat_map(|f| field_error(f, "This field is required."))
                .collect());
        }
    }
    object.insert("last_updated".into(), json!(now_iso()));
    validate(db, ty, &object)?;
    if ty.endpoint == "ipam/ip-addresses" {
        refuse_moving_a_primary(db, id, &current, &object)?;
    }
    if ty.endpoint == "dcim/mac-addresses" {
        refuse_moving_a_primary_mac(db, id, &current, &object)?;
    }
    let (pre, post) = (snapshot(db, &current), snapshot(db, &object));
    db.objects
        .entry(ty.endpoint)
        .or_default()
        .insert(id, object);
    let message = input
        .get("changelog_message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    log_change(db, ty, id, Some(pre), Some(post), &message, request_id);
    Ok(id)
}

/// What an address or MAC is assigned to: (object type, object id).
fn assignment(object: &Map<String, Value>) -> (Option<Value>, Option<Value>) {
    (
        object.get("assigned_object_type").cloned(),
        object.get("assigned_object_id").cloned(),
    )
}

/// NetBox refuses to move an address to another interface while it is the primary IP of the
/// device or VM it is on.
fn refuse_moving_a_primary(
    db: &NetboxDb,
    id: u64,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Result<(), FieldErrors> {
    if assignment(before) == assignment(after) {
        return Ok(());
    }
    let (iface_endpoint, parent_field, parent_endpoint) =
        match before.get("assigned_object_type").and_then(Value::as_str) {
            Some("dcim.interface") => ("dcim/interfaces", "device", "dcim/devices"),
            Some("virtualization.vminterface") => (
                "virtualization/interfaces",
                "virtual_machine",
                "virtualization/virtual-machines",
            ),
            _ => return Ok(()),
        };
    let parent = before
        .get("assigned_object_id")
        .and_then(Value::as_u64)
        .and_then(|i| db.objects.get(iface_endpoint)?.get(&i))
        .and_then(|iface| iface.get(parent_field)?.as_u64())
        .and_then(|p| db.objects.get(parent_endpoint)?.get(&p));
    let is_primary = parent.is_some_and(|p| {
        ["primary_ip4", "primary_ip6"]
            .iter()
            .any(|f| p.get(*f).and_then(Value::as_u64) == Some(id))
    });
    if is_primary {
        return Err(field_error(
            "__all__",
            "Cannot reassign IP address while it is designated as the primary IP for the parent object",
        ));
    }
    Ok(())
}

/// NetBox refuses to move a MAC to another interface while it is an interface's primary MAC.
fn refuse_moving_a_primary_mac(
    db: &NetboxDb,
    id: u64,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Result<(), FieldErrors> {
    if assignment(before) != assignment(after) && is_primary_mac(db, id) {
        return Err(field_error(
            "__all__",
            "Cannot reassign MAC Address while it is designated as the primary MAC for an object",
        ));
    }
    Ok(())
}

pub(super) fn delete(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    request_id: &str,
) -> Result<(), Response> {
    delete_with_message(db, ty, id, request_id, "")
}

/// Deletes one object (cascading as NetBox does); `message` is the request's
/// `changelog_message`, recorded on the object's change.
pub(super) fn delete_with_message(
    db: &mut NetboxDb,
    ty: &'static ObjType,
    id: u64,
    request_id: &str,
    message: &str,
) -> Result<(), Response> {
    let Some(current) = db
        .objects
        .get(ty.endpoint)
        .and_then(|o| o.get(&id))
        .cloned()
    else {
        return Err(detail(StatusCode::NOT_FOUND, "Not found."));
    };
    for (target, endpoint, field) in PROTECTED_BY {
        if *target != ty.endpoint {
            continue;
        }
        let dependents: Vec<String> = db
            .objects
            .get(endpoint)
            .map(|o| {
                o.values()
                    .filter(|d| d.get(*field) == Some(&json!(id)))
                    .map(|d| {
                        format!(
                            "{} ({})",
                            d.get("name").and_then(Value::as_str).unwrap_or("?"),
                            d.get("id").and_then(Value::as_u64).unwrap_or(0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !dependents.is_empty() {
            return Err(json(
                StatusCode::CONFLICT,
                json!({"detail": format!("Unable to delete object. {} dependent objects were found: {}", dependents.len(), dependents.join(", "))}),
            ));
        }
    }
    // Cascades: interfaces go with their device or VM, addresses with their interface.
    let children: Vec<(&'static str, u64)> = match ty.endpoint {
        "dcim/devices" => ids_where(db, "dcim/interfaces", "device", id)
            .into_iter()
            .map(|i| ("dcim/interfaces", i))
            .collect(),
        "virtualization/virtual-machines" => {
            ids_where(db, "virtualization/interfaces", "virtual_machine", id)
                .into_iter()
                .map(|i| ("virtualization/interfaces", i))
                .collect()
        }
        "dcim/interfaces" | "virtualization/interfaces" => {
            assigned_to(db, "ipam/ip-addresses", ty.model, id)
                .into_iter()
                .map(|i| ("ipam/ip-addresses", i))
                .chain(
                    assigned_to(db, "dcim/mac-addresses", ty.model, id)
                        .into_iter()
                        .map(|i| ("dcim/mac-addresses", i)),
                )
                .collect()
        }
        _ => Vec::new(),
    };
    // Clear references that must not dangle (primary IP, primary MAC) before cascading.
    for other in TYPES {
        for (field, target) in other.fks {
            if *target != ty.endpoint {
                continue;
            }
            if let Some(objs) = db.objects.get_mut(other.endpoint) {
                for o in objs.values_mut() {
                    if o.get(*field) == Some(&json!(id)) {
                        o.insert(field.to_string(), Value::Null);
                    }
                }
            }
        }
    }
    for (endpoint, child) in children {
        if let Some(child_ty) = obj_type(endpoint) {
            delete(db, child_ty, child, request_id)?;
        }
    }
    // A cable outlives an interface it ended on (NetBox keeps it, that end empty).
    if ty.endpoint == "dcim/interfaces"
        && let Some(cables) = db.objects.get_mut("dcim/cables")
    {
        for cable in cables.values_mut() {
            for end in ["a_terminations", "b_terminations"] {
                if let Some(Value::Array(ids)) = cable.get_mut(end) {
                    ids.retain(|i| *i != json!(id));
                }
            }
        }
    }
    if let Some(objs) = db.objects.get_mut(ty.endpoint) {
        objs.remove(&id);
    }
    let pre = snapshot(db, &current);
    log_change(db, ty, id, Some(pre), None, message, request_id);
    Ok(())
}

/// A value as Python's `repr` writes it, as NetBox's messages quote lookups: `{'slug': 'x'}`.
pub(super) fn python_repr(value: &Value) -> String {
    match value {
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("'{k}': {}", python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(list) => format!(
            "[{}]",
            list.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::String(text) => format!("'{text}'"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
    }
}

/// Why NetBox refuses a bulk update or delete before touching anything: an id it does not
/// have (400), or an object whose ETag is not among those in `If-Match` (412).
pub(super) fn bulk_refusal(
    db: &NetboxDb,
    ty: &ObjType,
    ids: &[u64],
    headers: &HeaderMap,
) -> Option<Response> {
    if let Some(response) = missing_objects(db, ty, ids) {
        return Some(response);
    }
    // Every id is there: `missing_objects` said so.
    ids.iter()
        .map(|id| &db.objects[ty.endpoint][id])
        .find(|current| !if_match_holds(headers, current))
        .map(precondition_failed)
}

/// NetBox's answer to a bulk update or delete naming an id it does not have.
pub(super) fn missing_objects(db: &NetboxDb, ty: &ObjType, ids: &[u64]) -> Option<Response> {
    let missing: Vec<Value> = ids
        .iter()
        .filter(|id| db.objects.get(ty.endpoint).is_none_or(|o| !o.contains_key(id)))
        .map(|id| json!({"id": id, "errors": {"id": [format!("Object with ID {id} does not exist")]}}))
        .collect();
    (!missing.is_empty()).then(|| {
        json(
            StatusCode::BAD_REQUEST,
            json!({
                "detail": format!("{} of {} objects could not be found.", missing.len(), ids.len()),
                "errors": missing,
            }),
        )
    })
}

pub(super) fn ids_where(db: &NetboxDb, endpoint: &str, field: &str, id: u64) -> Vec<u64> {
    db.objects
        .get(endpoint)
        .map(|o| {
            o.values()
                .filter(|x| x.get(field) == Some(&json!(id)))
                .filter_map(|x| x.get("id").and_then(Value::as_u64))
                .collect()
        })
        .unwrap_or_default()
}
