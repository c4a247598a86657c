//! The typed read of a review's `request` from the parsed [`Document`](crate::json::Document):
//! what Portcullis uses into a [`ReviewRequest`], and every other field checked as kube-core's
//! `AdmissionRequest<DynamicObject>` checks it (the differential test in `admission`'s tests
//! holds it to that), so a body is accepted or refused as kube-core would. Each error names
//! the field: `request.uid: expected a string`.

use crate::engine::Operation;
use crate::json::{Json, Object};

/// What Portcullis reads of a review's `request` (the objects stay in the document).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRequest {
    /// `uid`: copied into the answer.
    pub uid: String,
    /// `kind.group` (`""` for core).
    pub group: String,
    /// `kind.version`.
    pub version: String,
    /// `kind.kind`.
    pub kind: String,
    /// `resource.resource` (`deployments`), for a CEL rule's `request.resource`.
    pub resource: String,
    /// `subResource`.
    pub sub_resource: Option<String>,
    /// `name` (`""` when absent: a `generateName` CREATE).
    pub name: String,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `operation`.
    pub operation: Operation,
    /// `userInfo.username`.
    pub username: Option<String>,
    /// `dryRun`: logged, never judged.
    pub dry_run: bool,
}

/// A field of the wrong shape: where, and what it should be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct FieldError {
    /// `request.userInfo.groups[1]`.
    pub path: String,
    /// `expected a string`, `missing`.
    pub problem: &'static str,
}

impl FieldError {
    pub(super) fn new(key: &str, problem: &'static str) -> FieldError {
        FieldError {
            path: key.to_owned(),
            problem,
        }
    }

    /// This error, inside `outer`.
    fn within(mut self, outer: &str) -> FieldError {
        self.path = match self.path.as_str() {
            "" => outer.to_owned(),
            p if p.starts_with('[') => format!("{outer}{p}"),
            p => format!("{outer}.{p}"),
        };
        self
    }
}

type Read<T> = Result<T, FieldError>;

const STRING: &str = "expected a string";

fn object<'a>(value: Json<'a>, at: &str) -> Read<Object<'a>> {
    value
        .as_object()
        .ok_or_else(|| FieldError::new(at, "expected an object"))
}

fn string<'a>(value: Json<'a>, at: &str) -> Read<&'a str> {
    value.as_str().ok_or_else(|| FieldError::new(at, STRING))
}

/// `null` is none, as kube-core's `Option` fields read it.
fn optional<'a, T>(value: Json<'a>, read: impl FnOnce(Json<'a>) -> Read<T>) -> Read<Option<T>> {
    if value.is_null() {
        Ok(None)
    } else {
        read(value).map(Some)
    }
}

fn optional_string(value: Json<'_>, at: &str) -> Read<Option<String>> {
    optional(value, |v| string(v, at).map(str::to_owned))
}

fn required<T>(value: Option<T>, at: &str) -> Read<T> {
    value.ok_or_else(|| FieldError::new(at, "missing"))
}

/// Each element of an array with `check`.
fn each(value: Json<'_>, at: &str, check: impl Fn(Json<'_>) -> Read<()>) -> Read<()> {
    let array = value
        .as_array()
        .ok_or_else(|| FieldError::new(at, "expected an array"))?;
    for (i, item) in array.iter().enumerate() {
        check(item).map_err(|e| e.within(&format!("{at}[{i}]")))?;
    }
    Ok(())
}

fn strings(value: Json<'_>, at: &str) -> Read<()> {
    each(value, at, |v| string(v, "").map(drop))
}

/// An object whose values are all strings (labels, annotations).
fn string_map(value: Json<'_>, at: &str) -> Read<()> {
    for (key, v) in object(value, at)?.iter() {
        string(v, key).map_err(|e| e.within(at))?;
    }
    Ok(())
}

/// An object of the `fields`, each a string, all required, and the `optional` ones strings
/// when present; others ignored. The strings, in the order of `fields`.
fn strings_of<'a, const N: usize>(
    value: Json<'a>,
    at: &str,
    (fields, optional): ([&str; N], &[&str]),
) -> Read<[&'a str; N]> {
    let mut found = [None; N];
    for (key, v) in object(value, at)?.iter() {
        if let Some(i) = fields.iter().position(|f| *f == key) {
            found[i] = Some(string(v, key).map_err(|e| e.within(at))?);
        } else if optional.contains(&key) {
            string(v, key).map_err(|e| e.within(at))?;
        }
    }
    let mut out = [""; N];
    for (i, field) in fields.iter().enumerate() {
        out[i] = required(found[i], field).map_err(|e| e.within(at))?;
    }
    Ok(out)
}

/// kube-core's `GroupVersionKind`.
const KIND: ([&str; 3], &[&str]) = (["group", "version", "kind"], &[]);
/// kube-core's `GroupVersionResource` (with its own optional `apiVersion`).
const RESOURCE: ([&str; 3], &[&str]) = (["group", "version", "resource"], &["apiVersion"]);

/// Reads `request` (at `request`), checking its objects' `metadata`.
pub(super) fn read(value: Json<'_>) -> Read<ReviewRequest> {
    read_fields(value).map_err(|e| e.within("request"))
}

