package pb

// Field numbers of the messages compaction and cleanup read or write
// (Lance 14.0.2's transaction.proto and table.proto; docs/lance-format.md §7,
// §13.5, §13.6). Kept beside fields.go, in the same single-place spirit.

// lance.table.Transaction.Rewrite and its RewriteGroup.
const (
	RewriteOldFragments      Number = 1 // deprecated form: one implicit group
	RewriteNewFragments      Number = 2 // deprecated form
	RewriteGroups            Number = 3
	RewriteRewrittenIndices  Number = 4
	RewriteGroupOldFragments Number = 1
	RewriteGroupNewFragments Number = 2
)

// lance.table.IndexSection, IndexMetadata and lance.table.UUID.
const (
	IndexSectionIndices         Number = 1
	IndexMetadataUUID           Number = 1
	IndexMetadataFields         Number = 2
	IndexMetadataName           Number = 3
	IndexMetadataDatasetVersion Number = 4
	IndexMetadataFragmentBitmap Number = 5
	UUIDBytes                   Number = 1
)
