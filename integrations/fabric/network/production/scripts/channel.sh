#!/bin/bash
# One-shot job (fabric-channel in docker-compose.yml, hyperledger/fabric-tools
# image): creates the application channel and commits the medshare chaincode.
# Every step checks before it acts, so the job runs on every `docker compose up`
# and does nothing once the network is in place; a new chaincode package (new
# TLS material in connection.json) is approved and committed as the next
# sequence.
#
#   1. channel genesis block from configtx.yaml, made once and kept in a volume
#      (every orderer and peer must join the same block);
#   2. each orderer joins through the channel participation API (osnadmin, mutual
#      TLS on the admin port); wait for a raft leader;
#   3. each peer joins as its org's admin;
#   4. each org installs its own CCaaS package on its peers;
#   5. each org approves, then the definition is committed (endorsement policy:
#      the channel default, MAJORITY of orgs).
#
# Identities and CA certificates come from the fabric_admin secret at
# /run/secrets/admin (layout: README.md in this folder).
set -euo pipefail

channel=${CHANNEL:-medshare}
cc=${CHAINCODE:-medshare}
S=${SECRETS:-/run/secrets/admin}
block=${CHANNEL_DIR:-/var/hyperledger/channel}/$channel.block
pkgs=${CCPKG:-/var/hyperledger/ccpkg}
orderer=${ORDERER:-orderer0:7050}
orderer_ca=$S/orgs/orderer/tlsca.pem
orderers=(orderer0 orderer1 orderer2)
orgs=(hospital insurer)
declare -A mspid=([hospital]=HospitalMSP [insurer]=InsurerMSP)

log() { echo "channel: $*"; }

# retry CMD...: run CMD up to 10 times, 3 s apart (peers and orderers may still
# be settling after their healthchecks pass).
retry() {
  local i
  for i in {1..10}; do
    "$@" && return 0
    log "retry $i: $*"
    sleep 3
  done
  return 1
}

# as ORG PEER: point the peer CLI at PEER (host) as ORG's admin.
as() {
  export CORE_PEER_LOCALMSPID=${mspid[$1]}
  export CORE_PEER_MSPCONFIGPATH=$S/users/$1-admin/msp
  export CORE_PEER_TLS_ENABLED=true
  export CORE_PEER_TLS_ROOTCERT_FILE=$S/orgs/$1/tlsca.pem
  export CORE_PEER_ADDRESS=$2:7051
}

osn() {
  osnadmin channel "$1" -o "$2:7053" --ca-file "$orderer_ca" \
    --client-cert "$S/users/orderer-admin/tls/client.crt" \
    --client-key "$S/users/orderer-admin/tls/client.key" "${@:3}"
}

join_orderer() {
  osn join "$1" --channelID "$channel" --config-block "$block" | grep -q '^Status: 201'
}

leader_elected() {
  local o
  for o in "${orderers[@]}"; do
    curl -fsS "http://$o:9443/metrics" 2>/dev/null |
      grep -q "^consensus_etcdraft_is_leader{channel=\"$channel\"} 1" && return 0
  done
  return 1
}

# 1. Genesis block.
if [[ ! -s $block ]]; then
  configtxgen -configPath /etc/medshare/configtx -profile MedshareChannel \
    -channelID "$channel" -outputBlock "$block.tmp"
  mv "$block.tmp" "$block"
  log "created genesis block $block"
fi

# 2. Orderers.
for o in "${orderers[@]}"; do
  if osn list "$o" --channelID "$channel" | grep -q '^Status: 200'; then
    log "$o already serves $channel"
  else
    retry join_orderer "$o"
    log "$o joined $channel"
  fi
done
retry leader_elected
log "raft leader elected"

# 3. Peers.
for org in "${orgs[@]}"; do
  for p in "peer0-$org" "peer1-$org"; do
    as "$org" "$p"
    if peer channel getinfo -c "$channel" >/dev/null 2>&1; then
      log "$p already joined $channel"
    else
      retry peer channel join -b "$block"
      log "$p joined $channel"
    fi
  done
done

# 4. Install each org's package on its peers.
declare -A pkgid
for org in "${orgs[@]}"; do
  pkgid[$org]=$(<"$pkgs/$org/package-id")
  for p in "peer0-$org" "peer1-$org"; do
    as "$org" "$p"
    if peer lifecycle chaincode queryinstalled -O json | grep -qF "\"${pkgid[$org]}\""; then
      log "$p has ${pkgid[$org]}"
    else
      retry peer lifecycle chaincode install "$pkgs/$org/medshare.tar.gz"
      log "$p installed ${pkgid[$org]}"
    fi
  done
done

# 5. Approve and commit. approved ORG SEQ: ORG's approval at SEQ names its package.
approved() {
  as "$1" "peer0-$1"
  peer lifecycle chaincode queryapproved -C "$channel" -n "$cc" --sequence "$2" -O json 2>/dev/null |
    grep -qF "${pkgid[$1]}"
}

as hospital peer0-hospital
seq=$(peer lifecycle chaincode querycommitted -C "$channel" -n "$cc" -O json 2>/dev/null | jq -r '.sequence // 0') || seq=0
current=$((seq > 0))
for org in "${orgs[@]}"; do
  if ((current)) && ! approved "$org" "$seq"; then current=0; fi
done
if ((current)); then
  log "$cc sequence $seq is committed with every org's current package"
  exit 0
fi

seq=$((seq + 1))
for org in "${orgs[@]}"; do
  if approved "$org" "$seq"; then
    log "${mspid[$org]} already approved sequence $seq"
    continue
  fi
  as "$org" "peer0-$org"
  retry peer lifecycle chaincode approveformyorg -o "$orderer" --tls --cafile "$orderer_ca" \
    -C "$channel" -n "$cc" --version "$seq" --sequence "$seq" \
    --package-id "${pkgid[$org]}" --waitForEvent
  log "${mspid[$org]} approved sequence $seq"
done

as hospital peer0-hospital
retry peer lifecycle chaincode commit -o "$orderer" --tls --cafile "$orderer_ca" \
  -C "$channel" -n "$cc" --version "$seq" --sequence "$seq" \
  --peerAddresses peer0-hospital:7051 --tlsRootCertFiles "$S/orgs/hospital/tlsca.pem" \
  --peerAddresses peer0-insurer:7051 --tlsRootCertFiles "$S/orgs/insurer/tlsca.pem" \
  --waitForEvent
log "$cc sequence $seq committed"
