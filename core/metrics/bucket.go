package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label returns the handle's bucket label ("" for a nil Bucket).
func (b *Bucket) Label() string {
	if b == nil {
		return ""
	}
	return b.st.label
}

// live reports whether the handle still records.
func (b *Bucket) live() bool { return b != nil && !b.closed.Load() }

// Unregister releases the handle. When it was the last handle of its label,
// every series with that label is deleted from the registry. Later calls on
// this handle do nothing; Unregister is idempotent.
func (b *Bucket) Unregister() {
	if b == nil || b.closed.Swap(true) {
		return
	}
	r := b.r
	r.mu.Lock()
	defer r.mu.Unlock()
	st := b.st
	st.refs--
	if st.refs > 0 {
		return
	}
	st.dead = true
	if r.buckets[st.label] == st {
		delete(r.buckets, st.label)
	}
	match := prometheus.Labels{LabelBucket: st.label}
	for _, v := range r.vecs() {
		v.DeletePartialMatch(match)
	}
}

// AddRecords counts n records appended (n ≤ 0 is ignored).
func (b *Bucket) AddRecords(n int) {
	if n > 0 && b.live() {
		b.st.records.Add(float64(n))
	}
}

// SetBufferRows sets the number of rows in the in-memory buffer.
func (b *Bucket) SetBufferRows(n int64) {
	if b.live() {
		b.st.bufferSize.Set(float64(n))
	}
}

// ObserveFlush records one flush to Lance: its duration, with result=ok
// when err is nil and result=error (and one more flush error) otherwise.
func (b *Bucket) ObserveFlush(d time.Duration, err error) {
	if !b.live() {
		return
	}
	if err != nil {
		b.st.flushErr.Observe(d.Seconds())
		b.st.flushErrors.Inc()
		return
	}
	b.st.flushOK.Observe(d.Seconds())
}

// SetWALSize sets the WAL's current size on disk in bytes.
func (b *Bucket) SetWALSize(n int64) {
	if b.live() {
		b.st.walSize.Set(float64(n))
	}
}

// ObserveFsync records the duration of one WAL fsync.
func (b *Bucket) ObserveFsync(d time.Duration) {
	if b.live() {
		b.st.fsync.Observe(d.Seconds())
	}
}

// ObserveGroup records how many records one fsync made durable.
func (b *Bucket) ObserveGroup(records int) {
	if records > 0 && b.live() {
		b.st.group.Observe(float64(records))
	}
}

// AddWALBytes counts one or more WAL frame payloads: raw bytes before
// compression and stored bytes after, under the codec's name ("" = none;
// unknown names count as "other"). It also updates the compression ratio.
// Negative sizes are ignored.
func (b *Bucket) AddWALBytes(codec string, raw, stored int) {
	if raw < 0 || stored < 0 || !b.live() {
		return
	}
	cc := b.codec(codecIndex(codec))
	if cc == nil {
		return
	}
	cc.raw.Add(float64(raw))
	cc.written.Add(float64(stored))
	r := b.st.rawTotal.Add(uint64(raw))
	s := b.st.storedTotal.Add(uint64(stored))
	if s > 0 {
		b.st.ratio.Set(float64(r) / float64(s))
	}
}

// codec returns the codec-labelled children, creating them on first use.
// Creation holds the registry lock so that it cannot resurrect the series
// of a label being unregistered.
func (b *Bucket) codec(i int) *codecChildren {
	st := b.st
	if cc := st.codecs[i].Load(); cc != nil {
		return cc
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if st.dead {
		return nil
	}
	if cc := st.codecs[i].Load(); cc != nil {
		return cc
	}
	name := codecLabels[i]
	cc := &codecChildren{
		written: b.r.walBytes.WithLabelValues(st.label, name),
		raw:     b.r.walRaw.WithLabelValues(st.label, name),
	}
	st.codecs[i].Store(cc)
	return cc
}

// AddTruncated counts bytes cut from a torn WAL tail during recovery.
func (b *Bucket) AddTruncated(bytes int64) {
	if bytes > 0 && b.live() {
		b.st.truncated.Add(float64(bytes))
	}
}

// AddCorruption counts one corrupt WAL frame.
func (b *Bucket) AddCorruption() {
	if b.live() {
		b.st.corruptions.Inc()
	}
}

// AddBackpressure counts one append refused with a busy status.
func (b *Bucket) AddBackpressure() {
	if b.live() {
		b.st.backpressure.Inc()
	}
}
