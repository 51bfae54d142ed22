package vector

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
)

func randVecs(n, dim int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n*dim)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

func TestKernelsMatchNaive(t *testing.T) {
	for _, dim := range []int{1, 3, 8, 13, 128, 768} {
		v := randVecs(2, dim, uint64(dim))
		x, y := v[:dim], v[dim:]
		if a, b := DotF32(x, y), naiveDot(x, y); math.Abs(float64(a-b)) > 1e-4*math.Max(1, math.Abs(float64(b))) {
			t.Errorf("dim %d: dot %v, naive %v", dim, a, b)
		}
		if a, b := L2F32(x, y), naiveL2(x, y); math.Abs(float64(a-b)) > 1e-4*math.Max(1, float64(b)) {
			t.Errorf("dim %d: l2 %v, naive %v", dim, a, b)
		}
	}
}

func TestTopKOrderAndTies(t *testing.T) {
	top := NewTopK(3)
	for _, h := range []Hit{{0, 9, 1}, {0, 3, 0.5}, {0, 7, 1}, {0, 1, 1}, {0, 2, float32(math.NaN())}, {0, 5, 2}} {
		top.Push(h.Src, h.ID, h.Dist)
	}
	got := top.Sorted()
	want := []Hit{{0, 3, 0.5}, {0, 1, 1}, {0, 7, 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestQueryChecks(t *testing.T) {
	if _, err := NewQuery(L2, []float32{1, float32(math.NaN())}); err == nil {
		t.Error("NaN query accepted")
	}
	if _, err := NewQuery(Cosine, []float32{0, 0}); err == nil {
		t.Error("zero cosine query accepted")
	}
	if _, err := ParseMetric("hamming"); err == nil {
		t.Error("unknown metric accepted")
	}
	q, _ := NewQuery(Cosine, []float32{1, 0})
	if d := q.Distance([]float32{0, 2}); d != 1 {
		t.Errorf("cosine of orthogonal vectors: %v", d)
	}
	q, _ = NewQuery(Dot, []float32{1, 2})
	if d := q.Distance([]float32{3, 4}); d != 1-11 {
		t.Errorf("dot distance: %v", d)
	}
}

// The kernel benchmarks: one query against 4096 vectors of 128 dims (2 MiB,
// in cache), the shape of the search hot loop.
const benchN, benchDim = 4096, 128

func benchKernel(b *testing.B, f func(x, y []float32) float32) {
	data := randVecs(benchN, benchDim, 1)
	q := randVecs(1, benchDim, 2)
	b.SetBytes(int64(benchN * benchDim * 4))
	var sink float32
	for b.Loop() {
		for i := 0; i < benchN; i++ {
			sink += f(data[i*benchDim:(i+1)*benchDim], q)
		}
	}
	_ = sink
}

func BenchmarkDotUnrolled(b *testing.B) { benchKernel(b, DotF32) }
func BenchmarkDotNaive(b *testing.B)    { benchKernel(b, naiveDot) }
func BenchmarkDotGonumBlas32(b *testing.B) {
	benchKernel(b, func(x, y []float32) float32 {
		return blas32.Dot(blas32.Vector{N: len(x), Inc: 1, Data: x}, blas32.Vector{N: len(y), Inc: 1, Data: y})
	})
}
func BenchmarkL2Unrolled(b *testing.B) { benchKernel(b, L2F32) }
func BenchmarkL2Naive(b *testing.B)    { benchKernel(b, naiveL2) }

func BenchmarkL2GonumAxpyDot(b *testing.B) {
	scratch := make([]float32, benchDim)
	benchKernel(b, func(x, y []float32) float32 {
		copy(scratch, y)
		d := blas32.Vector{N: len(x), Inc: 1, Data: scratch}
		blas32.Axpy(-1, blas32.Vector{N: len(x), Inc: 1, Data: x}, d)
		return blas32.Dot(d, d)
	})
}
