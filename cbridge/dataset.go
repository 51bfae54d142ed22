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
	"runtime/cgo"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/filter"
	lance "github.com/persisting/persisting/core/lance/table"
	"github.com/persisting/persisting/core/reader"
	"github.com/persisting/persisting/core/vector"
)

// Readers: persisting_dataset_* open a dataset (one Lance dataset, a bucket
// directory, or a storage path of bucket_* directories) without any lock,
// beside a live writer in any process. Every export here reads the disk:
// call them off the event loop. Streams are produced batch by batch as the
// consumer pulls them, each batch copied to C memory.

var datasets sync.Map // cgo.Handle -> *reader.Reader

func lookupDataset(h C.uintptr_t) (*reader.Reader, error) {
	if err := poisonErr(); err != nil {
		return nil, err
	}
	v, ok := datasets.Load(cgo.Handle(h))
	if !ok {
		return nil, fmt.Errorf("%w: unknown or closed dataset handle", engine.ErrClosed)
	}
	return v.(*reader.Reader), nil
}

// readErr maps the reader's typed errors onto the bridge's statuses: a bad
// filter, column, version or query is INVALID (ValueError in Python), with
// the column in the error's field.
func readErr(err error) error {
	var fe *filter.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return &invalidField{field: fe.Column, err: err}
	case errors.Is(err, reader.ErrInvalid), errors.Is(err, vector.ErrInvalid):
		return fmt.Errorf("%w: %w", engine.ErrInvalid, err)
	}
	return err
}

// invalidField is an INVALID error naming a column.
type invalidField struct {
	field string
	err   error
}

func (e *invalidField) Error() string { return e.err.Error() }
func (e *invalidField) Unwrap() []error {
	return []error{e.err, engine.ErrInvalid}
}

//export persisting_dataset_open
func persisting_dataset_open(path *C.char, out *C.uintptr_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if path == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL path or out-pointer", engine.ErrInvalid))
	}
	r, err := reader.Open(C.GoString(path), lance.Options{})
	if err != nil {
		return fail(errOut, readErr(err))
	}
	h := cgo.NewHandle(r)
	datasets.Store(h, r)
	*out = C.uintptr_t(h)
	return stOK
}

//export persisting_dataset_close
func persisting_dataset_close(h C.uintptr_t) (rc C.int32_t) {
	defer guard(&rc, nil)
	if _, ok := datasets.LoadAndDelete(cgo.Handle(h)); ok {
		cgo.Handle(h).Delete()
	}
	return stOK
}

//export persisting_dataset_refresh
func persisting_dataset_refresh(h C.uintptr_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	if err := r.Refresh(); err != nil {
		return fail(errOut, readErr(err))
	}
	return stOK
}

// persisting_dataset_checkout moves the reader to older versions. spec is
// JSON: {"versions": {"<bucket>": <version>, ...}} (bucket -1 for a single
// dataset) or {"as_of_us": <unix microseconds>}.
//
//export persisting_dataset_checkout
func persisting_dataset_checkout(h C.uintptr_t, spec *C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	var s struct {
		Versions map[string]uint64 `json:"versions"`
		AsOfUs   *int64            `json:"as_of_us"`
	}
	if spec == nil {
		return fail(errOut, fmt.Errorf("%w: NULL checkout spec", engine.ErrInvalid))
	}
	if err := json.Unmarshal([]byte(C.GoString(spec)), &s); err != nil {
		return fail(errOut, fmt.Errorf("%w: checkout spec: %v", engine.ErrInvalid, err))
	}
	if s.AsOfUs != nil {
		err = r.CheckoutTime(time.UnixMicro(*s.AsOfUs))
	} else {
		vs := map[int]uint64{}
		for k, v := range s.Versions {
			b, perr := strconv.Atoi(k)
			if perr != nil {
				return fail(errOut, fmt.Errorf("%w: bucket %q is not a number", engine.ErrInvalid, k))
			}
			vs[b] = v
		}
		err = r.Checkout(vs)
	}
	if err != nil {
		return fail(errOut, readErr(err))
	}
	return stOK
}

