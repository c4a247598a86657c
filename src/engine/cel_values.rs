//! The review as CEL values: what a `cel` rule sees besides the workload (the request, the
//! old object, the namespace) and the values made from it, once per review and only when a
//! CEL rule first reads them (a set without CEL rules never makes them).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use kube_core::cel::KubeCelExt;
use kube_core::cel::cel::Context as CelContext;
use kube_core::cel::cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use kube_core::cel::cel::common::value::Val as CelVal;

use super::Operation;
use crate::json::{Json, Object};
// The roots a review binds, each made when a rule first reads it.
use crate::policy::CEL_ROOTS as ROOTS;
use crate::policy::cel_reads::{CelReads, Need};
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
pub(super) struct Bound<'a> {
    /// A scope under [`FUNCTIONS`] holding the roots bound so far.
    pub ctx: CelContext<'static>,
    /// Per root of [`ROOTS`]: what its bound value holds (`None`: not bound), and its size.
    have: [Option<(Cow<'a, Need>, f64)>; ROOTS.len()],
    /// What the containers' values hold, and their sizes.
    container_have: Option<Cow<'a, Need>>,
    container_size: f64,
    /// The containers as `forEachContainer` rules see them, in the order of
    /// `Workload::containers` then `ephemeral_containers`: each made once per review, however
    /// many rules read it; a rule borrows one by moving it into its scope and back
    /// ([`Bound::take_container`], [`Bound::give_back`]).
    containers: RefCell<Vec<Option<Val>>>,
}

impl std::fmt::Debug for Bound<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("have", &self.have)
            .field("container_have", &self.container_have)
            .finish_non_exhaustive()
    }
}

/// What CEL rules see besides the workload, and the values made from it.
#[derive(Debug)]
pub(super) struct Input<'a> {
    facts: Option<Facts<'a>>,
    /// What the set's CEL rules read of the review, all together: each value is made for
    /// all of them at once.
    reads: &'a CelReads,
    /// The values, once made.
    pub bound: RefCell<Option<Bound<'a>>>,
    /// The estimated cost of the rules run so far on this object.
    pub spent: Cell<f64>,
}

impl Default for Input<'_> {
    /// No request (a rule module's unit tests): `request` and `oldObject` are null.
    fn default() -> Self {
        static NONE: LazyLock<CelReads> = LazyLock::new(CelReads::default);
        Input {
            facts: None,
            reads: &NONE,
            bound: RefCell::new(None),
            spent: Cell::new(0.0),
        }
    }
}

impl<'a> Input<'a> {
    pub fn new(facts: Facts<'a>, reads: &'a CelReads) -> Input<'a> {
        Input {
            facts: Some(facts),
            reads,
            bound: RefCell::new(None),
            spent: Cell::new(0.0),
        }
    }
}

/// A value in the interpreter's own form. cel 0.13 evaluates over `Box<dyn Val>`: binding a
/// `Value` (`Context::add_variable_from_value`) copies it deeply into that form, so the
/// review's values are made in it directly and bound by moving them (see [`put`]).
pub(super) type Val = Box<dyn CelVal>;

/// Counts what it converts, for the cost check: one unit per value, one per 16 bytes of
/// strings and keys (see `policy::cel_cost`).
pub(super) struct Converter {
    /// What was converted so far, in the cost estimate's units.
    pub size: f64,
}

/// Bytes of string per unit of size.
const BYTES_PER_UNIT: f64 = 16.0;

impl Converter {
    fn json(&mut self, j: Json<'_>) -> Val {
        self.size += 1.0;
        if let Some(s) = j.as_str() {
            self.size += s.len() as f64 / BYTES_PER_UNIT;
            return string(s);
        }
        if let Some(b) = j.as_bool() {
            return Box::new(CelBool::from(b));
        }
        if let Some(n) = j.as_number() {
            return number(&n);
        }
        if let Some(o) = j.as_object() {
            return self.object(o);
        }
        if let Some(a) = j.as_array() {
            return Box::new(CelList::from(
                a.iter().map(|v| self.json(v)).collect::<Vec<_>>(),
            ));
        }
        Box::new(CelNull)
    }

