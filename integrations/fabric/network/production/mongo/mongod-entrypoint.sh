#!/bin/bash
# Entrypoint wrapper for the mongo replica-set members (official mongo image).
#
# mongod refuses a keyfile readable by group or others, and compose file secrets
# are bind mounts that keep the host file's owner and mode. So copy the mounted
# keyfile into a tmpfs (/run/mongo) owned by the mongodb user with mode 0400,
# then hand over to the image's own entrypoint (which drops to that user).
set -euo pipefail

install -d -m 0700 -o mongodb -g mongodb /run/mongo
install -m 0400 -o mongodb -g mongodb /run/secrets/mongo_keyfile /run/mongo/keyfile
exec docker-entrypoint.sh "$@"
