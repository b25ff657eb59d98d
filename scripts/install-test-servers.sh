#!/usr/bin/env bash
# Installs the real servers the test suite talks to (redis-server, knot) and openssl for the TLS tests,
# from Debian's packages. Idempotent: does nothing when they are already there. Needs root (or sudo).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server redis-tools)
command -v knotd >/dev/null 2>&1 || need+=(knot knot-dnsutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
