#!/usr/bin/env bash
# Create (idempotently) a SoftHSM2 token for Credit Commons' PKCS#11 KMS and key store.
#
#   scripts/softhsm-init.sh [DIR]        DIR defaults to ./var/softhsm
#
# Writes DIR/softhsm2.conf and DIR/tokens/ (mode 0700), initialises a token if no token with
# the label exists yet, and prints shell assignments to eval:
#
#   eval "$(scripts/softhsm-init.sh)"
#   -> SOFTHSM2_CONF=…  COMMONS_PKCS11_LIB=…  COMMONS_PKCS11_TOKEN=…
#
# Environment: SOFTHSM_TOKEN_LABEL (default "commons"), SOFTHSM_SO_PIN and SOFTHSM_USER_PIN
# (development defaults below; set real ones anywhere else), SOFTHSM2_LIB (the module, found
# automatically on Debian/Ubuntu and Homebrew).  PINs are never printed.  Needs softhsm2-util
# (Debian: apt-get install softhsm2).
set -euo pipefail

dir="${1:-./var/softhsm}"
label="${SOFTHSM_TOKEN_LABEL:-commons}"
so_pin="${SOFTHSM_SO_PIN:-12345678}"
user_pin="${SOFTHSM_USER_PIN:-1234}"

die() { echo "softhsm-init: $*" >&2; exit 1; }

command -v softhsm2-util >/dev/null || die "softhsm2-util not found (Debian: apt-get install softhsm2)"
[[ "$label" =~ ^[A-Za-z0-9_.-]{1,32}$ ]] || die "token label must be 1-32 of A-Z a-z 0-9 _ . -"

find_lib() {
  local multiarch=""
  if [[ -n "${SOFTHSM2_LIB:-}" ]]; then echo "$SOFTHSM2_LIB"; return; fi
  command -v dpkg-architecture >/dev/null && multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)"
  for candidate in \
    /usr/lib/softhsm/libsofthsm2.so \
    ${multiarch:+/usr/lib/$multiarch/softhsm/libsofthsm2.so} \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib64/pkcs11/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so \
    /opt/homebrew/lib/softhsm/libsofthsm2.so; do
    if [[ -f "$candidate" ]]; then echo "$candidate"; return; fi
  done
  return 1
}
lib="$(find_lib)" || die "libsofthsm2.so not found; set SOFTHSM2_LIB"
[[ -f "$lib" ]] || die "SOFTHSM2_LIB=$lib does not exist"

umask 077
mkdir -p "$dir/tokens"
dir="$(cd "$dir" && pwd)"
chmod 700 "$dir" "$dir/tokens"
conf="$dir/softhsm2.conf"
cat >"$conf.tmp" <<CONF
# Written by scripts/softhsm-init.sh
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
mv "$conf.tmp" "$conf"
export SOFTHSM2_CONF="$conf"

if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]+Label:[[:space:]]+${label//./\\.}[[:space:]]*$"; then
  echo "softhsm-init: token '$label' already exists in $dir/tokens" >&2
else
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$user_pin" >/dev/null \
    || die "could not initialise token '$label'"
  echo "softhsm-init: initialised token '$label' in $dir/tokens" >&2
fi

printf 'SOFTHSM2_CONF=%q\nCOMMONS_PKCS11_LIB=%q\nCOMMONS_PKCS11_TOKEN=%q\n' "$conf" "$lib" "$label"
