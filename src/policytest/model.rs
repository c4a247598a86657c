//! The test file format: `kind: PolicyTest` documents, each a list of cases with what the
//! policy set must decide about them. Strict like policy files (`deny_unknown_fields`); the
//! JSON Schema from `portcullis policy schema` covers it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Effect, FindingKind};
use crate::policy::Timestamp;
use crate::policy::model::{Mode, PolicyMetadata};

/// The `kind` of a test document.
pub const KIND: &str = "PolicyTest";

/// One test document: cases judged by the policy set under test.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestDocument {
    /// Always `portcullis.dev/v1alpha1`.
    pub api_version: String,
    /// Always `PolicyTest`.
    pub kind: String,
    /// The test's name (reported with every case).
    pub metadata: PolicyMetadata,
    /// Which policies the cases check, and the cases.
    pub spec: TestSpec,
}

/// `spec` of a test document.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestSpec {
    /// The policies whose findings the cases check: a finding of one of them that no
    /// expectation matches fails the case (closed world). Findings of other policies are not
    /// checked (the whole set still judges: its verdict and patch are what the cluster gets).
    /// Empty: every policy of the set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Modes to run policies in for these cases instead of their own (their schedules
    /// dropped), e.g. to test a policy shipped with `mode: off` as it will be once switched on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modes: BTreeMap<String, Mode>,
    /// The time cases are judged at unless they give their own: a date (00:00 UTC) or an RFC
    /// 3339 time. Absent: the time the run started (or `portcullis test --at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// The cases.
    pub cases: Vec<TestCase>,
}

/// The admission operation of a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TestOperation {
    /// A new object (`object`).
    #[default]
    Create,
    /// A change from `oldObject` to `object`.
    Update,
    /// A deletion of `object` (never judged).
    Delete,
}

/// The user sending the request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserInfo {
    /// `userInfo.username` (e.g. `system:serviceaccount:kube-system:replicaset-controller`,
    /// whose controller-owned objects are not judged again).
    pub username: String,
}

/// One case: a request and what the policy set must decide about it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestCase {
    /// What the case shows, in a sentence.
    pub name: String,
    /// `CREATE` (default), `UPDATE` or `DELETE`.
    #[serde(default)]
    pub operation: TestOperation,
    /// The object, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// The object, from a file holding exactly one (relative to the test file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_file: Option<String>,
    /// The stored object an UPDATE changes, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    /// The stored object an UPDATE changes, from a file (relative to the test file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object_file: Option<String>,
    /// The request's namespace. Absent: the object's `metadata.namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels of that namespace (`kubernetes.io/metadata.name` is always implied).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespace_labels: BTreeMap<String, String>,
    /// Who sends the request. Absent: a user without a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<UserInfo>,
    /// A server-side dry run: the verdict and patch must be the same.
    #[serde(default)]
    pub dry_run: bool,
    /// When the request is judged (exceptions, schedules). Absent: `spec.time`, else the time
    /// the run started (or `--at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// What the set must decide.
    pub expect: Expectation,
}

/// What a case expects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    /// Whether the request is admitted. Absent: not checked (the findings decide).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
    /// The request is not judged, for a reason containing this text (`controller-owned`,
    /// `DELETE is not judged`, `not a workload`). Absent: the request must be judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The findings of the policies under test. Each must match at least one finding, and
    /// every finding must be matched by one, unless `otherFindings: ignore`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ExpectedFinding>,
    /// `fail` (default): a finding of the policies under test that no expectation matches
    /// fails the case. `ignore`: only the listed findings are checked.
    #[serde(default)]
    pub other_findings: OtherFindings,
    /// The exact JSON Patch the webhook returns (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    /// The object as admitted (the patch applied), inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// The object as admitted, from a file (relative to the test file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_file: Option<String>,
}

/// Whether findings nobody expected fail a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OtherFindings {
    /// They fail the case (closed world).
    #[default]
    Fail,
    /// They are not checked.
    Ignore,
}

/// A finding's effect, as test files and reports write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedEffect {
    /// A violation of an `enforce` policy: the request is denied.
    Deny,
    /// A mutation of an `enforce` policy: in the patch.
    Apply,
    /// A warning (warn mode, or a pre-existing violation on UPDATE).
    Warn,
    /// Recorded only (audit mode).
    Audit,
    /// Excepted by a `PolicyException` in force.
    Excepted,
}

impl From<ExpectedEffect> for Effect {
    fn from(e: ExpectedEffect) -> Effect {
        match e {
            ExpectedEffect::Deny => Effect::Deny,
            ExpectedEffect::Apply => Effect::Apply,
            ExpectedEffect::Warn => Effect::Warn,
            ExpectedEffect::Audit => Effect::Audit,
            ExpectedEffect::Excepted => Effect::Excepted,
        }
    }
}

/// `violation`, `mutation` or `notice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedKind {
    /// Something missing or wrong.
    Violation,
    /// A change.
    Mutation,
    /// Something a rule did not do, and why (a mutation skipped).
    Notice,
}

impl From<ExpectedKind> for FindingKind {
    fn from(k: ExpectedKind) -> FindingKind {
        match k {
            ExpectedKind::Violation => FindingKind::Violation,
            ExpectedKind::Mutation => FindingKind::Mutation,
            ExpectedKind::Notice => FindingKind::Notice,
        }
    }
}

/// An expected finding: every field given must match (the fields of a finding in
/// `portcullis audit -o json`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExpectedFinding {
    /// The policy's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The rule type (`requireProbes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `violation`, `mutation` or `notice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ExpectedKind>,
    /// `deny`, `apply`, `warn`, `audit` or `excepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<ExpectedEffect>,
    /// The container concerned (`""`: a finding about no container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The dotted field path, exactly (`spec.template.spec.containers[0].livenessProbe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Text the message contains (case-sensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the violation already existed before an UPDATE (ratcheted to a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_existing: Option<bool>,
    /// The name of the exception that excepts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// When the policy's schedule starts enforcing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_from: Option<Timestamp>,
    /// How many findings this expectation matches, exactly. Absent: at least one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}
