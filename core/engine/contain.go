package engine

import (
	"fmt"
	"runtime/debug"
)

// contain runs f, turning a panic into an error. It wraps the calls into the
// large layers below the engine (the Lance reader and writer, Arrow IPC)
// made from the engine's own goroutines, where no export's recover would
// catch a panic and the host process would die. It is used only where the
// engine holds no lock, so nothing stays locked after a panic; the layers
// keep their on-disk state consistent on their own (atomic commits).
func contain(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("persisting: internal error in %s (please report it): %v\n%s", what, r, debug.Stack())
		}
	}()
	return f()
}
