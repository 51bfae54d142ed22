// Package metrics holds persisting's Prometheus collectors.
//
// # One private registry per process
//
// The collectors live in a private prometheus.NewRegistry(), never in the
// client library's default registry: the default one carries the process
// collector (process_cpu_seconds_total, …), which Python's prometheus_client
// also registers for the same PID, and merging both would duplicate series.
// The Go runtime collector (go_* names, no clash) is added only on request,
// with EnableGoCollector.
//
// Default returns the process-wide Registry. Each open bucket takes a handle
// with Registry.Bucket(label) and releases it with Bucket.Unregister; the
// handles share one set of metric vectors, told apart by the label "bucket".
//
// # Cardinality
//
// The label "bucket" is the bucket directory path or an id string the caller
// passes. The number of series is therefore bounded by the number of buckets
// open at once (times a small constant: two flush results, at most five
// codecs, the histogram buckets). When the last handle of a label is
// unregistered every series of that label is deleted
// (DeleteLabelValues/DeletePartialMatch), so closed buckets leave nothing
// behind. The label "codec" is folded to none, zstd, lz4, snappy or other,
// and "result" is ok or error.
//
// # Exposition
//
// Registry.WriteText renders the text format (expfmt TypeTextPlain) for the
// C ABI, from which Python feeds prometheus_client; Registry.Serve is the
// opt-in HTTP endpoint (promhttp on /metrics).
//
// # Metrics off
//
// Every method of *Bucket accepts a nil receiver and then does nothing, and
// a nil *Registry hands out nil buckets, so the engine calls the methods
// unconditionally.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Metric names. The first four are the names the original Persisting
// documentation promised.
const (
	NameRecords            = "persisting_records_total"
	NameBufferSize         = "persisting_buffer_size"
	NameFlushDuration      = "persisting_flush_duration_seconds"
	NameWALSize            = "persisting_wal_size_bytes"
	NameFlushErrors        = "persisting_flush_errors_total"
	NameFsyncDuration      = "persisting_wal_fsync_duration_seconds"
	NameGroupCommit        = "persisting_wal_group_commit_records"
	NameWALBytesWritten    = "persisting_wal_bytes_written_total"
	NameWALBytesRaw        = "persisting_wal_bytes_uncompressed_total"
	NameCompressionRatio   = "persisting_compression_ratio"
	NameRecoveryTruncated  = "persisting_wal_recovery_truncated_bytes_total"
	NameCorruptions        = "persisting_wal_corruptions_total"
	NameBufferBackpressure = "persisting_buffer_backpressure_total"
	NameBuildInfo          = "persisting_build_info"
)

// Names lists every metric family this package exports.
func Names() []string {
	return []string{
		NameRecords, NameBufferSize, NameFlushDuration, NameWALSize,
		NameFlushErrors, NameFsyncDuration, NameGroupCommit,
		NameWALBytesWritten, NameWALBytesRaw, NameCompressionRatio,
		NameRecoveryTruncated, NameCorruptions, NameBufferBackpressure,
		NameBuildInfo, NameMaintenance, NameMaintenanceDuration,
		NameBytesReclaimed, NameFragments,
	}
}

// Label names.
const (
	LabelBucket = "bucket"
	LabelCodec  = "codec"
	LabelResult = "result"
)

// Histogram bucket layouts.
var (
	// FlushBuckets: 1 ms … 16.4 s.
	FlushBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)
	// FsyncBuckets: 50 µs … 1.64 s; NVMe fsync takes 12–100 µs.
	FsyncBuckets = prometheus.ExponentialBuckets(0.00005, 2, 16)
	// GroupBuckets: 1 … 1024 records per fsync.
	GroupBuckets = prometheus.ExponentialBuckets(1, 2, 11)
)

// Version is reported in persisting_build_info{version}. Set it at link
// time with -ldflags "-X github.com/persisting/persisting/core/metrics.Version=v1.2.3";
// when empty, the module version from the build info is used.
var Version = ""

