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
	"strings"
	"sync"
	"time"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/filter"
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

// persisting_dataset_open opens a reader of path: a local directory or an
// s3:// URI. options is NULL or JSON: {"storage_options": {name: value}},
// the storage options a bucket takes (named as pylance's); a bad name or
// value is INVALID.
//
//export persisting_dataset_open
func persisting_dataset_open(path *C.char, options *C.char, out *C.uintptr_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if path == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL path or out-pointer", engine.ErrInvalid))
	}
	var o struct {
		StorageOptions map[string]string `json:"storage_options"`
	}
	if options != nil {
		dec := json.NewDecoder(strings.NewReader(C.GoString(options)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return fail(errOut, fmt.Errorf("%w: dataset options: %v", engine.ErrInvalid, err))
		}
	}
	p := C.GoString(path)
	opts, err := engine.ReadOptions(p, o.StorageOptions)
	if err != nil {
		return fail(errOut, err)
	}
	r, err := reader.Open(p, opts)
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
// [{bucket, path, version, rows, fragments, indexed}], "sources": [{bucket,
// path}]} (sources: every dataset found, committed data or not).
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
	return jsonOut(out, errOut, map[string]any{"parts": r.View().Info(), "sources": r.Sources()})
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
	return jsonOut(out, errOut, vs)
}
