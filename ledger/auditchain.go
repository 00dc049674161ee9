package ledger

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/polyroot/polyroot/internal/bundle"
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

func (c timedChain) ChainID(ctx context.Context) (*big.Int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.ChainID(ctx)
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

func (c timedChain) HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.HeaderByNumber(ctx, number)
}

func (c timedChain) CodeAt(ctx context.Context, contract common.Address, block *big.Int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.CodeAt(ctx, contract, block)
}

func (c timedChain) CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.chain.CallContract(ctx, call, block)
}

// confirmedHead returns the newest block whose anchors have confirmations (0 and 1:
// the head): head + 1 − confirmations, or 0 on a chain that young.
func confirmedHead(ctx context.Context, chain AuditChain, confirmations uint64) (uint64, error) {
	head, err := chain.BlockNumber(ctx)
	if err != nil || confirmations <= 1 {
		return head, err
	}
	if head+1 < confirmations {
		return 0, nil
	}
	return head + 1 - confirmations, nil
}

// readLatest reads the contract's latest anchor of logID as of block head.
func readLatest(ctx context.Context, cfg AuditConfig, logID [32]byte, head uint64) (LatestOutput, error) {
	out, err := cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &cfg.Contract, Data: Binding().PackLatest(logID)}, new(big.Int).SetUint64(head))
	if err != nil {
		return LatestOutput{}, fmt.Errorf("latest anchor: %w", err)
	}
	if len(out) == 0 {
		return LatestOutput{}, fmt.Errorf("latest anchor: %s has no code as of block %d: is it the IssuanceLog contract, deployed at least %d blocks ago (the confirmations asked for)?",
			cfg.Contract.Hex(), head, max(1, cfg.Confirmations))
	}
	latest, err := Binding().UnpackLatest(out)
	if err != nil {
		return LatestOutput{}, fmt.Errorf("latest anchor: %w (is %s the IssuanceLog contract?)", err, cfg.Contract.Hex())
	}
	return latest, nil
}

//go:embed contracts/IssuanceLog.json
var artifactJSON []byte

// DeployedCode returns IssuanceLog.json's deployedBytecode: the code of every
// IssuanceLog contract on chain, byte for byte. The build has no immutables (owner is
// plain storage) and no metadata hash, so no byte of it depends on the deployment and
// nothing needs masking (TestDeployedCodeIsTheArtifact, TestContractBuildIsReproducible).
var DeployedCode = sync.OnceValue(func() []byte {
	var a struct {
		DeployedBytecode string `json:"deployedBytecode"`
	}
	if err := json.Unmarshal(artifactJSON, &a); err != nil || len(a.DeployedBytecode) < 4 {
		panic("ledger: contracts/IssuanceLog.json has no deployedBytecode")
	}
	return common.FromHex(a.DeployedBytecode)
})

// ErrNotIssuanceLog reports an address whose code is not IssuanceLog's.
var ErrNotIssuanceLog = errors.New("not the IssuanceLog contract")

// ErrNoCode reports an address that holds no code.
var ErrNoCode = errors.New("has no code")

// CheckCode fails unless contract's code as of block (nil: the head) is DeployedCode,
// wrapping ErrNotIssuanceLog when it holds other code. A contract with the same ABI
// and a laxer anchor() would let anyone post anchors for the logs: an audit would read
// them as the DTAs', and fail honest logs.
func CheckCode(ctx context.Context, chain AuditChain, contract common.Address, block *big.Int) error {
	code, err := chain.CodeAt(ctx, contract, block)
	switch {
	case err != nil:
		return fmt.Errorf("the code at %s: %w", contract.Hex(), err)
	case len(code) == 0:
		return fmt.Errorf("%s %w as of block %v: is it the IssuanceLog contract, deployed at least as many blocks ago as the confirmations asked for?", contract.Hex(), ErrNoCode, blockName(block))
	case !bytes.Equal(code, DeployedCode()):
		return fmt.Errorf("%w: the code at %s as of block %v (%d bytes) is not IssuanceLog.json's deployedBytecode (%d bytes)",
			ErrNotIssuanceLog, contract.Hex(), blockName(block), len(code), len(DeployedCode()))
	}
	return nil
}

func blockName(block *big.Int) string {
	if block == nil {
		return "latest"
	}
	return block.String()
}

// ErrAnchoring reports a chain or a contract other than those the trust bundle names.
var ErrAnchoring = errors.New("not the bundle's anchoring")

// CheckAnchoring fails, wrapping ErrAnchoring, when b names its anchoring and contract
// is not its contract or chain is not its chain (by eth_chainId). A bundle that names
// none leaves both to the caller.
func CheckAnchoring(ctx context.Context, b *bundle.Bundle, chain AuditChain, contract common.Address) error {
	_, err := chainID(ctx, chain, b, contract)
	return err
}

// chainID checks contract against b's anchoring, then reads the chain's ID and checks
// it too (CheckAnchoring); the ID must fit 64 bits.
func chainID(ctx context.Context, chain AuditChain, b *bundle.Bundle, contract common.Address) (uint64, error) {
	var want uint64
	if a := b.Anchoring; a != nil {
		if named := common.HexToAddress(a.Contract); contract != named {
			return 0, fmt.Errorf("%w: the trust bundle anchors at contract %s, not %s", ErrAnchoring, named.Hex(), contract.Hex())
		}
		want = a.ChainID
	}
	id, err := chain.ChainID(ctx)
	if err != nil {
		return 0, fmt.Errorf("chain ID: %w", err)
	}
	if err := matchChainID(id, want); err != nil {
		return 0, err
	}
	if !id.IsUint64() {
		return 0, fmt.Errorf("the chain's ID %s is out of range", id)
	}
	return id.Uint64(), nil
}

// matchChainID fails, wrapping ErrAnchoring, unless id (an RPC endpoint's answer) is
// want; want 0 accepts any chain.
func matchChainID(id *big.Int, want uint64) error {
	switch {
	case id == nil:
		return errors.New("chain ID: the RPC endpoint gave none")
	case want != 0 && (!id.IsUint64() || id.Uint64() != want):
		return fmt.Errorf("%w: the RPC endpoint serves chain %s, the trust bundle anchors on chain %d", ErrAnchoring, id, want)
	}
	return nil
}
