#!/usr/bin/env bash
# What Portcullis costs a Pod create through a real kube-apiserver: no webhook, Portcullis
# validate + mutate (deploy/'s webhook configurations), validate only, a hand-written
# ValidatingAdmissionPolicy with the export's checks (benches/apiserver-vap.yaml) and the
# export itself, all in one run on one control plane (benches/apiserver.rs,
# on the end-to-end harness). Method and figures: BENCHMARKS.md.
#
#   bash benches/apiserver.sh
#
# Knobs (environment): SEQUENTIAL=200 CONCURRENT=400 ROUNDS=3 WARMUP=20, MODES=vap,native,
# NATIVE_FILES=before=old-export.yaml, VERIFY=1 (the hand-written policy's verdicts equal the
# export's first; see benches/apiserver.rs); PORTCULLIS_E2E_ASSETS to use binaries already
# decompressed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PORTCULLIS_E2E_ASSETS:-}" ]; then
  shared_k8s="$(cd .. && pwd)/shared/k8s"
  assets="$PWD/target/e2e-assets"
  mkdir -p "$assets"
  if ! (cd "$assets" && sha256sum --quiet -c "$shared_k8s/SHA256SUMS" >/dev/null 2>&1); then
    for name in kube-apiserver kube-controller-manager; do
      xz -dc "$shared_k8s/$name.xz" > "$assets/$name.part"
      chmod +x "$assets/$name.part"
      mv "$assets/$name.part" "$assets/$name"
    done
    (cd "$assets" && sha256sum -c "$shared_k8s/SHA256SUMS")
  fi
  export PORTCULLIS_E2E_ASSETS="$assets"
fi
command -v etcd >/dev/null || { echo "etcd is required (apt-get install etcd-server)" >&2; exit 1; }

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min), $(nproc) cores"
cargo bench --bench apiserver
