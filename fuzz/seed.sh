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
# The regression inputs are seeds too: a fixed crash stays covered.
for target in admission_review policy_yaml manifests; do
  if [ -d "$root/tests/fuzz_regressions/$target" ]; then
    seed "$target" "$root"/tests/fuzz_regressions/"$target"/*
  fi
done
for target in admission_review policy_yaml manifests; do
  echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) inputs"
done
