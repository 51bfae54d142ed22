package main

/*
#include <stdint.h>
*/
import "C"

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/persisting/persisting/core/engine"
	"github.com/persisting/persisting/core/metrics"
)

// persisting_metrics_text writes the Prometheus text exposition of every
// bucket opened with metrics on, from the library's private registry.
//
//export persisting_metrics_text
func persisting_metrics_text(out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL out-pointer", engine.ErrInvalid))
	}
	var buf bytes.Buffer
	if err := metrics.Default().WriteText(&buf); err != nil {
		return fail(errOut, err)
	}
	*out = C.CString(buf.String())
	return stOK
}

var (
	servingMu sync.Mutex
	serving   = map[string]string{} // requested address -> bound address
)

// persisting_metrics_serve serves /metrics over HTTP at addr (host:port; port
// 0 picks one) and writes the bound address. Serving the same address again
// returns the existing endpoint: one per process and address.
//
//export persisting_metrics_serve
func persisting_metrics_serve(addr *C.char, out **C.char, errOut **C.char) (rc C.int32_t) {
	defer guard(&rc, errOut)
	if err := poisonErr(); err != nil {
		return fail(errOut, err)
	}
	if addr == nil || out == nil {
		return fail(errOut, fmt.Errorf("%w: NULL address or out-pointer", engine.ErrInvalid))
	}
	want := C.GoString(addr)
	servingMu.Lock()
	defer servingMu.Unlock()
	bound, ok := serving[want]
	if !ok {
		var err error
		bound, _, err = metrics.Default().Serve(want)
		if err != nil {
			return fail(errOut, fmt.Errorf("persisting: serve metrics on %s: %w", want, err))
		}
		serving[want] = bound
	}
	*out = C.CString(bound)
	return stOK
}
