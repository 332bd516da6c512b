#!/usr/bin/env bash
# Builds outpost-test/busybox:latest with `docker import` from Debian's busybox-static, because tests
# reach no registry. Idempotent: an existing image is kept unless --force is given.
set -euo pipefail

IMAGE="${OUTPOST_TEST_IMAGE:-outpost-test/busybox:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
DOCKER="${DOCKER:-docker}"

if [[ "${1:-}" != "--force" ]] && "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "image $IMAGE already present"
  exit 0
fi

# Read whole before matching: with pipefail, `busybox --help | grep -q` fails whenever grep exits
# at its match before busybox has written the rest (SIGPIPE), which made a CI run say busybox was missing.
HELP="$("$BUSYBOX" --help 2>&1 || true)"
if ! grep -q 'statically linked\|BusyBox' <<<"$HELP"; then
  echo "no busybox at $BUSYBOX: install busybox-static" >&2
  exit 1
fi
# A dynamically linked busybox would need the host's libc inside the image.
if command -v file >/dev/null 2>&1 && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
  echo "$BUSYBOX is dynamically linked: install busybox-static" >&2
  exit 1
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS"/{bin,www,data,tmp,etc}
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in sh ash cat cp date echo env false grep head hostname httpd id kill ln ls mkdir mv nc \
  ping printf ps pwd rm sed seq sleep sort tail tee test touch true uname wc wget; do
  ln -s busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$ROOTFS/etc/passwd"
echo 'root:x:0:' > "$ROOTFS/etc/group"
echo 'outpost test image' > "$ROOTFS/www/index.html"

tar -C "$ROOTFS" -c . | "$DOCKER" import \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/bin' \
  --message 'outpost test busybox (docker import of busybox-static)' \
  - "$IMAGE" >/dev/null
echo "built $IMAGE"
