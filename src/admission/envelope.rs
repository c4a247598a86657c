//! The review's envelope (`apiVersion`, `kind`, `request` without its objects) and its objects'
//! `metadata`, read straight from the parsed [`Document`](crate::json::Document) instead of
//! through kube-core's serde types.
//!
//! Each reader here is *conservative*: it answers only for values whose typed reading is
//! certain (the shapes the apiserver sends), and builds exactly what kube-core's `Deserialize`
//! builds for them. For anything else (a missing or `null` required field, a number that might
//! not read as `i64`, a `response`, ...) it answers `None` and the caller reads the body through
//! kube-core's types as before, so every body is accepted or refused, and every error worded,
//! exactly as the typed parse decides. `admission`'s tests compare both readings on every
//! captured review and on thousands of mutated ones.

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Deserialize as _;

use crate::json::{Json, Object};

/// The review as kube-core's `AdmissionReview<DynamicObject>` reads it with `request.object`
/// and `request.oldObject` nulled, or `None` when that reading is not certain.
pub(super) fn review(root: Json<'_>) -> Option<AdmissionReview<DynamicObject>> {
    let root = root.as_object()?;
    let mut api_version = None;
    let mut kind = None;
    let mut request = None;
    for (key, value) in root.iter() {
        match key {
            "apiVersion" => api_version = Some(value.as_str()?),
            "kind" => kind = Some(value.as_str()?),
            "request" => request = Some(value),
            // kube-core reads a `response` as `AdmissionResponse`: leave that to it.
            "response" if !value.is_null() => return None,
            // Other keys are ignored by the typed parse too.
            _ => {}
        }
    }
    let types = TypeMeta {
        api_version: api_version?.to_owned(),
        kind: kind?.to_owned(),
    };
    // No `request` (or `null`) is the typed parse's `NoRequest`: left to it.
    let request = self::request(request?.as_object()?)?;
    Some(AdmissionReview {
        types,
        request: Some(request),
        response: None,
    })
}

fn request(fields: Object<'_>) -> Option<AdmissionRequest<DynamicObject>> {
    let mut uid = None;
    let mut kind = None;
    let mut resource = None;
    let mut sub_resource = None;
    let mut request_kind = None;
    let mut request_resource = None;
    let mut request_sub_resource = None;
    let mut name = String::new();
    let mut namespace = None;
    let mut operation = None;
    let mut user_info = None;
    let mut dry_run = false;
    let mut options = None;
    for (key, value) in fields.iter() {
        match key {
            "uid" => uid = Some(value.as_str()?.to_owned()),
            "kind" => kind = Some(gvk(value)?),
            "resource" => resource = Some(gvr(value)?),
            "subResource" => sub_resource = optional_string(value)?,
            "requestKind" => request_kind = optional(value, gvk)?,
            "requestResource" => request_resource = optional(value, gvr)?,
            "requestSubResource" => request_sub_resource = optional_string(value)?,
            // `String` with a default: `null` is an error there, left to the typed parse.
            "name" => name = value.as_str()?.to_owned(),
            "namespace" => namespace = optional_string(value)?,
            "operation" => {
                operation = Some(match value.as_str()? {
                    "CREATE" => Operation::Create,
                    "UPDATE" => Operation::Update,
                    "DELETE" => Operation::Delete,
                    "CONNECT" => Operation::Connect,
                    _ => return None,
                })
            }
            "userInfo" => user_info = Some(self::user_info(value.as_object()?)?),
            "dryRun" => dry_run = value.as_bool()?,
            // `RawExtension` holds any JSON as a `serde_json::Value`; numbers are left to the
            // typed parse (their `Value` form is its to decide). `null` is no options.
            "options" if !value.is_null() => {
                if !has_no_number(value) {
                    return None;
                }
                options = Some(RawExtension(value.to_value()));
            }
            // Nulled for the typed parse as well: the engine reads them, their `metadata` is
            // checked by `metadata_reads`.
            "object" | "oldObject" => {}
            _ => {}
        }
    }
    Some(AdmissionRequest {
        types: TypeMeta::default(),
        uid: uid?,
        kind: kind?,
        resource: resource?,
        sub_resource,
        request_kind,
        request_resource,
        request_sub_resource,
        name,
        namespace,
        operation: operation?,
        user_info: user_info?,
        object: None,
        old_object: None,
        dry_run,
        options,
    })
}

/// `Some(None)` for `null`, `Some(Some(s))` for a string, `None` (uncertain) otherwise.
fn optional_string(value: Json<'_>) -> Option<Option<String>> {
    optional(value, |v| v.as_str().map(str::to_owned))
}

fn optional<'a, T>(value: Json<'a>, read: impl FnOnce(Json<'a>) -> Option<T>) -> Option<Option<T>> {
    if value.is_null() {
        return Some(None);
    }
    read(value).map(Some)
}

/// `group`, `version` and `kind`, all three strings.
fn gvk(value: Json<'_>) -> Option<GroupVersionKind> {
    let (mut group, mut version, mut kind) = (None, None, None);
    for (key, value) in value.as_object()?.iter() {
        match key {
            "group" => group = Some(value.as_str()?),
            "version" => version = Some(value.as_str()?),
            "kind" => kind = Some(value.as_str()?),
            _ => {}
        }
    }
    Some(GroupVersionKind {
        group: group?.to_owned(),
        version: version?.to_owned(),
        kind: kind?.to_owned(),
    })
}

