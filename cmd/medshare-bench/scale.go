package main

import (
	"context"
	"fmt"
	"time"
)

// scale builds nodes with cfg.records and cfg.scale records, seeded alike,
// and compares their reads; memory then measures both.
func (b *bench) scale(ctx context.Context) error {
	small, err := b.build(ctx, "node-scale-small", b.cfg.records, nodeOpts{})
	if err != nil {
		return err
	}
	start := time.Now()
	big, err := b.build(ctx, "node-scale-big", b.cfg.scale, nodeOpts{})
	if err != nil {
		return err
	}
	b.scaled = [2]*seeded{small, big}
	b.rep.note("The %d-record node was seeded through the API in %v (uploads at %s, c=16, on %s), then copied to %s.",
		b.cfg.scale, time.Since(start).Round(time.Second), fmtRate(big.SeedRate), b.cfg.seedRoot, b.cfg.dir)
	r, err := interleave(ctx, b.cfg,
		plain("small c32", 32, readOp(small, small.reader(), 200)),
		plain("big c32", 32, readOp(big, big.reader(), 200)),
		plain("small c1", 1, readOp(small, small.reader(), 200)),
		plain("big c1", 1, readOp(big, big.reader(), 200)),
	)
	if err != nil {
		return err
	}
	x := r.ratio("big c32", "small c32")
	b.tg.fetchScale.set(x, fmtRatio(x))
	k := func(n int) string { return fmt.Sprintf("%dk", n/1000) }
	b.rep.add(fmt.Sprintf("fetch at %s records vs %s, c=32 (random records)", k(b.cfg.scale), k(b.cfg.records)), fmtRatio(x),
		fmt.Sprintf("%s records: %s", k(b.cfg.records), fmtRate(r.rate("small c32"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("big c32")), fmtDur(r.p50("big c32"))), b.tg.fetchScale)
	b.rep.add(fmt.Sprintf("fetch at %s records vs %s, c=1", k(b.cfg.scale), k(b.cfg.records)), fmtRatio(r.ratio("big c1", "small c1")),
		fmt.Sprintf("%s records: %s", k(b.cfg.records), fmtRate(r.rate("small c1"))),
		fmt.Sprintf("%s, p50 %s", fmtRate(r.rate("big c1")), fmtDur(r.p50("big c1"))), nil)
	return nil
}

// memory reads the scale nodes' resident memory after their read load,
// then restarts them in turn (reps times) to time start-up. Target 8a is
// the anonymous share (heap, stacks): file-backed pages, bbolt's mmap
// among them, are page cache the kernel reclaims under pressure and a
// cgroup charges whether they are mapped or not, so they are printed
// beside it but not held to it.
func (b *bench) memory(ctx context.Context) error {
	if b.scaled[0] == nil {
		return nil
	}
	nodes := b.scaled[:]
	loaded := make([]memory, len(nodes))
	for i, s := range nodes {
		m, err := s.mem()
		if err != nil {
			return err
		}
		loaded[i] = m
	}
	startup := make([][]float64, len(nodes))
	self := make([][]float64, len(nodes))
	fresh := make([][]memory, len(nodes))
	for range b.cfg.reps {
		for i, s := range nodes {
			if err := s.stop(); err != nil {
				return err
			}
			nd, err := startNode(ctx, s.bin, s.data, s.env)
			if err != nil {
				return err
			}
			s.node = nd
			m, err := s.mem()
			if err != nil {
				return err
			}
			startup[i] = append(startup[i], float64(nd.Startup))
			self[i] = append(self[i], float64(nd.SelfStartup))
			fresh[i] = append(fresh[i], m)
		}
	}
	medMem := func(ms []memory, f func(memory) int64) int64 {
		xs := make([]float64, len(ms))
		for i, m := range ms {
			xs[i] = float64(f(m))
		}
		return int64(median(xs))
	}
	for i := range nodes {
		n := b.cfg.records
		if i == 1 {
			n = b.cfg.scale
		}
		started := memory{
			RSS:  medMem(fresh[i], func(m memory) int64 { return m.RSS }),
			Anon: medMem(fresh[i], func(m memory) int64 { return m.Anon }),
		}
		up := time.Duration(median(startup[i]))
		rssRow, upRow := "—", "—"
		var rssT, upT *target
		if i == 1 {
			rssRow = "anon " + fmtRatio(float64(loaded[1].Anon)/float64(loaded[0].Anon)) + " of the small node"
			upRow = fmtRatio(median(startup[1])/median(startup[0])) + " of the small node"
			rssT = b.tg.anonRSS.set(float64(loaded[1].Anon)/1024, fmt.Sprintf("%s anon after load (RSS %s, file-backed %s%s)",
				fmtMiB(loaded[1].Anon), fmtMiB(loaded[1].RSS), fmtMiB(loaded[1].File), shmemNote(loaded[1])))
			upT = b.tg.startup.set(up.Seconds(), fmtDur(up))
		}
		b.rep.add(fmt.Sprintf("server RSS with %d records", n), rssRow, "—",
			fmt.Sprintf("after the read load: anon %s of RSS %s (file-backed %s%s; peak RSS %s); just after start-up: anon %s of RSS %s",
				fmtMiB(loaded[i].Anon), fmtMiB(loaded[i].RSS), fmtMiB(loaded[i].File), shmemNote(loaded[i]), fmtMiB(loaded[i].HWM),
				fmtMiB(started.Anon), fmtMiB(started.RSS)), rssT)
		b.rep.add(fmt.Sprintf("start-up with %d records (exec → /readyz 200, page cache warm)", n), upRow, "—",
			fmt.Sprintf("%s (node's own Open+Listen: %s)", fmtDur(up), fmtDur(time.Duration(median(self[i])))), upT)
	}
	return nil
}

// shmemNote is ", tmpfs-backed <n>" when m has mapped shared memory (the
// data dir on a tmpfs), which RssFile does not count; empty otherwise.
func shmemNote(m memory) string {
	if m.Shmem == 0 {
		return ""
	}
	return ", tmpfs-backed " + fmtMiB(m.Shmem)
}
