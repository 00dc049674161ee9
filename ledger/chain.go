package ledger

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// Chain is what the anchorer and the helpers here need from an Ethereum chain. Both
// chains polyroot uses satisfy it:
//
//   - rpc: *ethclient.Client, from Dial (any EVM JSON-RPC endpoint);
//   - embedded: the Client() of go-ethereum's simulated backend (NewEmbedded), in
//     process and in memory.
type Chain interface {
	bind.ContractBackend
	ethereum.BlockNumberReader
	ethereum.ChainIDReader
	ethereum.TransactionReader
}

var (
	_ Chain = (*ethclient.Client)(nil)
	_ Chain = (simulated.Client)(nil)
)

// Dial connects to an EVM JSON-RPC endpoint (http(s):// or ws(s)://): the rpc chain.
// A provider's API key often sits in the URL's path or query: no error of the client
// (nor of Dial) holds more of the URL than RedactURL leaves. Over HTTP that is because
// go-ethereum only sees the redacted URL; over WebSocket it dials the real one, whose
// dialer and calls name no URL (TestDialKeepsTheWebSocketURLSecret holds them to it).
func Dial(ctx context.Context, rawURL string) (*ethclient.Client, error) {
	// Over HTTP, an endpoint that never answers or answers without end is cut off:
	// each request has DefaultChainCallTimeout, each answer maxRPCResponse bytes.
	hc := limitedClient(&http.Client{Timeout: DefaultChainCallTimeout}, maxRPCResponse)
	dialURL := rawURL
	if u, err := url.Parse(rawURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		// go-ethereum's client sees the redacted URL, and so do the errors that
		// net/http makes from it; the transport sends each request to the real one.
		dialURL = RedactURL(rawURL)
		hc.Transport = secretURLTransport{hc.Transport, u}
	}
	c, err := rpc.DialOptions(ctx, dialURL, rpc.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("ledger: connecting to the chain at %s: %w", RedactURL(rawURL), err)
	}
	return ethclient.NewClient(c), nil
}

// RedactURL returns what of an RPC URL may be shown: its scheme and host, and "/…" in
// place of any path, query or user information (where providers put API keys).
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(an RPC URL that does not parse)"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/…"
	}
	return out
}

// secretURLTransport sends every request to url, whatever URL the request names.
type secretURLTransport struct {
	base http.RoundTripper
	url  *url.URL
}

func (t secretURLTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	u := *t.url
	r.URL, r.Host = &u, ""
	if u.User != nil {
		pass, _ := u.User.Password()
		r.SetBasicAuth(u.User.Username(), pass)
		r.URL.User = nil
	}
	return t.base.RoundTrip(r)
}

// maxRPCResponse bounds one JSON-RPC answer read over HTTP: eth_getLogs of a block
// range of anchors is the largest an auditor asks for.
const maxRPCResponse = 32 << 20

// Deploy deploys IssuanceLog from key's account, which becomes the contract's owner,
// waits until it is mined and returns its address.
func Deploy(ctx context.Context, backend Chain, key *ecdsa.PrivateKey) (common.Address, error) {
	opts, err := transactOpts(ctx, backend, key)
	if err != nil {
		return common.Address{}, err
	}
	addr, tx, err := bind.DeployContract(opts, common.FromHex(IssuanceLogMetaData.Bin), backend, nil)
	if err != nil {
		return common.Address{}, fmt.Errorf("ledger: deploying IssuanceLog: %w", err)
	}
	if _, err := waitSuccess(ctx, backend, tx.Hash()); err != nil {
		return common.Address{}, fmt.Errorf("ledger: deploying IssuanceLog: %w", err)
	}
	return addr, nil
}

