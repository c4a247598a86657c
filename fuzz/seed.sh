#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, not committed) from the repository's fixtures:
# captured AdmissionReviews, policy files, and audit manifests.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")"
root=..
seed() { # target, files...
  local target=$1; shift
  mkdir -p "corpus/$target"
  for f in "$@"; do
    # Content-addressed names: re-running adds nothing twice.
    cp "$f" "corpus/$target/seed-$(sha1sum "$f" | cut -c1-16)"
  done
}
seed admission_review "$root"/tests/fixtures/admission/*.json
seed policy_yaml "$root"/policies/*.yaml "$root"/tests/fixtures/policies/*.yaml "$root"/tests/policies/*.yaml
mapfile -t manifests < <(find "$root/tests/manifests" "$root/tests/fixtures/admission/manifests" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \))
seed manifests "${manifests[@]}"
seed nesting "$root"/tests/fixtures/admission/*.json "$root"/policies/*.yaml "${manifests[@]}"
# Deep nesting of every shape the pre-scans (src/nesting.rs) look for, 100,000 levels: every
# target must refuse them at once (the YAML parser alone took over a minute on some).
# fuzz/checks.rs `deep_inputs` holds the same shapes for the regression tests.
deep=$(mktemp -d)
trap 'rm -rf "$deep"' EXIT
times() { awk -v s="$1" 'BEGIN { for (i = 0; i < 100000; i++) printf "%s", s }'; }
{ times '['; times ']'; } >"$deep/json-arrays"
{ times '{"a":'; printf 1; times '}'; } >"$deep/json-objects"
{ times '{a: '; printf 1; times '}'; } >"$deep/yaml-flow-maps"
{ times '- '; printf 'x\n'; } >"$deep/yaml-compact"
{ times '? '; printf 'x\n'; } >"$deep/yaml-complex-keys"
{ printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: '; times '['; printf '\n'; } >"$deep/yaml-in-a-manifest"
review_head='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"deep":'
{ printf '%s' "$review_head"; times '['; times ']'; printf '}}}}'; } >"$deep/review"
for target in admission_review policy_yaml manifests nesting; do
  seed "$target" "$deep"/*
done
# The regression inputs are seeds too: a fixed crash stays covered.
for target in admission_review policy_yaml manifests nesting; do
  if [ -d "$root/tests/fuzz_regressions/$target" ]; then
    seed "$target" "$root"/tests/fuzz_regressions/"$target"/*
  fi
done
for target in admission_review policy_yaml manifests nesting; do
  echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) inputs"
done
