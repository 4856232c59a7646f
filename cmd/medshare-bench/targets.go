package main

// targets are the targets of issue 5, in its order. Scenarios fill in
// what they measure; the rest stay "not measured".
type targets struct {
	fetchC1, fetchC32, fetchScaleUp        *target
	policyP50, policyScale                 *target
	fetchScale, logScale                   *target
	grantRead, revoke                      *target
	upload                                 *target
	fabricGrant, fabricFetch, fabricAnchor *target
	anonRSS, startup                       *target
}

func newTargets(r *report) *targets {
	t := &targets{
		fetchC1:      &target{id: "1", text: "fetch c=1 ≥ 0.7 × durable floor (b)", goal: 0.7, atLeast: true, gate: true},
		fetchC32:     &target{id: "2a", text: "fetch c=32 ≥ 0.5 × bare read (a) at c=32", goal: 0.5, atLeast: true},
		fetchScaleUp: &target{id: "2b", text: "fetch c=32 ≥ 8 × fetch c=1", goal: 8, atLeast: true},
		policyP50:    &target{id: "3a", text: "policy decision p50 ≤ 25 µs", goal: 25},
		policyScale:  &target{id: "3b", text: "policy p50 at 100k consents / at 1k ≤ 1.3", goal: 1.3},
		fetchScale:   &target{id: "4a", text: "fetch at 200k records ≥ 0.8 × at 1k", goal: 0.8, atLeast: true},
		logScale:     &target{id: "4b", text: "access-log listing independent of log size (10k-entry patient ≥ 0.8 × 1k-entry patient)", goal: 0.8, atLeast: true},
		grantRead:    &target{id: "5a", text: "embedded grant → first allowed read p50 ≤ 3 ms", goal: 3},
		revoke:       &target{id: "5b", text: "allowed reads sent after a revoke is acknowledged = 0 (concurrent load)", goal: 0},
		upload:       &target{id: "6", text: "encrypted upload ≥ 0.9 × upload with encryption off", goal: 0.9, atLeast: true, gate: true},
		fabricGrant:  &target{id: "7a", text: "Fabric grant p50 ≤ BatchTimeout + 150 ms", goal: 1},
		fabricFetch:  &target{id: "7b", text: "fetch with Fabric ledger ≥ 0.8 × with embedded", goal: 0.8, atLeast: true},
		fabricAnchor: &target{id: "7c", text: "batched anchoring ≥ 20 × one-tx-per-entry entries/s", goal: 20, atLeast: true},
		anonRSS:      &target{id: "8a", text: "server anonymous RSS (heap, stacks) at 200k records after the read load ≤ 150 MiB", goal: 150},
		startup:      &target{id: "8b", text: "start-up with 200k records ≤ 2 s", goal: 2},
	}
	r.targets = []*target{
		t.fetchC1, t.fetchC32, t.fetchScaleUp, t.policyP50, t.policyScale, t.fetchScale, t.logScale,
		t.grantRead, t.revoke, t.upload, t.fabricGrant, t.fabricFetch, t.fabricAnchor, t.anonRSS, t.startup,
	}
	return t
}

// set records a measured value and how it is shown.
func (t *target) set(value float64, figure string) *target {
	t.measured, t.value, t.figure = true, value, figure
	return t
}
