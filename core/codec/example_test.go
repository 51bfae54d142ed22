package codec_test

import (
	"bytes"
	"fmt"

	"github.com/persisting/persisting/core/codec"
)

func Example() {
	c, err := codec.ByName("zstd") // from the bucket's "compression" option
	if err != nil {
		panic(err)
	}
	payload := bytes.Repeat([]byte(`{"user":"ada","status":"ok"}`), 100)
	frame, err := c.Encode(nil, payload)
	if err != nil {
		panic(err)
	}
	name, n, _, _ := codec.Inspect(frame)
	fmt.Println(name, n, len(frame) < len(payload))

	// Decoding needs no codec: the frame names its own.
	back, err := codec.Decode(frame)
	fmt.Println(bytes.Equal(back, payload), err)

	_, err = codec.ByName("gzip")
	fmt.Println(err)
	// Output:
	// zstd 2800 true
	// true <nil>
	// codec: unknown codec "gzip": valid names are "none", "zstd", "lz4", "snappy" (or "" for none)
}
