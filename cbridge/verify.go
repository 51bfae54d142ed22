package main

/*
#include <stdint.h>
#include "persisting.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/verify"
)

// Read-only checks for `persisting verify`: persisting_verify_plan lists
// what to read, persisting_verify_item reads one item. Neither takes a lock,
// repairs or moves anything. Both read the disk: call them off the event loop.

// verifyErr maps a path without persisting data to INVALID with the path in
// the error, so that callers tell it from damage.
func verifyErr(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %w", engine.ErrInvalid, err)
	}
	return err
}

// persisting_verify_plan writes, as JSON, the buckets under path, the
// problems found reading their manifests and the items to check
// (verify.Plan). Free *out with persisting_free.
//
//export persisting_verify_plan
func persisting_verify_plan(path *C.char, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if path == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL path or out-pointer", engine.ErrInvalid))
	}
	p, err := verify.MakePlan(C.GoString(path))
	if err != nil {
		return fail(errOut, verifyErr(err))
	}
	return jsonOut(out, errOut, p)
}

// persisting_verify_item reads one item of a plan (its JSON) and writes
// what it found as JSON (verify.Result). Damage is data in the result, not
// an error; an error means the item could not be read at all.
//
//export persisting_verify_item
func persisting_verify_item(item *C.char, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if item == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL item or out-pointer", engine.ErrInvalid))
	}
	var it verify.Item
	if err := json.Unmarshal([]byte(C.GoString(item)), &it); err != nil {
		return fail(errOut, fmt.Errorf("%w: verify item: %v", engine.ErrInvalid, err))
	}
	res, err := verify.Check(it)
	if err != nil {
		return fail(errOut, verifyErr(err))
	}
	return jsonOut(out, errOut, res)
}
