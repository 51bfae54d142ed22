package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the maintenance metrics (compaction and version cleanup).
const (
	NameMaintenance         = "persisting_maintenance_total"
	NameMaintenanceDuration = "persisting_maintenance_duration_seconds"
	NameBytesReclaimed      = "persisting_reclaimed_bytes_total"
	NameFragments           = "persisting_fragments"
)

// MaintenanceBuckets: 1 ms … 65 s.
var MaintenanceBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)

// maintenanceVecs are the registry's maintenance collectors.
type maintenanceVecs struct {
	runs      *prometheus.CounterVec // {bucket, result}
	duration  *prometheus.HistogramVec
	reclaimed *prometheus.CounterVec
	fragments *prometheus.GaugeVec
}

func newMaintenanceVecs(bucket []string) maintenanceVecs {
	return maintenanceVecs{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameMaintenance,
			Help: "Maintenance runs (compaction and/or version cleanup), by result.",
		}, append(bucket, "result")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameMaintenanceDuration,
			Help:    "Duration of maintenance runs (compaction and/or version cleanup).",
			Buckets: MaintenanceBuckets,
		}, bucket),
		reclaimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBytesReclaimed,
			Help: "Bytes of old versions and unreferenced files removed by version cleanup.",
		}, bucket),
		fragments: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameFragments,
			Help: "Fragments of the dataset's current version.",
		}, bucket),
	}
}

func (m maintenanceVecs) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.runs, m.duration, m.reclaimed, m.fragments}
}

func (m maintenanceVecs) deletable() []interface {
	DeletePartialMatch(prometheus.Labels) int
} {
	return []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.runs, m.duration, m.reclaimed, m.fragments}
}

// ObserveMaintenance records one maintenance run: its duration, the bytes
// it reclaimed, the dataset's fragment count after it, and its error.
func (b *Bucket) ObserveMaintenance(took time.Duration, reclaimed int64, fragments int, err error) {
	if !b.live() {
		return
	}
	m, label := b.r.maint, b.st.label
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.runs.WithLabelValues(label, result).Inc()
	m.duration.WithLabelValues(label).Observe(took.Seconds())
	if reclaimed > 0 {
		m.reclaimed.WithLabelValues(label).Add(float64(reclaimed))
	}
	b.SetFragments(fragments)
}

// touch creates a bucket's series, so that they are exported (at zero) from
// the moment the bucket opens, like the others.
func (m maintenanceVecs) touch(label string) {
	m.runs.WithLabelValues(label, "ok")
	m.runs.WithLabelValues(label, "error")
	m.duration.WithLabelValues(label)
	m.reclaimed.WithLabelValues(label)
	m.fragments.WithLabelValues(label)
}

// SetFragments sets the dataset's fragment count.
func (b *Bucket) SetFragments(n int) {
	if b.live() {
		b.r.maint.fragments.WithLabelValues(b.st.label).Set(float64(n))
	}
}
