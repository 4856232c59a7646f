#!/usr/bin/env bash
# network.sh runs medshare's local Hyperledger Fabric 2.5 network natively (no
# docker): one etcdraft orderer, peers for HospitalMSP and InsurerMSP, channel
# "medshare", and the medshare chaincode as a service. See
# docs/FABRIC.md for the recipe and its gotchas.
#
# Usage: network.sh COMMAND
#   up [--lease PID]   reuse a healthy network, restart stopped processes of a
#                      complete one, or start from nothing; prints "started"
#                      or "reused". --lease (used by the Go tests) ties the
#                      network to process PID: a network a lease started is
#                      taken down (by a small reaper process) once every
#                      leasing process has exited. Plain `up` adopts the
#                      network: it stays until `down`.
#   down               stop every process by the PID in its pid file
#   clean              down, then remove all state (binaries included)
#   env                print `export MEDSHARE_...=...` lines for eval
#   status             show processes and readiness gates; exit 1 if not ready
#   stop-peer ORG      stop one peer (hospital | insurer)
#   start-peer ORG     start it again and wait for its readiness gates
#
# Everything lives under .state/ next to this script: bin/ (built binaries),
# crypto/, config/, data/ (ledgers), run/ (pid files), logs/. Commands that
# change the network serialise on a flock of this directory, so parallel test
# processes can call `up` at once.
#
# Settings (never CORE_* or ORDERER_*: Fabric maps every variable with those
# prefixes onto its configuration):
#   MEDSHARE_FABRIC_BATCH_TIMEOUT  block cutting timeout for a new network (100ms)
#   MEDSHARE_FABRIC_WAIT           seconds to wait for each readiness step (60)
#   MEDSHARE_FABRIC_LOCK_WAIT      seconds to wait for another caller's lock (900)
set -euo pipefail

NET_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$NET_DIR/../../.." && pwd)"
STATE="$NET_DIR/.state"
BIN="$STATE/bin"
CRYPTO="$STATE/crypto"
CFG="$STATE/config"
DATA="$STATE/data"
RUN="$STATE/run"
LOGS="$STATE/logs"
CCDIR="$STATE/chaincode"

BATCH_TIMEOUT="${MEDSHARE_FABRIC_BATCH_TIMEOUT:-100ms}"
WAIT="${MEDSHARE_FABRIC_WAIT:-60}"
LOCK_WAIT="${MEDSHARE_FABRIC_LOCK_WAIT:-900}"

CHANNEL=medshare
CC_NAME=medshare
CC_VERSION=1.0
CC_LABEL=medshare_1.0
CC_ADDRESS=127.0.0.1:9999
FABRIC_VERSION=2.5.9

ORDERER_ADDR=127.0.0.1:7050
ORDERER_ADMIN=127.0.0.1:7053
ORDERER_OPS=127.0.0.1:9443
ORDERER_ORG_DIR="$CRYPTO/ordererOrganizations/medshare.test"
ORDERER_NODE_DIR="$ORDERER_ORG_DIR/orderers/orderer.medshare.test"
ORDERER_TLS_CA="$ORDERER_ORG_DIR/tlsca/tlsca.medshare.test-cert.pem"
ORGS=(hospital insurer)

# Per-org facts, looked up by org name.
org_msp() { case "$1" in hospital) echo HospitalMSP ;; insurer) echo InsurerMSP ;; *) die "unknown org '$1' (want hospital or insurer)" ;; esac; }
org_port() { case "$1" in hospital) echo 7051 ;; insurer) echo 9051 ;; esac; }
org_ops() { case "$1" in hospital) echo 127.0.0.1:9444 ;; insurer) echo 127.0.0.1:9445 ;; esac; }
org_domain() { echo "$1.medshare.test"; }
org_dir() { echo "$CRYPTO/peerOrganizations/$(org_domain "$1")"; }
peer_dir() { echo "$(org_dir "$1")/peers/peer0.$(org_domain "$1")"; }
peer_addr() { echo "127.0.0.1:$(org_port "$1")"; }
peer_tls_ca() { echo "$(org_dir "$1")/tlsca/tlsca.$(org_domain "$1")-cert.pem"; }
admin_msp() { echo "$(org_dir "$1")/users/Admin@$(org_domain "$1")/msp"; }
user_msp() { echo "$(org_dir "$1")/users/User1@$(org_domain "$1")/msp"; }
# The client identity medshare uses: the hospital org's User1.
user_cert() { echo "$(user_msp hospital)/signcerts/User1@$(org_domain hospital)-cert.pem"; }
user_key() { echo "$(user_msp hospital)/keystore/priv_sk"; }

