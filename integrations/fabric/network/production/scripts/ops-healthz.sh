#!/bin/bash
# Healthcheck for Fabric orderers and peers: GET /healthz on the operations
# listener and succeed only on HTTP 200.
#
# The official 2.5 images are Ubuntu without curl or wget, so this speaks HTTP
# over bash's /dev/tcp. The operations listener is plain HTTP on the internal
# fabric network (never published); if you turn on operations TLS, run the same
# check from a sidecar with curl --cert instead.
#
# usage: ops-healthz.sh HOST:PORT
set -u
addr=${1:-127.0.0.1:9443}
host=${addr%:*} port=${addr##*:}

exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$addr" >&3
IFS= read -r -t 5 status <&3 || exit 1
exec 3<&-
case $status in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) echo "healthz: $status" >&2; exit 1 ;;
esac
