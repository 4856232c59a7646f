package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// target is one target of issue 5 and what this run measured for it.
type target struct {
	id, text string
	goal     float64
	atLeast  bool // met when value >= goal; otherwise when value <= goal
	measured bool
	value    float64
	figure   string // value as shown
	// gate marks a c=1 ratio: `make bench-quick` fails when it falls below
	// goal by more than the noise margin.
	gate bool
	note string
}

// met reports whether a measured target holds.
func (t *target) met() bool {
	if t.atLeast {
		return t.value >= t.goal
	}
	return t.value <= t.goal
}

func (t *target) status() string {
	switch {
	case !t.measured:
		return "not measured"
	case t.met():
		return "**met**"
	default:
		return "**missed**"
	}
}

// row is one line of the table: a scenario's headline ratio against its
// same-run baseline, the absolute figures beside it, and the target it
// answers, if any.
type row struct {
	scenario, headline, baseline, absolute string
	target                                 *target
}

// report collects rows and targets in the order they were measured.
type report struct {
	cfg     *config
	started time.Time
	rows    []row
	targets []*target
	notes   []string
	// recordSize is the mean size of a generated record, in bytes.
	recordSize int
}

// add appends a row.
func (r *report) add(scenario, headline, baseline, absolute string, t *target) {
	r.rows = append(r.rows, row{scenario, headline, baseline, absolute, t})
}

// note appends a remark printed under the table.
func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// gateFailures lists the gated targets below goal by more than margin.
func (r *report) gateFailures(margin float64) []string {
	var out []string
	for _, t := range r.targets {
		if t.gate && t.measured && t.value < t.goal*(1-margin) {
			out = append(out, fmt.Sprintf("target %s: %s = %.3f, below %.2f × (1 − %.2f) = %.3f",
				t.id, t.text, t.value, t.goal, margin, t.goal*(1-margin)))
		}
	}
	return out
}

// write renders the report as markdown.
func (r *report) write(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	mode := "full"
	if r.cfg.quick {
		mode = "quick"
	}
	p("# medshare performance\n\n")
	p("Measured by `%s` (%s set) on %s, %s.\n\n", r.cfg.command, mode, r.started.UTC().Format("2006-01-02 15:04 MST"), machine())
	p("Every headline figure is a ratio against a baseline measured in the same run, phases interleaved ")
	p("(A B A B …), median of %d repetitions of %v each after a discarded warm-up; absolute figures are ", r.cfg.reps, r.cfg.phase)
	p("for context only. Baselines are served by the harness over net/http (medshare serves over Fiber/fasthttp) ")
	p("from its own bbolt store on the same disk: **(a)** bare read = store lookup by id + AES-GCM open; ")
	p("**(b)** durable floor = (a) + one fsync'd append of a 300-byte record. Records are FHIR Bundles of %d bytes ", r.recordSize)
	p("on average, built from the Synthea sample (testdata/synthea), ids varied per record. The load generator ")
	p("(Go net/http client, closed loop) runs on the same machine as the servers.\n\n")
	p("| scenario | headline (ratio) | baseline, same run | absolute (context) | target | status |\n")
	p("|---|---|---|---|---|---|\n")
	for _, x := range r.rows {
		tgt, st := "—", ""
		if x.target != nil {
			tgt, st = x.target.id+": "+x.target.text, x.target.status()
		}
		p("| %s | %s | %s | %s | %s | %s |\n", x.scenario, x.headline, x.baseline, x.absolute, tgt, st)
	}
	p("\n## Targets of issue 5\n\n")
	p("| # | target | measured | status | note |\n|---|---|---|---|---|\n")
	for _, t := range r.targets {
		fig := t.figure
		if !t.measured {
			fig = "—"
		}
		p("| %s | %s | %s | %s | %s |\n", t.id, t.text, fig, t.status(), t.note)
	}
	if len(r.notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range r.notes {
			p("- %s\n", n)
		}
	}
}

// machine describes the host: CPU model, cores, memory, kernel, Go.
func machine() string {
	model, mem, kernel := "unknown CPU", "", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if k, v, ok := strings.Cut(strings.SplitN(string(b), "\n", 2)[0], ":"); ok && k == "MemTotal" {
			var kib int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kib)
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kib)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s, nproc %d%s%s, %s", model, runtime.NumCPU(), mem, kernel, runtime.Version())
}

// Formatting helpers.

func fmtRate(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f/s", x)
	case x >= 10:
		return fmt.Sprintf("%.1f/s", x)
	}
	return fmt.Sprintf("%.2f/s", x)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// fmtRatio shows three significant digits, so a ratio just under its
// target does not print as the target.
func fmtRatio(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) + "×" }

func fmtMiB(kib int64) string { return fmt.Sprintf("%.0f MiB", float64(kib)/1024) }
