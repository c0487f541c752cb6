//! Lookups: `{"$lookup": {"endpoint", "query"}}` references in planned bodies turned into
//! NetBox ids at apply time, many at a time, remembering ids (also of objects the run created).

use super::client::NetboxClient;
#[cfg(test)]
use super::plan::{IFACES, VMS};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Turns `{"$lookup": {"endpoint", "query"}}` references into ids, many at a time: each round
/// resolves the innermost lookups of every value with one list request per endpoint and filter
/// set (values ORed), and remembers ids (also of objects this run created) for the rest of it.
pub(super) struct Resolver<'a> {
    client: &'a NetboxClient,
    /// Shared by the chunks a stage writes at once.
    ids: std::sync::Mutex<HashMap<String, i64>>,
}

fn cache_key(endpoint: &str, query: &Value) -> String {
    let sorted: BTreeMap<String, Value> = query
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    format!(
        "{endpoint}|{}",
        serde_json::to_string(&sorted).unwrap_or_default()
    )
}

/// A lookup's endpoint and query, when `value` is one whose query holds no further lookup.
fn innermost(value: &Value) -> Option<(String, Value)> {
    let spec = value.as_object()?.get("$lookup")?;
    let endpoint = spec.get("endpoint")?.as_str()?.to_string();
    let query = spec.get("query")?.clone();
    (!has_lookup(&query)).then_some((endpoint, query))
}

fn has_lookup(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("$lookup") || map.values().any(has_lookup),
        Value::Array(list) => list.iter().any(has_lookup),
        _ => false,
    }
}

fn collect_innermost(value: &Value, out: &mut Vec<(String, Value)>) {
    if let Some(found) = innermost(value) {
        out.push(found);
        return;
    }
    match value {
        Value::Object(map) => map.values().for_each(|v| collect_innermost(v, out)),
        Value::Array(list) => list.iter().for_each(|v| collect_innermost(v, out)),
        _ => {}
    }
}

/// Replaces the innermost lookups of `value` by their ids; the first that did not resolve is
/// the error.
fn substitute(
    value: &mut Value,
    answers: &HashMap<String, Result<i64, String>>,
) -> Result<(), String> {
    if let Some((endpoint, query)) = innermost(value) {
        return match answers.get(&cache_key(&endpoint, &query)) {
            Some(Ok(id)) => {
                *value = json!(id);
                Ok(())
            }
            Some(Err(err)) => Err(err.clone()),
            None => Err(format!("no answer for the lookup of {endpoint} {query}")),
        };
    }
    match value {
        Value::Object(map) => map.values_mut().try_for_each(|v| substitute(v, answers)),
        Value::Array(list) => list.iter_mut().try_for_each(|v| substitute(v, answers)),
        _ => Ok(()),
    }
}

/// Whether a listed object has `value` for the filter `key` (`name`, `slug`, `mac_address`,
/// `virtual_machine_id`...), as NetBox compares them (names case-insensitively).
fn matches_filter(object: &Value, key: &str, value: &Value) -> bool {
    let wanted = value
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| value.to_string());
    if let Some(field) = key.strip_suffix("_id") {
        let id = match object.get(field) {
            Some(Value::Object(nested)) => nested.get("id").and_then(Value::as_i64),
            Some(other) => other.as_i64(),
            None => None,
        };
        return id.is_some_and(|id| wanted.parse::<i64>() == Ok(id));
    }
    let actual = match object.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(choice)) => choice
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Some(other) => other.to_string(),
        None => return false,
    };
    actual.to_lowercase() == wanted.to_lowercase()
}

