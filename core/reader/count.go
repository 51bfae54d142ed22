package reader

import (
	"sync/atomic"

	"github.com/persisting/persisting/core/filter"
)

// Count counts the rows selected by filter expr ("" counts every live row).
func (v *View) Count(expr string) (int64, error) {
	f, err := filter.Compile(expr, v.Schema)
	if err != nil {
		return 0, err
	}
	if f == nil {
		n := int64(0)
		for _, p := range v.Parts {
			if p.DS != nil {
				n += p.DS.CountRows()
			}
			for _, r := range p.Mem {
				n += r.NumRows()
			}
		}
		return n, nil
	}
	var total atomic.Int64
	err = v.parallel(0, "", func(c chunk) error {
		rec, keep, err := v.read(c, f.Columns(), f)
		if err != nil {
			return err
		}
		rec.Release()
		n := int64(0)
		if keep == nil {
			n = c.end - c.start
		} else {
			for _, k := range keep {
				if k {
					n++
				}
			}
		}
		total.Add(n)
		return nil
	}, nil)
	return total.Load(), err
}
