// Package waltest holds the black-box tests of core/wal: the etcd-style
// recovery matrix on real files, fault injection through core/vfs/errorfs,
// rotation and release, the frame-reader fuzz target and the benchmarks.
package waltest
