#!/usr/bin/env bash
# Installs Debian's headless Chromium for the HTML report's browser test, where we may (root + apt).
# Never fails the build: the browser test skips with a reason when no browser is available.
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "ensure-browser: could not install chromium; the browser test will skip"
fi
exit 0
