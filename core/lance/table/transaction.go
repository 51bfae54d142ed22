package table

import (
	"crypto/rand"
	"fmt"

	"github.com/persisting/persisting/core/lance/pb"
)

// Transactions (lance.table.Transaction, §7). We write one with every commit
// so that a concurrent Lance writer can rebase over our versions, and we read
// the ones of versions committed concurrently with ours to decide whether our
// append can be rebased (§13.2).

var opNames = map[pb.Number]string{
	pb.OpAppend: "append", pb.OpDelete: "delete", pb.OpOverwrite: "overwrite", pb.OpCreateIndex: "create_index",
	pb.OpRewrite: "rewrite", pb.OpMerge: "merge", pb.OpRestore: "restore", pb.OpReserveFragments: "reserve_fragments",
	pb.OpUpdate: "update", pb.OpProject: "project", pb.OpUpdateConfig: "update_config",
	pb.OpDataReplacement: "data_replacement", pb.OpUpdateMemWalState: "update_mem_wal_state",
	pb.OpClone: "clone", pb.OpUpdateBases: "update_bases",
}

func opName(op pb.Number) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("operation %d", op)
}

func newUUID() string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// encodeTransaction builds Transaction{read_version, uuid, <op>: body}.
func encodeTransaction(readVersion uint64, uuid string, op pb.Number, body []byte) []byte {
	b := pb.AppendUint(nil, pb.TransactionReadVersion, readVersion)
	return pb.AppendMessage(pb.AppendString(b, pb.TransactionUUID, uuid), op, body)
}

// operationBody is the body of the operation p commits: Append carries our
// fragment, Overwrite (create) our fragment and the schema, Merge the whole
// new fragment list and schema (§7).
func operationBody(p *appendPlan, m *Manifest, ours *fragment) []byte {
	var body []byte
	switch p.op {
	case pb.OpAppend:
		if ours != nil {
			body = pb.AppendMessage(body, pb.AppendFragments, ours.encode(false))
		}
	case pb.OpOverwrite:
		if ours != nil {
			body = pb.AppendMessage(body, pb.OverwriteFragments, ours.encode(false))
		}
		body = appendFields(body, pb.OverwriteSchema, p.fields)
		body = pb.AppendBytesMap(body, pb.OverwriteSchemaMetadata, m.schemaMetadata)
		body = pb.AppendStringMap(body, pb.OverwriteConfigUpsertValues, m.config)
	case pb.OpMerge:
		for _, fr := range m.fragments {
			body = pb.AppendMessage(body, pb.MergeFragments, fr.encode(true))
		}
		body = appendFields(body, pb.MergeSchema, p.fields)
		body = pb.AppendBytesMap(body, pb.MergeSchemaMetadata, m.schemaMetadata)
		// When every field we add is nullable and no column was rewritten,
		// data staged against the old schema may omit the new fields: tell
		// newer Lance writers not to conflict. A rewritten column's old id
		// is dropped, so staged data holding it must conflict.
		body = pb.AppendBool(body, pb.MergePreservesNullability, p.preservesNullability)
	}
	return body
}

// txnSummary is what conflict resolution needs from a transaction.
type txnSummary struct {
	op         pb.Number
	configKeys []string // keys an update_config touches
}

func decodeTransaction(b []byte) (txnSummary, error) {
	var t txnSummary
	err := pb.Walk(b, func(p pb.Entry) error {
		if p.Num < pb.TransactionOpFirst {
			return nil
		}
		if t.op != 0 {
			return fmt.Errorf("%w: transaction has operations %d and %d", pb.ErrMalformed, t.op, p.Num)
		}
		t.op = p.Num
		if p.Num != pb.OpUpdateConfig {
			return nil
		}
		body, err := p.Bytes()
		if err != nil {
			return err
		}
		t.configKeys, err = updateConfigKeys(body)
		return err
	})
	if err == nil && t.op == 0 {
		err = fmt.Errorf("%w: transaction without operation", pb.ErrMalformed)
	}
	return t, err
}

// updateConfigKeys lists the keys an UpdateConfig touches: config_updates
// is an UpdateMap{entries{key}}; upsert_values (a map) and delete_keys are
// its older form.
func updateConfigKeys(b []byte) ([]string, error) {
	var keys []string
	err := pb.Walk(b, func(q pb.Entry) error {
		switch q.Num {
		case pb.UpdateConfigUpsertValues:
			k, _, err := q.MapEntry()
			keys = append(keys, k)
			return err
		case pb.UpdateConfigDeleteKeys:
			keys = append(keys, string(q.B))
		case pb.UpdateConfigConfigUpdates:
			return pb.Walk(q.B, func(e pb.Entry) error {
				if e.Num != pb.UpdateMapEntries {
					return nil
				}
				k, _, err := e.MapEntry()
				keys = append(keys, k)
				return err
			})
		}
		return nil
	})
	return keys, err
}

// rebaseConflict says why an append (touching the config keys ours) cannot be
// rebased over a concurrent transaction, or "" if it can. From an append's
// point of view only operations that replace the table or its schema
// conflict; we also refuse config changes to our keys, unknown operations and
// anything that may invalidate the field ids of our data file.
func rebaseConflict(t txnSummary, ours map[string]string) string {
	switch t.op {
	case pb.OpAppend, pb.OpDelete, pb.OpRewrite, pb.OpCreateIndex, pb.OpReserveFragments, pb.OpUpdate:
		return ""
	case pb.OpUpdateConfig:
		for _, k := range t.configKeys {
			if _, ok := ours[k]; ok {
				return fmt.Sprintf("it also changes config key %q", k)
			}
		}
		return ""
	case pb.OpOverwrite, pb.OpRestore:
		return "it replaces the table"
	case pb.OpMerge, pb.OpProject:
		return "it changes the schema"
	}
	return "the operation is not known to be compatible with an append"
}