fn read_fields(value: Json<'_>) -> Read<ReviewRequest> {
    let (mut uid, mut kind, mut resource, mut operation, mut user) = (None, None, None, None, None);
    let mut request = ReviewRequest {
        uid: String::new(),
        group: String::new(),
        version: String::new(),
        kind: String::new(),
        resource: String::new(),
        sub_resource: None,
        name: String::new(),
        namespace: None,
        operation: Operation::Create,
        username: None,
        dry_run: false,
    };
    for (key, v) in object(value, "")?.iter() {
        match key {
            "uid" => uid = Some(string(v, key)?),
            "kind" => kind = Some(strings_of(v, key, KIND)?),
            "resource" => resource = Some(strings_of(v, key, RESOURCE)?),
            "subResource" => request.sub_resource = optional_string(v, key)?,
            "requestKind" => drop(optional(v, |v| strings_of(v, key, KIND))?),
            "requestResource" => drop(optional(v, |v| strings_of(v, key, RESOURCE))?),
            "requestSubResource" => drop(optional_string(v, key)?),
            "name" => request.name = string(v, key)?.to_owned(),
            "namespace" => request.namespace = optional_string(v, key)?,
            "operation" => {
                operation = Some(match string(v, key)? {
                    "CREATE" => Operation::Create,
                    "UPDATE" => Operation::Update,
                    "DELETE" => Operation::Delete,
                    "CONNECT" => Operation::Connect,
                    _ => {
                        return Err(FieldError::new(
                            key,
                            "expected CREATE, UPDATE, DELETE or CONNECT",
                        ));
                    }
                })
            }
            "userInfo" => user = Some(user_info(v).map_err(|e| e.within(key))?),
            "object" | "oldObject" => drop(optional(v, |v| dynamic_object(v, key))?),
            "dryRun" => {
                request.dry_run = v
                    .as_bool()
                    .ok_or_else(|| FieldError::new(key, "expected a boolean"))?
            }
            // `options` is any JSON (kube-core's `RawExtension`); others are not read.
            _ => {}
        }
    }
    request.uid = required(uid, "uid")?.to_owned();
    let [group, version, kind] = required(kind, "kind")?;
    (request.group, request.version, request.kind) = (group.into(), version.into(), kind.into());
    let [_, _, resource] = required(resource, "resource")?;
    request.resource = resource.into();
    request.operation = required(operation, "operation")?;
    request.username = required(user, "userInfo")?;
    Ok(request)
}

/// `userInfo` (required, an object): its `username`, and `uid`, `groups` and `extra` checked.
fn user_info(value: Json<'_>) -> Read<Option<String>> {
    let mut username = None;
    for (key, v) in object(value, "")?.iter() {
        match key {
            "username" => username = optional_string(v, key)?,
            "uid" => drop(optional_string(v, key)?),
            "groups" => drop(optional(v, |v| strings(v, key))?),
            "extra" => drop(optional(v, |v| {
                for (name, values) in object(v, key)?.iter() {
                    strings(values, name).map_err(|e| e.within(key))?;
                }
                Ok(())
            })?),
            _ => {}
        }
    }
    Ok(username)
}

/// What kube-core's `DynamicObject` demands: an object whose `metadata`, when present, reads
/// as `ObjectMeta` (everything else, `apiVersion` and `kind` included, is any JSON).
fn dynamic_object(value: Json<'_>, at: &str) -> Read<()> {
    if let Some(metadata) = object(value, at)?.get("metadata") {
        object_meta(metadata).map_err(|e| e.within(&format!("{at}.metadata")))?;
    }
    Ok(())
}

/// k8s-openapi's `ObjectMeta`: every field optional (`null` is none), unknown ones ignored.
fn object_meta(value: Json<'_>) -> Read<()> {
    for (key, v) in object(value, "")?.iter() {
        if v.is_null() {
            continue;
        }
        match key {
            "name" | "namespace" | "generateName" | "uid" | "resourceVersion" | "selfLink" => {
                string(v, key).map(drop)?
            }
            "labels" | "annotations" => string_map(v, key)?,
            "finalizers" => strings(v, key)?,
            "generation" | "deletionGracePeriodSeconds" => integer(v, key)?,
            "creationTimestamp" | "deletionTimestamp" => time(v, key)?,
            "ownerReferences" => each(v, key, owner_reference)?,
            "managedFields" => each(v, key, managed_fields_entry)?,
            _ => {}
        }
    }
    Ok(())
}

/// An `i64`: as serde_json reads one (not `1.0`, nor `-0`, which it reads as a float).
fn integer(value: Json<'_>, at: &str) -> Read<()> {
    match value.as_number() {
        Some(n) if n.as_i64().is_some() => Ok(()),
        _ => Err(FieldError::new(at, "expected an integer")),
    }
}

/// k8s-openapi's `Time`: a string that jiff reads as a timestamp (RFC 3339 with an offset).
fn time(value: Json<'_>, at: &str) -> Read<()> {
    string(value, at)?
        .parse::<k8s_openapi::jiff::Timestamp>()
        .map(drop)
        .map_err(|_| FieldError::new(at, "expected a time (RFC 3339)"))
}

/// `apiVersion`, `kind`, `name` and `uid` strings (missing or `null` is `""`), `controller`
/// and `blockOwnerDeletion` booleans.
fn owner_reference(value: Json<'_>) -> Read<()> {
    for (key, v) in object(value, "")?.iter() {
        match key {
            "apiVersion" | "kind" | "name" | "uid" => drop(optional_string(v, key)?),
            "controller" | "blockOwnerDeletion" => drop(optional(v, |v| {
                v.as_bool()
                    .ok_or_else(|| FieldError::new(key, "expected a boolean"))
            })?),
            _ => {}
        }
    }
    Ok(())
}

/// Optional strings, `time` a `Time`, `fieldsV1` any JSON.
fn managed_fields_entry(value: Json<'_>) -> Read<()> {
    for (key, v) in object(value, "")?.iter() {
        match key {
            "apiVersion" | "fieldsType" | "manager" | "operation" | "subresource" => {
                drop(optional_string(v, key)?)
            }
            "time" => drop(optional(v, |v| time(v, key))?),
            _ => {}
        }
    }
    Ok(())
}