    /// A JSON object as a CEL map.
    pub fn object(&mut self, o: Object<'_>) -> Val {
        #[cfg(test)]
        MAPS_CONVERTED.with(|n| n.set(n.get() + 1));
        let mut map = HashMap::with_capacity(o.len());
        for (k, v) in o.iter() {
            self.size += k.len() as f64 / BYTES_PER_UNIT;
            map.insert(CelMapKey::from(k), self.json(v));
        }
        Box::new(CelMap::from(map))
    }

    /// `j` cut down to what `need` says an expression may observe (`policy::cel_reads`):
    /// of a map, the needed entries that are present; of a list, every item when its items
    /// are needed.
    fn json_as(&mut self, j: Json<'_>, need: &Need) -> Val {
        if need.full {
            return self.json(j);
        }
        if let Some(o) = j.as_object() {
            self.size += 1.0;
            return self.object_as(o, need);
        }
        if let Some(a) = j.as_array() {
            self.size += 1.0;
            let items = match need.each.as_deref() {
                Some(each) => a.iter().map(|v| self.json_as(v, each)).collect(),
                None => Vec::new(),
            };
            return Box::new(CelList::from(items));
        }
        self.json(j)
    }

    /// A JSON object as a CEL map, cut down as [`Converter::json_as`] says.
    fn object_as(&mut self, o: Object<'_>, need: &Need) -> Val {
        if need.full {
            return self.object(o);
        }
        #[cfg(test)]
        MAPS_CONVERTED.with(|n| n.set(n.get() + 1));
        let mut map = HashMap::with_capacity(need.fields.len());
        if need.each.is_some() {
            for (k, v) in o.iter() {
                if let Some(n) = need.child(k) {
                    self.size += k.len() as f64 / BYTES_PER_UNIT;
                    map.insert(CelMapKey::from(k), self.json_as(v, &n));
                }
            }
        } else {
            for (k, n) in &need.fields {
                if let Some(v) = o.get(k) {
                    self.size += k.len() as f64 / BYTES_PER_UNIT;
                    map.insert(CelMapKey::from(k.as_str()), self.json_as(v, n));
                }
            }
        }
        Box::new(CelMap::from(map))
    }
}

/// A JSON number as CEL reads it: an integer as `int` (as the API server reads unstructured
/// integers), else `uint` beyond `int`'s range, else `double`.
fn number(n: &serde_json::Number) -> Val {
    if let Some(i) = n.as_i64() {
        Box::new(CelInt::from(i))
    } else if let Some(u) = n.as_u64() {
        Box::new(CelUInt::from(u))
    } else {
        Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
    }
}

fn string(s: &str) -> Val {
    Box::new(CelString::from(s))
}

