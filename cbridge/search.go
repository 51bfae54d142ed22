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
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/reader"
)

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
