// Package devnet runs a whole local domain in one process: three DTAs (additive), the
// auth server and one shared embedded chain, each on its own loopback listener. It is
// what `polyroot devnet --dir D` does.
//
// The devnet is for local use only: it serves plain HTTP on loopback, and the
// keystores' passphrase, the registrar key, the chain keys and the admin token are
// generated and stored in D (mode 0600). On a restart on the same D everything is
// reused (keys, bundle, logs, server state); the embedded chain lives in memory, so it
// is new on each start and the anchorers anchor the logs again.
package devnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/servercmd"
	"github.com/polyroot/polyroot/ledger"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// Domain is the devnet's domain name; N its number of DTAs.
const (
	Domain = "devnet.localhost"
	N      = 3
)

// Options configures Run.
type Options struct {
	Dir        string
	BasePort   int          // 0: free ports on first start (then reused from devnet.json)
	ScryptLogN int          // keystore work factor; 0: default
	Logger     *slog.Logger // default: discard
	Out        io.Writer    // the summary and next commands; default discard
}

// Info is devnet.json.
type Info struct {
	Domain      string   `json:"domain"`
	ServerURL   string   `json:"server_url"`
	DTAURLs     []string `json:"dta_urls"`
	Chain       string   `json:"chain"`
	Contract    string   `json:"contract"`
	Bundle      string   `json:"bundle"`
	Fingerprint string   `json:"bundle_fingerprint"`
	AdminToken  string   `json:"admin_token_file"`
}

func secretFile(path string, gen func() (string, error)) (string, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return string(raw), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	return s, os.WriteFile(path, []byte(s), 0o600)
}

func randHex(n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		_, err := rand.Read(b)
		return hex.EncodeToString(b), err
	}
}

