package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/persisting/persisting/core/engine"
)

// bucketConfig is the JSON the Python side passes to persisting_open.
type bucketConfig struct {
	StoragePath   string `json:"storage_path"`
	BucketID      int    `json:"bucket_id"`
	BatchSize     int64  `json:"batch_size"`
	MaxBufferRows int64  `json:"max_buffer_rows"`
}

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
	eng *engine.Engine
	efd int

	mu      sync.Mutex
	done    []completion
	failed  map[uint64]string // error text of failed tokens, taken once
	efdOpen bool
}

func openBucket(cfgJSON string) (*bucket, error) {
	var cfg bucketConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return nil, fmt.Errorf("%w: config: %v", engine.ErrInvalid, err)
	}
	if cfg.StoragePath == "" {
		return nil, fmt.Errorf("%w: storage_path is required", engine.ErrInvalid)
	}
	efd, err := newEventFD()
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	b := &bucket{efd: efd, efdOpen: true, failed: map[uint64]string{}}
	eng, err := engine.Open(engine.Config{
		Dir:           filepath.Clean(cfg.StoragePath),
		BucketID:      cfg.BucketID,
		BatchSize:     cfg.BatchSize,
		MaxBufferRows: cfg.MaxBufferRows,
		OnSpace:       b.signal,
	})
	if err != nil {
		syscall.Close(efd)
		return nil, err
	}
	b.eng = eng
	return b, nil
}

// complete queues a finished operation and wakes the loop.
func (b *bucket) complete(token uint64, first int64, err error) {
	c := completion{token: token, first: first}
	if err != nil {
		c.status, c.err = statusOf(err), err.Error()
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

func (b *bucket) takeError(token uint64) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg := b.failed[token]
	delete(b.failed, token)
	return msg
}

func (b *bucket) close() error {
	err := b.eng.Close()
	b.mu.Lock()
	if b.efdOpen {
		b.efdOpen = false
		syscall.Close(b.efd)
	}
	b.mu.Unlock()
	return err
}

func newEventFD() (int, error) {
	const efdCloexec, efdNonblock = 0x80000, 0x800
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
