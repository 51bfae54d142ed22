package lance

import (
	"encoding/json"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// normJSON re-encodes JSON so that key order and spacing do not matter.
func normJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON %s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var memoryAllocator = memory.DefaultAllocator
