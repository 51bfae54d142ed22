// Command cbridge is persisting's C ABI: a thin layer, built with
// -buildmode=c-shared, that turns C calls into engine calls. It holds no
// storage logic. Rules kept in every export:
//
//   - a panic is recovered, turned into an error, and poisons the library:
//     every later call fails with the stored reason, because Go-side state is
//     unknown after a panic;
//   - Go objects cross only as cgo.Handles, checked against the live set so a
//     stale handle is an error, not a crash;
//   - memory handed to the caller is C memory (C.CString, mallocator-backed
//     Arrow buffers), freed through persisting_free or the Arrow release
//     callbacks;
//   - calls made on the event-loop thread never wait on I/O.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include "persisting.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/cdata"
	"github.com/apache/arrow-go/v18/arrow/memory/mallocator"

	"github.com/persisting/persisting/core/engine"
)

func main() {}

var errReservedToken = fmt.Errorf("%w: token 0 is reserved for the end of recovery", engine.ErrInvalid)

// errPoisoned marks every error reported after a panic.
var errPoisoned = errors.New("library poisoned")

var (
	poisoned atomic.Pointer[string]
	live     sync.Map // cgo.Handle -> *bucket
	cmem     = mallocator.NewMallocator()
)

// guard recovers a panic into rc and *errOut and poisons the library.
func guard(rc *C.int32_t, errOut **C.char) {
	r := recover()
	if r == nil {
		return
	}
	reason := fmt.Sprintf("persisting: internal error (library poisoned, restart the process): %v", r)
	if poisoned.CompareAndSwap(nil, &reason) {
		fmt.Fprintf(os.Stderr, "%s\n%s", reason, debug.Stack())
	}
	*rc = stPoisoned
	setErr(errOut, errors.New(reason))
}

func setErr(errOut **C.char, err error) {
	if errOut != nil && err != nil {
		*errOut = C.CString(errorJSON(err))
	}
}

// fail reports err through errOut and returns its status.
func fail(errOut **C.char, err error) C.int32_t {
	setErr(errOut, err)
	return C.int32_t(statusOf(err))
}

func poisonErr() error {
	if p := poisoned.Load(); p != nil {
		return fmt.Errorf("%w: %s", errPoisoned, *p)
	}
	return nil
}

// lookup checks the poison flag and the handle.
func lookup(h C.uintptr_t) (*bucket, error) {
	if err := poisonErr(); err != nil {
		return nil, err
	}
	v, ok := live.Load(cgo.Handle(h))
	if !ok {
		return nil, fmt.Errorf("%w: unknown or closed handle", engine.ErrClosed)
	}
	return v.(*bucket), nil
}

// lookupForToken is lookup for the exports that complete a caller's token:
// token 0 is the end of recovery's.
func lookupForToken(h C.uintptr_t, token C.uint64_t) (*bucket, error) {
	b, err := lookup(h)
	if err == nil && token == readyToken {
		return nil, errReservedToken
	}
	return b, err
}

//export persisting_open
func persisting_open(cfg *C.char, out *C.uintptr_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if cfg == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL config or out-pointer", engine.ErrInvalid))
	}
	b, err := openBucket(C.GoString(cfg))
	if err != nil {
		return fail(errOut, err)
	}
	h := cgo.NewHandle(b)
	live.Store(h, b)
	*out = C.uintptr_t(h)
	return stOK
}

//export persisting_event_fd
func persisting_event_fd(h C.uintptr_t) (rc C.int32_t) {
	defer guard(&rc, nil)
	b, err := lookup(h)
	if err != nil {
		return C.int32_t(statusOf(err))
	}
	return C.int32_t(b.efd)
}

// persisting_append imports one Arrow record batch (a struct array and its
// schema), copies it and releases both structs before returning, whatever
// the outcome. On stOK the rows are readable and *first is the offset of the
// batch's first row; on stPending a completion with token follows once they
// are logged (and readable). token must not be 0, which the end of recovery
// uses.
//
//export persisting_append
func persisting_append(h C.uintptr_t, arr, sch unsafe.Pointer, token C.uint64_t, first *C.int64_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	carr, csch := cdata.ArrayFromPtr(uintptr(arr)), cdata.SchemaFromPtr(uintptr(sch))
	if arr == nil || sch == nil || first == nil {
		if arr != nil {
			cdata.ReleaseCArrowArray(carr)
		}
		if sch != nil {
			cdata.ReleaseCArrowSchema(csch)
		}
		return fail(errOut, fmt.Errorf("%w: NULL batch, schema or out-pointer", engine.ErrInvalid))
	}
	b, err := lookup(h)
	if err == nil && token == readyToken {
		err = errReservedToken
	}
	if err != nil {
		cdata.ReleaseCArrowArray(carr)
		cdata.ReleaseCArrowSchema(csch)
		return fail(errOut, err)
	}
	rec, err := cdata.ImportCRecordBatch(carr, csch)
	if err != nil {
		cdata.ReleaseCArrowArray(carr) // no-op when the import moved it
		return fail(errOut, fmt.Errorf("%w: import batch: %v", engine.ErrInvalid, err))
	}
	tok := uint64(token)
	off, pending, err := b.eng.Append(rec, func(first int64, err error) { b.complete(tok, first, err) })
	rec.Release() // the engine copied; this runs the producer's release now
	if err != nil {
		return fail(errOut, err)
	}
	if pending {
		return stPending
	}
	*first = C.int64_t(off)
	return stOK
}

