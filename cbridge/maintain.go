package main

/*
#include <stdint.h>
#include "persisting.h"
*/
import "C"

import (
	"encoding/json"

	"github.com/persisting/persisting/core/engine"
)

// persisting_maintain compacts the bucket's dataset (compact != 0) and/or
// removes its old versions (cleanup != 0) without blocking: it runs in the
// bucket's flush goroutine, and a completion with token follows, whose
// result persisting_take_result returns as JSON.
//
//export persisting_maintain
func persisting_maintain(h C.uintptr_t, token C.uint64_t, compact, cleanup C.int32_t, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	b, err := lookupForToken(h, token)
	if err != nil {
		return fail(errOut, err)
	}
	tok := uint64(token)
	b.eng.Maintain(compact != 0, cleanup != 0, func(res engine.MaintenanceResult, err error) {
		if err == nil {
			js, _ := json.Marshal(res)
			b.keepResult(tok, string(js))
		}
		b.complete(tok, 0, err)
	})
	return stPending
}

// persisting_take_result returns (and forgets) the JSON result of a
// completed operation that has one (persisting_maintain), or NULL. Free it
// with persisting_free.
//
//export persisting_take_result
func persisting_take_result(h C.uintptr_t, token C.uint64_t) (out *C.char) {
	var rc C.int32_t
	defer guard(&rc, nil)
	b, err := lookup(h)
	if err != nil {
		return nil
	}
	if s := b.takeResult(uint64(token)); s != "" {
		return C.CString(s)
	}
	return nil
}
