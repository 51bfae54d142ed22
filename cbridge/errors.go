package main

/*
#include <stdint.h>
#include "persisting.h"
*/
import "C"

import (
	"encoding/json"
	"errors"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/remotewal"
	"github.com/persisting/persisting/core/schema"
	"github.com/persisting/persisting/core/wal"
)

// Status codes, from persisting.h (the one definition).
const (
	stOK         = C.PERSISTING_OK
	stPending    = C.PERSISTING_PENDING
	stBusy       = C.PERSISTING_BUSY
	stWouldBlock = C.PERSISTING_WOULD_BLOCK
	stError      = C.PERSISTING_ERROR
	stSchema     = C.PERSISTING_SCHEMA
	stWAL        = C.PERSISTING_WAL
	stCorrupt    = C.PERSISTING_CORRUPT
	stLocked     = C.PERSISTING_LOCKED
	stClosed     = C.PERSISTING_CLOSED
	stPoisoned   = C.PERSISTING_POISONED
	stInvalid    = C.PERSISTING_INVALID
	stFenced     = C.PERSISTING_FENCED
)

// statusNames names every status; persisting_status_codes hands it out so
// that no caller keeps a copy of the numbers.
var statusNames = map[string]int32{
	"OK": stOK, "PENDING": stPending, "BUSY": stBusy, "WOULD_BLOCK": stWouldBlock,
	"ERROR": stError, "SCHEMA": stSchema, "WAL": stWAL, "CORRUPT": stCorrupt,
	"LOCKED": stLocked, "CLOSED": stClosed, "POISONED": stPoisoned, "INVALID": stInvalid,
	"FENCED": stFenced,
}

func statusOf(err error) int32 {
	var se *schema.Error
	var ie *schema.InvalidError
	switch {
	case err == nil:
		return stOK
	case errors.Is(err, errPoisoned):
		return stPoisoned
	case errors.As(err, &se), errors.As(err, &ie):
		return stSchema
	case errors.Is(err, engine.ErrBusy):
		return stBusy
	case errors.Is(err, engine.ErrWouldBlock):
		return stWouldBlock
	case errors.Is(err, engine.ErrFenced): // before ErrWAL: a fenced log write is both
		return stFenced
	case errors.Is(err, engine.ErrWAL):
		return stWAL
	case errors.Is(err, engine.ErrCorrupt):
		return stCorrupt
	case errors.Is(err, engine.ErrLocked):
		return stLocked
	case errors.Is(err, engine.ErrClosed):
		return stClosed
	case errors.Is(err, engine.ErrInvalid):
		return stInvalid
	}
	return stError
}

// errorData is an error as it crosses the boundary (persisting.h): callers
// read the holder's pid or the damaged file from fields, never from the
// wording of the message.
type errorData struct {
	Status  int32  `json:"status"`
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Path    string `json:"path,omitempty"`
	Offset  int64  `json:"offset"`
	PID     int    `json:"pid,omitempty"`
	Field   string `json:"field,omitempty"`
}

func errorJSON(err error) string {
	d := errorData{Status: statusOf(err), Message: err.Error(), Offset: -1}
	for name, code := range statusNames {
		if code == d.Status {
			d.Kind = name
		}
	}
	var (
		le *engine.LockedError
		ce *wal.CorruptionError
		we *wal.WALError
		se *schema.Error
		ie *schema.InvalidError
		fe *invalidField
		fd *remotewal.FencedError
	)
	switch {
	case errors.As(err, &fd):
		d.Path = fd.Root
	case errors.As(err, &le):
		d.Path, d.PID = le.Path, le.PID
	case errors.As(err, &ce):
		d.Path, d.Offset = ce.File, ce.Offset
	case errors.As(err, &we):
		d.Path, d.Offset = we.File, we.Offset
	case errors.As(err, &se):
		d.Field = se.Field
	case errors.As(err, &ie):
		d.Field = ie.Field
	case errors.As(err, &fe):
		d.Field = fe.field
	}
	js, _ := json.Marshal(d) // cannot fail: plain fields, invalid UTF-8 is replaced
	return string(js)
}

// persisting_status_codes writes the status codes as a JSON object of name
// to number; free it with persisting_free.
//
//export persisting_status_codes
func persisting_status_codes(out **C.char) (rc C.int32_t) {
	defer guard(&rc, nil)
	if out == nil {
		return stInvalid
	}
	js, _ := json.Marshal(statusNames)
	*out = C.CString(string(js))
	return stOK
}

// jsonOut writes v as a JSON C string to *out (the caller checked out is
// not NULL) and returns stOK, or the marshalling error.
func jsonOut(out **C.char, errOut **C.char, v any) C.int32_t {
	js, err := json.Marshal(v)
	if err != nil {
		return fail(errOut, err)
	}
	*out = C.CString(string(js))
	return stOK
}
