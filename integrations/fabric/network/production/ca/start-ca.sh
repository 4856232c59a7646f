#!/bin/sh
# Starts fabric-ca-server with the shared configuration (fabric-ca-server-config.yaml)
# and the bootstrap admin password read from the mounted secret. Runs inside the
# official hyperledger/fabric-ca image; FABRIC_CA_SERVER_HOME is a named volume.
set -eu

home=${FABRIC_CA_SERVER_HOME:?FABRIC_CA_SERVER_HOME must be set}
secret=/run/secrets/ca_admin_password

pw=$(tr -d '\r\n' < "$secret")
case $pw in
  "" | *[!A-Za-z0-9]*)
    echo "start-ca: $secret must hold a non-empty alphanumeric password (openssl rand -hex 24)" >&2
    exit 1 ;;
esac

umask 077
mkdir -p "$home"
sed "s/@BOOTSTRAP_ADMIN_PASSWORD@/$pw/" /etc/medshare/ca/fabric-ca-server-config.yaml \
  > "$home/fabric-ca-server-config.yaml"
exec fabric-ca-server start --home "$home"
