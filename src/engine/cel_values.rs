//! The review as CEL values: what a `cel` rule sees besides the workload (the request, the
//! old object, the namespace) and the values made from it, once per review and only when a
//! CEL rule first reads them (a set without CEL rules never makes them).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use kube_core::cel::KubeCelExt;
use kube_core::cel::cel::objects::{Key, Map};
use kube_core::cel::cel::{Context as CelContext, Value};

use super::Operation;
use crate::json::{Json, Object};
// The roots a review binds, each made when a rule first reads it.
use crate::policy::CEL_ROOTS as ROOTS;
use crate::workload::{ContainerRef, MetaLocation, Workload};

#[cfg(test)]
thread_local! {
    /// Maps (JSON objects) converted to CEL values on this thread: lets the tests
    /// (`cel_conversion_tests.rs`) prove that a review's values are made at most once.
    pub(super) static MAPS_CONVERTED: Cell<usize> = const { Cell::new(0) };
}

/// The functions: CEL's standard library and the Kubernetes libraries, registered once.
static FUNCTIONS: LazyLock<CelContext<'static>> = LazyLock::new(|| {
    let mut ctx = CelContext::default();
    ctx.register_all();
    ctx
});

/// What the request says, for `request`, `oldObject` and `namespaceObject`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts<'a> {
    pub operation: Operation,
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub username: Option<&'a str>,
    pub dry_run: bool,
    /// The namespace's labels, when known.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The stored object (UPDATE).
    pub old_object: Option<Json<'a>>,
}

/// The review's CEL values, made on first use.
pub(super) struct Bound {
    /// A scope under [`FUNCTIONS`] holding the roots bound so far.
    pub ctx: CelContext<'static>,
    /// Which of [`ROOTS`] are bound.
    bound: [bool; ROOTS.len()],
    /// The object (with the planned additions) as a CEL value.
    object: Value,
    /// The size of what the review binds (bytes of strings plus values), for the cost check.
    size: f64,
    /// The containers as `forEachContainer` rules see them, by (list, index): each made once
    /// per review, however many rules read it.
    containers: RefCell<HashMap<(&'static str, usize), Value>>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("bound", &self.bound)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// What CEL rules see besides the workload, and the values made from it.
#[derive(Debug)]
pub(super) struct Input<'a> {
    facts: Option<Facts<'a>>,
    /// The values, once made.
    pub bound: RefCell<Option<Bound>>,
    /// The estimated cost of the rules run so far on this object.
    pub spent: Cell<f64>,
}

impl Default for Input<'_> {
    /// No request (a rule module's unit tests): `request` and `oldObject` are null.
    fn default() -> Self {
        Input {
            facts: None,
            bound: RefCell::new(None),
            spent: Cell::new(0.0),
        }
    }
}

impl<'a> Input<'a> {
    pub fn new(facts: Facts<'a>) -> Input<'a> {
        Input {
            facts: Some(facts),
            bound: RefCell::new(None),
            spent: Cell::new(0.0),
        }
    }
}

/// Counts what it converts, for the cost check: one unit per value, one per 16 bytes of
/// strings and keys (see `policy::cel_cost`).
pub(super) struct Converter {
    /// What was converted so far, in the cost estimate's units.
    pub size: f64,
}

/// Bytes of string per unit of size.
const BYTES_PER_UNIT: f64 = 16.0;

impl Converter {
    fn json(&mut self, j: Json<'_>) -> Value {
        self.size += 1.0;
        if let Some(s) = j.as_str() {
            self.size += s.len() as f64 / BYTES_PER_UNIT;
            return Value::String(Arc::new(s.to_owned()));
        }
        if let Some(b) = j.as_bool() {
            return Value::Bool(b);
        }
        if let Some(n) = j.as_number() {
            return number(&n);
        }
        if let Some(o) = j.as_object() {
            return self.object(o);
        }
        if let Some(a) = j.as_array() {
            return Value::List(Arc::new(a.iter().map(|v| self.json(v)).collect()));
        }
        Value::Null
    }

