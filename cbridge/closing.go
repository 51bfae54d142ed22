package main

/*
#include <stdint.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"time"

	"github.com/persisting/persisting/core/engine"
)

// Directories whose bucket is being closed in this process. A backend that
// was garbage-collected is closed in the background (its finalizer must not
// block), and a new backend on the same directory, in the same process,
// waits for that close instead of failing on the directory lock.
var (
	closingMu sync.Mutex
	closing   = map[string]chan struct{}{}
)

// closingWaitLimit bounds the wait of an open behind a close: a close is a
// flush, and past this the open goes on and reports the lock as held.
const closingWaitLimit = 2 * time.Minute

func closingStart(dir string) {
	closingMu.Lock()
	defer closingMu.Unlock()
	if _, ok := closing[dir]; !ok {
		closing[dir] = make(chan struct{})
	}
}

func closingDone(dir string) {
	closingMu.Lock()
	defer closingMu.Unlock()
	if ch, ok := closing[dir]; ok {
		close(ch)
		delete(closing, dir)
	}
}

// closingWaiter returns a function that waits for the close of dir in
// progress in this process, or nil when there is none.
func closingWaiter(dir string) func() {
	closingMu.Lock()
	ch, ok := closing[dir]
	closingMu.Unlock()
	if !ok {
		return nil
	}
	return func() {
		select {
		case <-ch:
		case <-time.After(closingWaitLimit):
		}
	}
}

// survive is deferred first in every goroutine the bridge starts: a panic
// there would kill the host process, so it is recovered and poisons the
// library as a panic in an export does.
func survive(what string) {
	if r := recover(); r != nil {
		reason := fmt.Sprintf("persisting: internal error in %s (library poisoned, restart the process): %v", what, r)
		if poisoned.CompareAndSwap(nil, &reason) {
			fmt.Fprintf(os.Stderr, "%s\n%s", reason, debug.Stack())
		}
	}
}

// persisting_close_async begins closing a bucket without blocking: new
// appends are refused, queued ones are committed, the buffer is flushed and
// the directory released, and then a completion with token follows (its
// status is the close's). Completions of the appends the close finished come
// before it. The handle stays valid until persisting_close releases it.
//
//export persisting_close_async
func persisting_close_async(h C.uintptr_t, token C.uint64_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	b, err := lookupForToken(h, token)
	if err != nil {
		return fail(errOut, err)
	}
	b.markClosing()
	tok := uint64(token)
	go func() {
		defer survive("close")
		err := b.shutdown()
		b.complete(tok, 0, err)
	}()
	return stPending
}

// persisting_close_detached releases a handle at once and closes its
// bucket in the background, for finalizers, which must never block. An
// open of the same directory in this process waits for that close.
//
//export persisting_close_detached
func persisting_close_detached(h C.uintptr_t) (rc C.int32_t) {
	defer guard(&rc, nil)
	v, ok := live.LoadAndDelete(cgo.Handle(h))
	if !ok {
		return stOK
	}
	cgo.Handle(h).Delete()
	b := v.(*bucket)
	b.markClosing()
	go func() {
		defer survive("close")
		_ = b.shutdown() // nobody is left to tell; acknowledged rows are in the WAL or the dataset
		b.release()
	}()
	return stOK
}

// persisting_wait_ready blocks until the bucket's recovery has finished and
// writes the row count it recovered to *total, or returns its error. It
// blocks (for as long as replaying the log takes): callers that must not
// block wait for the completion with token 0 instead.
//
//export persisting_wait_ready
func persisting_wait_ready(h C.uintptr_t, total *C.int64_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if total == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	<-b.eng.Ready()
	if err := b.eng.ReadyErr(); err != nil {
		return fail(errOut, err)
	}
	*total = C.int64_t(b.eng.Recovered())
	return stOK
}