impl<'a> Resolver<'a> {
    pub(super) fn new(client: &'a NetboxClient) -> Resolver<'a> {
        Resolver {
            client,
            ids: Default::default(),
        }
    }

    /// The ids learnt so far. A poisoned lock only means a panic elsewhere mid-insert of a
    /// plain map entry: the map is still whole.
    fn ids_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn remember(&self, endpoint: &str, query: &Value, id: i64) {
        self.ids_map().insert(cache_key(endpoint, query), id);
    }

    /// Resolves every lookup in `values` in place; per value, whether it fully resolved.
    pub(super) async fn resolve(&self, values: &mut [Value]) -> Vec<Result<(), String>> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); values.len()];
        for _ in 0..8 {
            let mut wanted = Vec::new();
            for (value, result) in values.iter().zip(&results) {
                if result.is_ok() {
                    collect_innermost(value, &mut wanted);
                }
            }
            if wanted.is_empty() {
                break;
            }
            let mut answers: HashMap<String, Result<i64, String>> = HashMap::new();
            let mut by_endpoint: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (endpoint, query) in wanted {
                let key = cache_key(&endpoint, &query);
                if let Some(id) = self.ids_map().get(&key).copied() {
                    answers.insert(key, Ok(id));
                } else if let std::collections::hash_map::Entry::Vacant(slot) = answers.entry(key) {
                    // Asked once per round, however many values refer to it.
                    slot.insert(Err(String::new()));
                    by_endpoint.entry(endpoint).or_default().push(query);
                }
            }
            for (endpoint, queries) in by_endpoint {
                let found = self.find(&endpoint, &queries).await;
                for (i, query) in queries.iter().enumerate() {
                    let key = cache_key(&endpoint, query);
                    let answer = match &found {
                        Err(err) => Err(err.clone()),
                        Ok(found) => match found[i].as_slice() {
                            [one] => match one.get("id").and_then(Value::as_i64) {
                                Some(id) => {
                                    self.ids_map().insert(key.clone(), id);
                                    Ok(id)
                                }
                                None => Err(format!("the {endpoint} object for {query} has no id")),
                            },
                            [] => Err(format!(
                                "no {endpoint} object matches {query} (its parent is not in NetBox)"
                            )),
                            many => Err(format!(
                                "{} {endpoint} objects match {query}; expected one",
                                many.len()
                            )),
                        },
                    };
                    answers.insert(key, answer);
                }
            }
            for (value, result) in values.iter_mut().zip(results.iter_mut()) {
                if result.is_ok()
                    && let Err(err) = substitute(value, &answers)
                {
                    *result = Err(err);
                }
            }
        }
        results
    }

    /// For each flat query (`{"name": "eth0", "virtual_machine_id": 7}`), the objects of
    /// `endpoint` it matches: one list request per distinct filter set and 50 queries, with the
    /// values of each filter ORed (NetBox's semantics for a repeated parameter), then matched
    /// exactly here.
    pub(super) async fn find(
        &self,
        endpoint: &str,
        queries: &[Value],
    ) -> Result<Vec<Vec<Value>>, String> {
        let mut out: Vec<Vec<Value>> = vec![Vec::new(); queries.len()];
        let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
        for (i, query) in queries.iter().enumerate() {
            let keys: Vec<String> = query
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            groups.entry(keys).or_default().push(i);
        }
        for (keys, members) in groups {
            for part in members.chunks(50) {
                let mut params: Vec<(String, String)> = Vec::new();
                for key in &keys {
                    let mut values: Vec<String> = part
                        .iter()
                        .filter_map(|&i| queries[i].get(key))
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect();
                    values.sort();
                    values.dedup();
                    params.extend(values.into_iter().map(|v| (key.clone(), v)));
                }
                let borrowed: Vec<(&str, String)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                let objects = self
                    .client
                    .list(endpoint, &borrowed)
                    .await
                    .map_err(|e| e.to_string())?;
                for &i in part {
                    let query = queries[i].as_object();
                    out[i] = objects
                        .iter()
                        .filter(|o| {
                            query.is_some_and(|q| q.iter().all(|(k, v)| matches_filter(o, k, v)))
                        })
                        .cloned()
                        .collect();
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_nested_ids_and_names_case_insensitively() {
        let iface = json!({"name": "Eth0", "virtual_machine": {"id": 7, "name": "web"}});
        assert!(matches_filter(&iface, "name", &json!("eth0")));
        assert!(matches_filter(&iface, "virtual_machine_id", &json!(7)));
        assert!(!matches_filter(&iface, "virtual_machine_id", &json!(8)));
        assert!(!matches_filter(&iface, "slug", &json!("x")));
    }

    #[test]
    fn innermost_lookups_resolve_first() {
        let vm = json!({"$lookup": {"endpoint": VMS, "query": {"name": "web"}}});
        let iface = json!({"$lookup": {"endpoint": IFACES, "query": {"name": "eth0", "virtual_machine_id": vm}}});
        let mut found = Vec::new();
        collect_innermost(&iface, &mut found);
        assert_eq!(found, vec![(VMS.to_string(), json!({"name": "web"}))]);
        let mut value = json!({"assigned_object_id": iface});
        let answers = HashMap::from([(cache_key(VMS, &json!({"name": "web"})), Ok(7))]);
        substitute(&mut value, &answers).unwrap();
        assert_eq!(
            innermost(&value["assigned_object_id"]),
            Some((
                IFACES.to_string(),
                json!({"name": "eth0", "virtual_machine_id": 7})
            ))
        );
    }
}
