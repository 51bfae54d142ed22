// Package vector is exact k-nearest-neighbour search over float32 vectors:
// distance kernels, a bounded top-k, and a scorer that feeds blocks of
// vectors into it. It knows nothing of files: callers hand it blocks of
// contiguous vectors with their row ids.
//
// Distances follow Lance: "l2" is the squared Euclidean distance, "cosine"
// is 1 - cos(x, q), "dot" is 1 - x·q. Results are ordered by distance, ties
// by row id. Vectors whose distance is NaN (NaN components, a zero vector
// under cosine) are never returned.
package vector

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrInvalid marks a bad query: unknown metric, wrong dimension, k <= 0,
// non-finite query components.
var ErrInvalid = errors.New("invalid vector query")

// Metric is a distance function.
type Metric int

const (
	L2 Metric = iota + 1
	Cosine
	Dot
)

func (m Metric) String() string {
	switch m {
	case L2:
		return "l2"
	case Cosine:
		return "cosine"
	case Dot:
		return "dot"
	}
	return fmt.Sprintf("metric(%d)", int(m))
}

// ParseMetric accepts "l2" (also "euclidean"), "cosine" and "dot", in any case.
func ParseMetric(s string) (Metric, error) {
	switch s {
	case "l2", "L2", "euclidean", "Euclidean":
		return L2, nil
	case "cosine", "Cosine", "COSINE":
		return Cosine, nil
	case "dot", "Dot", "DOT":
		return Dot, nil
	}
	return 0, fmt.Errorf("%w: unknown metric %q (use \"l2\", \"cosine\" or \"dot\")", ErrInvalid, s)
}

// Hit is one result: its source (a caller's number: the bucket, say), its
// row id there, and its distance.
type Hit struct {
	Src  uint32
	ID   uint64
	Dist float32
}

// less orders hits by distance, then source, then row id.
func less(a, b Hit) bool {
	if a.Dist != b.Dist {
		return a.Dist < b.Dist
	}
	if a.Src != b.Src {
		return a.Src < b.Src
	}
	return a.ID < b.ID
}

// TopK keeps the k smallest hits seen. Not safe for concurrent use: give
// each worker its own and Merge them.
type TopK struct {
	k int
	h []Hit // max-heap by less: h[0] is the worst kept hit
}

// NewTopK returns an empty top-k.
func NewTopK(k int) *TopK { return &TopK{k: k, h: make([]Hit, 0, min(k, 1<<16))} }

// Bound is the distance a hit must not exceed to enter (+Inf until full).
func (t *TopK) Bound() float32 {
	if len(t.h) < t.k {
		return float32(math.Inf(1))
	}
	return t.h[0].Dist
}

// Push offers a hit.
func (t *TopK) Push(src uint32, id uint64, d float32) {
	if d != d { // NaN
		return
	}
	x := Hit{src, id, d}
	if len(t.h) < t.k {
		t.h = append(t.h, x)
		t.up(len(t.h) - 1)
		return
	}
	if !less(x, t.h[0]) {
		return
	}
	t.h[0] = x
	t.down(0)
}

func (t *TopK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(t.h[p], t.h[i]) {
			return
		}
		t.h[p], t.h[i] = t.h[i], t.h[p]
		i = p
	}
}

func (t *TopK) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		big := l
		if r := l + 1; r < n && less(t.h[l], t.h[r]) {
			big = r
		}
		if !less(t.h[i], t.h[big]) {
			return
		}
		t.h[i], t.h[big] = t.h[big], t.h[i]
		i = big
	}
}

// Merge folds o into t.
func (t *TopK) Merge(o *TopK) {
	for _, x := range o.h {
		t.Push(x.Src, x.ID, x.Dist)
	}
}

// Sorted returns the kept hits, best first.
func (t *TopK) Sorted() []Hit {
	out := append([]Hit(nil), t.h...)
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

// Query is a prepared query vector.
type Query struct {
	Metric Metric
	Q      []float32
	qnorm  float32 // |q| for cosine
}

// NewQuery checks q (finite components, non-empty) and prepares it.
func NewQuery(m Metric, q []float32) (*Query, error) {
	if m != L2 && m != Cosine && m != Dot {
		return nil, fmt.Errorf("%w: unknown metric %d", ErrInvalid, int(m))
	}
	if len(q) == 0 {
		return nil, fmt.Errorf("%w: the query vector is empty", ErrInvalid)
	}
	for i, x := range q {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%w: query component %d is %v", ErrInvalid, i, x)
		}
	}
	qq := &Query{Metric: m, Q: q}
	if m == Cosine {
		qq.qnorm = float32(math.Sqrt(float64(DotF32(q, q))))
		if qq.qnorm == 0 {
			return nil, fmt.Errorf("%w: a zero query vector has no cosine distance", ErrInvalid)
		}
	}
	return qq, nil
}

// Distance is the query's distance to one vector x (len(x) == len(Q)).
func (q *Query) Distance(x []float32) float32 {
	switch q.Metric {
	case L2:
		return L2F32(x, q.Q)
	case Dot:
		return 1 - fastDot(x, q.Q)
	default:
		xn := float32(math.Sqrt(float64(fastDot(x, x))))
		return 1 - fastDot(x, q.Q)/(xn*q.qnorm)
	}
}

// Score computes the distance of every kept vector of a block and offers it
// to top. data holds n = len(data)/dim contiguous vectors; vector i has row
// id base+i unless ids is set (then ids[i]); keep, when set, excludes the
// vectors whose entry is false (filtered out, deleted, null).
func (q *Query) Score(top *TopK, src uint32, data []float32, base uint64, ids []uint64, keep []bool) {
	dim := len(q.Q)
	n := len(data) / dim
	for i := 0; i < n; i++ {
		if keep != nil && !keep[i] {
			continue
		}
		d := q.Distance(data[i*dim : (i+1)*dim : (i+1)*dim])
		id := base + uint64(i)
		if ids != nil {
			id = ids[i]
		}
		top.Push(src, id, d)
	}
}