// persisting_dataset_info writes the current view as JSON: {"parts":
// [{bucket, path, version, rows, fragments, indexed}]}.
//
//export persisting_dataset_info
func persisting_dataset_info(h C.uintptr_t, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	js, err := json.Marshal(map[string]any{"parts": r.View().Info()})
	if err != nil {
		return fail(errOut, err)
	}
	*out = C.CString(string(js))
	return stOK
}

// persisting_dataset_versions writes every retained version of every bucket
// as a JSON list of {bucket, version, timestamp_us, rows}.
//
//export persisting_dataset_versions
func persisting_dataset_versions(h C.uintptr_t, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	vs, err := r.Versions()
	if err != nil {
		return fail(errOut, readErr(err))
	}
	if vs == nil {
		vs = []reader.VersionInfo{}
	}
	js, err := json.Marshal(vs)
	if err != nil {
		return fail(errOut, err)
	}
	*out = C.CString(string(js))
	return stOK
}

type scanSpec struct {
	Columns   *[]string `json:"columns"`
	Filter    string    `json:"filter"`
	WithRowID bool      `json:"with_row_id"`
	BatchRows int64     `json:"batch_rows"`
}

// persisting_dataset_scan starts a scan and exports it as an
// ArrowArrayStream whose batches are read as the consumer pulls them.
// spec is JSON: {"columns": [...] | null, "filter": "...", "with_row_id":
// bool, "batch_rows": n}.
//
//export persisting_dataset_scan
func persisting_dataset_scan(h C.uintptr_t, spec *C.char, out unsafe.Pointer, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil || spec == nil {
		return fail(errOut, fmt.Errorf("%w: NULL spec or stream out-pointer", engine.ErrInvalid))
	}
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	var s scanSpec
	if err := json.Unmarshal([]byte(C.GoString(spec)), &s); err != nil {
		return fail(errOut, fmt.Errorf("%w: scan spec: %v", engine.ErrInvalid, err))
	}
	o := reader.ScanOptions{Filter: s.Filter, WithRowID: s.WithRowID, ChunkRows: s.BatchRows}
	if s.Columns != nil {
		o.Columns = *s.Columns
		if o.Columns == nil {
			o.Columns = []string{}
		}
	}
	sc, err := r.View().Scan(o)
	if err != nil {
		return fail(errOut, readErr(err))
	}
	rdr := &cStream{inner: sc}
	rdr.refs.Store(1)
	cdata.ExportRecordReader(rdr, (*cdata.CArrowArrayStream)(out))
	rdr.Release()
	return stOK
}

//export persisting_dataset_count
func persisting_dataset_count(h C.uintptr_t, expr *C.char, out *C.int64_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	f := ""
	if expr != nil {
		f = C.GoString(expr)
	}
	n, err := r.View().Count(f)
	if err != nil {
		return fail(errOut, readErr(err))
	}
	*out = C.int64_t(n)
	return stOK
}

type searchSpec struct {
	Column        string    `json:"column"`
	K             int       `json:"k"`
	Metric        string    `json:"metric"`
	Filter        string    `json:"filter"`
	Columns       *[]string `json:"columns"`
	SkipPersisted bool      `json:"skip_persisted"`
}

func parseSearch(spec *C.char, query *C.float, dim C.int64_t) (reader.SearchOptions, error) {
	var s searchSpec
	if spec == nil || (query == nil && dim > 0) || dim < 0 {
		return reader.SearchOptions{}, fmt.Errorf("%w: NULL spec or query", engine.ErrInvalid)
	}
	if err := json.Unmarshal([]byte(C.GoString(spec)), &s); err != nil {
		return reader.SearchOptions{}, fmt.Errorf("%w: search spec: %v", engine.ErrInvalid, err)
	}
	q := make([]float32, int(dim))
	if dim > 0 {
		copy(q, unsafe.Slice((*float32)(unsafe.Pointer(query)), int(dim)))
	}
	o := reader.SearchOptions{Column: s.Column, Query: q, K: s.K, Metric: s.Metric, Filter: s.Filter, SkipPersisted: s.SkipPersisted}
	if s.Columns != nil {
		o.Columns = *s.Columns
		if o.Columns == nil {
			o.Columns = []string{}
		}
	}
	return o, nil
}

