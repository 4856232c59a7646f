package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// client sends requests with keep-alive connections, enough for c=32 and
// more, and no compression. Every phase, baseline or medshare, goes
// through the same client.
var client = &http.Client{
	Timeout: time.Minute,
	Transport: &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	},
}

// call is one HTTP request the harness sends.
type call struct {
	method, url, token string
	body               []byte
	header             []string // name, value pairs
}

// do sends c and returns the status and body.
func (c call) do(ctx context.Context) (int, []byte, error) {
	var rd io.Reader
	if c.body != nil {
		rd = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, rd)
	if err != nil {
		return 0, nil, err
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Set(c.header[i], c.header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// expect sends c and fails unless it answers want.
func (c call) expect(ctx context.Context, want int) ([]byte, error) {
	status, body, err := c.do(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.method, c.url, err)
	}
	if status != want {
		return body, fmt.Errorf("%s %s: got %d, want %d: %.300s", c.method, c.url, status, want, body)
	}
	return body, nil
}

// op is one operation of a load phase; worker and iter let it pick its
// target. It returns an error for any unexpected outcome.
type op func(ctx context.Context, worker, iter int) error

// timedOp is an op that measures its own latency (for operations whose
// interesting span is part of what they do, such as grant → first read).
type timedOp func(ctx context.Context, worker, iter int) (time.Duration, error)

// sample is one run of a phase: completed operations over the elapsed
// time, and each operation's latency.
type sample struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration
}

// rate is operations per second.
func (s sample) rate() float64 { return float64(s.ops) / s.elapsed.Seconds() }

// quantile returns the q-quantile of the latencies (q in [0,1]).
func (s sample) quantile(q float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// driveTimed runs fn on c workers in a closed loop for d (or until maxOps
// operations, when positive) and returns the sample. A positive duration fn
// returns is recorded as the operation's latency instead of its wall time.
// The first error stops the phase and is returned.
func driveTimed(ctx context.Context, c int, d time.Duration, maxOps int, fn timedOp) (sample, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		firstErr error
		issued   atomic.Int64
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				if maxOps > 0 && issued.Add(1) > int64(maxOps) {
					break
				}
				t := time.Now()
				own, err := fn(ctx, w, i)
				if err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					break
				}
				if own <= 0 {
					own = time.Since(t)
				}
				mine = append(mine, own)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	s := sample{ops: len(lat), elapsed: time.Since(start), lat: lat}
	if firstErr != nil {
		return s, firstErr
	}
	if s.ops == 0 {
		return s, fmt.Errorf("no operation completed in %v", d)
	}
	return s, nil
}
