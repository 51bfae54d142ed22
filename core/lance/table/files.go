package table

import (
	"path/filepath"
)

// DataFileInfo describes one data file of a fragment of this version, for
// tools that check files one by one (persisting verify).
type DataFileInfo struct {
	Fragment uint64
	Path     string // full path of the file
	Size     uint64 // from the manifest; 0 when the manifest does not say
	Major    uint32
	Minor    uint32
}

// DataFiles lists the data files of every fragment of this version, in
// manifest order.
func (d *Dataset) DataFiles() []DataFileInfo {
	var out []DataFileInfo
	for _, st := range d.frags {
		for _, df := range st.f.files {
			out = append(out, DataFileInfo{
				Fragment: st.f.id,
				Path:     filepath.Join(d.path, dataDir, filepath.FromSlash(df.path)),
				Size:     df.size,
				Major:    df.major,
				Minor:    df.minor,
			})
		}
	}
	return out
}

// ManifestFile is one committed version's manifest file.
type ManifestFile struct {
	Version uint64
	Path    string // full path of the manifest
}

// Manifests lists the committed versions' manifest files, oldest first,
// without reading them (a damaged manifest is still listed). A missing
// dataset wraps os.ErrNotExist.
func Manifests(path string, opts Options) ([]ManifestFile, error) {
	_, st, versions, n, err := versionsAt(path, opts)
	if err != nil {
		return nil, err
	}
	out := make([]ManifestFile, len(versions))
	for i, v := range versions {
		out[i] = ManifestFile{Version: v, Path: filepath.Join(st.Root(), versionsDir, manifestName(n, v))}
	}
	return out, nil
}
