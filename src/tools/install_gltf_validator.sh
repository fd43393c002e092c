#!/usr/bin/env bash
# Installs the Khronos glTF validator (npm package gltf-validator, pinned)
# into .gltf_validator/ at the repository root (git-ignored), for
# src/tools/validate_gltf.js and tests/inference/gltf_test.py. Needs node and
# npm (Node.js 18 or later) and the npm registry; hmr_tf itself never runs it.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=2.0.0-dev.3.10
npm install --prefix .gltf_validator --no-audit --no-fund --no-save \
    "gltf-validator@${VERSION}"
echo "gltf-validator ${VERSION} installed in .gltf_validator/"