// Registry is a private Prometheus registry with persisting's collectors.
// It is safe for concurrent use.
type Registry struct {
	reg *prometheus.Registry

	records      *prometheus.CounterVec
	bufferSize   *prometheus.GaugeVec
	flushDur     *prometheus.HistogramVec
	flushErrors  *prometheus.CounterVec
	walSize      *prometheus.GaugeVec
	fsyncDur     *prometheus.HistogramVec
	group        *prometheus.HistogramVec
	walBytes     *prometheus.CounterVec
	walRaw       *prometheus.CounterVec
	ratio        *prometheus.GaugeVec
	truncated    *prometheus.CounterVec
	corruptions  *prometheus.CounterVec
	backpressure *prometheus.CounterVec
	maint        maintenanceVecs

	goOnce sync.Once
	goErr  error

	mu      sync.Mutex
	buckets map[string]*bucketState // live labels
}

var (
	defaultOnce sync.Once
	defaultReg  *Registry
)

// Default returns the process-wide Registry, created on first use.
func Default() *Registry {
	defaultOnce.Do(func() { defaultReg = New() })
	return defaultReg
}

// New returns a fresh Registry. Production code uses Default; New is for
// tests and for embedding several independent libraries in one process.
func New() *Registry {
	b := []string{LabelBucket}
	r := &Registry{
		reg:     prometheus.NewRegistry(),
		buckets: map[string]*bucketState{},
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRecords,
			Help: "Records appended to the bucket (acknowledged puts).",
		}, b),
		bufferSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameBufferSize,
			Help: "Records (rows) in the in-memory buffer, not yet flushed to Lance.",
		}, b),
		flushDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameFlushDuration,
			Help:    "Duration of flushes of the buffer to Lance, by result (ok|error).",
			Buckets: FlushBuckets,
		}, []string{LabelBucket, LabelResult}),
		flushErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameFlushErrors,
			Help: "Flushes to Lance that failed.",
		}, b),
		walSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameWALSize,
			Help: "Current size of the write-ahead log on disk, in bytes.",
		}, b),
		fsyncDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameFsyncDuration,
			Help:    "Duration of WAL fsync (fdatasync) calls.",
			Buckets: FsyncBuckets,
		}, b),
		group: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameGroupCommit,
			Help:    "Records made durable by one WAL fsync (group commit size).",
			Buckets: GroupBuckets,
		}, b),
		walBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameWALBytesWritten,
			Help: "Frame payload bytes written to the WAL after compression, by codec.",
		}, []string{LabelBucket, LabelCodec}),
		walRaw: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameWALBytesRaw,
			Help: "Frame payload bytes before compression, by codec; divide by " + NameWALBytesWritten + " for the ratio.",
		}, []string{LabelBucket, LabelCodec}),
		ratio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameCompressionRatio,
			Help: "Uncompressed/compressed bytes of WAL payloads since the bucket was opened (1 until the first write).",
		}, b),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRecoveryTruncated,
			Help: "Bytes cut from a torn WAL tail during recovery.",
		}, b),
		corruptions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameCorruptions,
			Help: "Corrupt WAL frames found (not torn tails).",
		}, b),
		backpressure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBufferBackpressure,
			Help: "Appends refused with a busy status (backpressure, not a drop).",
		}, b),
		maint: newMaintenanceVecs(b),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        NameBuildInfo,
		Help:        "Build information of the persisting Go core; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version(), "go_version": runtime.Version()},
	})
	build.Set(1)
	r.reg.MustRegister(build, r.records, r.bufferSize, r.flushDur, r.flushErrors,
		r.walSize, r.fsyncDur, r.group, r.walBytes, r.walRaw, r.ratio,
		r.truncated, r.corruptions, r.backpressure)
	r.reg.MustRegister(r.maint.collectors()...)
	return r
}

func (r *Registry) vecs() []interface {
	DeletePartialMatch(prometheus.Labels) int
} {
	return append([]interface {
		DeletePartialMatch(prometheus.Labels) int
	}{r.records, r.bufferSize, r.flushDur, r.flushErrors, r.walSize,
		r.fsyncDur, r.group, r.walBytes, r.walRaw, r.ratio, r.truncated,
		r.corruptions, r.backpressure}, r.maint.deletable()...)
}

const modulePath = "github.com/persisting/persisting"

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == modulePath && d.Version != "" {
				return d.Version
			}
		}
	}
	return "devel"
}

// Prometheus returns the underlying registry, to register extra collectors
// or to gather.
func (r *Registry) Prometheus() *prometheus.Registry {
	if r == nil {
		return nil
	}
	return r.reg
}