// Register makes anchorer the address allowed to anchor the log logOrigin on the
// IssuanceLog at contract; ownerKey must be the contract owner's. It waits until the
// transaction is mined.
func Register(ctx context.Context, backend Chain, ownerKey *ecdsa.PrivateKey, contract common.Address, logOrigin string, anchorer common.Address) error {
	opts, err := transactOpts(ctx, backend, ownerKey)
	if err != nil {
		return err
	}
	tx, err := bind.Transact(Binding().Instance(backend, contract), opts, Binding().PackRegister(LogID(logOrigin), anchorer))
	if err != nil {
		if _, ok := Revert(err).(*IssuanceLogNotOwner); ok {
			return fmt.Errorf("ledger: registering %q: %s is not the owner of the contract %s", logOrigin, opts.From, contract)
		}
		return fmt.Errorf("ledger: registering %q: %w", logOrigin, err)
	}
	if _, err := waitSuccess(ctx, backend, tx.Hash()); err != nil {
		return fmt.Errorf("ledger: registering %q: %w", logOrigin, err)
	}
	return nil
}

// Fund sends wei from key's account to to (a plain transfer) and waits until it is
// mined: how a devnet pays for its DTAs' anchoring transactions.
func Fund(ctx context.Context, backend Chain, key *ecdsa.PrivateKey, to common.Address, wei *big.Int) error {
	opts, err := transactOpts(ctx, backend, key)
	if err != nil {
		return err
	}
	// A plain transfer to an account without code costs exactly 21,000 gas; bind would
	// refuse to estimate it (no code) and Transfer would want an ABI with a receive function.
	opts.Value, opts.GasLimit = wei, params.TxGas
	tx, err := bind.NewBoundContract(to, abi.ABI{}, backend, backend, backend).RawTransact(opts, nil)
	if err != nil {
		return fmt.Errorf("ledger: funding %s: %w", to, err)
	}
	if _, err := waitSuccess(ctx, backend, tx.Hash()); err != nil {
		return fmt.Errorf("ledger: funding %s: %w", to, err)
	}
	return nil
}

// Address returns the Ethereum address of key.
func Address(key *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(key.PublicKey) }

func transactOpts(ctx context.Context, backend Chain, key *ecdsa.PrivateKey) (*bind.TransactOpts, error) {
	id, err := backend.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: chain ID: %w", err)
	}
	opts := bind.NewKeyedTransactor(key, id)
	opts.Context = ctx
	return opts, nil
}

// waitSuccess waits until the transaction hash is mined and checks it succeeded.
func waitSuccess(ctx context.Context, backend Chain, hash common.Hash) (*types.Receipt, error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		rcpt, err := backend.TransactionReceipt(ctx, hash)
		if err == nil {
			if rcpt.Status != types.ReceiptStatusSuccessful {
				// Gas used equal to the limit is an out-of-gas failure (the estimate was
				// too low); less, a revert.
				limit := "?"
				if tx, _, err := backend.TransactionByHash(ctx, hash); err == nil {
					limit = strconv.FormatUint(tx.Gas(), 10)
				}
				return rcpt, fmt.Errorf("transaction %s failed on chain (block %d, gas used %d of %s)", hash, rcpt.BlockNumber, rcpt.GasUsed, limit)
			}
			return rcpt, nil
		}
		if !errors.Is(err, ethereum.NotFound) && !indexing(err) {
			return nil, fmt.Errorf("receipt of %s: %w", hash, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s to be mined: %w", hash, ctx.Err())
		case <-t.C:
		}
	}
}

// indexing reports whether err is a node's "transaction indexing is in progress": the
// node does not know yet whether it has the transaction; ask again later.
func indexing(err error) bool {
	return err != nil && strings.Contains(err.Error(), "transaction indexing is in progress")
}

// LoadKeyFile reads the private key of the rpc chain's account: a file holding the key
// as 64 hex digits (an optional 0x and surrounding white space allowed). The file must
// not be readable or writable by group or others (mode 0600 or stricter). Errors never
// quote the file's content.
func LoadKeyFile(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: chain key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ledger: chain key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("ledger: chain key file %s has mode %04o: it must not be accessible to group or others (chmod 600 %s)", path, perm, path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: chain key file: %w", err)
	}
	s := strings.TrimSpace(string(raw))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	key, err := crypto.HexToECDSA(s)
	if err != nil {
		return nil, fmt.Errorf("ledger: chain key file %s does not hold a secp256k1 private key as 64 hex digits", path)
	}
	return key, nil
}

