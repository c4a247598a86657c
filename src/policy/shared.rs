//! The policy set in force while Portcullis serves, shared by everything that judges then (the
//! webhook's handlers, the report writer): read without locks, replaced whole on reload.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::PolicySet;

/// A policy set with the generation it was loaded as.
#[derive(Debug)]
pub struct LoadedPolicies {
    /// The compiled policies.
    pub set: PolicySet,
    /// 1 for the set loaded at start-up, +1 per successful reload.
    pub generation: u64,
}

/// The policy set in force. Cheap to clone: every clone sees the same set, and a reload
/// through one is seen by all.
#[derive(Debug, Clone)]
pub struct SharedPolicies(Arc<ArcSwap<LoadedPolicies>>);

impl SharedPolicies {
    /// `set` in force, as generation 1.
    pub fn new(set: PolicySet) -> SharedPolicies {
        SharedPolicies(Arc::new(ArcSwap::from_pointee(LoadedPolicies {
            set,
            generation: 1,
        })))
    }

    /// The set in force. A caller keeps the `Arc` it got for its whole evaluation, so a reload
    /// never changes the rules under it.
    pub fn load(&self) -> Arc<LoadedPolicies> {
        self.0.load_full()
    }

    /// Puts `set` in force in one step; returns its generation.
    pub fn replace(&self, set: PolicySet) -> u64 {
        let mut generation = 0;
        self.0.rcu(|old| {
            generation = old.generation + 1;
            LoadedPolicies {
                set: set.clone(),
                generation,
            }
        });
        generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_a_replacement_and_generations_count_up() {
        let set = PolicySet::default();
        let shared = SharedPolicies::new(set.clone());
        let other = shared.clone();
        let before = shared.load();
        assert_eq!(before.generation, 1);
        assert_eq!(other.replace(set.clone()), 2);
        assert_eq!(shared.load().generation, 2);
        assert_eq!(
            before.generation, 1,
            "a loaded set does not change under its holder"
        );
        assert_eq!(shared.replace(set), 3);
        assert_eq!(other.load().generation, 3);
    }
}
