// Package pb is the protobuf layer of core/lance: the field numbers of every
// Lance message the other packages read or write, by name (fields.go, from
// Lance 14.0.2's table.proto, file.proto, file2.proto, encodings_v2_0.proto
// and transaction.proto; §5, §7, §8 and §9 of docs/lance-format.md),
// and small typed helpers that encode and walk messages with protowire
// (wire.go).
//
// Messages are hand encoded rather than generated because the table layer
// must re-emit what it read byte for byte: unknown manifest fields in the
// order read, fragments and schema fields from their stored bytes (see
// core/lance/table). A walk hands out each field's raw bytes for that.
//
// Invariants: no other package of core/lance spells a field number; a walk
// never panics on corrupt input (every length is checked by protowire) and
// every malformed message is an error wrapping ErrMalformed; encoders emit
// sub-messages even when empty (Lance's decoder unwraps them) and scalars
// with proto3 implicit presence unless the helper says Always.
package pb
