package metrics

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Samples returns the bucket's current samples, keyed as in the text
// exposition: the metric name (with _bucket, _sum and _count for
// histograms) followed by its labels other than bucket, sorted, in braces.
// It lets callers report a bucket's metrics as data instead of parsing text.
func (b *Bucket) Samples() (map[string]float64, error) {
	if !b.live() {
		return nil, nil
	}
	mfs, err := b.r.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("metrics: gather: %w", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels, mine := otherLabels(m.GetLabel(), b.st.label)
			if !mine {
				continue
			}
			name := mf.GetName()
			switch {
			case m.GetCounter() != nil:
				out[name+labels.String()] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name+labels.String()] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				for _, bk := range h.GetBucket() {
					le := labelSet(append(slices.Clone(labels), labelPair{"le", formatFloat(bk.GetUpperBound())}))
					out[name+"_bucket"+le.String()] = float64(bk.GetCumulativeCount())
				}
				out[name+"_bucket"+labelSet(append(slices.Clone(labels), labelPair{"le", "+Inf"})).String()] = float64(h.GetSampleCount())
				out[name+"_sum"+labels.String()] = h.GetSampleSum()
				out[name+"_count"+labels.String()] = float64(h.GetSampleCount())
			}
		}
	}
	return out, nil
}

type labelPair struct{ name, value string }

type labelSet []labelPair

// String renders labels sorted by name as {a="x",b="y"}, or "" when empty.
func (s labelSet) String() string {
	if len(s) == 0 {
		return ""
	}
	sorted := slices.Clone(s)
	slices.SortFunc(sorted, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	parts := make([]string, len(sorted))
	for i, l := range sorted {
		parts[i] = fmt.Sprintf("%s=%q", l.name, l.value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// otherLabels returns a metric's labels other than bucket, and whether its
// bucket label is the one given.
func otherLabels(pairs []*dto.LabelPair, bucket string) (labelSet, bool) {
	var out labelSet
	mine := false
	for _, p := range pairs {
		if p.GetName() == "bucket" {
			mine = p.GetValue() == bucket
			continue
		}
		out = append(out, labelPair{p.GetName(), p.GetValue()})
	}
	return out, mine
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
