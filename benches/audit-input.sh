#!/usr/bin/env bash
# Writes a large multi-document YAML file to measure `portcullis audit` on (BENCHMARKS.md,
# "Audit memory and time"): the repository's sample manifests (tests/manifests and
# tests/fixtures/admission/manifests, minus the deliberately broken file), document by
# document, round-robin, until DOCS documents (default 79,000: about the size of a whole
# cluster's manifests, 50 MB with the default inputs below).
#
#   bash benches/audit-input.sh [OUT]     # default OUT: target/audit-input.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
docs=${DOCS:-79000}
out=${1:-target/audit-input.yaml}
mkdir -p "$(dirname "$out")"
mapfile -t files < <(find tests/manifests tests/fixtures/admission/manifests -type f \
  \( -name '*.yaml' -o -name '*.yml' \) ! -name broken.yaml | sort)
awk -v docs="$docs" '
  function flush() { if (content) { n++; doc[n] = text } text = ""; content = 0 }
  FNR == 1 { flush() }
  /^---/ { flush(); next }
  { text = text $0 "\n"; if ($0 !~ /^[[:space:]]*(#.*)?$/) content = 1 }
  END {
    flush()
    for (i = 0; i < docs; i++) printf "---\n%s", doc[i % n + 1]
  }
' "${files[@]}" > "$out"
echo "$out: $(grep -c '^---' "$out") documents, $(du -h "$out" | cut -f1)"
