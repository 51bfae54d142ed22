package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func parse(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	return mfs
}

func text(t *testing.T, r *Registry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exercise touches every metric of b.
func exercise(b *Bucket) {
	b.AddRecords(10)
	b.SetBufferRows(7)
	b.ObserveFlush(12*time.Millisecond, nil)
	b.ObserveFlush(3*time.Second, errors.New("disk full"))
	b.SetWALSize(4096)
	b.ObserveFsync(80 * time.Microsecond)
	b.ObserveGroup(16)
	b.AddWALBytes("zstd", 1000, 250)
	b.AddTruncated(13)
	b.AddCorruption()
	b.AddBackpressure()
}

// value returns the value of the series of family name whose labels
// include want, and how many series matched.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	var v float64
	n := 0
outer:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, w := range want {
			if got[k] != w {
				continue outer
			}
		}
		n++
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
	}
	return v, n
}

func TestWriteTextHasEveryFamily(t *testing.T) {
	r := New()
	b := r.Bucket("/data/q/bucket_0")
	exercise(b)
	out := text(t, r)
	mfs := parse(t, out)
	for _, name := range Names() {
		if mfs[name] == nil {
			t.Errorf("family %s missing from exposition", name)
		}
	}
	if len(mfs) != len(Names()) {
		t.Errorf("exposition has %d families, want %d (no process_/go_ collectors by default)", len(mfs), len(Names()))
	}
	bl := map[string]string{LabelBucket: "/data/q/bucket_0"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{NameRecords, bl, 10},
		{NameBufferSize, bl, 7},
		{NameFlushDuration, map[string]string{LabelBucket: "/data/q/bucket_0", LabelResult: "ok"}, 1},
		{NameFlushDuration, map[string]string{LabelBucket: "/data/q/bucket_0", LabelResult: "error"}, 1},
		{NameFlushErrors, bl, 1},
		{NameWALSize, bl, 4096},
		{NameFsyncDuration, bl, 1},
		{NameGroupCommit, bl, 1},
		{NameWALBytesWritten, map[string]string{LabelBucket: "/data/q/bucket_0", LabelCodec: "zstd"}, 250},
		{NameWALBytesRaw, map[string]string{LabelBucket: "/data/q/bucket_0", LabelCodec: "zstd"}, 1000},
		{NameCompressionRatio, bl, 4},
		{NameRecoveryTruncated, bl, 13},
		{NameCorruptions, bl, 1},
		{NameBufferBackpressure, bl, 1},
	}
	for _, c := range checks {
		v, n := value(mfs, c.name, c.labels)
		if n != 1 || v != c.want {
			t.Errorf("%s%v = %v (%d series), want %v", c.name, c.labels, v, n, c.want)
		}
	}
	bi := mfs[NameBuildInfo].GetMetric()
	if len(bi) != 1 || bi[0].GetGauge().GetValue() != 1 {
		t.Fatalf("build_info = %v", bi)
	}
	labels := map[string]string{}
	for _, lp := range bi[0].GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	if labels["version"] == "" || !strings.HasPrefix(labels["go_version"], "go") {
		t.Errorf("build_info labels = %v", labels)
	}
	// Histogram layouts as documented.
	for name, want := range map[string][]float64{
		NameFlushDuration: FlushBuckets, NameFsyncDuration: FsyncBuckets, NameGroupCommit: GroupBuckets,
	} {
		// The parser keeps the +Inf bucket.
		got := mfs[name].GetMetric()[0].GetHistogram().GetBucket()
		if len(got) != len(want)+1 {
			t.Fatalf("%s has %d buckets, want %d and +Inf", name, len(got), len(want))
		}
		for i, w := range want {
			if got[i].GetUpperBound() != w {
				t.Errorf("%s bucket %d = %v, want %v", name, i, got[i].GetUpperBound(), w)
			}
		}
	}
	if len(FlushBuckets) != 15 || FlushBuckets[0] != 0.001 || len(FsyncBuckets) != 16 ||
		FsyncBuckets[0] != 0.00005 || len(GroupBuckets) != 11 || GroupBuckets[10] != 1024 {
		t.Error("bucket layouts differ from the documented ones")
	}
	if !strings.Contains(string(out), "# TYPE persisting_records_total counter") ||
		!strings.Contains(string(out), "# TYPE persisting_flush_duration_seconds histogram") ||
		!strings.Contains(string(out), "# TYPE persisting_buffer_size gauge") ||
		!strings.Contains(string(out), "# TYPE persisting_wal_size_bytes gauge") {
		t.Error("the four documented metrics do not have their documented types")
	}
}

