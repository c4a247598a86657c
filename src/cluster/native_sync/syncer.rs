//! The part of the native sync that talks to the API server: it watches the admission policy
//! objects Portcullis owns (every replica), exports the policies in force whenever something
//! may have changed (a watch event, a reload, the export's next change, the periodic repair),
//! and, on the Lease holder only, writes what [`plan::plan`] says differs: server-side apply
//! under one field manager, deletes of objects no longer exported, after checking the Lease is
//! still ours. Then it publishes what [`plan::confirmed`] says the cluster enforces, once it
//! has had [`plan::SETTLE`] to put it in force.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::plan::{self, Key};
use super::{Confirmed, FIELD_MANAGER, Inputs, SyncConfig, resource, served_mutating_version};
use crate::cluster::connect::describe_error;
use crate::cluster::lease::{still_leading, wait};
use crate::native::{
    self, MANAGED_BY, MUTATING_KINDS, MutatingVersion, POLICY_LABEL, VALIDATING_KINDS,
};
use crate::policy::Timestamp;
use crate::telemetry::WriteLabels;

/// How often the policies in force are looked at for a reload (they carry a generation, no
/// notification).
const TICK: Duration = Duration::from_secs(1);

/// How long after a failed write it is tried again.
const RETRY: Duration = Duration::from_secs(10);

/// One watch event, with the kind it is of.
struct Update {
    kind: &'static str,
    event: Result<watcher::Event<DynamicObject>, String>,
}

/// A kind's objects as the watch has them.
#[derive(Default)]
struct KindSync {
    synced: bool,
    relist: Option<BTreeSet<String>>,
}

