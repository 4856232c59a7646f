package fabric

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// sdkLogLevel is the SDK's log level. It logs to standard output, and an
// invalid level makes it panic: the valid ones are CRITICAL, ERROR,
// WARNING, INFO and DEBUG.
const sdkLogLevel = "WARNING"

// peerConnectTimeout bounds a peer dial. The SDK's default (longer) turns
// the connection-cache race of docs/FABRIC.md into 5–22 s stalls.
const peerConnectTimeout = "3s"

// unusedCryptoPath is the placeholder cryptoPath of organizations whose
// profile entry has none; it can never exist as a directory.
const unusedCryptoPath = "/dev/null/{username}"

// defaultRetryOpts are the SDK's own retries of discovery and channel
// config queries when the profile names none.
var defaultRetryOpts = map[string]any{
	"attempts":       4,
	"initialBackoff": "500ms",
	"maxBackoff":     "5s",
	"backoffFactor":  2.0,
}

// profileInfo is what Open needs from the patched profile.
type profileInfo struct {
	org   string // client organization
	mspID string // its MSP id ("" if the profile names none)
}

// patchProfile applies the client fixes of docs/FABRIC.md to a connection profile
// (YAML or JSON), in memory, so they hold whatever the file says:
//
//   - channels.<ch>.orderers lists the profile's orderers when it is empty:
//     Fabric 2.x keeps orderer endpoints per org, fabric-sdk-go v1.0.0 reads
//     only this list ("orderers is nil" on submit otherwise);
//   - channels.<ch>.policies.discovery.maxTargets is 1, with retries
//     (default retryOpts where none are set), and client.peer.timeout.connection
//     is 3s: together they avoid the SDK's connection-cache race;
//   - channels.<ch>.peers lists every profile peer when the channel names
//     none, so discovery has somewhere to start;
//   - client.organization is org when org is set, and client.logging.level
//     is WARNING;
//   - an organization with neither cryptoPath nor users gets cryptoPath
//     unusedCryptoPath: the SDK refuses to start without one, though Open
//     hands it the identity and it never looks users up (profiles made by
//     Fabric's ccp templates have none).
//
// It fails when the profile has no orderer or no peer, or when org is not
// one of its organizations.
func patchProfile(raw []byte, channel, org string) ([]byte, profileInfo, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, profileInfo{}, fmt.Errorf("parse connection profile: %w", err)
	}
	if doc == nil {
		return nil, profileInfo{}, fmt.Errorf("connection profile is empty")
	}
	client := child(doc, "client")
	if org == "" {
		org, _ = client["organization"].(string)
	}
	if org == "" {
		return nil, profileInfo{}, fmt.Errorf("connection profile names no client organization and none was configured")
	}
	orgCfg, ok := child(doc, "organizations")[org].(map[string]any)
	if !ok {
		return nil, profileInfo{}, fmt.Errorf("connection profile has no organization %q", org)
	}
	client["organization"] = org
	for _, name := range keys(child(doc, "organizations")) {
		if o, ok := child(doc, "organizations")[name].(map[string]any); ok && isEmpty(o["cryptoPath"]) && isEmpty(o["users"]) {
			o["cryptoPath"] = unusedCryptoPath
		}
	}
	child(client, "logging")["level"] = sdkLogLevel
	child(child(client, "peer"), "timeout")["connection"] = peerConnectTimeout

	ch := child(child(doc, "channels"), channel)
	if isEmpty(ch["orderers"]) {
		names := keys(child(doc, "orderers"))
		if len(names) == 0 {
			return nil, profileInfo{}, fmt.Errorf("connection profile lists no orderers")
		}
		ch["orderers"] = names
	}
	if isEmpty(ch["peers"]) {
		names := keys(child(doc, "peers"))
		if len(names) == 0 {
			return nil, profileInfo{}, fmt.Errorf("connection profile lists no peers")
		}
		peers := map[string]any{}
		for _, n := range names {
			peers[n] = map[string]any{"endorsingPeer": true, "chaincodeQuery": true, "ledgerQuery": true, "eventSource": true}
		}
		ch["peers"] = peers
	}
	policies := child(ch, "policies")
	discovery := child(policies, "discovery")
	discovery["maxTargets"] = 1
	if isEmpty(discovery["retryOpts"]) {
		discovery["retryOpts"] = defaultRetryOpts
	}
	if qcc := child(policies, "queryChannelConfig"); isEmpty(qcc["retryOpts"]) {
		qcc["retryOpts"] = defaultRetryOpts
	}

	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, profileInfo{}, fmt.Errorf("encode connection profile: %w", err)
	}
	mspID, _ := orgCfg["mspid"].(string)
	return out, profileInfo{org: org, mspID: mspID}, nil
}

// child returns m[key] as a map, creating (or replacing a non-map value
// with) an empty one.
func child(m map[string]any, key string) map[string]any {
	if c, ok := m[key].(map[string]any); ok {
		return c
	}
	c := map[string]any{}
	m[key] = c
	return c
}

// keys returns m's keys in order, so the patched profile is deterministic.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// isEmpty reports whether a profile value is missing, null or an empty
// list or map.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	case string:
		return v == ""
	}
	return false
}
