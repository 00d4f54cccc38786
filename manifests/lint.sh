#!/usr/bin/env bash
# `make lint` for manifests/: every kustomization under manifests/ that is an entry point (not a
# component of another) is built with `kubectl kustomize`, validated offline against the
# Kubernetes 1.30 schemas (kubernetes-validate, strict) and scanned by checkov (0 failed;
# each skip is justified inline as a checkov.io/skip annotation); yamllint checks the sources.
#
# checkov pins dependencies that clash with the project environment, so it lives in its own
# virtual environment, .venv-lint (git-ignored), created here on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
LINT_VENV=${LINT_VENV:-.venv-lint}
if [ ! -x "$LINT_VENV/bin/checkov" ]; then
  python3 -m venv "$LINT_VENV"
  "$LINT_VENV/bin/pip" install -q --upgrade pip
  "$LINT_VENV/bin/pip" install -q "checkov>=3.2,<4"
fi
"$VENV/bin/yamllint" --strict -c manifests/.yamllint.yaml manifests crds examples
built=$(mktemp -d)
trap 'rm -rf "$built"' EXIT
for file in $(find manifests -name kustomization.yaml | sort); do
  dir=$(dirname "$file")
  parent=$(dirname "$dir")
  nested=no
  while [ "$parent" != "." ] && [ "$parent" != "manifests" ] && [ "$parent" != "/" ]; do
    if [ -f "$parent/kustomization.yaml" ]; then nested=yes; fi
    parent=$(dirname "$parent")
  done
  [ "$nested" = yes ] && continue
  out="$built/$(echo "$dir" | tr / _).yaml"
  echo "== $dir"
  kubectl kustomize "$dir" > "$out"
  "$VENV/bin/kubernetes-validate" -k 1.30.0 --strict --quiet "$out"
  "$LINT_VENV/bin/checkov" --quiet --compact --skip-download --framework kubernetes -f "$out"
done