    /// A JSON object as a CEL map.
    pub fn object(&mut self, o: Object<'_>) -> Value {
        #[cfg(test)]
        MAPS_CONVERTED.with(|n| n.set(n.get() + 1));
        let mut map = HashMap::with_capacity(o.len());
        for (k, v) in o.iter() {
            self.size += k.len() as f64 / BYTES_PER_UNIT;
            map.insert(Key::String(Arc::new(k.to_owned())), self.json(v));
        }
        Value::Map(Map { map: Arc::new(map) })
    }

    fn serde(&mut self, v: &serde_json::Value) -> Value {
        self.json(Json::from(v))
    }
}

/// A JSON number as CEL reads it: an integer as `int` (as the API server reads unstructured
/// integers), else `uint` beyond `int`'s range, else `double`.
fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else if let Some(u) = n.as_u64() {
        Value::UInt(u)
    } else {
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_owned()))
}

fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Map(Map {
        map: Arc::new(
            entries
                .into_iter()
                .map(|(k, v)| (Key::String(Arc::new(k.to_owned())), v))
                .collect(),
        ),
    })
}

/// The object as the validation rules judge it: with the mutation rules' planned additions
/// (containers, labels and annotations in full; mounts by name and path; volumes by name:
/// the view knows no more of them).
fn mutated_object(w: &Workload<'_>, c: &mut Converter) -> Value {
    let Some(added) = w.additions_planned().filter(|a| {
        !(a.containers.is_empty()
            && a.volumes.is_empty()
            && a.mounts.is_empty()
            && a.metadata.is_empty())
    }) else {
        return c.object(w.object);
    };
    let mut v = object_to_value(w.object);
    let spec_pointer: String = w
        .pod_spec_tokens()
        .iter()
        .map(|t| format!("/{t}"))
        .collect();
    if let Some(spec) = v.pointer_mut(&spec_pointer).and_then(|s| s.as_object_mut()) {
        for (init, container) in &added.containers {
            let list = if *init {
                "initContainers"
            } else {
                "containers"
            };
            if let Some(l) = spec
                .entry(list)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                .as_array_mut()
            {
                l.push(object_to_value(*container));
            }
        }
        for name in &added.volumes {
            if let Some(l) = spec
                .entry("volumes")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                .as_array_mut()
            {
                l.push(serde_json::json!({ "name": name }));
            }
        }
        for (index, name, path) in &added.mounts {
            if let Some(c) = spec
                .get_mut("containers")
                .and_then(|l| l.get_mut(*index))
                .and_then(|c| c.as_object_mut())
                && let Some(l) = c
                    .entry("volumeMounts")
                    .or_insert_with(|| serde_json::Value::Array(Vec::new()))
                    .as_array_mut()
            {
                l.push(serde_json::json!({ "name": name, "mountPath": path }));
            }
        }
    }
    let template_pointer: String = w
        .template_tokens()
        .iter()
        .map(|t| format!("/{t}"))
        .collect();
    for m in &added.metadata {
        let root = match m.location {
            MetaLocation::Object => "",
            MetaLocation::Template => template_pointer.as_str(),
        };
        let Some(holder) = v.pointer_mut(root).and_then(|h| h.as_object_mut()) else {
            continue;
        };
        let meta = holder
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(meta) = meta.as_object_mut() {
            let key = if m.label { "labels" } else { "annotations" };
            if let Some(map) = meta
                .entry(key)
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
            {
                map.entry(m.key)
                    .or_insert_with(|| serde_json::Value::String(m.value.clone()));
            }
        }
    }
    c.serde(&v)
}

fn object_to_value(o: Object<'_>) -> serde_json::Value {
    serde_json::Value::Object(
        o.iter()
            .map(|(k, v)| (k.to_owned(), v.to_value()))
            .collect(),
    )
}

