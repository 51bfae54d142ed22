package encoding

import "errors"

// ErrUnsupported is wrapped by every error that refuses something this
// package deliberately does not implement (file format 2.1, unknown feature
// flags, encodings Lance 2.0 does not write for us, ...). Refusing is always
// preferred to misreading.
var ErrUnsupported = errors.New("lance: unsupported")
