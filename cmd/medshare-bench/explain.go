package main

// whyMissed is what is known about each target's miss: the cause, found by
// profiling the server (perf record on bin/medshare under this harness's
// load; go tool pprof on the policy and jwt benchmarks), and what would
// reach the target. It is printed for the targets a run misses, so a fix
// that lands makes its note disappear.
var whyMissed = map[string]string{
	"1": "A read makes its access entry durable with one group-committed fdatasync of the access-log journal " +
		"(preallocated, so cheaper than the floor's append), then the rest is latency on the CPU path. Stage " +
		"timings inside Fetch at c=1 (an instrumented build under this harness): record load ~20 µs, consent " +
		"lookup ~45 µs, policy decision ~150-220 µs (cold caches: ~25-35 µs when the policy benchmark runs hot), " +
		"decrypt and hash check ~15 µs, journal ~500-850 µs. A miss means the policy path or HTTP grew, or the " +
		"machine was loaded: the noise note gives the spread of this run. A decision cache keyed by the whole " +
		"input (consent versions included) would take most of the policy's share.",
	"2a": "CPU-bound: server and load generator share 2 cores, and a fetch does several times the bare read's work. " +
		"CPU profile of the server at c=32 (go test -bench FetchParallel -cpuprofile; shares of all samples): HTTP " +
		"and middleware ~25 %, journal group commit ~9 % (fdatasync in the kernel), anchoring journaled entries in " +
		"ledger blocks ~11 %, consent lookup as a ledger query ~7 %, policy ~7 %, GC ~8 %. Half the bare read's " +
		"throughput would leave well under 100 µs of CPU per fetch for all of that.",
	"2b": "Group commit works (several entries per fdatasync at c=32), but 8 × c=1 would be over 10k fetches/s: " +
		"the CPU per fetch (see 2a) caps c=32 at a few thousand per second on 2 cores shared with the load generator.",
	"3a": "OPA's topdown evaluation of the read rule, after the rewrite (one else-chain by action, times as Unix " +
		"nanoseconds, cached input terms, a lower-level evaluator), costs ~23 µs on a quiet machine and ~35 µs on " +
		"a loaded one; the rest is the evaluator's own bookkeeping (unification, bindings, allocations). Going " +
		"further needs a compiled policy target (OPA's Wasm or IR planner) or a decision cache.",
	"3b": "The lookup reads the patient's consents from the 100k-consent ledger's bbolt mmap. The residency " +
		"trimmer (integrations/bolt/residency, which holds target 8a) drops the process's mappings whenever its " +
		"file-backed RSS passes 128 MiB, and this harness holds both ledgers in one process, so random lookups " +
		"fault their pages back in (64 KiB of fault-around each) after every trim. With the trimmer off " +
		"(localledger.Options.ResidencyBudget -1) the same comparison measured 1.08× on this machine. Reads by " +
		"pread instead of mmap, or a trimmer that drops only cold pages, would keep both targets.",
	"4a": "The residency trimmer again (see 3b): at 200k records random reads spread over files far larger than " +
		"its 128 MiB budget, so it drops the mappings every interval and each fetch faults its pages back in " +
		"(64 KiB of fault-around each). It is what holds target 8a: before it, this scenario measured 1.01× and " +
		"the node's RSS 1.6 GiB, almost all reclaimable page cache. The pages are in the page cache either way " +
		"(a cgroup is charged for them mapped or not), so the trimmer buys a smaller RSS figure at a large cost " +
		"in throughput; reads by pread into pooled buffers instead of mmap would give both.",
	"4b": "Listing should read only a page of the patient's index.",
	"5a": "A grant is a ledger block (one bbolt commit: two fdatasyncs, plus signing) and the consent's write to " +
		"the read path, and the first read one journal fdatasync: three to four fsyncs and the CPU of two " +
		"requests. On a disk whose fsync costs ~0.7 ms (the floor's p50 here) that is 4-5 ms; on one at ~0.3 ms " +
		"it measured 2.9 ms. A grant committed with one fsync (a journal in front of the ledger, as for access " +
		"entries) would reach it.",
	"5b": "An allowed read was sent after the revoke was acknowledged: a consistency bug.",
	"6":  "Encryption should cost little next to the fsync of the store write.",
	"7a": "A grant waits for the block cut (BatchTimeout) plus endorsement and commit.",
	"7b": "At c=32 the Fabric peers, orderer and chaincode compete for the same 2 cores as medshare and the load " +
		"generator; the outbox worker anchors entries in the background. Reads never wait for ordering (c=1 is at par).",
	"7c": "Batches of 500 entries cost ~0.5 s each (chaincode validation and indexing of every entry on each endorsing " +
		"peer, on 2 shared cores); the outbox worker sends one batch at a time. Several batches in flight, or a " +
		"cheaper per-entry contract path, would raise it.",
	"8a": "Mostly file-backed pages of bbolt's mmap. The residency trimmer (integrations/bolt/residency) drops " +
		"them from the process when file-backed RSS passes 128 MiB, checking every 250 ms; a read rate that maps " +
		"pages back faster than that overshoots between checks.",
	"8b": "Start-up should not scan the stores.",
}

// explain adds the notes of the targets this run missed.
func (r *report) explain() {
	for _, t := range r.targets {
		if t.measured && !t.met() && whyMissed[t.id] != "" {
			r.note("Target %s missed: %s", t.id, whyMissed[t.id])
		}
	}
}
