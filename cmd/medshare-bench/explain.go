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
	"3b": "The lookup is a range of the patient's index in the ledger's state, read through bbolt's read-only " +
		"mmap, then a read of each of the patient's five consents: at 100k consents the tree may be a level " +
		"deeper and its pages are spread over a larger file, so more of them are touched for the first time " +
		"(a page fault, 64 KiB of fault-around, served from the page cache) before the working set is mapped. " +
		"This harness holds both ledgers in one process, so they share its caches and the machine's memory. A " +
		"CPU profile of the 100k phase (perf record on the harness) shows whether the difference is the range, " +
		"page faults or decoding.",
	"4a": "At 200k records the store's file is many times larger than at 1k, and random fetches spread over it: " +
		"each record's first read maps its pages in from the page cache through bbolt's mmap (a minor fault, " +
		"64 KiB of fault-around), or from the disk when the page cache does not hold the file. Those pages count " +
		"as the node's file-backed RSS (see 8a's row) but are page cache the kernel reclaims under pressure. A " +
		"miss points at faults (perf stat -e page-faults,major-faults on the node) or at a tree seek grown with " +
		"the file; reads by pread into pooled buffers instead of mmap would take faults out of the path.",
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
	"8a": "The target counts anonymous memory only (RssAnon: Go heap, goroutine stacks, runtime): the node's " +
		"file-backed RSS, printed beside it, is bbolt's mmap of the store and ledger files, page cache that the " +
		"kernel reclaims under pressure and that a cgroup charges whether it is mapped or not. Anonymous memory " +
		"that grows with the record count means something holds per-record state in the heap (an index, a cache " +
		"or a listing kept whole): a heap profile of the node after the read load (an instrumented build) " +
		"shows what.",
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