// persisting_poll drains up to capacity completions into the three arrays and
// returns how many it wrote.
//
//export persisting_poll
func persisting_poll(h C.uintptr_t, tokens *C.uint64_t, status *C.int32_t, first *C.int64_t, capacity C.int32_t) (rc C.int32_t) {
	defer guard(&rc, nil)
	b, err := lookup(h)
	if err != nil {
		return C.int32_t(statusOf(err))
	}
	if capacity < 0 || (capacity > 0 && (tokens == nil || status == nil || first == nil)) {
		return stInvalid
	}
	n := int(capacity)
	return C.int32_t(b.poll(
		unsafe.Slice((*uint64)(unsafe.Pointer(tokens)), n),
		unsafe.Slice((*int32)(unsafe.Pointer(status)), n),
		unsafe.Slice((*int64)(unsafe.Pointer(first)), n),
	))
}

// persisting_take_error returns (and forgets) the message of a failed
// completion, or NULL. Free it with persisting_free.
//
//export persisting_take_error
func persisting_take_error(h C.uintptr_t, token C.uint64_t) (msg *C.char) {
	var rc C.int32_t
	defer guard(&rc, &msg)
	b, err := lookup(h)
	if err != nil {
		return C.CString(errorJSON(err))
	}
	if s := b.takeError(uint64(token)); s != "" {
		return C.CString(s)
	}
	return nil
}

// persisting_read exports rows [offset, offset+limit) as an ArrowArrayStream
// backed by C memory. With nonblock set it returns stWouldBlock instead of
// touching the disk, so the event loop can call it directly.
//
//export persisting_read
func persisting_read(h C.uintptr_t, offset, limit C.int64_t, nonblock C.int32_t, out unsafe.Pointer, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL stream out-pointer", engine.ErrInvalid))
	}
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	recs, sc, err := b.eng.Read(int64(offset), int64(limit), nonblock != 0)
	if err != nil {
		return fail(errOut, err)
	}
	return exportStream(recs, sc, out, errOut)
}

// exportStream copies recs (which it releases) into C memory and exports
// them as an ArrowArrayStream.
func exportStream(recs []arrow.RecordBatch, sc *arrow.Schema, out unsafe.Pointer, errOut **C.char) C.int32_t {
	if sc == nil {
		sc = arrow.NewSchema(nil, nil)
	}
	exported, err := toCMemory(recs, sc)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return fail(errOut, err)
	}
	rdr, err := array.NewRecordReader(sc, exported)
	for _, r := range exported {
		r.Release()
	}
	if err != nil {
		return fail(errOut, err)
	}
	cdata.ExportRecordReader(rdr, (*cdata.CArrowArrayStream)(out))
	rdr.Release()
	return stOK
}

// toCMemory copies recs into one malloc-backed batch: Python keeps exported
// buffers after the call returns, which Go memory must not be.
func toCMemory(recs []arrow.RecordBatch, sc *arrow.Schema) ([]arrow.RecordBatch, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	parts := make([]arrow.Array, len(recs))
	for i, r := range recs {
		parts[i] = array.RecordToStructArray(r)
	}
	cat, err := array.Concatenate(parts, cmem)
	for _, p := range parts {
		p.Release()
	}
	if err != nil {
		return nil, err
	}
	defer cat.Release()
	return []arrow.RecordBatch{array.RecordFromStructArray(cat.(*array.Struct), sc)}, nil
}

// persisting_flush starts persisting every visible row; a completion with
// token follows.
//
//export persisting_flush
func persisting_flush(h C.uintptr_t, token C.uint64_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	b, err := lookupForToken(h, token)
	if err != nil {
		return fail(errOut, err)
	}
	tok := uint64(token)
	b.eng.Flush(func(err error) { b.complete(tok, 0, err) })
	return stPending
}

type bucketStats struct {
	engine.Stats
	DatasetPath    string `json:"dataset_path"`
	DatasetVersion uint64 `json:"dataset_version"`
	Compression    string `json:"compression"`
	LancePageCodec string `json:"lance_page_codec"`
	// Metrics are the bucket's Prometheus samples (with enable_metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// persisting_stats writes the bucket's stats as JSON.
//
//export persisting_stats
func persisting_stats(h C.uintptr_t, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	st := bucketStats{Stats: b.eng.Stats(), LancePageCodec: engine.PageCodec(b.opts.Compression)}
	st.Compression = b.opts.Compression
	if st.Compression == "" {
		st.Compression = "none"
	}
	if b.sink != nil {
		st.DatasetPath = b.sink.Path()
		st.DatasetVersion = b.sink.Version()
	}
	if st.Metrics, err = b.metrics.Samples(); err != nil {
		return fail(errOut, err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		return fail(errOut, err)
	}
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	*out = C.CString(string(js))
	return stOK
}

// persisting_close flushes, releases the directory lock and invalidates the
// handle. It blocks: call it off the event loop.
//
//export persisting_close
func persisting_close(h C.uintptr_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	v, ok := live.LoadAndDelete(cgo.Handle(h))
	if !ok {
		return stOK // idempotent
	}
	cgo.Handle(h).Delete()
	b := v.(*bucket)
	err := b.shutdown()
	b.release()
	if err != nil {
		return fail(errOut, err)
	}
	return stOK
}

//export persisting_free
func persisting_free(p unsafe.Pointer) {
	C.free(p)
}
