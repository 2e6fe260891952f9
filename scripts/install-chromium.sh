#!/usr/bin/env bash
# Install Chromium for the test that opens the offline plot page in a real headless browser
# (tests/e2e/test_experiments.py). CI runs this before the tests; where Chromium cannot be installed
# (not root, or not Debian/Ubuntu) it prints one line and that test skips, saying so.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null && exit 0
done
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Chromium not installed: the browser test of the offline plots will skip (installing it needs root on Debian/Ubuntu: apt-get install chromium)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
  echo "Chromium could not be installed (apt-get failed): the browser test of the offline plots will skip"
fi
