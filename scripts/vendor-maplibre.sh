#!/usr/bin/env bash
# Fetch MapLibre GL JS from the npm registry into src/gridrisk/web/vendor/maplibre-gl/, so the web map
# works on a closed intranet with no internet. Reproduce or upgrade the vendored copy with:
#   scripts/vendor-maplibre.sh            the pinned version below
#   scripts/vendor-maplibre.sh 5.25.0     another 5.x version (then update the pin here, and test)
# It runs `npm pack` in a temporary directory, checks the tarball against the registry's integrity
# hash, and copies dist/maplibre-gl.js, dist/maplibre-gl.css and LICENSE.txt, plus a VERSION file
# naming the package, its version and integrity. Needs node/npm and access to the npm registry.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:-5.24.1}"
DEST="$ROOT/src/gridrisk/web/vendor/maplibre-gl"
say() { printf '\033[1m[vendor-maplibre]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[vendor-maplibre] error:\033[0m %s\n' "$*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is needed (apt-get install npm)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
say "npm pack maplibre-gl@$VERSION"
npm pack --silent "maplibre-gl@$VERSION" >/dev/null
TGZ="maplibre-gl-$VERSION.tgz"
[ -f "$TGZ" ] || die "npm pack did not produce $TGZ"

# The registry's published integrity (sha512, base64) must match the tarball we got.
INTEGRITY="$(npm view "maplibre-gl@$VERSION" dist.integrity)"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
[ "$INTEGRITY" = "$ACTUAL" ] || die "integrity mismatch: registry $INTEGRITY, tarball $ACTUAL"

tar -xzf "$TGZ"
for f in package/dist/maplibre-gl.js package/dist/maplibre-gl.css package/LICENSE.txt; do
  [ -f "$f" ] || die "the package has no $f"
done
rm -rf "$DEST"
mkdir -p "$DEST"
cp package/dist/maplibre-gl.js package/dist/maplibre-gl.css package/LICENSE.txt "$DEST/"
LICENSE_ID="$(node -p "require('./package/package.json').license")"
cat >"$DEST/VERSION" <<EOF
package: maplibre-gl
version: $VERSION
license: $LICENSE_ID (LICENSE.txt)
source: https://registry.npmjs.org/maplibre-gl/-/maplibre-gl-$VERSION.tgz
integrity: $INTEGRITY
files: dist/maplibre-gl.js, dist/maplibre-gl.css, LICENSE.txt (unchanged)
fetched-by: scripts/vendor-maplibre.sh $VERSION
EOF
say "maplibre-gl $VERSION vendored into ${DEST#"$ROOT/"}"
(cd "$DEST" && sha256sum maplibre-gl.js maplibre-gl.css >&2)
