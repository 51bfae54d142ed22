package main

/*
#include <stdint.h>
#include <stdlib.h>
#include "persisting.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/cdata"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/reader"
)

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