func freeAddr(port int) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitUp(ctx context.Context, addr string) error {
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

// Run sets the devnet up in opts.Dir (first start) or reuses it, serves until ctx is
// cancelled, then stops every service.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	d := opts.Dir
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	p := func(name string) string { return filepath.Join(d, name) }
	pass, err := secretFile(p("passphrase"), randHex(24))
	if err != nil {
		return err
	}
	regHex, err := secretFile(p("registrar.key"), randHex(ed25519.SeedSize))
	if err != nil {
		return err
	}
	seed, err := hex.DecodeString(regHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("devnet: %s is not a registrar seed", p("registrar.key"))
	}
	reg := ed25519.NewKeyFromSeed(seed)
	admin, err := secretFile(p("admin-token"), randHex(24))
	if err != nil {
		return err
	}
	var kopts []keystore.FileOption
	if opts.ScryptLogN > 0 {
		kopts = append(kopts, keystore.WithScryptWorkFactor(opts.ScryptLogN))
	}
	open := func(dir string) (keystore.Keystore, error) {
		return keystore.OpenFile(filepath.Join(d, dir, "keys"), []byte(pass), kopts...)
	}

	// Addresses: from devnet.json on a restart, else base port or free ports.
	var info Info
	if raw, err := os.ReadFile(p("devnet.json")); err == nil {
		if err := json.Unmarshal(raw, &info); err != nil {
			return fmt.Errorf("devnet: %s: %w", p("devnet.json"), err)
		}
	} else {
		info = Info{Domain: Domain}
		port := func(i int) int {
			if opts.BasePort == 0 {
				return 0
			}
			return opts.BasePort + i
		}
		a, err := freeAddr(port(0))
		if err != nil {
			return err
		}
		info.ServerURL = "http://" + a
		for i := 1; i <= N; i++ {
			a, err := freeAddr(port(i))
			if err != nil {
				return err
			}
			info.DTAURLs = append(info.DTAURLs, "http://"+a)
		}
	}
	info.Chain, info.Bundle, info.AdminToken = dtacmd.ChainEmbedded, p("bundle.json"), p("admin-token")

	keys := make([]keystore.Keystore, N)
	for i := range keys {
		if keys[i], err = open("dta-" + strconv.Itoa(i+1)); err != nil {
			return err
		}
	}
	// Bundle: made once.
	if _, err := os.Stat(p("bundle.json")); errors.Is(err, os.ErrNotExist) {
		b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: Domain, Mode: "additive",
			Threshold: N, PermitPeriod: 3600, RegistrarKey: hex.EncodeToString(reg.Public().(ed25519.PublicKey))}
		for i := range N {
			rec, err := dta.Init(ctx, keys[i], Domain, uint32(i+1), info.DTAURLs[i])
			if err != nil {
				return err
			}
			b.DTAs = append(b.DTAs, *rec)
		}
		file, fp, err := bundle.Sign(b, reg)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p("bundle.sha256"), []byte(fp+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(p("bundle.json"), file, 0o644); err != nil {
			return err
		}
	}
	b, fp, err := dtacmd.ReadBundle(p("bundle.json"))
	if err != nil {
		return err
	}
	info.Fingerprint = fp

	// The chain: one embedded backend, the contract deployed once, each DTA's log
	// registered for its own anchoring key.
	akeys := make([]*ecdsa.PrivateKey, N)
	var funded []common.Address
	for i := range N {
		h, err := secretFile(p("anchor-"+strconv.Itoa(i+1)+".key"), randHex(32))
		if err != nil {
			return err
		}
		if akeys[i], err = crypto.HexToECDSA(h); err != nil {
			return err
		}
		funded = append(funded, ledger.Address(akeys[i]))
	}
	chain, err := ledger.NewEmbedded(time.Second, funded...)
	if err != nil {
		return err
	}
	defer chain.Close()
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	contract, err := ledger.Deploy(sctx, chain.Chain(), chain.Key())
	for i := 0; err == nil && i < N; i++ {
		rec, _ := b.Find(uint32(i + 1))
		err = ledger.Register(sctx, chain.Chain(), chain.Key(), contract, rec.LogOrigin, ledger.Address(akeys[i]))
	}
	cancel()
	if err != nil {
		return fmt.Errorf("devnet: embedded chain: %w", err)
	}
	info.Contract = contract.Hex()

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, N+1)
	for i := range N {
		wg.Go(func() {
			err := dtacmd.Serve(sctx, dtacmd.Config{
				Listen: info.DTAURLs[i][len("http://"):], BundleFile: p("bundle.json"), Index: uint32(i + 1),
				DataDir: filepath.Join(d, "dta-"+strconv.Itoa(i+1), "data"), Keys: keys[i],
				Logger: opts.Logger.With("dta", i+1), Chain: dtacmd.ChainEmbedded,
				Anchoring: dtacmd.Anchoring{Period: 10 * time.Second, Contract: info.Contract, Shared: chain.Chain(), SharedKey: akeys[i]},
			})
			if err != nil {
				errs <- fmt.Errorf("DTA %d: %w", i+1, err)
				stop()
			}
		})
	}
	fail := func(err error) error { stop(); wg.Wait(); return err }
	for _, u := range info.DTAURLs {
		if err := waitUp(sctx, u[len("http://"):]); err != nil {
			return fail(errors.Join(err, drain(errs)))
		}
	}
	sks, err := open("server")
	if err != nil {
		return fail(err)
	}
	if _, err := sks.Get(ctx, server.SecretServerKey); errors.Is(err, keystore.ErrNotFound) {
		sQ, err := server.Provision(ctx, b, reg, nil)
		if err != nil {
			return fail(err)
		}
		if err := sks.Put(ctx, server.SecretServerKey, sQ.Bytes()); err != nil {
			return fail(err)
		}
	} else if err != nil {
		return fail(err)
	}
	wg.Go(func() {
		err := servercmd.Serve(sctx, servercmd.Config{
			Listen: info.ServerURL[len("http://"):], BundleFile: p("bundle.json"), RegistrarKey: reg, Keys: sks,
			AdminToken: admin, DataDir: filepath.Join(d, "server", "data"), Logger: opts.Logger.With("service", "server"),
		})
		if err != nil {
			errs <- fmt.Errorf("auth server: %w", err)
			stop()
		}
	})
	if err := waitUp(sctx, info.ServerURL[len("http://"):]); err != nil {
		return fail(errors.Join(err, drain(errs)))
	}
	raw, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(p("devnet.json"), append(raw, '\n'), 0o644); err != nil {
		return fail(err)
	}
	printNext(opts.Out, info)
	<-sctx.Done()
	wg.Wait()
	return drain(errs)
}

func drain(errs chan error) error {
	var all []error
	for {
		select {
		case err := <-errs:
			all = append(all, err)
		default:
			return errors.Join(all...)
		}
	}
}

func printNext(w io.Writer, info Info) {
	fmt.Fprintf(w, "polyroot devnet of %s ready (local use only: plain HTTP on loopback, secrets in %s)\n", info.Domain, filepath.Dir(info.Bundle))
	fmt.Fprintf(w, "  auth server: %s\n", info.ServerURL)
	for i, u := range info.DTAURLs {
		fmt.Fprintf(w, "  DTA %d:       %s\n", i+1, u)
	}
	fmt.Fprintf(w, "  chain:       %s (in memory, new on each start), contract %s\n", info.Chain, info.Contract)
	fmt.Fprintf(w, "  bundle:      %s (%s)\n\nNext, in another shell:\n", info.Bundle, info.Fingerprint)
	fmt.Fprintf(w, "  POLYROOT_ADMIN_TOKEN=$(cat %s) polyroot server enrol --server %s --insecure-http alice@example.com\n", info.AdminToken, info.ServerURL)
	fmt.Fprintf(w, "  polyroot client bootstrap --dir alice --bundle %s --fingerprint %s\n", info.Bundle, info.Fingerprint)
	fmt.Fprintf(w, "  polyroot client enroll --dir alice --server %s --insecure-http --code CODE --pin-stdin\n", info.ServerURL)
	fmt.Fprintf(w, "  polyroot client login --dir alice --server %s --insecure-http --pin-stdin\n", info.ServerURL)
}
