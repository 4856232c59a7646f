#!/bin/sh
# Entrypoint of the medshare-chaincode image.
#
# The chaincode server must announce the package id the peers installed, which
# is only known once the package (with this org's TLS material) is built. The
# fabric-ccpackage job writes it to a file; CHAINCODE_ID_FILE names that file.
# CHAINCODE_ID, when set, wins.
set -eu

if [ -z "${CHAINCODE_ID:-}" ] && [ -n "${CHAINCODE_ID_FILE:-}" ]; then
  CHAINCODE_ID=$(cat "$CHAINCODE_ID_FILE")
  export CHAINCODE_ID
fi
exec /usr/local/bin/medshare-chaincode "$@"