// persisting_dataset_search runs an exact k-nearest-neighbour search over
// the current view and exports the result as a one-batch stream. spec is
// JSON: {"column", "k", "metric", "filter", "columns"}; query points at dim
// float32 values (copied before the call returns).
//
//export persisting_dataset_search
func persisting_dataset_search(h C.uintptr_t, spec *C.char, query *C.float, dim C.int64_t, out unsafe.Pointer, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL stream out-pointer", engine.ErrInvalid))
	}
	r, err := lookupDataset(h)
	if err != nil {
		return fail(errOut, err)
	}
	o, err := parseSearch(spec, query, dim)
	if err != nil {
		return fail(errOut, err)
	}
	return searchView(r.View(), o, out, errOut)
}

func searchView(v *reader.View, o reader.SearchOptions, out unsafe.Pointer, errOut **C.char) C.int32_t {
	rec, err := v.Search(o)
	if err != nil {
		return fail(errOut, readErr(err))
	}
	return exportStream([]arrow.RecordBatch{rec}, rec.Schema(), out, errOut)
}

// persisting_bucket_search searches a writer's bucket: the current dataset
// version and the buffered rows it does not hold yet (one consistent
// snapshot). *version is the dataset version searched (0 before the first
// flush), so a caller can search that same version through an index and
// merge (spec's "skip_persisted" then leaves the dataset out here).
//
//export persisting_bucket_search
func persisting_bucket_search(h C.uintptr_t, spec *C.char, query *C.float, dim C.int64_t, version *C.uint64_t, out unsafe.Pointer, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil || version == nil {
		return fail(errOut, fmt.Errorf("%w: NULL stream or version out-pointer", engine.ErrInvalid))
	}
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	o, err := parseSearch(spec, query, dim)
	if err != nil {
		return fail(errOut, err)
	}
	snap, err := b.eng.Snapshot()
	if err != nil {
		return fail(errOut, err)
	}
	defer snap.Release()
	var parts []reader.Part
	*version = 0
	if snap.Dataset != nil {
		*version = C.uint64_t(snap.Dataset.Version())
		parts = append(parts, reader.Part{Bucket: b.opts.BucketID, DS: snap.Dataset})
	}
	if len(snap.Buffer) > 0 {
		parts = append(parts, reader.Part{Bucket: b.opts.BucketID, Mem: snap.Buffer})
	}
	v, err := reader.NewView(parts)
	if err != nil {
		return fail(errOut, readErr(err))
	}
	return searchView(v, o, out, errOut)
}

// cStream exports a scanner's batches in C memory, one at a time, and
// turns a panic while producing one into the stream's error.
type cStream struct {
	refs  atomic.Int64
	inner *reader.Scanner
	cur   arrow.RecordBatch
	err   error
}

func (s *cStream) Retain() { s.refs.Add(1) }
func (s *cStream) Release() {
	if s.refs.Add(-1) == 0 {
		if s.cur != nil {
			s.cur.Release()
			s.cur = nil
		}
		s.inner.Release()
	}
}
func (s *cStream) Schema() *arrow.Schema          { return s.inner.Schema() }
func (s *cStream) Record() arrow.RecordBatch      { return s.cur }
func (s *cStream) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *cStream) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.inner.Err()
}

func (s *cStream) Next() (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			s.err = fmt.Errorf("persisting: scan: internal error: %v", r)
			ok = false
		}
	}()
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	if s.err != nil || !s.inner.Next() {
		return false
	}
	recs, err := toCMemory([]arrow.RecordBatch{s.inner.RecordBatch()}, s.inner.Schema())
	if err != nil {
		s.err = err
		return false
	}
	s.cur = recs[0]
	return true
}