/// The value at `tokens` under `v` (null when absent).
fn at_path(v: &Value, tokens: &[&str]) -> Value {
    let mut v = v.clone();
    for t in tokens {
        v = match &v {
            Value::Map(m) => m
                .map
                .get(&Key::String(Arc::new((*t).to_owned())))
                .cloned()
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    v
}

impl Input<'_> {
    /// Makes sure the roots `rule` reads are bound; returns the size of the review.
    pub fn bind(&self, w: &Workload<'_>, needs: &[bool; ROOTS.len()]) -> f64 {
        let mut slot = self.bound.borrow_mut();
        let bound = slot.get_or_insert_with(|| {
            let mut c = Converter { size: 0.0 };
            let object = mutated_object(w, &mut c);
            Bound {
                ctx: FUNCTIONS.new_inner_scope(),
                bound: [false; ROOTS.len()],
                object,
                size: c.size,
                containers: RefCell::new(HashMap::new()),
            }
        });
        for (i, root) in ROOTS.iter().enumerate() {
            if !needs[i] || bound.bound[i] {
                continue;
            }
            let mut c = Converter { size: 0.0 };
            let value = match *root {
                "object" => bound.object.clone(),
                "oldObject" => self
                    .facts
                    .and_then(|f| f.old_object)
                    .map_or(Value::Null, |o| c.json(o)),
                "request" => self.facts.map_or(Value::Null, |f| request(&f)),
                "namespaceObject" => self
                    .facts
                    .and_then(|f| Some((f.namespace?, f.namespace_labels?)))
                    .map_or(Value::Null, |(name, labels)| namespace_object(name, labels)),
                "podSpec" => at_path(&bound.object, w.pod_spec_tokens()),
                _ => {
                    let mut tokens = w.template_tokens().to_vec();
                    tokens.push("metadata");
                    at_path(&bound.object, &tokens)
                }
            };
            bound.size += c.size;
            bound.ctx.add_variable_from_value(*root, value);
            bound.bound[i] = true;
        }
        bound.size
    }
}

impl Bound {
    /// Container `c` of `w` as a CEL value (`container` of a `forEachContainer` rule), made
    /// at most once per review: taken from the object already made when it holds the
    /// container as the rule sees it, converted (once) otherwise.
    pub fn container(&self, w: &Workload<'_>, c: &ContainerRef<'_>) -> Value {
        let key = (c.list(), c.index);
        if let Some(v) = self.containers.borrow().get(&key) {
            return v.clone();
        }
        // `mutated_object` appends the planned mounts to the app containers of the object;
        // `container` is the container as its view holds it, without them.
        let mounts_added = c.list() == "containers"
            && w.additions_planned()
                .is_some_and(|a| a.mounts.iter().any(|(i, _, _)| *i == c.index));
        let in_object = if mounts_added {
            None
        } else {
            match at_path(&self.object, w.pod_spec_tokens()) {
                Value::Map(spec) => match spec.map.get(&Key::String(Arc::new(c.list().to_owned())))
                {
                    Some(Value::List(list)) => list
                        .get(c.index)
                        .filter(|v| matches!(v, Value::Map(_)))
                        .cloned(),
                    _ => None,
                },
                _ => None,
            }
        };
        let value = in_object.unwrap_or_else(|| Converter { size: 0.0 }.object(c.value));
        self.containers.borrow_mut().insert(key, value.clone());
        value
    }
}

fn request(f: &Facts<'_>) -> Value {
    let (group, version) = (string(f.group), string(f.version));
    map([
        ("operation", string(f.operation.as_str())),
        (
            "kind",
            map([
                ("group", group.clone()),
                ("version", version.clone()),
                ("kind", string(f.kind)),
            ]),
        ),
        (
            "resource",
            map([
                ("group", group),
                ("version", version),
                ("resource", string(f.resource)),
            ]),
        ),
        ("name", string(f.name.unwrap_or(""))),
        ("namespace", string(f.namespace.unwrap_or(""))),
        (
            "userInfo",
            map([("username", string(f.username.unwrap_or("")))]),
        ),
        ("dryRun", Value::Bool(f.dry_run)),
    ])
}

fn namespace_object(name: &str, labels: &BTreeMap<String, String>) -> Value {
    let labels = Value::Map(Map {
        map: Arc::new(
            labels
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), string(v)))
                .collect(),
        ),
    });
    map([
        ("apiVersion", string("v1")),
        ("kind", string("Namespace")),
        (
            "metadata",
            map([("name", string(name)), ("labels", labels)]),
        ),
    ])
}
