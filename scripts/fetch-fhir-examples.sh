#!/usr/bin/env bash
# Fetches the official FHIR R4 examples (npm package hl7.fhir.r4.examples@4.0.1, CC0) for the
# tests and benchmarks, and checks the tarball against the digest recorded here.
set -euo pipefail
dest=.cache/fhir-r4-examples
sha=dce87f1b5b9341867033f7d1f544fa1b5232503f6d62813887ac6b8a8b6cb682
mkdir -p "$dest"
cd "$dest"
if [ ! -f hl7.fhir.r4.examples-4.0.1.tgz ]; then
  npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null
fi
echo "$sha  hl7.fhir.r4.examples-4.0.1.tgz" | sha256sum --check --quiet
tar xzf hl7.fhir.r4.examples-4.0.1.tgz
echo "FHIR R4 examples in $dest/package"