/// `group`, `version` and `resource`, all three strings; kube-core's private `apiVersion`
/// field is left to the typed parse when sent.
fn gvr(value: Json<'_>) -> Option<GroupVersionResource> {
    let (mut group, mut version, mut resource) = (None, None, None);
    for (key, value) in value.as_object()?.iter() {
        match key {
            "group" => group = Some(value.as_str()?),
            "version" => version = Some(value.as_str()?),
            "resource" => resource = Some(value.as_str()?),
            "apiVersion" => return None,
            _ => {}
        }
    }
    let fields = [
        ("group", group?),
        ("version", version?),
        ("resource", resource?),
    ];
    // Through kube-core's own `Deserialize` (its `apiVersion` field is private): three
    // borrowed strings, no JSON.
    GroupVersionResource::deserialize(serde::de::value::MapDeserializer::<
        _,
        serde::de::value::Error,
    >::new(fields.into_iter()))
    .ok()
}

fn user_info(fields: Object<'_>) -> Option<UserInfo> {
    let mut info = UserInfo::default();
    for (key, value) in fields.iter() {
        match key {
            "username" => info.username = optional_string(value)?,
            "uid" => info.uid = optional_string(value)?,
            "groups" => info.groups = optional(value, strings)?,
            "extra" => {
                info.extra = optional(value, |v| {
                    v.as_object()?
                        .iter()
                        .map(|(k, v)| Some((k.to_owned(), strings(v)?)))
                        .collect()
                })?
            }
            _ => {}
        }
    }
    Some(info)
}

/// An array of strings.
fn strings(value: Json<'_>) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Whether `value` holds no number at any depth.
fn has_no_number(value: Json<'_>) -> bool {
    if let Some(object) = value.as_object() {
        object.iter().all(|(_, v)| has_no_number(v))
    } else if let Some(array) = value.as_array() {
        array.iter().all(has_no_number)
    } else {
        !value.is_number()
    }
}

/// Whether `metadata` certainly reads as kube's `ObjectMeta`; `false` when the typed check
/// must decide.
pub(super) fn metadata_reads(metadata: Json<'_>) -> bool {
    metadata_fields(metadata).is_some()
}

fn metadata_fields(metadata: Json<'_>) -> Option<()> {
    for (key, value) in metadata.as_object()?.iter() {
        if value.is_null() {
            // Every field of `ObjectMeta` is an `Option`.
            continue;
        }
        match key {
            "name" | "namespace" | "uid" | "resourceVersion" | "generateName" | "selfLink" => {
                value.as_str()?;
            }
            "generation" | "deletionGracePeriodSeconds" => integer(value)?,
            "labels" | "annotations" => {
                for (_, v) in value.as_object()?.iter() {
                    v.as_str()?;
                }
            }
            "finalizers" => {
                for v in value.as_array()?.iter() {
                    v.as_str()?;
                }
            }
            "creationTimestamp" | "deletionTimestamp" => time(value)?,
            "ownerReferences" => {
                for v in value.as_array()?.iter() {
                    owner_reference(v.as_object()?)?;
                }
            }
            "managedFields" => {
                for v in value.as_array()?.iter() {
                    managed_fields_entry(v.as_object()?)?;
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// A non-zero integer within `i64` (whether `-0` reads as an integer is the typed parse's
/// to decide).
fn integer(value: Json<'_>) -> Option<()> {
    value.as_number()?.as_i64().filter(|n| *n != 0).map(drop)
}

/// A string that kube's `Time` reads: a `jiff::Timestamp`, through jiff's own `Deserialize`
/// (what `Time`'s newtype reads it with).
fn time(value: Json<'_>) -> Option<()> {
    let text = value.as_str()?;
    let _: Time = Time(
        k8s_openapi::jiff::Timestamp::deserialize(serde::de::value::StrDeserializer::<
            serde::de::value::Error,
        >::new(text))
        .ok()?,
    );
    Some(())
}

/// `apiVersion`, `kind`, `name` and `uid` strings (k8s-openapi reads a missing one as `""`, a
/// `null` one is an error); `controller` and `blockOwnerDeletion` booleans.
fn owner_reference(fields: Object<'_>) -> Option<()> {
    for (key, value) in fields.iter() {
        match key {
            "apiVersion" | "kind" | "name" | "uid" => {
                value.as_str()?;
            }
            "controller" | "blockOwnerDeletion" if !value.is_null() => {
                value.as_bool()?;
            }
            _ => {}
        }
    }
    Some(())
}

/// Strings, `time` a `Time`, `fieldsV1` any JSON.
fn managed_fields_entry(fields: Object<'_>) -> Option<()> {
    for (key, value) in fields.iter() {
        if value.is_null() {
            continue;
        }
        match key {
            "apiVersion" | "fieldsType" | "manager" | "operation" | "subresource" => {
                value.as_str()?;
            }
            "time" => time(value)?,
            _ => {}
        }
    }
    Some(())
}
