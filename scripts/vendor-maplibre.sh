#!/usr/bin/env bash
# Fetch MapLibre GL JS from the npm registry into src/gridrisk/web/vendor/maplibre-gl/, so the web map
# works on a closed intranet with no internet. Reproduce or upgrade the vendored copy with:
#   scripts/vendor-maplibre.sh            the pinned version below
#   scripts/vendor-maplibre.sh 5.25.0     another 5.x version (then update the pin here, and test)
# scripts/vendor-npm.sh does the work: npm pack, the integrity check, the copy and a VERSION file.
set -euo pipefail
VERSION="${1:-5.24.1}"
exec "$(dirname "${BASH_SOURCE[0]}")/vendor-npm.sh" scripts/vendor-maplibre.sh maplibre-gl "$VERSION" maplibre-gl \
  dist/maplibre-gl.js dist/maplibre-gl.css