// Embedded is the embedded chain: go-ethereum's simulated backend (chain ID 1337) in
// this process, with a goroutine that seals blocks.
//
// It is in memory: its blocks, the deployed contract and every anchor vanish when the
// process ends, and whoever runs the process controls the chain. It demonstrates the
// mechanism (devnet, demo, tests); it gives no protection against the operator.
type Embedded struct {
	sim  *simulated.Backend
	key  *ecdsa.PrivateKey
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// embeddedTrailing is how many empty blocks the embedded chain seals after a block
// with transactions, so that anchors get their confirmations; an idle chain then
// stops growing.
const embeddedTrailing = 16

// NewEmbedded starts an in-memory chain whose genesis funds a fresh key (Key) and the
// funded addresses with 1000 ether each. Every period (default 1 s) it seals a block
// when transactions wait in its pool, or one of the last 16 blocks had one (so that
// anchors get their confirmations): an idle chain does not grow.
func NewEmbedded(period time.Duration, funded ...common.Address) (*Embedded, error) {
	return NewEmbeddedRPC(period, "", funded...)
}

// NewEmbeddedRPC is NewEmbedded with the chain also served over JSON-RPC on HTTP at
// listen (host:port, meant for loopback; "": not served), with the eth, net and web3
// methods, so that an auditor or a client outside the process can read it (polyroot
// audit, client verify-issuance --fetch, ledger deploy); a transaction sent there is
// mined as one sent through Chain().
func NewEmbeddedRPC(period time.Duration, listen string, funded ...common.Address) (_ *Embedded, err error) {
	if period <= 0 {
		period = time.Second
	}
	var options []func(*node.Config, *ethconfig.Config)
	if listen != "" {
		host, p, err := net.SplitHostPort(listen)
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil || host == "" || port <= 0 {
			return nil, fmt.Errorf("ledger: embedded chain: JSON-RPC address %q: want host:port", listen)
		}
		options = append(options, func(nc *node.Config, _ *ethconfig.Config) {
			nc.HTTPHost, nc.HTTPPort, nc.HTTPModules = host, port, []string{"eth", "net", "web3"}
		})
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	balance := new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	alloc := types.GenesisAlloc{Address(key): {Balance: balance}}
	for _, a := range funded {
		alloc[a] = types.Account{Balance: balance}
	}
	// The simulated backend panics when its node does not start, as when the
	// JSON-RPC address is in use.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("ledger: embedded chain: %v", r)
		}
	}()
	e := &Embedded{sim: simulated.NewBackend(alloc, options...), key: key, stop: make(chan struct{}), done: make(chan struct{})}
	go e.seal(period)
	return e, nil
}

func (e *Embedded) seal(period time.Duration) {
	defer close(e.done)
	t := time.NewTicker(period)
	defer t.Stop()
	trailing := embeddedTrailing
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		switch {
		case e.pending():
			trailing = 0
		case trailing < embeddedTrailing:
			trailing++
		default:
			continue
		}
		e.sim.Commit()
	}
}

// pending reports whether transactions wait in the pool, from this process or from the
// JSON-RPC endpoint.
func (e *Embedded) pending() bool {
	n, err := e.sim.Client().PendingTransactionCount(context.Background())
	return err == nil && n > 0
}

// Chain returns the client of the embedded chain.
func (e *Embedded) Chain() Chain { return e.sim.Client() }

// Key returns the chain's funded key: the contract owner and, in a single DTA
// process, its anchorer.
func (e *Embedded) Key() *ecdsa.PrivateKey { return e.key }

// Close stops sealing and discards the chain.
func (e *Embedded) Close() error {
	var err error
	e.once.Do(func() {
		close(e.stop)
		<-e.done
		err = e.sim.Close()
	})
	return err
}
