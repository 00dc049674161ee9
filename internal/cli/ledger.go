package cli

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/ledger"
)

// ledgerCommand is the operator's side of anchoring on a real chain: the keys, the
// IssuanceLog contract and the registration of each DTA's log.
func ledgerCommand() *ucli.Command {
	rpcURL := &ucli.StringFlag{Name: "rpc-url", Usage: "the chain's JSON-RPC `URL`", Sources: ucli.NewValueSourceChain(envVar("POLYROOT_RPC_URL"))}
	timeout := &ucli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up when the transaction is not mined within this `DURATION`"}
	return &ucli.Command{
		Name:  "ledger",
		Usage: "set up anchoring on a chain: keys, the IssuanceLog contract, the DTAs' logs",
		Description: "Each DTA anchors its log's checkpoints in the IssuanceLog contract, from an address\n" +
			"the contract's owner registered for that log.\n\n" +
			"Example (once, for a domain):\n" +
			"   polyroot ledger keygen --out owner.key          # the contract's owner; fund it\n" +
			"   polyroot ledger deploy --rpc-url URL --key-file owner.key\n" +
			"   polyroot ledger keygen --out dta-1-chain.key    # on each DTA's host; fund it\n" +
			"   polyroot ledger register --rpc-url URL --key-file owner.key --contract 0x… \\\n" +
			"       --origin polyroot/api.example.com/dta-1 --anchorer 0x…\n" +
			"   polyroot bundle assemble … --chain-id ID --contract 0x…\n\n" +
			"Then each DTA serves with --chain rpc --rpc-url URL --chain-key-file dta-N-chain.key\n" +
			"--contract 0x…. Keep the owner's key offline once the logs are registered: whoever\n" +
			"holds it can register an address of its own for any log.",
		Commands: []*ucli.Command{
			{
				Name:      "keygen",
				Usage:     "write a new secp256k1 key (hex, mode 0600) and print its address",
				UsageText: "polyroot ledger keygen --out FILE\n\nExample:\n   polyroot ledger keygen --out /etc/polyroot/dta-1-chain.key",
				Description: "The file holds the private key as 64 hex digits, as dta serve --chain-key-file and\n" +
					"ledger deploy/register --key-file read it. An existing file is never overwritten.\n" +
					"The address printed on stdout is the account to fund (every anchor is a\n" +
					"transaction) and, for a DTA's key, the --anchorer of ledger register.",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the key to `FILE`", TakesFile: true},
				},
				Action: runLedgerKeygen,
			},
			{
				Name:      "deploy",
				Usage:     "deploy the IssuanceLog contract, owned by --key-file's account, and print its address",
				UsageText: "polyroot ledger deploy --rpc-url URL --key-file FILE\n\nExample:\n   polyroot ledger deploy --rpc-url https://rpc.example.org --key-file owner.key",
				Description: "Waits until the deployment is mined, prints the contract's address on stdout, and\n" +
					"on standard error the chain's ID: name both in the trust bundle (bundle assemble\n" +
					"--chain-id --contract), so that every auditor reads the same anchors.",
				Flags: []ucli.Flag{
					rpcURL,
					&ucli.StringFlag{Name: "key-file", Usage: "the owner's secp256k1 key `FILE` (ledger keygen)", TakesFile: true},
					timeout,
				},
				Action: runLedgerDeploy,
			},
			{
				Name:  "register",
				Usage: "let an address anchor a DTA's log in the contract (the owner's transaction)",
				UsageText: "polyroot ledger register --rpc-url URL --key-file FILE --contract ADDR --origin ORIGIN --anchorer ADDR\n\n" +
					"Example:\n   polyroot ledger register --rpc-url https://rpc.example.org --key-file owner.key \\\n" +
					"       --contract 0x5FbD…0aa3 --origin polyroot/api.example.com/dta-1 --anchorer 0x70a1…",
				Description: "--origin is the log_origin of the DTA's record (dta init); --anchorer the address\n" +
					"of that DTA's chain key (ledger keygen printed it). Registering a log again moves\n" +
					"it to the new address. Waits until the transaction is mined.",
				Flags: []ucli.Flag{
					rpcURL,
					&ucli.StringFlag{Name: "key-file", Usage: "the contract owner's secp256k1 key `FILE`", TakesFile: true},
					&ucli.StringFlag{Name: "contract", Usage: "the IssuanceLog contract's `ADDRESS` (0x…)"},
					&ucli.StringFlag{Name: "origin", Usage: "the DTA's log `ORIGIN` (log_origin in its record)"},
					&ucli.StringFlag{Name: "anchorer", Usage: "the `ADDRESS` (0x…) of the DTA's chain key"},
					timeout,
				},
				Action: runLedgerRegister,
			},
		},
	}
}