log() { echo "network: $*" >&2; }
die() {
	echo "network: error: $*" >&2
	exit 1
}

# now_ms prints the time in milliseconds.
now_ms() { date +%s%3N; }

# wait_for SECONDS WHAT CMD... retries CMD every 100ms until it succeeds or
# SECONDS pass.
wait_for() {
	local limit=$1 what=$2
	shift 2
	local deadline=$(($(now_ms) + limit * 1000))
	until "$@" >/dev/null 2>&1; do
		if (($(now_ms) > deadline)); then
			log "timed out after ${limit}s waiting for $what"
			return 1
		fi
		sleep 0.1
	done
}

# lock takes the network lock (fd 9) so state-changing commands serialise.
lock() {
	exec 9<"$NET_DIR"
	flock -w "$LOCK_WAIT" 9 || die "another network.sh held the lock for ${LOCK_WAIT}s"
}

# ---------------------------------------------------------------------------
# Processes: started detached (own session, no inherited descriptors, clean
# environment) and tracked by pid files in $RUN.

pidfile() { echo "$RUN/$1.pid"; }

# bin_of NAME prints the binary a process NAME runs.
bin_of() {
	case "$1" in
	reaper) echo bash ;;
	orderer) echo "$BIN/orderer" ;;
	peer-*) echo "$BIN/peer" ;;
	chaincode) echo "$BIN/medshare-chaincode" ;;
	esac
}

