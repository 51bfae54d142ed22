package main

/*
#include <stdint.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/persisting/persisting/core/engine"
	lance "github.com/persisting/persisting/core/lance/table"
)

// datasetPath is the bucket's Lance dataset, once recovery opened it.
func (b *bucket) datasetPath() (string, error) {
	<-b.eng.Ready()
	if err := b.eng.ReadyErr(); err != nil {
		return "", err
	}
	if b.sink == nil {
		return "", fmt.Errorf("%w: this bucket has no dataset", engine.ErrInvalid)
	}
	return b.sink.Path(), nil
}

type versionJSON struct {
	Version   uint64 `json:"version"`
	Timestamp int64  `json:"timestamp_us"`
	Rows      int64  `json:"rows"`
}

// persisting_versions writes the dataset's versions, oldest first, as a JSON
// list. It reads the disk: call it off the event loop.
//
//export persisting_versions
func persisting_versions(h C.uintptr_t, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	path, err := b.datasetPath()
	if err != nil {
		return fail(errOut, err)
	}
	infos, err := lance.ListVersions(path, lance.Options{})
	if errors.Is(err, os.ErrNotExist) {
		infos, err = nil, nil // nothing flushed yet
	}
	if err != nil {
		return fail(errOut, err)
	}
	list := make([]versionJSON, len(infos))
	for i, v := range infos {
		list[i] = versionJSON{Version: v.Version, Timestamp: v.Timestamp.UnixMicro(), Rows: v.Rows}
	}
	return jsonOut(out, errOut, list)
}

// persisting_read_version exports rows [offset, offset+limit) of an old
// dataset version, in that version's schema, without touching the live
// bucket. It reads the disk: call it off the event loop.
//
//export persisting_read_version
func persisting_read_version(h C.uintptr_t, version C.uint64_t, offset, limit C.int64_t, out unsafe.Pointer, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if out == nil || offset < 0 {
		return fail(errOut, fmt.Errorf("%w: NULL stream out-pointer or negative offset %d", engine.ErrInvalid, int64(offset)))
	}
	b, err := lookup(h)
	if err != nil {
		return fail(errOut, err)
	}
	path, err := b.datasetPath()
	if err != nil {
		return fail(errOut, err)
	}
	ds, err := lance.OpenVersion(path, uint64(version), lance.Options{})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %s has no version %d", engine.ErrInvalid, path, uint64(version))
		}
		return fail(errOut, err)
	}
	var recs []arrow.RecordBatch
	if off, lim := int64(offset), int64(limit); lim > 0 && off < ds.CountRows() {
		recs, err = ds.ReadRange(off, min(lim, ds.CountRows()-off))
		if err != nil {
			return fail(errOut, err)
		}
	}
	return exportStream(recs, ds.Schema(), out, errOut)
}