func runLedgerKeygen(_ context.Context, c *ucli.Command) error {
	out := c.String("out")
	if out == "" {
		return errors.New("ledger keygen: --out is required")
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		return fmt.Errorf("ledger keygen: %w", err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("ledger keygen: %s exists: a key file is never overwritten", out)
	}
	if err != nil {
		return fmt.Errorf("ledger keygen: %w", err)
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(crypto.FromECDSA(key)))
	if err == nil {
		err = f.Sync() // on disk before its address is printed and funded
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("ledger keygen: %w", err)
	}
	_, err = fmt.Fprintln(c.Root().Writer, ledger.Address(key).Hex())
	return err
}

// A ledgerTx is what a command that sends a transaction needs: the chain (--rpc-url)
// and its ID, the sender's key (--key-file), and a context that ends at --timeout.
type ledgerTx struct {
	cmd     string
	c       *ucli.Command
	parent  context.Context
	ctx     context.Context
	chain   *ethclient.Client
	chainID *big.Int
	key     *ecdsa.PrivateKey
	done    func()
}

// newLedgerTx checks the flags, loads the key, dials the chain and reads its ID; call
// done when finished.
func newLedgerTx(ctx context.Context, c *ucli.Command, cmd string) (*ledgerTx, error) {
	switch {
	case c.String("rpc-url") == "":
		return nil, fmt.Errorf("%s: --rpc-url is required", cmd)
	case c.String("key-file") == "":
		return nil, fmt.Errorf("%s: --key-file is required", cmd)
	case c.Duration("timeout") <= 0:
		return nil, fmt.Errorf("%s: --timeout must be positive", cmd)
	}
	key, err := ledger.LoadKeyFile(c.String("key-file"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	chain, err := ledger.Dial(ctx, c.String("rpc-url"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	tctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	t := &ledgerTx{cmd: cmd, c: c, parent: ctx, ctx: tctx, chain: chain, key: key, done: func() { cancel(); chain.Close() }}
	if t.chainID, err = chain.ChainID(tctx); err != nil {
		t.done()
		return nil, t.fail(fmt.Errorf("chain ID: %w", err))
	}
	return t, nil
}

// fail returns err for the command, saying so when --timeout cut it short, and naming
// the account to fund when the chain says it cannot pay.
func (t *ledgerTx) fail(err error) error {
	if t.parent.Err() == nil && errors.Is(t.ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: not done within --timeout %v (is the chain producing blocks, and the account funded?): %w", t.cmd, t.c.Duration("timeout"), err)
	}
	if strings.Contains(err.Error(), "insufficient funds") {
		return fmt.Errorf("%s: %w (fund the account %s of --key-file on chain %s)", t.cmd, err, ledger.Address(t.key).Hex(), t.chainID)
	}
	return fmt.Errorf("%s: %w", t.cmd, err)
}

func runLedgerDeploy(ctx context.Context, c *ucli.Command) error {
	t, err := newLedgerTx(ctx, c, "ledger deploy")
	if err != nil {
		return err
	}
	defer t.done()
	contract, err := ledger.Deploy(t.ctx, t.chain, t.key)
	if err != nil {
		return t.fail(err)
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: deployed IssuanceLog at %s on chain %s, owned by %s\n"+
		"polyroot: next, register each DTA's log (polyroot ledger register), and name the chain and the contract in the trust bundle: bundle assemble … --chain-id %s --contract %s\n",
		contract.Hex(), t.chainID, ledger.Address(t.key).Hex(), t.chainID, contract.Hex())
	_, err = fmt.Fprintln(c.Root().Writer, contract.Hex())
	return err
}

func runLedgerRegister(ctx context.Context, c *ucli.Command) error {
	const cmd = "ledger register"
	contract, err := parseAddress(cmd, "contract", c.String("contract"))
	if err != nil {
		return err
	}
	anchorer, err := parseAddress(cmd, "anchorer", c.String("anchorer"))
	if err != nil {
		return err
	}
	origin := c.String("origin")
	if origin == "" {
		return fmt.Errorf("%s: --origin is required: the log_origin of the DTA's record", cmd)
	}
	t, err := newLedgerTx(ctx, c, cmd)
	if err != nil {
		return err
	}
	defer t.done()
	if err := checkCode(t.ctx, t.chain, contract); err != nil {
		return t.fail(err)
	}
	if err := ledger.Register(t.ctx, t.chain, t.key, contract, origin, anchorer); err != nil {
		return t.fail(err)
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: %s may now anchor the log %s in %s on chain %s\n", anchorer.Hex(), origin, contract.Hex(), t.chainID)
	return nil
}

// parseAddress parses a non-zero address given with flag.
func parseAddress(cmd, flag, s string) (common.Address, error) {
	if !common.IsHexAddress(s) || common.HexToAddress(s) == (common.Address{}) {
		return common.Address{}, fmt.Errorf("%s: --%s %q: want an address (0x and 40 hex digits, not zero)", cmd, flag, s)
	}
	return common.HexToAddress(s), nil
}