# pid_of NAME prints the PID of process NAME if it is running (pid file
# present, process alive, and running the expected binary).
pid_of() {
	local f pid cmd
	f="$(pidfile "$1")"
	[ -f "$f" ] || return 1
	pid="$(cat "$f")"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	cmd="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n1)" || return 1
	[ "$cmd" = "$(bin_of "$1")" ] || return 1
	echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

# running PID: the process exists and is not a zombie (zombies have no
# command line).
running() { [ -n "$(tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null)" ]; }

# spawn NAME VAR=VALUE... -- CMD... starts CMD detached with only the given
# environment, logging to $LOGS/NAME.log.
spawn() {
	local name=$1
	shift
	local vars=()
	while [ "$1" != "--" ]; do
		vars+=("$1")
		shift
	done
	shift
	mkdir -p "$RUN" "$LOGS"
	echo "=== $(date -u +%FT%TZ) start: $*" >>"$LOGS/$name.log"
	setsid env -i PATH="$PATH" HOME="${HOME:-/tmp}" "${vars[@]}" "$@" \
		</dev/null >>"$LOGS/$name.log" 2>&1 9<&- &
	echo $! >"$(pidfile "$name")"
}

# stop NAME... sends SIGTERM to each running process, waits up to 10s for
# all of them, then SIGKILLs what is left.
stop() {
	local name pid pids=()
	for name in "$@"; do
		if pid="$(pid_of "$name")"; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	local deadline=$(($(now_ms) + 10000))
	for pid in "${pids[@]}"; do
		while running "$pid" && (($(now_ms) < deadline)); do sleep 0.1; done
		if running "$pid"; then
			log "pid $pid ignored SIGTERM for 10s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for name in "$@"; do rm -f "$(pidfile "$name")"; done
}

start_orderer() {
	spawn orderer \
		FABRIC_CFG_PATH="$CFG" \
		FABRIC_LOGGING_SPEC=INFO \
		ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 \
		ORDERER_GENERAL_LISTENPORT=7050 \
		ORDERER_GENERAL_LOCALMSPID=OrdererMSP \
		ORDERER_GENERAL_LOCALMSPDIR="$ORDERER_NODE_DIR/msp" \
		ORDERER_GENERAL_TLS_ENABLED=true \
		ORDERER_GENERAL_TLS_PRIVATEKEY="$ORDERER_NODE_DIR/tls/server.key" \
		ORDERER_GENERAL_TLS_CERTIFICATE="$ORDERER_NODE_DIR/tls/server.crt" \
		ORDERER_GENERAL_TLS_ROOTCAS="[$ORDERER_NODE_DIR/tls/ca.crt]" \
		ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE="$ORDERER_NODE_DIR/tls/server.crt" \
		ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY="$ORDERER_NODE_DIR/tls/server.key" \
		ORDERER_GENERAL_CLUSTER_ROOTCAS="[$ORDERER_NODE_DIR/tls/ca.crt]" \
		ORDERER_GENERAL_BOOTSTRAPMETHOD=none \
		ORDERER_CHANNELPARTICIPATION_ENABLED=true \
		ORDERER_FILELEDGER_LOCATION="$DATA/orderer/ledger" \
		ORDERER_CONSENSUS_WALDIR="$DATA/orderer/etcdraft/wal" \
		ORDERER_CONSENSUS_SNAPDIR="$DATA/orderer/etcdraft/snapshot" \
		ORDERER_OPERATIONS_LISTENADDRESS="$ORDERER_OPS" \
		ORDERER_METRICS_PROVIDER=prometheus \
		ORDERER_ADMIN_LISTENADDRESS="$ORDERER_ADMIN" \
		ORDERER_ADMIN_TLS_ENABLED=true \
		ORDERER_ADMIN_TLS_PRIVATEKEY="$ORDERER_NODE_DIR/tls/server.key" \
		ORDERER_ADMIN_TLS_CERTIFICATE="$ORDERER_NODE_DIR/tls/server.crt" \
		ORDERER_ADMIN_TLS_ROOTCAS="[$ORDERER_NODE_DIR/tls/ca.crt]" \
		ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED=true \
		ORDERER_ADMIN_TLS_CLIENTROOTCAS="[$ORDERER_NODE_DIR/tls/ca.crt]" \
		-- "$BIN/orderer"
}

start_peer() {
	local org=$1 port dir
	port="$(org_port "$org")"
	dir="$(peer_dir "$org")"
	spawn "peer-$org" \
		FABRIC_CFG_PATH="$CFG" \
		FABRIC_LOGGING_SPEC=INFO \
		CORE_PEER_ID="peer0.$(org_domain "$org")" \
		CORE_PEER_ADDRESS="127.0.0.1:$port" \
		CORE_PEER_LISTENADDRESS="127.0.0.1:$port" \
		CORE_PEER_CHAINCODEADDRESS="127.0.0.1:$((port + 1))" \
		CORE_PEER_CHAINCODELISTENADDRESS="127.0.0.1:$((port + 1))" \
		CORE_PEER_GOSSIP_BOOTSTRAP="127.0.0.1:$port" \
		CORE_PEER_GOSSIP_EXTERNALENDPOINT="127.0.0.1:$port" \
		CORE_PEER_GOSSIP_RECONNECTINTERVAL=5s \
		CORE_PEER_LOCALMSPID="$(org_msp "$org")" \
		CORE_PEER_MSPCONFIGPATH="$dir/msp" \
		CORE_PEER_TLS_ENABLED=true \
		CORE_PEER_TLS_CERT_FILE="$dir/tls/server.crt" \
		CORE_PEER_TLS_KEY_FILE="$dir/tls/server.key" \
		CORE_PEER_TLS_ROOTCERT_FILE="$dir/tls/ca.crt" \
		CORE_PEER_FILESYSTEMPATH="$DATA/$org" \
		CORE_LEDGER_SNAPSHOTS_ROOTDIR="$DATA/$org/snapshots" \
		CORE_LEDGER_STATE_STATEDATABASE=goleveldb \
		CORE_OPERATIONS_LISTENADDRESS="$(org_ops "$org")" \
		CORE_METRICS_PROVIDER=prometheus \
		-- "$BIN/peer" node start
}

start_chaincode() {
	sha256sum <"$BIN/medshare-chaincode" >"$RUN/chaincode.sha256"
	spawn chaincode \
		CHAINCODE_ID="$(cat "$CCDIR/package_id")" \
		CHAINCODE_SERVER_ADDRESS="$CC_ADDRESS" \
		-- "$BIN/medshare-chaincode"
}

# peer_cli ORG ARGS... runs the peer CLI as ORG's admin against ORG's peer.
peer_cli() {
	local org=$1
	shift
	env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
		FABRIC_CFG_PATH="$CFG" \
		FABRIC_LOGGING_SPEC=WARNING \
		CORE_PEER_LOCALMSPID="$(org_msp "$org")" \
		CORE_PEER_MSPCONFIGPATH="$(admin_msp "$org")" \
		CORE_PEER_ADDRESS="$(peer_addr "$org")" \
		CORE_PEER_TLS_ENABLED=true \
		CORE_PEER_TLS_ROOTCERT_FILE="$(peer_tls_ca "$org")" \
		"$BIN/peer" "$@" 9<&-
}

# ---------------------------------------------------------------------------
# Readiness gates (docs/FABRIC.md, step 7).

healthz() { curl -fsS --max-time 2 "http://$1/healthz" >/dev/null; }

# metric ADDR NAME prints the value of a metric with label channel="medshare".
metric() {
	curl -fsS --max-time 2 "http://$1/metrics" |
		awk -v m="$2{channel=\"$CHANNEL\"}" '$1 == m { print $2; found=1 } END { exit !found }'
}

orderer_leader() { [ "$(metric "$ORDERER_OPS" consensus_etcdraft_is_leader)" = 1 ]; }

peer_gossip() {
	local n
	n="$(metric "$(org_ops "$1")" gossip_membership_total_peers_known)" || return 1
	awk -v n="$n" 'BEGIN { exit !(n >= 1) }'
}

chaincode_listening() { (exec 3<>"/dev/tcp/${CC_ADDRESS%:*}/${CC_ADDRESS#*:}") 2>/dev/null; }

# peer_answers ORG: the chaincode answers a query on ORG's peer.
peer_answers() {
	peer_cli "$1" chaincode query -C "$CHANNEL" -n "$CC_NAME" -c '{"Args":["ListOrgs","{}"]}'
}

# peer_ready ORG: ORG's peer is up, knows the other org's peer and serves
# the chaincode.
peer_ready() { healthz "$(org_ops "$1")" && peer_gossip "$1" && peer_answers "$1"; }

# fingerprint identifies the committed configuration a network was built
# from; a network built from another one is rebuilt rather than reused.
fingerprint() {
	cat "$NET_DIR"/config/* "$NET_DIR"/builder/bin/* | sha256sum | cut -c1-16
}

# complete: a previous bring-up finished, from the current configuration.
complete() { [ "$(cat "$STATE/ready" 2>/dev/null)" = "$(fingerprint)" ]; }

# healthy: the network is complete and every process and gate is fine. Quick
# (no chaincode round trip) because reuse checks run on every `up`.
healthy() {
	complete || return 1
	local p
	for p in orderer peer-hospital peer-insurer chaincode; do alive "$p" || return 1; done
	healthz "$ORDERER_OPS" && orderer_leader && chaincode_listening || return 1
	for p in "${ORGS[@]}"; do
		healthz "$(org_ops "$p")" && peer_gossip "$p" || return 1
	done
}

# ---------------------------------------------------------------------------
# Build steps.

# ensure_bins builds the Fabric binaries when missing and the chaincode and
# lowscheck binaries always (a no-op when up to date).
ensure_bins() {
	mkdir -p "$BIN"
	local missing=() b
	for b in peer orderer configtxgen cryptogen osnadmin; do
		[ -x "$BIN/$b" ] || missing+=("github.com/hyperledger/fabric/cmd/$b")
	done
	if ((${#missing[@]})); then
		log "building Fabric $FABRIC_VERSION binaries (cold: 1-2 min)"
		(cd "$NET_DIR/tools" && go build \
			-ldflags "-X github.com/hyperledger/fabric/common/metadata.Version=$FABRIC_VERSION" \
			-o "$BIN/" "${missing[@]}") || die "building Fabric binaries failed"
	fi
	(cd "$REPO_DIR/cmd/medshare-chaincode" && go build -o "$BIN/medshare-chaincode" .) ||
		die "building the chaincode failed; if go.mod needs updates (the main module's requirements changed), run: (cd cmd/medshare-chaincode && go mod tidy)"
	(cd "$REPO_DIR" && go build -o "$BIN/lowscheck" ./integrations/fabric/network/cmd/lowscheck) ||
		die "building lowscheck failed"
}

# gen_crypto runs cryptogen until every org's CA certificates are low-S,
# keeping each org as soon as it passes (orgs are independent).
gen_crypto() {
	local orgs=(ordererOrganizations/medshare.test peerOrganizations/hospital.medshare.test peerOrganizations/insurer.medshare.test)
	local tmp="$STATE/crypto.tmp" attempt o ok
	rm -rf "$CRYPTO"
	for attempt in $(seq 1 50); do
		rm -rf "$tmp"
		"$BIN/cryptogen" generate --config="$NET_DIR/config/crypto-config.yaml" --output="$tmp" >/dev/null
		ok=0
		for o in "${orgs[@]}"; do
			if [ ! -d "$CRYPTO/$o" ] && "$BIN/lowscheck" "$tmp/$o" >/dev/null; then
				mkdir -p "$(dirname "$CRYPTO/$o")"
				mv "$tmp/$o" "$CRYPTO/$o"
			fi
			[ -d "$CRYPTO/$o" ] && ok=$((ok + 1))
		done
		if ((ok == ${#orgs[@]})); then
			rm -rf "$tmp"
			log "crypto material generated (all CA certificates low-S after $attempt rounds)"
			return 0
		fi
	done
	die "cryptogen produced high-S CA certificates 50 times in a row"
}

# render_config writes the node configuration into $CFG.
render_config() {
	mkdir -p "$CFG"
	chmod +x "$NET_DIR"/builder/bin/*
	sed "s|@BUILDER_DIR@|$NET_DIR/builder|g" "$NET_DIR/config/core.yaml.tmpl" >"$CFG/core.yaml"
	cp "$NET_DIR/config/orderer.yaml" "$CFG/orderer.yaml"
	sed -e "s|@STATE@|$STATE|g" -e "s|@BATCH_TIMEOUT@|$BATCH_TIMEOUT|g" \
		"$NET_DIR/config/configtx.yaml.tmpl" >"$CFG/configtx.yaml"
}

# package_chaincode builds the CCaaS package and records its id.
package_chaincode() {
	local work="$CCDIR/pkg"
	rm -rf "$work"
	mkdir -p "$work/src"
	cp "$NET_DIR/config/connection.json" "$work/src/connection.json"
	printf '{"type":"ccaas","label":"%s"}\n' "$CC_LABEL" >"$work/metadata.json"
	tar -C "$work/src" -czf "$work/code.tar.gz" connection.json
	tar -C "$work" -czf "$CCDIR/$CC_NAME.tar.gz" metadata.json code.tar.gz
	peer_cli hospital lifecycle chaincode calculatepackageid "$CCDIR/$CC_NAME.tar.gz" >"$CCDIR/package_id"
	[ -s "$CCDIR/package_id" ] || die "could not compute the chaincode package id"
}

# both ORG-FUNCTION ARGS... runs a function for both orgs in parallel and
# fails if either fails.
both() {
	local fn=$1 pids=() org rc=0
	shift
	for org in "${ORGS[@]}"; do
		"$fn" "$org" "$@" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
	return "$rc"
}

join_peer() { peer_cli "$1" channel join -b "$STATE/channel/$CHANNEL.block" >/dev/null; }
install_cc() { peer_cli "$1" lifecycle chaincode install "$CCDIR/$CC_NAME.tar.gz" >/dev/null; }

approve_cc() {
	peer_cli "$1" lifecycle chaincode approveformyorg -o "$ORDERER_ADDR" --tls --cafile "$ORDERER_TLS_CA" \
		--channelID "$CHANNEL" --name "$CC_NAME" --version "$CC_VERSION" --sequence 1 \
		--package-id "$(cat "$CCDIR/package_id")" --waitForEventTimeout 30s
}

# commit_ready ORG: ORG's peer has seen both orgs' approvals.
commit_ready() {
	local out
	out="$(peer_cli "$1" lifecycle chaincode checkcommitreadiness --channelID "$CHANNEL" \
		--name "$CC_NAME" --version "$CC_VERSION" --sequence 1)" || return 1
	grep -q 'HospitalMSP: true' <<<"$out" && grep -q 'InsurerMSP: true' <<<"$out"
}

commit_cc() {
	peer_cli hospital lifecycle chaincode commit -o "$ORDERER_ADDR" --tls --cafile "$ORDERER_TLS_CA" \
		--channelID "$CHANNEL" --name "$CC_NAME" --version "$CC_VERSION" --sequence 1 \
		--peerAddresses "$(peer_addr hospital)" --tlsRootCertFiles "$(peer_tls_ca hospital)" \
		--peerAddresses "$(peer_addr insurer)" --tlsRootCertFiles "$(peer_tls_ca insurer)" \
		--waitForEventTimeout 30s
}

# check_ports fails if anything listens on the network's ports.
check_ports() {
	local port busy=()
	for port in 7050 7053 9443 7051 7052 9444 9051 9052 9445 9999; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy+=("$port"); fi
	done
	if ((${#busy[@]})); then
		die "ports ${busy[*]} are in use by processes this state dir does not track (see: ss -ltnp); stop them first"
	fi
}

# ---------------------------------------------------------------------------
# Bring-up.

# fresh_start builds a new network from nothing (keeping only bin/).
fresh_start() {
	stop chaincode peer-hospital peer-insurer orderer
	check_ports
	find "$STATE" -mindepth 1 -maxdepth 1 ! -name bin ! -name leases ! -name run -exec rm -rf {} +
	mkdir -p "$RUN" "$LOGS" "$DATA" "$CCDIR" "$STATE/channel"
	local t0
	t0=$(now_ms)
	gen_crypto
	render_config
	"$BIN/configtxgen" -configPath "$CFG" -profile MedshareChannel -channelID "$CHANNEL" \
		-outputBlock "$STATE/channel/$CHANNEL.block" >>"$LOGS/configtxgen.log" 2>&1 ||
		die "configtxgen failed (see $LOGS/configtxgen.log)"

	start_orderer
	for org in "${ORGS[@]}"; do start_peer "$org"; done
	wait_for "$WAIT" "orderer /healthz" healthz "$ORDERER_OPS" || die "orderer did not start (see $LOGS/orderer.log)"
	for org in "${ORGS[@]}"; do
		wait_for "$WAIT" "$org peer /healthz" healthz "$(org_ops "$org")" || die "$org peer did not start (see $LOGS/peer-$org.log)"
	done

	"$BIN/osnadmin" channel join --channelID "$CHANNEL" --config-block "$STATE/channel/$CHANNEL.block" \
		-o "$ORDERER_ADMIN" --ca-file "$ORDERER_TLS_CA" \
		--client-cert "$ORDERER_ORG_DIR/users/Admin@medshare.test/tls/client.crt" \
		--client-key "$ORDERER_ORG_DIR/users/Admin@medshare.test/tls/client.key" >>"$LOGS/osnadmin.log" 2>&1 ||
		die "osnadmin channel join failed (see $LOGS/osnadmin.log)"
	wait_for "$WAIT" "raft leader" orderer_leader || die "orderer elected no raft leader (see $LOGS/orderer.log)"
	both join_peer || die "peer channel join failed (see $LOGS/peer-*.log)"
	log "channel $CHANNEL up ($(($(now_ms) - t0)) ms)"

	package_chaincode
	start_chaincode
	wait_for "$WAIT" "chaincode server" chaincode_listening || die "chaincode did not start (see $LOGS/chaincode.log)"
	both install_cc || die "chaincode install failed (see $LOGS/peer-*.log)"
	both approve_cc >>"$LOGS/lifecycle.log" 2>&1 || die "chaincode approve failed (see $LOGS/lifecycle.log)"
	for org in "${ORGS[@]}"; do
		wait_for "$WAIT" "commit readiness on $org" commit_ready "$org" || die "approvals not visible on the $org peer"
	done
	commit_cc >>"$LOGS/lifecycle.log" 2>&1 || die "chaincode commit failed (see $LOGS/lifecycle.log)"
	log "chaincode $CC_NAME committed ($(($(now_ms) - t0)) ms)"

	for org in "${ORGS[@]}"; do
		wait_for "$WAIT" "$org peer readiness" peer_ready "$org" || die "$org peer not ready (see $LOGS/peer-$org.log)"
	done
	# Client files: the SDK profile, and what network.Ensure returns to tests.
	sed "s|@STATE@|$STATE|g" "$NET_DIR/config/connection-profile.yaml.tmpl" >"$STATE/connection-profile.yaml"
	sed "s|@STATE@|$STATE|g" "$NET_DIR/config/network.json.tmpl" >"$STATE/network.json"
	fingerprint >"$STATE/ready"
	log "network ready ($(($(now_ms) - t0)) ms)"
}

# restart brings a complete network whose processes stopped back up with its
# ledgers; it fails (and up falls back to a fresh start) if the gates don't
# pass in time.
restart() {
	log "restarting stopped processes, keeping ledgers"
	alive orderer || start_orderer
	alive chaincode || start_chaincode
	for org in "${ORGS[@]}"; do alive "peer-$org" || start_peer "$org"; done
	wait_for "$WAIT" "orderer /healthz" healthz "$ORDERER_OPS" &&
		wait_for "$WAIT" "raft leader" orderer_leader &&
		wait_for "$WAIT" "chaincode server" chaincode_listening || return 1
	for org in "${ORGS[@]}"; do
		wait_for "$WAIT" "$org peer readiness" peer_ready "$org" || return 1
	done
}

# refresh_chaincode restarts the chaincode process if its binary was rebuilt
# since it started (the package id does not change: CCaaS).
refresh_chaincode() {
	alive chaincode || return 0
	if [ "$(sha256sum <"$BIN/medshare-chaincode")" != "$(cat "$RUN/chaincode.sha256" 2>/dev/null)" ]; then
		log "chaincode binary changed; restarting the chaincode process"
		stop chaincode
		start_chaincode
		wait_for "$WAIT" "chaincode server" chaincode_listening || die "chaincode did not restart (see $LOGS/chaincode.log)"
	fi
}

cmd_up() {
	local lease=""
	if [ "${1:-}" = "--lease" ]; then
		lease="${2:?--lease needs a process id}"
		kill -0 "$lease" 2>/dev/null || die "--lease $lease: no such process"
	fi
	command -v curl >/dev/null || die "curl is required"
	command -v go >/dev/null || die "go is required to build the binaries"
	lock
	local t0 result
	t0=$(now_ms)
	ensure_bins
	if healthy; then
		refresh_chaincode
		result=reused
	else
		if ! complete || ! restart; then
			complete && log "restart failed; starting a fresh network"
			fresh_start
		fi
		result=started
		if [ -n "$lease" ]; then touch "$STATE/started-by-lease"; fi
	fi
	if [ -z "$lease" ]; then
		rm -f "$STATE/started-by-lease" # adopted: stays up until down
	else
		leases_held || true # prunes
		mkdir -p "$STATE/leases"
		echo "$lease $(proc_start "$lease")" >"$STATE/leases/$lease"
		if [ -f "$STATE/started-by-lease" ] && ! alive reaper; then
			spawn reaper -- bash "$NET_DIR/network.sh" reap
		fi
	fi
	log "$result in $(($(now_ms) - t0)) ms"
	echo "$result"
}

# proc_start PID prints the start time of process PID (clock ticks since
# boot), which tells a process from a later one that reuses its PID.
proc_start() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	local fields
	read -ra fields <<<"${stat##*) }"
	echo "${fields[19]}"
}

# leases_held prunes leases whose process is gone and reports whether any
# remain.
leases_held() {
	local f pid start held=1
	for f in "$STATE"/leases/*; do
		[ -f "$f" ] || continue
		read -r pid start <"$f" || true
		if [ "$(proc_start "$pid" || true)" = "$start" ]; then held=0; else rm -f "$f"; fi
	done
	return "$held"
}

# cmd_reap runs detached while a lease-started network is up, and takes the
# network down once no leasing process is left.
cmd_reap() {
	while sleep 1; do
		[ -f "$STATE/started-by-lease" ] || exit 0
		leases_held && continue
		lock
		if [ -f "$STATE/started-by-lease" ] && ! leases_held; then
			log "no test process holds the network any more; taking it down"
			down
		fi
		exit 0
	done
}

down() {
	stop chaincode peer-hospital peer-insurer orderer
	rm -rf "$STATE/leases" "$STATE/started-by-lease"
}

cmd_down() {
	lock
	down
	log "down"
}

cmd_clean() {
	lock
	down
	rm -rf "$STATE"
	log "state removed"
}

cmd_env() {
	[ -f "$STATE/network.json" ] || die "no network state in $STATE: run 'make fabric-up' first"
	printf 'export %s=%q\n' \
		MEDSHARE_LEDGER fabric \
		MEDSHARE_FABRIC_CONFIG "$STATE/connection-profile.yaml" \
		MEDSHARE_FABRIC_CHANNEL "$CHANNEL" \
		MEDSHARE_FABRIC_CHAINCODE "$CC_NAME" \
		MEDSHARE_FABRIC_MSPID HospitalMSP \
		MEDSHARE_FABRIC_CERT "$(user_cert)" \
		MEDSHARE_FABRIC_KEY "$(user_key)" \
		MEDSHARE_FABRIC_ORG hospital
}

cmd_status() {
	local p pid ok=0
	for p in orderer peer-hospital peer-insurer chaincode; do
		if pid="$(pid_of "$p")"; then echo "$p: running (pid $pid)"; else echo "$p: stopped"; fi
	done
	orderer_leader 2>/dev/null && echo "orderer: raft leader" || echo "orderer: no raft leader"
	for p in "${ORGS[@]}"; do
		peer_gossip "$p" 2>/dev/null && echo "peer-$p: knows its channel peers" || echo "peer-$p: gossip not ready"
	done
	healthy || ok=1
	[ "$ok" = 0 ] && echo "network: ready" || echo "network: not ready"
	return "$ok"
}

cmd_stop_peer() {
	local org="${1:?stop-peer needs an org}"
	org_msp "$org" >/dev/null
	lock
	stop "peer-$org"
	log "$org peer stopped"
}

cmd_start_peer() {
	local org="${1:?start-peer needs an org}"
	org_msp "$org" >/dev/null
	lock
	complete || die "no complete network to start a peer in: run 'up' first"
	alive "peer-$org" || start_peer "$org"
	wait_for "$WAIT" "$org peer readiness" peer_ready "$org" || die "$org peer not ready (see $LOGS/peer-$org.log)"
	log "$org peer ready"
}

main() {
	local cmd="${1:-}"
	shift || true
	case "$cmd" in
	up) cmd_up "$@" ;;
	reap) cmd_reap ;;
	down) cmd_down ;;
	clean) cmd_clean ;;
	env) cmd_env ;;
	status) cmd_status ;;
	stop-peer) cmd_stop_peer "$@" ;;
	start-peer) cmd_start_peer "$@" ;;
	*)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
}

main "$@"
