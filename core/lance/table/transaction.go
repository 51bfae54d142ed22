package table

import (
	"crypto/rand"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/persisting/persisting/core/lance/pb"
)

// Transactions (lance.table.Transaction, §7). We write one with every commit
// so that a concurrent Lance writer can rebase over our versions, and we read
// the ones of versions committed concurrently with ours to decide whether our
// append can be rebased (§13.2).

// Operation field numbers of the Transaction oneof.
const (
	opAppend           = 100
	opDelete           = 101
	opOverwrite        = 102
	opCreateIndex      = 103
	opRewrite          = 104
	opMerge            = 105
	opRestore          = 106
	opReserveFragments = 107
	opUpdate           = 108
	opProject          = 109
	opUpdateConfig     = 110
)

var opNames = map[protowire.Number]string{
	opAppend: "append", opDelete: "delete", opOverwrite: "overwrite", opCreateIndex: "create_index",
	opRewrite: "rewrite", opMerge: "merge", opRestore: "restore", opReserveFragments: "reserve_fragments",
	opUpdate: "update", opProject: "project", opUpdateConfig: "update_config",
	111: "data_replacement", 112: "update_mem_wal_state", 113: "clone", 114: "update_bases",
}

func opName(op protowire.Number) string {
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
func encodeTransaction(readVersion uint64, uuid string, op protowire.Number, body []byte) []byte {
	return pb.AppendMessage(pb.AppendString(pb.AppendUint(nil, 1, readVersion), 2, uuid), op, body)
}

// txnSummary is what conflict resolution needs from a transaction.
type txnSummary struct {
	op         protowire.Number
	configKeys []string // keys an update_config touches
}

func decodeTransaction(b []byte) (txnSummary, error) {
	var t txnSummary
	err := pb.Walk(b, func(p pb.Entry) error {
		if p.Num < 100 {
			return nil
		}
		if t.op != 0 {
			return fmt.Errorf("%w: transaction has operations %d and %d", pb.ErrMalformed, t.op, p.Num)
		}
		t.op = p.Num
		if p.Num != opUpdateConfig {
			return nil
		}
		if err := p.Want(protowire.BytesType); err != nil {
			return err
		}
		// UpdateConfig: config_updates (6) is an UpdateMap{entries{key}};
		// upsert_values (1, map) and delete_keys (2) are its older form.
		return pb.Walk(p.B, func(q pb.Entry) error {
			switch q.Num {
			case 1:
				k, _, err := q.MapEntry()
				t.configKeys = append(t.configKeys, k)
				return err
			case 2:
				t.configKeys = append(t.configKeys, string(q.B))
			case 6:
				return pb.Walk(q.B, func(e pb.Entry) error {
					if e.Num != 1 {
						return nil
					}
					k, _, err := e.MapEntry()
					t.configKeys = append(t.configKeys, k)
					return err
				})
			}
			return nil
		})
	})
	if err == nil && t.op == 0 {
		err = fmt.Errorf("%w: transaction without operation", pb.ErrMalformed)
	}
	return t, err
}

// rebaseConflict says why an append (touching the config keys ours) cannot be
// rebased over a concurrent transaction, or "" if it can. From an append's
// point of view only operations that replace the table or its schema
// conflict; we also refuse config changes to our keys, unknown operations and
// anything that may invalidate the field ids of our data file.
func rebaseConflict(t txnSummary, ours map[string]string) string {
	switch t.op {
	case opAppend, opDelete, opRewrite, opCreateIndex, opReserveFragments, opUpdate:
		return ""
	case opUpdateConfig:
		for _, k := range t.configKeys {
			if _, ok := ours[k]; ok {
				return fmt.Sprintf("it also changes config key %q", k)
			}
		}
		return ""
	case opOverwrite, opRestore:
		return "it replaces the table"
	case opMerge, opProject:
		return "it changes the schema"
	}
	return "the operation is not known to be compatible with an append"
}
