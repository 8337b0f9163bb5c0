#!/usr/bin/env bash
# Fetch Swagger UI from the npm registry into src/gridrisk/web/vendor/swagger-ui/, so the API's
# documentation pages (/docs and /ogc/api?f=html) work on a closed intranet with no internet:
#   scripts/vendor-swagger-ui.sh           the pinned version below
#   scripts/vendor-swagger-ui.sh 5.37.0    another 5.x version (then update the pin here, and test)
set -euo pipefail
VERSION="${1:-5.36.0}"
exec "$(dirname "${BASH_SOURCE[0]}")/vendor-npm.sh" scripts/vendor-swagger-ui.sh swagger-ui-dist "$VERSION" swagger-ui \
  swagger-ui-bundle.js swagger-ui.css