fn map(entries: impl IntoIterator<Item = (&'static str, Val)>) -> Val {
    Box::new(CelMap::from(
        entries
            .into_iter()
            .map(|(k, v)| (CelMapKey::from(k), v))
            .collect::<HashMap<_, _>>(),
    ))
}

/// An empty CEL map.
pub(super) fn empty_map() -> Val {
    Box::new(CelMap::from(HashMap::new()))
}

/// Binds `value` to `name` in `scope`, by moving it (no copy).
pub(super) fn put(scope: &mut CelContext<'_>, name: &str, value: Val) {
    match scope {
        CelContext::Root { variables, .. } | CelContext::Child { variables, .. } => {
            variables.insert(name.to_owned(), value);
        }
    }
}

/// `v` as a `T`, moved (no copy); `v` back when it is not one.
fn owned<T: CelVal>(v: Val) -> Result<Box<T>, Val> {
    if v.downcast_ref::<T>().is_none() {
        return Err(v);
    }
    let any: Box<dyn std::any::Any> = v;
    Ok(any
        .downcast::<T>()
        .unwrap_or_else(|_| unreachable!("checked to be a T above")))
}

/// Takes back what [`put`] bound to `name` in `scope`.
pub(super) fn take(scope: &mut CelContext<'_>, name: &str) -> Option<Val> {
    match scope {
        CelContext::Root { variables, .. } | CelContext::Child { variables, .. } => {
            variables.remove(name)
        }
    }
}

/// Adds `name: value` to the map bound to `map_name` in `scope` (bound, empty, when absent):
/// the map is moved out, grown and moved back, nothing copied.
pub(super) fn put_entry(scope: &mut CelContext<'_>, map_name: &str, name: &str, value: Val) {
    let mut entries = take(scope, map_name)
        .and_then(|m| owned::<CelMap>(m).ok())
        .map(|m| m.into_inner())
        .unwrap_or_default();
    entries.insert(CelMapKey::from(name), value);
    put(scope, map_name, Box::new(CelMap::from(entries)));
}

/// The object as the validation rules judge it, cut down to `need`: with the mutation rules'
/// planned additions (containers, labels and annotations in full; mounts by name and path;
/// volumes by name: the view knows no more of them). The object is converted as it is, then
/// the additions are put in the converted tree (where the holder is a map; a missing list or
/// map is made).
fn mutated_object(w: &Workload<'_>, c: &mut Converter, need: &Need) -> Val {
    let mut object = c.object_as(w.object, need);
    let Some(added) = additions(w) else {
        return object;
    };
    // An addition where nothing is read is left out: nothing could tell.
    if let Some(spec_need) = need_at(need, w.pod_spec_tokens()) {
        object = edit_map(object, w.pod_spec_tokens(), &mut |spec| {
            add_to_spec(spec, added, c, &spec_need);
        });
    }
    // The labels and annotations of each holder (the object, its template) in one walk.
    for location in [MetaLocation::Object, MetaLocation::Template] {
        let mut these = added
            .metadata
            .iter()
            .filter(|m| m.location == location)
            .peekable();
        let Some(first) = these.peek() else {
            continue;
        };
        let holder = holder_of(w, first);
        let Some(meta_need) =
            need_at(need, holder).and_then(|h| h.child("metadata").map(Cow::into_owned))
        else {
            continue;
        };
        object = edit_map(object, holder, &mut |holder| {
            let meta = entry(holder, "metadata", c);
            let meta = edit_map(meta, &[], &mut |meta| {
                add_to_metadata(meta, these.by_ref(), c, &meta_need);
            });
            holder.insert(CelMapKey::from("metadata"), meta);
        });
    }
    object
}

/// What `need` needs at `tokens` under the value (`None`: nothing).
fn need_at<'n>(need: &'n Need, tokens: &[&str]) -> Option<Cow<'n, Need>> {
    let mut at = Cow::Borrowed(need);
    for t in tokens {
        at = match at {
            Cow::Borrowed(n) => n.child(t)?,
            Cow::Owned(n) => Cow::Owned(n.child(t)?.into_owned()),
        };
    }
    Some(at)
}

/// `podSpec`, cut down to `need`, with the planned additions (see [`mutated_object`]).
fn pod_spec(w: &Workload<'_>, c: &mut Converter, need: &Need) -> Val {
    let Some(spec) = json_at(w.object, w.pod_spec_tokens()) else {
        return Box::new(CelNull);
    };
    let spec = c.json_as(spec, need);
    match additions(w) {
        Some(added) => edit_map(spec, &[], &mut |spec| add_to_spec(spec, added, c, need)),
        None => spec,
    }
}

/// `podMetadata`, cut down to `need`, with the planned labels and annotations.
fn pod_metadata(w: &Workload<'_>, c: &mut Converter, need: &Need) -> Val {
    let holder = w
        .template_tokens()
        .iter()
        .try_fold(w.object, |o, t| o.get(t).and_then(Json::as_object));
    let meta = holder.and_then(|h| h.get("metadata"));
    let mut meta = meta.map(|m| c.json_as(m, need));
    let holder_tokens = w.template_tokens();
    let mut these = additions(w)
        .map_or(&[][..], |a| a.metadata.as_slice())
        .iter()
        .filter(|m| holder.is_some() && holder_of(w, m) == holder_tokens)
        .peekable();
    if these.peek().is_some() {
        let value = meta.take().unwrap_or_else(|| {
            c.size += 1.0 + "metadata".len() as f64 / BYTES_PER_UNIT;
            empty_map()
        });
        meta = Some(edit_map(value, &[], &mut |meta| {
            add_to_metadata(meta, these.by_ref(), c, need);
        }));
    }
    meta.unwrap_or_else(|| Box::new(CelNull))
}

/// The planned additions, when there are any.
fn additions<'w>(w: &Workload<'w>) -> Option<&'w crate::workload::Additions<'w>> {
    w.additions_planned().filter(|a| {
        !(a.containers.is_empty()
            && a.volumes.is_empty()
            && a.mounts.is_empty()
            && a.metadata.is_empty())
    })
}

/// Where the metadata that `m` adds to sits.
fn holder_of(w: &Workload<'_>, m: &crate::workload::MetaAddition<'_>) -> &'static [&'static str] {
    match m.location {
        MetaLocation::Object => &[],
        MetaLocation::Template => w.template_tokens(),
    }
}

