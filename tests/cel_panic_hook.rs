//! A panic of the CEL interpreter, caught around the evaluation and turned into a violation,
//! is not printed by the panic hook (in the webhook that would be log noise for a finding),
//! while every other panic still reaches the hook that was installed before. One test in its
//! own binary: the panic hook is the process's.

use std::cell::Cell;
use std::path::Path;

use portcullis::engine::{Request, evaluate};
use serde_json::json;

thread_local! {
    /// Panics the hook saw on this thread.
    static SEEN: Cell<usize> = const { Cell::new(0) };
}

#[test]
fn an_interpreter_panic_is_caught_quietly_and_other_panics_reach_the_previous_hook() {
    // The hook in place before Portcullis evaluates anything: counts what reaches it.
    std::panic::set_hook(Box::new(|_| SEEN.with(|s| s.set(s.get() + 1))));

    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: Policy\nmetadata: {name: team-rule}\n\
        spec:\n  mode: enforce\n  rules:\n  - cel:\n      validations:\n      \
        - expression: \"-(-9223372036854775808) > 0\"\n";
    let set = portcullis::lint::load_str(Path::new("cel.yaml"), policy)
        .unwrap_or_else(|e| panic!("the policy loads: {e}"));
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"containers": [{"name": "a", "image": "x"}]}
    });
    let at = "2026-01-01".parse().expect("a date");
    for _ in 0..2 {
        let d = evaluate(&set, &Request::create(&pod, at));
        assert!(!d.allowed, "the overflow fails closed");
        assert!(
            d.violations().any(|f| f.message.contains("overflow")),
            "the violation says why: {:?}",
            d.violations().map(|f| &f.message).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        SEEN.with(Cell::get),
        0,
        "the interpreter's caught panics reached the panic hook"
    );

    // Any other panic, after the evaluations, still reaches the previous hook.
    let other = std::panic::catch_unwind(|| panic!("not the interpreter's"));
    assert!(other.is_err());
    assert_eq!(
        SEEN.with(Cell::get),
        1,
        "a panic outside CEL evaluation did not reach the previous hook"
    );
}
