package pb

// Field numbers of the Lance messages core/lance reads or writes, by message
// (Lance 14.0.2's protos; docs/lance-format.md §5, §7, §8, §9). This is the only
// place a field number is written down.

// Well-known and map messages.
const (
	mapKey   Number = 1 // map entry key
	mapValue Number = 2 // map entry value

	AnyTypeURL Number = 1 // google.protobuf.Any
	AnyValue   Number = 2

	TimestampSeconds Number = 1 // google.protobuf.Timestamp
	TimestampNanos   Number = 2
)

// lance.table.Manifest (§5).
const (
	ManifestFields                Number = 1
	ManifestFragments             Number = 2
	ManifestVersion               Number = 3
	ManifestVersionAuxData        Number = 4
	ManifestSchemaMetadata        Number = 5
	ManifestIndexSection          Number = 6
	ManifestTimestamp             Number = 7
	ManifestTag                   Number = 8
	ManifestReaderFeatureFlags    Number = 9
	ManifestWriterFeatureFlags    Number = 10
	ManifestMaxFragmentID         Number = 11
	ManifestTransactionFile       Number = 12
	ManifestWriterVersion         Number = 13
	ManifestNextRowID             Number = 14
	ManifestDataFormat            Number = 15
	ManifestConfig                Number = 16
	ManifestBlobDatasetVersion    Number = 17
	ManifestBasePaths             Number = 18
	ManifestTableMetadata         Number = 19
	ManifestBranch                Number = 20
	ManifestTransactionSectionOld Number = 21 // transaction_section_deprecated since Lance 14
	ManifestFragmentTree          Number = 22
	ManifestTransactionSection    Number = 23 // Lance 14's offset of the inline transaction
	ManifestMaxAllocatedFieldID   Number = 24
	ManifestClustering            Number = 25
	ManifestMaxClusteringID       Number = 26
	WriterVersionLibrary          Number = 1 // Manifest.WriterVersion
	WriterVersionVersion          Number = 2
	DataStorageFormatFileFormat   Number = 1 // Manifest.DataStorageFormat
	DataStorageFormatVersion      Number = 2
)

// lance.table.DataFragment, DataFile and DeletionFile (§5).
const (
	FragmentID             Number = 1
	FragmentFiles          Number = 2
	FragmentDeletionFile   Number = 3
	FragmentPhysicalRows   Number = 4
	FragmentInlineRowIDs   Number = 5
	FragmentExternalRowIDs Number = 6

	DataFilePath          Number = 1
	DataFileFields        Number = 2
	DataFileColumnIndices Number = 3
	DataFileMajorVersion  Number = 4
	DataFileMinorVersion  Number = 5
	DataFileSizeBytes     Number = 6
	DataFileBaseID        Number = 7

	DeletionFileType        Number = 1
	DeletionFileReadVersion Number = 2
	DeletionFileID          Number = 3
	DeletionFileNumDeleted  Number = 4
	DeletionFileBaseID      Number = 7
)

// lance.file.Field (§5) and lance.file.FileDescriptor / Schema (§8).
const (
	FieldName        Number = 2
	FieldID          Number = 3
	FieldParentID    Number = 4
	FieldLogicalType Number = 5
	FieldNullable    Number = 6
	FieldMetadata    Number = 10

	FileDescriptorSchema Number = 1
	FileDescriptorLength Number = 2
	SchemaFields         Number = 1
)

// lance.file.v2 ColumnMetadata, Page and Encoding (§8).
const (
	ColumnEncoding      Number = 1
	ColumnPages         Number = 2
	ColumnBufferOffsets Number = 3
	ColumnBufferSizes   Number = 4

	PageBufferOffsets Number = 1
	PageBufferSizes   Number = 2
	PageLength        Number = 3
	PageEncoding      Number = 4
	PagePriority      Number = 5

	EncodingIndirect Number = 1
	EncodingDirect   Number = 2
	EncodingNone     Number = 3

	DirectEncodingEncoding Number = 1 // bytes of a google.protobuf.Any

	ColumnEncodingValues Number = 1 // lance.encodings.ColumnEncoding
)

// Type URLs of the Any inside an Encoding (§8).
const (
	TypeURLArrayEncoding  = "/lance.encodings.ArrayEncoding"
	TypeURLColumnEncoding = "/lance.encodings.ColumnEncoding"
	TypeURLPageLayout21   = "/lance.encodings21.PageLayout"
)

// lance.encodings.ArrayEncoding, the oneof of 2.0 page encodings, and its
// variants (§9).
const (
	ArrayFlat            Number = 1
	ArrayNullable        Number = 2
	ArrayFixedSizeList   Number = 3
	ArrayList            Number = 4
	ArrayStruct          Number = 5
	ArrayBinary          Number = 6
	ArrayDictionary      Number = 7
	ArrayFsst            Number = 8
	ArrayPackedStruct    Number = 9
	ArrayBitpacked       Number = 10
	ArrayFixedSizeBinary Number = 11
	ArrayBitpackedNonNeg Number = 12
	ArrayConstant        Number = 13

	FlatBitsPerValue  Number = 1
	FlatBuffer        Number = 2
	FlatCompression   Number = 3
	BufferIndex       Number = 1
	BufferType        Number = 2
	CompressionScheme Number = 1

	NullableNoNulls   Number = 1
	NullableSomeNulls Number = 2
	NullableAllNulls  Number = 3
	NoNullsValues     Number = 1
	SomeNullsValidity Number = 1
	SomeNullsValues   Number = 2

	FixedSizeListDimension Number = 1
	FixedSizeListItems     Number = 2

	ListOffsets              Number = 1
	ListNullOffsetAdjustment Number = 2
	ListNumItems             Number = 3

	BinaryIndices        Number = 1
	BinaryBytes          Number = 2
	BinaryNullAdjustment Number = 3

	DictionaryIndices  Number = 1
	DictionaryItems    Number = 2
	DictionaryNumItems Number = 3
)

// lance.table.Transaction (§7): the header fields, the operation oneof
// (every number from TransactionOpFirst up is an operation) and the bodies
// this package writes or reads.
const (
	TransactionReadVersion Number = 1
	TransactionUUID        Number = 2

	TransactionOpFirst  Number = 100
	OpAppend            Number = 100
	OpDelete            Number = 101
	OpOverwrite         Number = 102
	OpCreateIndex       Number = 103
	OpRewrite           Number = 104
	OpMerge             Number = 105
	OpRestore           Number = 106
	OpReserveFragments  Number = 107
	OpUpdate            Number = 108
	OpProject           Number = 109
	OpUpdateConfig      Number = 110
	OpDataReplacement   Number = 111
	OpUpdateMemWalState Number = 112
	OpClone             Number = 113
	OpUpdateBases       Number = 114

	AppendFragments Number = 1

	OverwriteFragments          Number = 1
	OverwriteSchema             Number = 2
	OverwriteSchemaMetadata     Number = 3
	OverwriteConfigUpsertValues Number = 4

	MergeFragments            Number = 1
	MergeSchema               Number = 2
	MergeSchemaMetadata       Number = 3
	MergePreservesNullability Number = 4

	UpdateConfigUpsertValues  Number = 1 // map; the older form
	UpdateConfigDeleteKeys    Number = 2 // the older form
	UpdateConfigConfigUpdates Number = 6 // UpdateMap
	UpdateMapEntries          Number = 1 // UpdateMapEntry, whose key is mapKey
)
