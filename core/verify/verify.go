// Package verify checks persisting data read-only: every manifest, every
// page of every data file of every fragment of every retained version, and
// every write-ahead-log frame. It repairs, moves and locks nothing, so it
// runs beside a live writer (files a writer releases meanwhile are reported
// as gone, not as damage).
//
// Work is split into a Plan (the buckets, their manifests, and the list of
// files to read) and one Check per item, so that a caller can show progress
// and stop between files.
package verify

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"

	"github.com/persisting/persisting/core/lance/encoding"
	"github.com/persisting/persisting/core/wal"
)

// DatasetName is the Lance dataset inside a bucket directory; WALDir its log.
const (
	DatasetName = "data.lance"
	WALDir      = "wal"
)

// ErrNotFound is wrapped when a path holds no persisting data.
var ErrNotFound = os.ErrNotExist

// Problem is one piece of damage.
type Problem struct {
	Bucket int    `json:"bucket"`
	File   string `json:"file"`
	Offset int64  `json:"offset"` // byte offset in File, -1 when none applies
	// Length, for a data page, is the span of its buffers from Offset.
	Length int64 `json:"length,omitempty"`
	// Kind: "corrupt", "torn_tail" (a WAL tail the next open cuts),
	// "missing" (a file a retained version needs), "unsupported" (an
	// encoding this reader cannot check: a warning, not damage).
	Kind   string `json:"kind"`
	What   string `json:"what"` // "manifest", "data", "wal"
	Reason string `json:"reason"`
}

// Item is one unit of Check: a data file or a bucket's log directory.
type Item struct {
	Kind    string `json:"kind"` // "data" or "wal"
	Bucket  int    `json:"bucket"`
	Path    string `json:"path"`
	Dataset string `json:"dataset,omitempty"` // data: the dataset holding the file
	Size    int64  `json:"size"`              // bytes to read (manifest size for data files, 0 unknown)
}

// Bucket is one bucket (or bare dataset, Bucket -1) the plan covers.
type Bucket struct {
	Bucket    int    `json:"bucket"`
	Dir       string `json:"dir"`
	Dataset   string `json:"dataset,omitempty"` // "" when nothing was flushed yet
	WAL       string `json:"wal,omitempty"`     // "" when there is no log directory
	Versions  int    `json:"versions"`
	Manifests int64  `json:"manifest_bytes"`
}

// Plan is what Check will read.
type Plan struct {
	Path     string    `json:"path"`
	Buckets  []Bucket  `json:"buckets"`
	Items    []Item    `json:"items"`
	Problems []Problem `json:"problems"` // found while reading the manifests
}

// Result is what one Check found.
type Result struct {
	Problems []Problem `json:"problems"`
	Pages    int       `json:"pages"`
	Frames   int       `json:"frames"`
	Rows     uint64    `json:"rows"`
	Bytes    int64     `json:"bytes"`
	Gone     bool      `json:"gone,omitempty"` // released by a live writer meanwhile
	// WAL is the log's report (wal items).
	WAL *wal.VerifyReport `json:"wal,omitempty"`
}

var offsetRE = regexp.MustCompile(`at offset (\d+)`)

// offsetIn is the byte offset an error of the file or wal packages names
// in its message ("... at offset N ..."), or -1.
func offsetIn(err error) int64 {
	var ce *wal.CorruptionError
	if errors.As(err, &ce) {
		return ce.Offset
	}
	m := offsetRE.FindStringSubmatch(err.Error())
	if m == nil {
		return -1
	}
	n, perr := strconv.ParseInt(m[1], 10, 64)
	if perr != nil {
		return -1
	}
	return n
}

func kindOf(err error) string {
	switch {
	case errors.Is(err, encoding.ErrUnsupported):
		return "unsupported"
	case errors.Is(err, os.ErrNotExist):
		return "missing"
	}
	return "corrupt"
}

// Check reads one item.
func Check(it Item) (*Result, error) {
	switch it.Kind {
	case "data":
		return checkData(it)
	case "wal":
		rep, err := wal.Verify(nil, it.Path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return &Result{Problems: []Problem{}, Gone: true}, nil
			}
			return nil, err
		}
		res := &Result{Problems: []Problem{}, Frames: rep.Frames, Rows: rep.Rows, Bytes: rep.Bytes, WAL: rep}
		for _, pr := range rep.Problems {
			res.Problems = append(res.Problems, Problem{Bucket: it.Bucket, File: pr.File, Offset: pr.Offset,
				Kind: pr.Kind, What: "wal", Reason: pr.Reason})
		}
		return res, nil
	}
	return nil, fmt.Errorf("verify: unknown item kind %q", it.Kind)
}
