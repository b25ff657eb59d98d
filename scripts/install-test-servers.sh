#!/usr/bin/env bash
# Installs the real peers the test suite and benchmarks talk to, from Debian's packages: redis-server (+ sentinel,
# redis-benchmark), knot, nginx with the stream module, haproxy, wrk, tinyproxy, Python's websockets, MockupDB,
# and openssl for the TLS tests. Idempotent: does nothing when they are all there. Needs root (or sudo).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v knotd >/dev/null 2>&1 || need+=(knot knot-dnsutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy)
command -v curl >/dev/null 2>&1 || need+=(curl)
# the Workers rolling-restart test runs in a network namespace of its own (unshare -rn, ip, sysctl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v sysctl >/dev/null 2>&1 || need+=(procps)
# Debian's own interpreter: python3 on PATH may be another build that does not see Debian's modules
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || need+=(python3-websockets)
/usr/bin/python3 -c 'import mockupdb' >/dev/null 2>&1 || need+=(python3-mockupdb)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