/// The value at `tokens` under `o`.
fn json_at<'a>(o: Object<'a>, tokens: &[&str]) -> Option<Json<'a>> {
    let (last, path) = tokens.split_last()?;
    let holder = path
        .iter()
        .try_fold(o, |o, t| o.get(t).and_then(Json::as_object))?;
    holder.get(last)
}

/// Puts the planned containers, volumes and mounts in the Pod spec's map, as far as `need`
/// (the spec's) reads them.
fn add_to_spec(
    spec: &mut Entries,
    added: &crate::workload::Additions<'_>,
    c: &mut Converter,
    need: &Need,
) {
    // What is read of each item of `list` (its presence only, when not its items).
    let item_need = |list: &str| {
        need.child(list)
            .map(|l| l.item().map(Cow::into_owned).unwrap_or_default())
    };
    for (init, container) in &added.containers {
        let list = if *init {
            "initContainers"
        } else {
            "containers"
        };
        if let Some(item) = item_need(list) {
            let value = c.object_as(*container, &item);
            push(spec, list, value, c);
        }
    }
    if let Some(item) = item_need("volumes") {
        for name in &added.volumes {
            let value = c.json_as(Json::from(&serde_json::json!({ "name": name })), &item);
            push(spec, "volumes", value, c);
        }
    }
    let Some(mounts) = item_need("containers")
        .and_then(|item| item.child("volumeMounts").map(Cow::into_owned))
        .map(|l| l.item().map(Cow::into_owned).unwrap_or_default())
    else {
        return;
    };
    let Some(containers) = spec.remove(&CelMapKey::from("containers")) else {
        return;
    };
    let containers = edit_list(containers, &mut |list| {
        for (index, name, path) in &added.mounts {
            if let Some(slot) = list.get_mut(*index) {
                let container = std::mem::replace(slot, Box::new(CelNull));
                *slot = edit_map(container, &[], &mut |container| {
                    let mount = serde_json::json!({ "name": name, "mountPath": path });
                    let value = c.json_as(Json::from(&mount), &mounts);
                    push(container, "volumeMounts", value, c);
                });
            }
        }
    });
    spec.insert(CelMapKey::from("containers"), containers);
}

/// Puts the planned labels and annotations `added` in a metadata map (a value already there,
/// or added before, stays), each map only when `need` (the metadata's) reads it.
fn add_to_metadata<'m, 'w: 'm>(
    meta: &mut Entries,
    added: impl Iterator<Item = &'m crate::workload::MetaAddition<'w>>,
    c: &mut Converter,
    need: &Need,
) {
    let (labels, annotations): (Vec<_>, Vec<_>) = added.partition(|m| m.label);
    for (key, these) in [("labels", labels), ("annotations", annotations)] {
        if these.is_empty() || need.child(key).is_none() {
            continue;
        }
        let map = entry(meta, key, c);
        let map = edit_map(map, &[], &mut |map| {
            for m in &these {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    map.entry(CelMapKey::from(m.key))
                {
                    c.size += (m.key.len() + m.value.len()) as f64 / BYTES_PER_UNIT + 1.0;
                    slot.insert(string(&m.value));
                }
            }
        });
        meta.insert(CelMapKey::from(key), map);
    }
}

/// The entries of a CEL map.
type Entries = HashMap<CelMapKey, Val>;

/// Runs `f` on the map at `tokens` under `v`, when there is one there; the maps on the way
/// are moved out and back, nothing is copied.
fn edit_map(v: Val, tokens: &[&str], f: &mut dyn FnMut(&mut Entries)) -> Val {
    let map = match owned::<CelMap>(v) {
        Ok(map) => map,
        Err(v) => return v,
    };
    let mut entries = map.into_inner();
    match tokens.split_first() {
        None => f(&mut entries),
        Some((first, rest)) => {
            let k = CelMapKey::from(*first);
            if let Some(child) = entries.remove(&k) {
                entries.insert(k, edit_map(child, rest, f));
            }
        }
    }
    Box::new(CelMap::from(entries))
}

/// Runs `f` on the items of `v` when it is a list.
fn edit_list(v: Val, f: &mut dyn FnMut(&mut Vec<Val>)) -> Val {
    let list = match owned::<CelList>(v) {
        Ok(list) => list,
        Err(v) => return v,
    };
    let mut items = list.into_inner();
    f(&mut items);
    Box::new(CelList::from(items))
}

