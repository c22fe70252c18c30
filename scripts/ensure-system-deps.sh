#!/usr/bin/env bash
# Installs the system packages the test suite uses with real components, when missing:
# SoftHSM2 (a real PKCS#11 token for the vault and HSM-held signing keys) and poppler-utils
# (pdftoppm, to rasterise the data-export PDF in tests), nats-server (NATS JetStream, which
# the federation tests start on a free port of their own), wrk (HTTP load for `make bench`),
# Debian's chromium (the web console's browser tests, driven by Playwright) and the Noto fonts
# it renders Devanagari (Hindi) and Nastaliq/Naskh (Urdu) pages with, Debian's nginx (TLS
# and mutual TLS in front of `commons serve`, deploy/nginx, which the e2e tests start), and
# promtool (tests/unit/deploy check deploy/prometheus's alerting rules), taken out of Debian's
# prometheus package without installing it, so no Prometheus daemon is installed or started.
# Called by `make test` and `.ci/run`; a no-op when everything is present.
set -euo pipefail

missing=()
command -v softhsm2-util >/dev/null || missing+=(softhsm2)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)  # tests/integration/federation start their own
command -v wrk >/dev/null || missing+=(wrk)  # the HTTP load of bench/consent.py
command -v chromium >/dev/null || missing+=(chromium)  # tests/browser
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)  # tests/e2e/test_lender_mtls_nginx.py
[ -e /usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf ] || missing+=(fonts-noto-core)

need_promtool=0
command -v promtool >/dev/null || need_promtool=1

if [ ${#missing[@]} -eq 0 ] && [ $need_promtool -eq 0 ]; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "system-deps: need root to install ${missing[*]} promtool" >&2; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "system-deps: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ $need_promtool -eq 1 ]; then
  echo "system-deps: installing promtool (from Debian's prometheus package)" >&2
  work="$(mktemp -d)"
  chmod 755 "$work"  # apt's sandbox user writes the download here
  (cd "$work" && apt-get download -qq prometheus)
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  $sudo install -m 0755 "$work/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$work"
fi