struct Syncer {
    calls: kube::Client,
    inputs: Inputs,
    config: SyncConfig,
    mutating: Option<MutatingVersion>,
    resources: Vec<(&'static str, ApiResource)>,
    /// The owned objects in the cluster, as last seen (watch, or a write's answer).
    store: BTreeMap<Key, Value>,
    kinds: HashMap<&'static str, KindSync>,
    /// What was last exported, and whether something changed since.
    generation: u64,
    next_change: Option<Timestamp>,
    last_full: Option<Instant>,
    dirty: bool,
    retry_at: Option<Instant>,
    /// Since when each confirmed rule has been confirmed, and when the next one settles.
    settling: plan::Settling,
    settle_at: Option<Instant>,
}

/// Runs the sync until `stop`; then publishes that nothing is confirmed.
pub(super) async fn run(
    watches: kube::Client,
    calls: kube::Client,
    inputs: Inputs,
    config: SyncConfig,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
) {
    let state = inputs.state.clone();
    // Which MutatingAdmissionPolicy version the cluster serves, if any: asked once.
    let mut backoff = Duration::from_secs(1);
    let mutating = loop {
        match served_mutating_version(&calls).await {
            Ok(v) => break v,
            Err(e) => {
                tracing::warn!(error = %describe_error(&e),
                    "native sync: cannot ask which MutatingAdmissionPolicy version the cluster serves; retrying");
                if wait(&stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    tracing::info!(
        mutating = mutating.map_or("none (the webhook mutates)", MutatingVersion::as_str),
        "native sync: watching the native admission policies"
    );
    let mut resources: Vec<(&'static str, ApiResource)> = VALIDATING_KINDS
        .into_iter()
        .map(|k| (k, resource(k, "v1")))
        .collect();
    if let Some(v) = mutating {
        resources.extend(
            MUTATING_KINDS
                .into_iter()
                .map(|k| (k, resource(k, v.as_str()))),
        );
    }
    let (updates, mut incoming) = mpsc::channel::<Update>(64);
    let tasks: Vec<_> = resources
        .iter()
        .map(|(kind, ar)| {
            tokio::spawn(watch_kind(
                watches.clone(),
                kind,
                ar.clone(),
                updates.clone(),
            ))
        })
        .collect();
    drop(updates);
    let mut syncer = Syncer {
        calls,
        config,
        mutating,
        kinds: resources
            .iter()
            .map(|(k, _)| (*k, KindSync::default()))
            .collect(),
        resources,
        store: BTreeMap::new(),
        generation: 0,
        next_change: None,
        last_full: None,
        dirty: true,
        retry_at: None,
        settling: plan::Settling::default(),
        settle_at: None,
        inputs,
    };
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut election_over = false;
    loop {
        tokio::select! {
            update = incoming.recv() => match update {
                Some(u) => syncer.event(u),
                None => break,
            },
            changed = leading.changed(), if !election_over => {
                election_over = changed.is_err();
                syncer.dirty = true;
            }
            _ = ticker.tick() => {}
            () = stop.cancelled() => break,
        }
        let lead = !election_over && *leading.borrow();
        syncer.sync(lead).await;
    }
    for t in tasks {
        t.abort();
    }
    state.publish(Confirmed::default());
    syncer.inputs.metrics.rules_confirmed.set(0);
}

impl Syncer {
    fn event(&mut self, update: Update) {
        let kind = update.kind;
        let event = match update.event {
            Ok(e) => e,
            Err(error) => {
                tracing::warn!(kind, %error, "native sync: watch failed, retrying");
                return;
            }
        };
        self.dirty = true;
        let api_version = self
            .resources
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, ar)| ar.api_version.clone())
            .unwrap_or_default();
        let key_of = |o: &DynamicObject| typed(o, kind, &api_version);
        match event {
            watcher::Event::Init => {
                let s = self.kinds.entry(kind).or_default();
                s.synced = false;
                s.relist = Some(BTreeSet::new());
            }
            watcher::Event::InitApply(o) => {
                if let Some((key, v)) = key_of(&o) {
                    if let Some(seen) = self.kinds.get_mut(kind).and_then(|s| s.relist.as_mut()) {
                        seen.insert(key.name.clone());
                    }
                    self.store.insert(key, v);
                }
            }
            watcher::Event::InitDone => {
                let seen = self
                    .kinds
                    .get_mut(kind)
                    .and_then(|s| s.relist.take())
                    .unwrap_or_default();
                self.store
                    .retain(|k, _| k.kind != kind || seen.contains(&k.name));
                self.kinds.entry(kind).or_default().synced = true;
            }
            watcher::Event::Apply(o) => {
                if let Some((key, v)) = key_of(&o) {
                    self.store.insert(key, v);
                }
            }
            watcher::Event::Delete(o) => {
                if let Some((key, _)) = key_of(&o) {
                    self.store.remove(&key);
                }
            }
        }
    }

    /// Exports again if something may have changed; writes what differs when `lead`;
    /// publishes what is confirmed.
    async fn sync(&mut self, lead: bool) {
        if !self.kinds.values().all(|k| k.synced) {
            return;
        }
        let policies = self.inputs.policies.load();
        let now = Timestamp::now();
        let periodic = self
            .last_full
            .is_none_or(|t| t.elapsed() >= self.config.interval);
        let due = self.next_change.is_some_and(|t| now >= t);
        let retry = self.retry_at.is_some_and(|t| Instant::now() >= t);
        let settle = self.settle_at.is_some_and(|t| Instant::now() >= t);
        if !(self.dirty
            || periodic
            || due
            || retry
            || settle
            || policies.generation != self.generation)
        {
            return;
        }
        let trigger = if policies.generation != self.generation {
            "policy"
        } else if due {
            "schedule"
        } else if periodic {
            "periodic"
        } else if settle {
            "settle"
        } else {
            "change"
        };
        self.dirty = false;
        self.generation = policies.generation;
        if periodic {
            self.last_full = Some(Instant::now());
        }
        let export = native::export(
            &policies.set,
            &native::Options {
                time: now,
                mutating: self.mutating,
                excluded_namespaces: self.config.excluded_namespaces.clone(),
            },
        );
        self.next_change = export.next_change;
        if lead && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            let todo = plan::plan(&export.objects, &self.store);
            if !todo.is_empty() {
                self.write(todo, trigger).await;
            }
        }
        let (rules, settle_at) = self
            .settling
            .settled(plan::confirmed(&export, &self.store), Instant::now());
        self.settle_at = settle_at;
        let metrics = &self.inputs.metrics;
        metrics
            .rules_confirmed
            .set(i64::try_from(rules.len()).unwrap_or(i64::MAX));
        metrics
            .objects
            .set(i64::try_from(self.store.len()).unwrap_or(i64::MAX));
        let previous = self.inputs.state.load();
        if previous.rules != rules || previous.generation != policies.generation {
            tracing::info!(
                generation = policies.generation,
                confirmed = rules.len(),
                exported = export.exported.len(),
                until = %export.next_change.map(|t| t.to_string()).unwrap_or_default(),
                "native sync: rules the API server enforces as exported (the webhook leaves them to it)"
            );
        }
        self.inputs.state.publish(Confirmed {
            generation: policies.generation,
            until: export.next_change,
            rules,
            excluded_namespaces: self.config.excluded_namespaces.clone(),
        });
    }

    /// Applies and deletes, if the Lease is still ours.
    async fn write(&mut self, todo: plan::Plan, trigger: &str) {
        if !still_leading(&self.calls, &self.config.lease).await {
            tracing::warn!("native sync: the Lease is no longer ours; not writing");
            return;
        }
        let mut failed = false;
        for object in todo.applies {
            let Some(key) = Key::of(&object) else {
                continue;
            };
            let Some(api) = self.api(&key.kind) else {
                continue;
            };
            let params = PatchParams::apply(FIELD_MANAGER).force();
            match api.patch(&key.name, &params, &Patch::Apply(&object)).await {
                Ok(written) => {
                    self.count("apply");
                    tracing::info!(object = %key, trigger, "native sync: applied");
                    let api_version = object["apiVersion"].as_str().unwrap_or_default();
                    if let Some((key, v)) = typed(&written, &key.kind, api_version) {
                        self.store.insert(key, v);
                    }
                }
                Err(e) => {
                    failed = true;
                    self.failed(&key, "apply", &e);
                }
            }
        }
        for key in todo.deletes {
            let Some(api) = self.api(&key.kind) else {
                continue;
            };
            match api.delete(&key.name, &DeleteParams::default()).await {
                Ok(_) => {
                    self.count("delete");
                    tracing::info!(object = %key, trigger, "native sync: deleted (no longer exported)");
                    self.store.remove(&key);
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.store.remove(&key);
                }
                Err(e) => {
                    failed = true;
                    self.failed(&key, "delete", &e);
                }
            }
        }
        self.retry_at = failed.then(|| Instant::now() + RETRY);
    }

    fn api(&self, kind: &str) -> Option<Api<DynamicObject>> {
        self.resources
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, ar)| Api::all_with(self.calls.clone(), ar))
    }

    fn count(&self, operation: &str) {
        self.inputs
            .metrics
            .writes
            .get_or_create(&WriteLabels {
                operation: operation.to_owned(),
            })
            .inc();
    }

    fn failed(&self, key: &Key, operation: &str, error: &kube::Error) {
        self.inputs.metrics.write_errors.inc();
        tracing::warn!(object = %key, operation, error = %describe_error(error),
            "native sync: cannot write; the webhook keeps judging its rules, trying again later");
    }
}

/// An object as JSON with its `kind` and `apiVersion` (list items come without them), and its
/// key.
fn typed(object: &DynamicObject, kind: &str, api_version: &str) -> Option<(Key, Value)> {
    let mut v = serde_json::to_value(object).ok()?;
    v["kind"] = Value::String(kind.to_owned());
    v["apiVersion"] = Value::String(api_version.to_owned());
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    Some((Key::of(&v)?, v))
}

/// Watches one kind's objects owned by Portcullis (both labels) and forwards the events.
async fn watch_kind(
    client: kube::Client,
    kind: &'static str,
    ar: ApiResource,
    updates: mpsc::Sender<Update>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let config =
        watcher::Config::default().labels(&format!("{MANAGED_BY}=portcullis,{POLICY_LABEL}"));
    let stream = watcher(api, config)
        .modify(|o: &mut DynamicObject| {
            o.metadata.managed_fields = None;
        })
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(next) = stream.next().await {
        let update = Update {
            kind,
            event: next.map_err(|e| e.to_string()),
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}
