package store

import "time"

// Info describes one entry of a directory listed with ListInfo.
type Info struct {
	Name    string // the entry's name inside the listed directory
	Size    int64
	ModTime time.Time // when the object was last written
	Dir     bool      // a sub-directory (object stores: a common prefix)
}

// InfoLister is implemented by stores that list entries with their sizes
// and modification times. Version cleanup needs it: an unreferenced file is
// removed only once it is old enough not to belong to a commit in flight.
type InfoLister interface {
	// ListInfo lists the entries directly in dir, sub-directories
	// included, in no particular order. A missing dir wraps
	// os.ErrNotExist.
	ListInfo(dir string) ([]Info, error)
}

func (s *local) ListInfo(dir string) ([]Info, error) {
	ents, err := s.fs.ReadDir(s.path(dir))
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			// Removed between the listing and the stat: not there.
			continue
		}
		out = append(out, Info{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime(), Dir: e.IsDir()})
	}
	return out, nil
}

var _ InfoLister = (*local)(nil)