/// The value of `key` in `map`, moved out; an empty map, counted, when there is none.
fn entry(map: &mut Entries, key: &str, c: &mut Converter) -> Val {
    map.remove(&CelMapKey::from(key)).unwrap_or_else(|| {
        c.size += 1.0 + key.len() as f64 / BYTES_PER_UNIT;
        empty_map()
    })
}

/// Appends `value` to the list `key` of `map` (made when absent; left alone when not a list).
fn push(map: &mut Entries, key: &str, value: Val, c: &mut Converter) {
    let list = map.remove(&CelMapKey::from(key)).unwrap_or_else(|| {
        c.size += 1.0 + key.len() as f64 / BYTES_PER_UNIT;
        Box::new(CelList::from(Vec::new()))
    });
    let mut value = Some(value);
    let list = edit_list(list, &mut |items| items.extend(value.take()));
    map.insert(CelMapKey::from(key), list);
}

/// What to make of a value: all that the set reads (`set`), what it holds already (`have`)
/// and what the rule reads (`rule`) together; `None` when `have` holds what the rule reads.
/// The set's own need, not a copy, when that is all of it (the set reads what its rules do).
fn to_make<'s>(set: Option<&'s Need>, have: Option<&Need>, rule: &Need) -> Option<Cow<'s, Need>> {
    if have.is_some_and(|h| h.covers(rule)) {
        return None;
    }
    if have.is_none()
        && let Some(set) = set
        && set.covers(rule)
    {
        return Some(Cow::Borrowed(set));
    }
    let mut want = set.cloned().unwrap_or_default();
    if let Some(h) = have {
        want.merge(h);
    }
    want.merge(rule);
    Some(Cow::Owned(want))
}

impl<'a> Input<'a> {
    /// Makes sure what `reads` says of the review is bound; returns the size of what is.
    pub fn bind(&self, w: &Workload<'_>, reads: &CelReads) -> f64 {
        let mut slot = self.bound.borrow_mut();
        let bound = slot.get_or_insert_with(|| Bound {
            ctx: FUNCTIONS.new_inner_scope(),
            have: Default::default(),
            container_have: None,
            container_size: 0.0,
            containers: RefCell::new(Vec::new()),
        });
        for (i, root) in ROOTS.iter().enumerate() {
            let Some(rule) = &reads.roots[i] else {
                continue;
            };
            let have = bound.have[i].as_ref().map(|(n, _)| n.as_ref());
            let Some(want) = to_make(self.reads.roots[i].as_ref(), have, rule) else {
                continue;
            };
            let mut c = Converter { size: 0.0 };
            let value = match *root {
                "object" => mutated_object(w, &mut c, &want),
                "oldObject" => self
                    .facts
                    .and_then(|f| f.old_object)
                    .map_or_else(|| Box::new(CelNull) as Val, |o| c.json_as(o, &want)),
                "request" => self
                    .facts
                    .map_or_else(|| Box::new(CelNull) as Val, |f| request(&f)),
                "namespaceObject" => self
                    .facts
                    .and_then(|f| Some((f.namespace?, f.namespace_labels?)))
                    .map_or_else(
                        || Box::new(CelNull) as Val,
                        |(name, labels)| namespace_object(name, labels),
                    ),
                "podSpec" => pod_spec(w, &mut c, &want),
                _ => pod_metadata(w, &mut c, &want),
            };
            put(&mut bound.ctx, root, value);
            bound.have[i] = Some((want, c.size));
        }
        if let Some(rule) = &reads.container
            && let Some(want) = to_make(
                self.reads.container.as_ref(),
                bound.container_have.as_deref(),
                rule,
            )
        {
            let mut c = Converter { size: 0.0 };
            let made = w
                .containers()
                .chain(w.ephemeral_containers())
                .map(|k| Some(c.object_as(k.value, &want)))
                .collect();
            *bound.containers.get_mut() = made;
            bound.container_have = Some(want);
            bound.container_size = c.size;
        }
        bound
            .have
            .iter()
            .flatten()
            .map(|(_, size)| size)
            .sum::<f64>()
            + bound.container_size
    }
}

