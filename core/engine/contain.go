package engine

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// contain runs f, turning a panic into an error. It wraps the calls into the
// large layers below the engine (the Lance reader and writer, Arrow IPC)
// made from the engine's own goroutines, where no export's recover would
// catch a panic and the host process would die. It is used only where the
// engine holds no lock, so nothing stays locked after a panic; the layers
// keep their on-disk state consistent on their own (atomic commits).
func contain(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("persisting: internal error in %s (please report it): %v\n%s", what, r, debug.Stack())
		}
	}()
	return f()
}

// survive runs one step of an engine goroutine. A panic there would kill
// the host process (no export's recover sees it), so it is recovered: the
// bucket is marked broken (it refuses writes with the panic's message and
// Close still works) and everything waiting on the engine is completed
// with that error, so no caller waits forever. survive is used only around
// code that holds mu through deferred unlocks, so nothing stays locked.
func (e *Engine) survive(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			e.breakDown(fmt.Errorf("persisting: bucket %s: internal error in %s (the bucket refuses writes; reopen it, and please report this): %v\n%s",
				e.cfg.Dir, what, r, debug.Stack()))
		}
	}()
	f()
}

func (e *Engine) breakDown(err error) {
	e.mu.Lock()
	if e.broken == nil {
		e.broken = err
	}
	queue, inflight := e.queue, e.inflight
	e.queue, e.inflight, e.queued = nil, nil, 0
	waiters := append(e.waiters, e.afterRelease...)
	e.waiters, e.afterRelease = nil, nil
	e.mu.Unlock()
	for _, q := range append(inflight, queue...) {
		q.done(0, err)
	}
	for _, w := range waiters {
		w.done(err)
	}
	e.cfg.OnSpace() // wake producers waiting on backpressure: they get err now
}

// once makes an append's completion callable any number of times, acting
// on the first: after a recovered panic the same append may be completed
// from two places.
func once(done func(int64, error)) func(int64, error) {
	var o sync.Once
	return func(first int64, err error) {
		o.Do(func() { done(first, err) })
	}
}
