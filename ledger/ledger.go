package ledger

import (
	"crypto/sha256"
	"errors"
	"sync"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// LogID is the on-chain identifier of a DTA's log: the SHA-256 of its origin line
// (translog.Log.Origin), the name its checkpoints carry.
func LogID(origin string) [32]byte { return sha256.Sum256([]byte(origin)) }

// abiBinding is the parsed ABI, shared: NewIssuanceLog parses the JSON on every call.
var abiBinding = sync.OnceValue(NewIssuanceLog)

// Binding returns the IssuanceLog binding (its ABI parsed once), whose Pack* and Unpack*
// methods build call data for bind.Transact and bind.Call.
func Binding() *IssuanceLog { return abiBinding() }

// Revert decodes the IssuanceLog custom error that err carries — a JSON-RPC error from
// eth_call or eth_estimateGas with the revert data attached. It returns one of
// *IssuanceLogNotOwner, *IssuanceLogNotAnchorer or *IssuanceLogSizeNotGrowing, or nil
// when err is not such a revert.
func Revert(err error) any {
	var de rpc.DataError
	if !errors.As(err, &de) {
		return nil
	}
	s, ok := de.ErrorData().(string)
	if !ok {
		return nil
	}
	data, derr := hexutil.Decode(s)
	if derr != nil || len(data) < 4 {
		return nil
	}
	v, uerr := Binding().UnpackError(data)
	if uerr != nil {
		return nil
	}
	return v
}
