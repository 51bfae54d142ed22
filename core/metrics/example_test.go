package metrics_test

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/persisting/persisting/core/metrics"
)

func Example() {
	reg := metrics.New() // production code: metrics.Default()
	b := reg.Bucket("/data/orders/bucket_0")
	defer b.Unregister() // on bucket close: deletes the bucket's series

	b.AddRecords(3)
	b.SetBufferRows(3)
	b.ObserveFsync(90 * time.Microsecond)
	b.ObserveGroup(3)
	b.AddWALBytes("zstd", 4000, 1000)

	var off *metrics.Bucket // enable_metrics=False: a nil handle, no ifs needed
	off.AddRecords(3)

	var buf bytes.Buffer
	if err := reg.WriteText(&buf); err != nil {
		panic(err)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "persisting_records_total") ||
			strings.HasPrefix(line, "persisting_compression_ratio") {
			fmt.Println(line)
		}
	}
	// Output:
	// persisting_compression_ratio{bucket="/data/orders/bucket_0"} 4
	// persisting_records_total{bucket="/data/orders/bucket_0"} 3
}