func TestRegisterUnregister(t *testing.T) {
	r := New()
	a := r.Bucket("a")
	b := r.Bucket("b")
	exercise(a)
	exercise(b)
	mfs := parse(t, text(t, r))
	if _, n := value(mfs, NameRecords, nil); n != 2 {
		t.Fatalf("%d record series, want 2", n)
	}

	a.Unregister()
	a.Unregister() // idempotent
	exercise(a)    // no-op after Unregister: must not resurrect the series
	mfs = parse(t, text(t, r))
	for _, name := range Names() {
		if _, n := value(mfs, name, map[string]string{LabelBucket: "a"}); n != 0 {
			t.Errorf("%s still has %d series for the unregistered bucket", name, n)
		}
	}
	if v, n := value(mfs, NameRecords, map[string]string{LabelBucket: "b"}); n != 1 || v != 10 {
		t.Fatalf("bucket b lost its series: %v, %d", v, n)
	}

	// Re-register the same label: fresh series from zero, no error.
	a2 := r.Bucket("a")
	a2.AddRecords(3)
	mfs = parse(t, text(t, r))
	if v, n := value(mfs, NameRecords, map[string]string{LabelBucket: "a"}); n != 1 || v != 3 {
		t.Fatalf("re-registered bucket a = %v (%d series), want 3", v, n)
	}
	for range 100 {
		x := r.Bucket("a")
		exercise(x)
		x.Unregister()
	}
	// a2 still holds the label: its series survive other handles' Unregister.
	mfs = parse(t, text(t, r))
	if v, n := value(mfs, NameRecords, map[string]string{LabelBucket: "a"}); n != 1 || v != 1003 {
		t.Fatalf("bucket a = %v (%d series), want 1003", v, n)
	}
	a2.Unregister()
	b.Unregister()
	mfs = parse(t, text(t, r))
	if len(mfs) != 1 || mfs[NameBuildInfo] == nil {
		t.Fatalf("after closing every bucket the exposition holds %d families, want only build_info", len(mfs))
	}
	if len(r.buckets) != 0 {
		t.Fatalf("%d bucket states leaked", len(r.buckets))
	}
}

func TestCodecLabelBounded(t *testing.T) {
	r := New()
	b := r.Bucket("x")
	for _, c := range []string{"", "none", "zstd", "lz4", "snappy", "gzip", "brotli", "weird\n"} {
		b.AddWALBytes(c, 100, 50)
	}
	b.AddWALBytes("zstd", -1, 5) // ignored
	b.AddRecords(-5)             // ignored: a Counter must never go down
	b.AddTruncated(-1)
	b.ObserveGroup(0)
	mfs := parse(t, text(t, r))
	got := map[string]float64{}
	for _, m := range mfs[NameWALBytesWritten].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == LabelCodec {
				got[lp.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{"none": 100, "zstd": 50, "lz4": 50, "snappy": 50, "other": 150}
	if len(got) != len(want) {
		t.Fatalf("codec series = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("codec series = %v, want %v", got, want)
		}
	}
	if v, _ := value(mfs, NameCompressionRatio, nil); v != 2 {
		t.Fatalf("ratio = %v, want 2", v)
	}
	if v, _ := value(mfs, NameRecords, nil); v != 0 {
		t.Fatalf("records = %v after a negative add", v)
	}
}

func TestNilBucket(t *testing.T) {
	var b *Bucket
	exercise(b)
	b.Unregister()
	if b.Label() != "" {
		t.Fatal("nil Bucket has a label")
	}
	var r *Registry
	if r.Bucket("x") != nil {
		t.Fatal("nil Registry gave a non-nil Bucket")
	}
	exercise(r.Bucket("x"))
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil || buf.Len() != 0 {
		t.Fatalf("nil Registry WriteText = %q, %v", buf.String(), err)
	}
	if _, _, err := r.Serve("127.0.0.1:0"); err == nil {
		t.Fatal("nil Registry served")
	}
	if r.EnableGoCollector() != nil || r.Prometheus() != nil {
		t.Fatal("nil Registry methods")
	}
}

func TestDefault(t *testing.T) {
	if Default() != Default() || Default() == nil {
		t.Fatal("Default is not one process-wide Registry")
	}
	b := Default().Bucket("default-test")
	b.AddRecords(1)
	b.Unregister()
}

func TestEnableGoCollector(t *testing.T) {
	r := New()
	if err := r.EnableGoCollector(); err != nil {
		t.Fatal(err)
	}
	if err := r.EnableGoCollector(); err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, text(t, r))
	if mfs["go_goroutines"] == nil {
		t.Fatal("go_goroutines missing")
	}
	for name := range mfs {
		if strings.HasPrefix(name, "process_") {
			t.Fatalf("%s exported: it would clash with prometheus_client's process collector", name)
		}
	}
}

func TestConcurrent(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			label := []string{"p", "q"}[g%2]
			for range 200 {
				b := r.Bucket(label)
				exercise(b)
				b.AddWALBytes([]string{"lz4", "snappy"}[g%2], 10, 5)
				b.Unregister()
			}
		}()
	}
	for range 20 {
		var buf bytes.Buffer
		if err := r.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		parse(t, buf.Bytes())
	}
	wg.Wait()
	mfs := parse(t, text(t, r))
	if len(mfs) != 1 {
		t.Fatalf("series left after all buckets closed: %d families", len(mfs))
	}
}

func TestServe(t *testing.T) {
	r := New()
	exercise(r.Bucket("served"))
	addr, stop, err := r.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("actual address %q", addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	mfs := parse(t, body)
	for _, name := range Names() {
		if mfs[name] == nil {
			t.Errorf("GET /metrics lacks %s", name)
		}
	}
	if resp, err := http.Get("http://" + addr + "/other"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET /other: %s", resp.Status)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal("second stop:", err)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Fatal("server still answers after stop")
	}
	// The port is free again.
	_, stop2, err := r.Serve(addr)
	if err != nil {
		t.Fatalf("rebinding %s after stop: %v", addr, err)
	}
	stop2()
}

// TestPromtool lints the exposition with `promtool check metrics` (Debian
// package prometheus) when it is installed.
func TestPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found in PATH (apt-get install prometheus): skipping the lint")
	}
	r := New()
	exercise(r.Bucket("/data/q/bucket_0"))
	exercise(r.Bucket("bucket-1"))
	r.Bucket("bucket-1").AddWALBytes("lz4", 10, 9)
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text(t, r))
	out, err := cmd.CombinedOutput()
	t.Logf("promtool check metrics:\n%s", out)
	if err != nil {
		t.Fatalf("promtool check metrics failed: %v", err)
	}
}
