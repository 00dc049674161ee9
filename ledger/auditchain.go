package ledger

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
)

// DefaultChainCallTimeout bounds each call of an audit or a proof fetch to the chain
// (AuditConfig.ChainTimeout).
const DefaultChainCallTimeout = 30 * time.Second

// maxChainHead bounds the block number an auditor believes: a chain that claims more
// (2^40 blocks is 400,000 years of one block a second) is lying, and reading its
// anchors block range by block range would never end.
const maxChainHead = 1 << 40

// timedChain bounds every call to the chain by timeout: an RPC endpoint that never
// answers makes an audit fail, not hang.
type timedChain struct {
	chain   AuditChain
	timeout time.Duration
}

func newTimedChain(c AuditChain, timeout time.Duration) timedChain {
	if timeout <= 0 {
		timeout = DefaultChainCallTimeout
	}
	return timedChain{c, timeout}
}

func (c timedChain) BlockNumber(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	head, err := c.chain.BlockNumber(ctx)
	if err == nil && head >= maxChainHead {
		return 0, fmt.Errorf("the chain claims block %d, which no chain has reached: is the RPC endpoint honest?", head)
	}
	return head, err
}

func (c timedChain) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.FilterLogs(ctx, q)
}

func (c timedChain) CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.CallContract(ctx, call, block)
}
