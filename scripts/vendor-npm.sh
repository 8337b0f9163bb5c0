#!/usr/bin/env bash
# Fetch files of an npm package into src/gridrisk/web/vendor/, checked against the registry's
# integrity hash, so that pages work on a closed intranet with no internet:
#   scripts/vendor-npm.sh SCRIPT PACKAGE VERSION DIR FILE...
# SCRIPT names the caller (recorded in DIR/VERSION); FILEs are paths inside the package, copied
# unchanged into src/gridrisk/web/vendor/DIR/ with the package's licence. Needs node/npm and access
# to the npm registry. scripts/vendor-maplibre.sh and scripts/vendor-swagger-ui.sh call it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER="$1" PACKAGE="$2" VERSION="$3" DIR="$4"
shift 4
DEST="$ROOT/src/gridrisk/web/vendor/$DIR"
say() { printf '\033[1m[vendor %s]\033[0m %s\n' "$PACKAGE" "$*" >&2; }
die() { printf '\033[31m[vendor %s] error:\033[0m %s\n' "$PACKAGE" "$*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is needed (apt-get install npm)"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
say "npm pack $PACKAGE@$VERSION"
npm pack --silent "$PACKAGE@$VERSION" >/dev/null
TGZ="$PACKAGE-$VERSION.tgz"
[ -f "$TGZ" ] || die "npm pack did not produce $TGZ"

# The registry's published integrity (sha512, base64) must match the tarball we got.
INTEGRITY="$(npm view "$PACKAGE@$VERSION" dist.integrity)"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
[ "$INTEGRITY" = "$ACTUAL" ] || die "integrity mismatch: registry $INTEGRITY, tarball $ACTUAL"

tar -xzf "$TGZ"
LICENSE_FILE="$(cd package && ls LICENSE* 2>/dev/null | head -n1)"
[ -n "$LICENSE_FILE" ] || die "the package has no LICENSE file"
for f in "$@"; do
  [ -f "package/$f" ] || die "the package has no $f"
done
rm -rf "$DEST"
mkdir -p "$DEST"
for f in "$@" "$LICENSE_FILE"; do cp "package/$f" "$DEST/"; done
LICENSE_ID="$(node -p "require('./package/package.json').license")"
cat >"$DEST/VERSION" <<VERSION_FILE
package: $PACKAGE
version: $VERSION
license: $LICENSE_ID ($LICENSE_FILE)
source: https://registry.npmjs.org/$PACKAGE/-/$PACKAGE-$VERSION.tgz
integrity: $INTEGRITY
files: $(printf '%s, ' "$@")$LICENSE_FILE (unchanged)
fetched-by: $CALLER $VERSION
VERSION_FILE
say "$PACKAGE $VERSION vendored into ${DEST#"$ROOT/"}"
(cd "$DEST" && sha256sum -- * >&2)
