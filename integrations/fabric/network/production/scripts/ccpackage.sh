#!/bin/bash
# One-shot job (fabric-ccpackage in docker-compose.yml, hyperledger/fabric-tools
# image): builds each org's chaincode-as-a-service package and records its
# package id, for the chaincode containers (CHAINCODE_ID_FILE) and for the
# fabric-channel job (install, approve, commit).
#
# Each org has its own package: its connection.json names its own chaincode
# container and carries that org's TLS material, so package ids differ per org
# (approvals are per org, which Fabric allows). The PEM fields are filled in
# here from the fabric_admin secret and are never committed:
#   root_cert    orgs/<org>/tlsca.pem            CA that issued the chaincode server's TLS cert
#   client_cert  chaincode/<org>/client.crt      certificate the peers present to the chaincode
#   client_key   chaincode/<org>/client.key
#
# The tarballs are reproducible (fixed mtime, owner and order; gzip -n), so the
# same inputs give the same package id on every run and a re-run is a no-op.
set -euo pipefail

secrets=${SECRETS:-/run/secrets/admin}
templates=${TEMPLATES:-/etc/medshare/chaincode}
out=${OUT:-/var/hyperledger/ccpkg}
label=${CHAINCODE_LABEL:-medshare}
orgs=(${ORGS:-hospital insurer})

# tarball DIR OUT FILE...: a reproducible gzip'd tar of DIR's FILEs, stored
# under their bare names (Fabric's package parser wants "metadata.json", not
# "./metadata.json").
tarball() {
  local dir=$1 out=$2
  shift 2
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u=rw,go=r \
    -C "$dir" -cf - "$@" | gzip -n > "$out"
}

for org in "${orgs[@]}"; do
  work=$(mktemp -d)
  mkdir -p "$work/code" "$work/pkg" "$out/$org"
  jq --rawfile root "$secrets/orgs/$org/tlsca.pem" \
     --rawfile cert "$secrets/chaincode/$org/client.crt" \
     --rawfile key "$secrets/chaincode/$org/client.key" \
     '.root_cert = $root | .client_cert = $cert | .client_key = $key' \
     "$templates/$org/connection.json" > "$work/code/connection.json"
  jq -n --arg l "$label" '{"type": "ccaas", "label": $l}' > "$work/pkg/metadata.json"
  tarball "$work/code" "$work/pkg/code.tar.gz" connection.json
  tarball "$work/pkg" "$work/medshare.tar.gz" code.tar.gz metadata.json

  id=$(peer lifecycle chaincode calculatepackageid "$work/medshare.tar.gz")
  if [[ -f "$out/$org/package-id" && $(<"$out/$org/package-id") == "$id" ]]; then
    echo "ccpackage: $org unchanged: $id"
  else
    install -m 0600 "$work/medshare.tar.gz" "$out/$org/medshare.tar.gz"
    # Readable by the chaincode container's non-root user; the id is not secret.
    printf '%s\n' "$id" > "$out/$org/package-id.tmp"
    chmod 0644 "$out/$org/package-id.tmp"
    mv "$out/$org/package-id.tmp" "$out/$org/package-id"
    echo "ccpackage: $org packaged: $id"
  fi
  rm -rf "$work"
done
