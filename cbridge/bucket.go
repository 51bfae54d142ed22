package main

import (
	"fmt"
	"sync"
	"syscall"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/metrics"
)

// readyToken is the completion token of the end of recovery.
const readyToken = 0

// completion is one finished asynchronous operation, keyed by the token the
// caller chose.
type completion struct {
	token  uint64
	status int32
	first  int64
	err    string
}

// bucket is what a handle points at: an engine plus the completion queue the
// Python event loop drains. Go never calls into Python; it queues a
// completion and bumps the eventfd, and the loop polls.
type bucket struct {
	opts    engine.Options
	metrics *metrics.Bucket // nil unless enable_metrics
	eng     *engine.Engine
	sink    *engine.LanceSink // set during recovery
	efd     int

	closeOnce sync.Once
	markOnce  sync.Once
	closeErr  error

	mu      sync.Mutex
	done    []completion
	failed  map[uint64]string // error JSON of failed tokens, taken once
	results map[uint64]string // result JSON of tokens that have one, taken once
	efdOpen bool
}

func openBucket(cfgJSON string) (*bucket, error) {
	opts, err := engine.ParseOptions([]byte(cfgJSON))
	if err != nil {
		return nil, err
	}
	efd, err := newEventFD()
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	b := &bucket{efd: efd, efdOpen: true, failed: map[uint64]string{}, results: map[uint64]string{}, opts: opts}
	ecfg := opts.Config(func(s *engine.LanceSink) { b.sink = s })
	if wait := closingWaiter(opts.Dir()); wait != nil {
		ecfg.WaitBeforeLock = wait // the lock is taken in recovery, after it
	}
	ecfg.OnSpace = b.signal
	if opts.EnableMetrics {
		ecfg.Metrics = metrics.Default().Bucket(opts.Dir())
		b.metrics = ecfg.Metrics
	}
	eng, err := engine.Open(ecfg)
	if err != nil {
		ecfg.Metrics.Unregister()
		syscall.Close(efd)
		return nil, err
	}
	b.eng = eng
	go func() {
		defer survive("the end of recovery")
		<-eng.Ready()
		b.complete(readyToken, eng.Recovered(), eng.ReadyErr())
	}()
	return b, nil
}

// complete queues a finished operation and wakes the loop.
func (b *bucket) complete(token uint64, first int64, err error) {
	c := completion{token: token, first: first}
	if err != nil {
		c.status, c.err = statusOf(err), errorJSON(err)
	}
	b.mu.Lock()
	b.done = append(b.done, c)
	b.mu.Unlock()
	b.signal()
}

// signal bumps the eventfd; eventfd counters coalesce, so a burst of
// completions costs the loop one wake-up.
func (b *bucket) signal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.efdOpen {
		var one = [8]byte{1}
		_, _ = syscall.Write(b.efd, one[:])
	}
}

// poll moves up to len(tokens) completions out.
func (b *bucket) poll(tokens []uint64, status []int32, first []int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(tokens), len(b.done))
	for i, c := range b.done[:n] {
		tokens[i], status[i], first[i] = c.token, c.status, c.first
		if c.err != "" {
			b.failed[c.token] = c.err
		}
	}
	b.done = append(b.done[:0], b.done[n:]...)
	return n
}

func (b *bucket) keepResult(token uint64, js string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.results[token] = js
}

func (b *bucket) takeResult(token uint64) string { return b.takeOnce(b.results, token) }

func (b *bucket) takeError(token uint64) string { return b.takeOnce(b.failed, token) }

// takeOnce returns and forgets the text kept for token in m ("" if none).
func (b *bucket) takeOnce(m map[uint64]string, token uint64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := m[token]
	delete(m, token)
	return s
}

// shutdown closes the engine (blocking: it flushes) once; concurrent
// callers wait for the first. The eventfd stays open and completions stay
// queued for poll until release: the appends a close finishes must still
// reach the caller.
func (b *bucket) shutdown() error {
	b.closeOnce.Do(func() {
		b.markClosing()
		defer closingDone(b.opts.Dir())
		b.closeErr = b.eng.Close()
	})
	return b.closeErr
}

// markClosing records, before any close of b begins, that b's directory
// is being released, so that an open of the same directory in this process
// waits for it instead of failing with a lock error.
func (b *bucket) markClosing() {
	b.markOnce.Do(func() { closingStart(b.opts.Dir()) })
}

// release closes the eventfd; the handle is gone by then.
func (b *bucket) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.efdOpen {
		b.efdOpen = false
		syscall.Close(b.efd)
	}
}

func newEventFD() (int, error) {
	const efdCloexec, efdNonblock = 0x80000, 0x800
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
