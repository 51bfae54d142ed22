//go:build !linux

package wal

import "github.com/persisting/persisting/core/vfs"

// syncData is File.Sync where fdatasync is not available (on darwin Go's
// Sync uses F_FULLFSYNC).
func syncData(f vfs.File) error { return f.Sync() }
