//! The evaluation pipeline (in progress).

use super::{Decision, Request};
use crate::policy::PolicySet;

/// Evaluates a request against a policy set.
pub fn evaluate(_policies: &PolicySet, _request: &Request<'_>) -> Decision {
    Decision {
        allowed: true,
        ..Decision::default()
    }
}
