package reader

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// ChunkRows is the default number of physical rows a scan, count or search
// reads at once from a fragment.
const ChunkRows = 65536

// chunk is one unit of work: physical rows [start, end) of fragment frag of
// part part, or (frag < 0) the whole memory batch mem of the part.
type chunk struct {
	part, frag, mem int
	start, end      int64
}

// chunks splits the view into work units of about size rows; with align
// set, fragment chunks end on page boundaries of that column.
func (v *View) chunks(size int64, align string) []chunk {
	if size <= 0 {
		size = ChunkRows
	}
	var out []chunk
	for pi, p := range v.Parts {
		if p.DS != nil {
			for fi, f := range p.DS.FragmentInfos() {
				if f.LiveRows == 0 {
					continue
				}
				var starts []int64
				if align != "" {
					starts, _ = p.DS.PageStarts(fi, align)
				}
				if len(starts) < 2 || starts[len(starts)-1] != f.PhysicalRows {
					for s := int64(0); s < f.PhysicalRows; s += size {
						out = append(out, chunk{part: pi, frag: fi, mem: -1, start: s, end: min(s+size, f.PhysicalRows)})
					}
					continue
				}
				// Whole pages of the aligned column, about size rows at a time.
				from := int64(0)
				for _, s := range starts[1:] {
					if s-from >= size || s == f.PhysicalRows {
						out = append(out, chunk{part: pi, frag: fi, mem: -1, start: from, end: s})
						from = s
					}
				}
			}
		}
		for mi, r := range p.Mem {
			if r.NumRows() > 0 {
				out = append(out, chunk{part: pi, frag: -1, mem: mi, start: 0, end: r.NumRows()})
			}
		}
	}
	return out
}

// parallel runs fn over every chunk on GOMAXPROCS goroutines and returns
// the first error. perWorker, when set, is called once per worker before
// any starts, and gives that worker's function.
func (v *View) parallel(size int64, align string, fn func(chunk) error, perWorker func(w int) func(chunk) error) error {
	chunks := v.chunks(size, align)
	workers := max(1, min(runtime.GOMAXPROCS(0), len(chunks)))
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	runs := make([]func(chunk) error, workers)
	for w := range runs {
		runs[w] = fn
		if perWorker != nil {
			runs[w] = perWorker(w)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[w] = fmt.Errorf("persisting: internal error: %v", r)
					failed.Store(true)
				}
			}()
			run := runs[w]
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				if err := run(chunks[i]); err != nil {
					errs[w] = err
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