impl Bound<'_> {
    /// Container `c` as a CEL value (`container` of a `forEachContainer` rule), cut down to
    /// what the rules read of containers: made once per review by [`Input::bind`] (the
    /// container as its view holds it: without the planned mounts the object gets). The
    /// caller hands it back with [`Bound::give_back`] when its rule is done.
    /// `position` is `c`'s in the order of [`Bound::containers`].
    pub fn take_container(&self, position: usize, c: &ContainerRef<'_>) -> Val {
        let made = self
            .containers
            .borrow_mut()
            .get_mut(position)
            .and_then(Option::take);
        made.unwrap_or_else(|| {
            let full = Need::full();
            let need = self.container_have.as_deref().unwrap_or(&full);
            Converter { size: 0.0 }.object_as(c.value, need)
        })
    }

    /// Whether the container at `position` (given back) is [`identical`] to `value`.
    pub fn container_is(&self, position: usize, value: &dyn CelVal) -> bool {
        self.containers
            .borrow()
            .get(position)
            .and_then(Option::as_ref)
            .is_some_and(|made| identical(made.as_ref(), value))
    }

    /// Keeps the value of the container at `position`, taken with [`Bound::take_container`],
    /// for the next rule.
    pub fn give_back(&self, position: usize, value: Val) {
        let mut containers = self.containers.borrow_mut();
        if containers.len() <= position {
            // Made by `take_container` (no rule before read containers): kept all the same.
            containers.resize_with(position + 1, || None);
        }
        containers[position] = Some(value);
    }
}

fn request(f: &Facts<'_>) -> Val {
    map([
        ("operation", string(f.operation.as_str())),
        (
            "kind",
            map([
                ("group", string(f.group)),
                ("version", string(f.version)),
                ("kind", string(f.kind)),
            ]),
        ),
        (
            "resource",
            map([
                ("group", string(f.group)),
                ("version", string(f.version)),
                ("resource", string(f.resource)),
            ]),
        ),
        ("name", string(f.name.unwrap_or(""))),
        ("namespace", string(f.namespace.unwrap_or(""))),
        (
            "userInfo",
            map([("username", string(f.username.unwrap_or("")))]),
        ),
        ("dryRun", Box::new(CelBool::from(f.dry_run))),
    ])
}

fn namespace_object(name: &str, labels: &BTreeMap<String, String>) -> Val {
    let labels: Val = Box::new(CelMap::from(
        labels
            .iter()
            .map(|(k, v)| (CelMapKey::from(k.as_str()), string(v)))
            .collect::<HashMap<_, _>>(),
    ));
    map([
        ("apiVersion", string("v1")),
        ("kind", string("Namespace")),
        (
            "metadata",
            map([("name", string(name)), ("labels", labels)]),
        ),
    ])
}

/// Whether `a` and `b` are the same value, so that any expression gives the same on either:
/// the same types all the way down (an int is not a double, whatever CEL's `==` says, as
/// `type()` and `string()` tell them apart), doubles with the same bits, list items in the
/// same order, and map entries in the same iteration order (a comprehension over a map walks
/// it in that order, which can decide which error it meets first). Only the kinds of value a
/// review is converted to are compared; any other makes the two different.
pub(super) fn identical(a: &dyn CelVal, b: &dyn CelVal) -> bool {
    fn same<T: CelVal + PartialEq>(a: &dyn CelVal, b: &dyn CelVal) -> Option<bool> {
        Some(a.downcast_ref::<T>()? == b.downcast_ref::<T>()?)
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<CelMap>(), b.downcast_ref::<CelMap>()) {
        let (x, y) = (x.inner(), y.inner());
        return x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|((k, v), (l, w))| k == l && identical(v.as_ref(), w.as_ref()));
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<CelList>(), b.downcast_ref::<CelList>()) {
        let (x, y) = (x.inner(), y.inner());
        return x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(v, w)| identical(v.as_ref(), w.as_ref()));
    }
    if let (Some(x), Some(y)) = (a.downcast_ref::<CelDouble>(), b.downcast_ref::<CelDouble>()) {
        return x.inner().to_bits() == y.inner().to_bits();
    }
    if a.downcast_ref::<CelNull>().is_some() {
        return b.downcast_ref::<CelNull>().is_some();
    }
    same::<CelString>(a, b)
        .or_else(|| same::<CelInt>(a, b))
        .or_else(|| same::<CelUInt>(a, b))
        .or_else(|| same::<CelBool>(a, b))
        .unwrap_or(false)
}
