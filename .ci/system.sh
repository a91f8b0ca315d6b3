#!/usr/bin/env bash
# System packages Radar uses beyond PyPI (idempotent): a CJK font so that charts and pages can
# draw Chinese text, and Debian's Chromium for the dashboard's browser tests and screenshots
# (Playwright drives it; it never downloads a browser of its own). Installed through apt when
# missing and we may; otherwise Radar still works (charts label in English, and the browser
# tests fail naming this script).
set -uo pipefail
PKGS=(fonts-wqy-microhei chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${missing[*]} not installed (needs root and apt-get); charts label in English, no browser tests" >&2
  exit 0
fi
echo "installing ${missing[*]}…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } \
  || echo "note: could not install ${missing[*]}; charts will label in English" >&2
exit 0