// EnableGoCollector adds the Go runtime collector (go_* metrics) to the
// registry. It is off by default and idempotent.
func (r *Registry) EnableGoCollector() error {
	if r == nil {
		return nil
	}
	r.goOnce.Do(func() { r.goErr = r.reg.Register(collectors.NewGoCollector()) })
	return r.goErr
}

// WriteText writes every metric family in the Prometheus text exposition
// format (text/plain; version=0.0.4). A nil Registry writes nothing.
func (r *Registry) WriteText(w io.Writer) error {
	if r == nil {
		return nil
	}
	mfs, gerr := r.reg.Gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("metrics: encode %s: %w", mf.GetName(), err)
		}
	}
	if gerr != nil {
		return fmt.Errorf("metrics: gather: %w", gerr)
	}
	return nil
}

// Serve exposes the registry at GET /metrics on addr (e.g.
// "127.0.0.1:9464", or "127.0.0.1:0" for any free port). It returns the
// address actually bound and a stop function that shuts the server down
// (waiting up to 5 s for in-flight scrapes) and releases the port.
func (r *Registry) Serve(addr string) (actualAddr string, stop func() error, err error) {
	if r == nil {
		return "", nil, errors.New("metrics: Serve on a nil Registry")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopErr = srv.Shutdown(ctx)
			if stopErr != nil {
				srv.Close()
			}
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && stopErr == nil {
				stopErr = err
			}
		})
		return stopErr
	}
	return ln.Addr().String(), stop, nil
}

// ---- buckets --------------------------------------------------------------

// codecs the label "codec" may take; anything else is "other".
var codecLabels = [...]string{"none", "zstd", "lz4", "snappy", "other"}

func codecIndex(name string) int {
	switch name {
	case "", "none":
		return 0
	case "zstd":
		return 1
	case "lz4":
		return 2
	case "snappy":
		return 3
	}
	return 4
}

type codecChildren struct {
	written, raw prometheus.Counter
}

// bucketState is shared by every live handle of one label.
type bucketState struct {
	label string
	refs  int  // guarded by Registry.mu
	dead  bool // guarded by Registry.mu; series deleted

	records      prometheus.Counter
	bufferSize   prometheus.Gauge
	flushOK      prometheus.Observer
	flushErr     prometheus.Observer
	flushErrors  prometheus.Counter
	walSize      prometheus.Gauge
	fsync        prometheus.Observer
	group        prometheus.Observer
	ratio        prometheus.Gauge
	truncated    prometheus.Counter
	corruptions  prometheus.Counter
	backpressure prometheus.Counter

	codecs [len(codecLabels)]atomic.Pointer[codecChildren]
	// Totals behind the ratio gauge.
	rawTotal, storedTotal atomic.Uint64
}

// Bucket is one open bucket's handle on the registry. Its methods are safe
// for concurrent use and do nothing on a nil receiver or after Unregister.
type Bucket struct {
	r      *Registry
	st     *bucketState
	closed atomic.Bool
}

// Bucket returns a handle whose series carry bucket=label. Handles of the
// same label share their series; the series are deleted when the last
// handle of the label is unregistered, and a later Bucket(label) starts
// them again from zero. An empty label is reported as "default". A nil
// Registry returns a nil (metrics off) Bucket.
func (r *Registry) Bucket(label string) *Bucket {
	if r == nil {
		return nil
	}
	if label == "" {
		label = "default"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.buckets[label]
	if st == nil {
		st = &bucketState{
			label:        label,
			records:      r.records.WithLabelValues(label),
			bufferSize:   r.bufferSize.WithLabelValues(label),
			flushOK:      r.flushDur.WithLabelValues(label, "ok"),
			flushErr:     r.flushDur.WithLabelValues(label, "error"),
			flushErrors:  r.flushErrors.WithLabelValues(label),
			walSize:      r.walSize.WithLabelValues(label),
			fsync:        r.fsyncDur.WithLabelValues(label),
			group:        r.group.WithLabelValues(label),
			ratio:        r.ratio.WithLabelValues(label),
			truncated:    r.truncated.WithLabelValues(label),
			corruptions:  r.corruptions.WithLabelValues(label),
			backpressure: r.backpressure.WithLabelValues(label),
		}
		st.ratio.Set(1)
		r.maint.touch(label)
		r.buckets[label] = st
	}
	st.refs++
	return &Bucket{r: r, st: st}
}
