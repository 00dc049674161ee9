package cli

// Resharing: dkg session --reshare-from (the registrar), dta reshare (each DTA of the
// old and the new committee) and dta retire (a DTA the resharing left out erases its
// share once the new bundle is live). Activation of the new shares is dta.ActivateShare,
// when a DTA loads the successor bundle.

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// reshareEpoch is the epoch of a resharing from a bundle of serial serial: the first
// key generation is epoch 1 and its bundle serial 0, and each resharing's successor
// bundle takes the next serial, so the sharing a bundle names has epoch serial+1 and
// the next one serial+2.
func reshareEpoch(serial uint64) uint64 { return serial + 2 }

// readBundleFile reads and verifies a signed trust bundle.
func readBundleFile(path string) (*bundle.Bundle, []byte, error) {
	raw, err := readSmallFile(path)
	if err != nil {
		return nil, nil, err
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, raw, nil
}

// reshareSessionFile builds the session of a resharing from the bundle at from: the
// old committee (every DTA of the bundle but those in skip) deals, the members are the
// new committee.
func reshareSessionFile(c *ucli.Command, from string) (*dkgnet.SessionFile, error) {
	old, _, err := readBundleFile(from)
	if err != nil {
		return nil, fmt.Errorf("--reshare-from: %w", err)
	}
	if old.Mode != "threshold" {
		return nil, fmt.Errorf("--reshare-from %s: a %s bundle; only a threshold bundle can be reshared", from, old.Mode)
	}
	domain := c.String("domain")
	if domain != "" && domain != old.Domain {
		return nil, fmt.Errorf("--domain %s, but %s is a bundle of %s", domain, from, old.Domain)
	}
	pk, err := old.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("--reshare-from %s: %w", from, err)
	}
	skip := map[uint32]bool{}
	for _, s := range c.StringSlice("skip-dealer") {
		i, err := strconv.ParseUint(s, 10, 32)
		if _, ok := old.Find(uint32(i)); err != nil || !ok {
			return nil, fmt.Errorf("--skip-dealer %q: not a DTA index of %s", s, from)
		}
		skip[uint32(i)] = true
	}
	dealerURL := map[uint32]string{}
	for _, d := range c.StringSlice("dealer-url") {
		is, u, ok := strings.Cut(d, "=")
		i, err := strconv.ParseUint(is, 10, 32)
		if _, found := old.Find(uint32(i)); !ok || err != nil || !found {
			return nil, fmt.Errorf("--dealer-url %q: want INDEX=URL with the index of a DTA of %s", d, from)
		}
		dealerURL[uint32(i)] = u
	}
	f := &dkgnet.SessionFile{Version: 1, Domain: old.Domain, Epoch: reshareEpoch(old.Serial), Threshold: c.Int("threshold")}
	if c.IsSet("epoch") {
		f.Epoch = c.Uint64("epoch")
	}
	if f.Threshold == 0 {
		f.Threshold = old.Threshold
	}
	if f.Members, err = sessionMembers(c.StringSlice("member"), old.Domain, old); err != nil {
		return nil, err
	}
	r := &dkgnet.SessionReshare{Threshold: old.Threshold, PublicKey: hex.EncodeToString(pk.Bytes())}
	for _, d := range old.DTAs {
		if skip[d.Index] {
			continue
		}
		m := dkgnet.SessionMember{Index: d.Index, SigningKey: d.SigningKey, URL: dealerURL[d.Index]}
		if k := slices.IndexFunc(f.Members, func(n dkgnet.SessionMember) bool { return n.SigningKey == d.SigningKey }); k >= 0 {
			if m.URL != "" && m.URL != f.Members[k].URL {
				return nil, fmt.Errorf("--dealer-url %d=%s: DTA %d stays a member, with the URL of its --member", d.Index, m.URL, d.Index)
			}
			m.URL = f.Members[k].URL
		}
		if m.URL == "" {
			return nil, fmt.Errorf("old DTA %d leaves the committee: give the URL of its board with --dealer-url %d=URL, or --skip-dealer %d if it cannot take part", d.Index, d.Index, d.Index)
		}
		r.Dealers = append(r.Dealers, m)
		r.Commitments = append(r.Commitments, d.Commitment)
	}
	if len(r.Dealers) < old.Threshold {
		return nil, fmt.Errorf("only %d old DTAs deal; the resharing needs at least the old threshold, %d", len(r.Dealers), old.Threshold)
	}
	f.Reshare = r
	return f, nil
}

// sessionMembers reads the members' RECORD=URL arguments. With old (a resharing), a
// record whose index is in old must carry that DTA's signing key (the DTA stays), and a
// new DTA takes an index and a key that old does not have.
func sessionMembers(members []string, domain string, old *bundle.Bundle) ([]dkgnet.SessionMember, error) {
	var out []dkgnet.SessionMember
	from := map[uint32]string{}
	for _, m := range members {
		i := strings.Index(m, "=http")
		if i <= 0 {
			return nil, fmt.Errorf("--member %q: want RECORD=URL, e.g. dta-1.json=https://dta1.example.net:9443", m)
		}
		path, url := m[:i], m[i+1:]
		rec, err := readDKGRecord(path, domain)
		if err != nil {
			return nil, err
		}
		if other, dup := from[rec.Index]; dup {
			return nil, fmt.Errorf("records %s and %s are both DTA %d", other, path, rec.Index)
		}
		from[rec.Index] = path
		if old != nil {
			if d, ok := old.Find(rec.Index); ok && d.SigningKey != rec.SigningKey {
				return nil, fmt.Errorf("record %s: DTA %d of the current bundle has another signing key (a new DTA takes an index the bundle does not use)", path, rec.Index)
			}
			for _, d := range old.DTAs {
				if d.SigningKey == rec.SigningKey && d.Index != rec.Index {
					return nil, fmt.Errorf("record %s: its signing key is DTA %d's in the current bundle: a DTA keeps its index", path, d.Index)
				}
			}
		}
		out = append(out, dkgnet.SessionMember{Index: rec.Index, SigningKey: rec.SigningKey, URL: url})
	}
	slices.SortFunc(out, func(a, b dkgnet.SessionMember) int { return int(a.Index) - int(b.Index) })
	return out, nil
}

func dtaReshareCommand() *ucli.Command {
	file := &configFile{}
	return &ucli.Command{
		Name:  "reshare",
		Usage: "take part in a resharing of the domain key: deal the current master share, receive a new one (pending until the new bundle)",
		UsageText: "polyroot dta reshare [--config FILE] [keystore flags] --session FILE --record FILE --listen HOST:PORT\n" +
			"       [--start-timeout 5m] [--round-timeout 30s] --transcript-out FILE [--record-out FILE] [--discard-pending]\n\n" +
			"Example (on each DTA of the old and of the new committee, all within --start-timeout):\n" +
			"   polyroot dta reshare --config /etc/polyroot/dta-1.toml --session reshare.json --record dta-1.json \\\n" +
			"       --listen 0.0.0.0:9443 --transcript-out transcript-2.json --record-out dta-1.reshare.json",
		Description: "Runs this DTA's part of the resharing the registrar described (polyroot dkg session\n" +
			"--reshare-from): a DTA of the current bundle deals its master share, a DTA of the new\n" +
			"committee receives a new share of the same key. The domain key does not change; the\n" +
			"new shares are a fresh polynomial, useless with the old ones.\n\n" +
			"Only when every DTA confirmed the same transcript is the new share stored, as the\n" +
			"PENDING share (keystore name " + dta.SecretMasterShareNext + "): the active share is not touched and the\n" +
			"DTA keeps serving the current bundle. The DTA activates the new share, and erases\n" +
			"the old one, when it loads a bundle with its new commitment (dta serve, or SIGHUP\n" +
			"after the registrar's bundle assemble --successor-of). On any error nothing is\n" +
			"stored. A DTA that deals but is not a new member stores nothing and keeps its old\n" +
			"share until the new bundle is live: then erase it with polyroot dta retire.\n" +
			"--record is this DTA's record: from the current bundle, or from dta init --dkg for a\n" +
			"new DTA; --record-out (members) gets it with the new commitment.",
		Flags: ceremonyFlags(file, "the session `FILE` from the registrar (polyroot dkg session --reshare-from)",
			"this DTA's record `FILE`", "write the DTA's record with its new commitment to `FILE` (members of the new committee)",
			&ucli.BoolFlag{Name: "discard-pending", Usage: "replace a pending share of an earlier resharing that no bundle adopted"}),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			return dtaReshare(ctx, c)
		},
	}
}

func dtaReshare(ctx context.Context, c *ucli.Command) error {
	sessPath, recPath, listen := c.String("session"), c.String("record"), c.String("listen")
	trOut, recOut := c.String("transcript-out"), c.String("record-out")
	for _, f := range []struct{ v, name string }{{sessPath, "session"}, {recPath, "record"}, {listen, "listen"}, {trOut, "transcript-out"}} {
		if f.v == "" {
			return fmt.Errorf("dta reshare: --%s is required", f.name)
		}
	}
	p, err := openCeremony(ctx, c, "dta reshare", true)
	if err != nil {
		return err
	}
	sf, rec, ks, desc, logger := p.session, p.record, p.ks, p.desc, p.logger
	var member, dealer *dkgnet.SessionMember
	for k := range sf.Members {
		if sf.Members[k].SigningKey == rec.SigningKey && sf.Members[k].Index == rec.Index {
			member = &sf.Members[k]
		}
	}
	for k, d := range sf.Reshare.Dealers {
		if d.SigningKey == rec.SigningKey && d.Index == rec.Index {
			dealer = &sf.Reshare.Dealers[k]
		}
	}
	if member == nil && dealer == nil {
		return fmt.Errorf("dta reshare: the session has no DTA %d with the signing key of %s", rec.Index, recPath)
	}
	outs := []string{trOut}
	if member != nil {
		if recOut == "" {
			return fmt.Errorf("dta reshare: --record-out is required: DTA %d is a member of the new committee", rec.Index)
		}
		outs = append(outs, recOut)
	}
	for _, out := range outs {
		if err := checkWritable(out); err != nil {
			return fmt.Errorf("dta reshare: %s: %w", out, err)
		}
	}
	if member != nil && !c.Bool("discard-pending") {
		if _, err := ks.Get(ctx, dta.SecretMasterShareNext); err == nil {
			return fmt.Errorf("dta reshare: %s holds the pending share of an earlier resharing; if no bundle adopted it, rerun with --discard-pending", desc)
		} else if !errors.Is(err, keystore.ErrNotFound) {
			return fmt.Errorf("dta reshare: %w", err)
		}
	}
	var oldShare *pairing.Scalar
	if dealer != nil {
		k := slices.IndexFunc(sf.Reshare.Dealers, func(d dkgnet.SessionMember) bool { return d == *dealer })
		dr := &bundle.DTA{Index: dealer.Index, Commitment: sf.Reshare.Commitments[k]}
		// The active share must be the one the session's bundle names (ActivateShare
		// with that commitment: it also finishes an interrupted promotion).
		if oldShare, err = dta.ActivateShare(ctx, ks, dr, logger); err != nil {
			return fmt.Errorf("dta reshare: DTA %d deals: %w (is the session made from the bundle this DTA serves?)", rec.Index, err)
		}
		defer oldShare.Set(new(pairing.Scalar))
	}

	board, addr, stop, err := p.serveBoard(c, "dta reshare")
	if err != nil {
		return err
	}
	defer stop()
	role := "deals its share and receives a new one"
	switch {
	case member == nil:
		role = "deals its share and leaves the committee"
	case dealer == nil:
		role = "joins the committee"
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: resharing epoch %d, %d of %d → %d of %d; this DTA %s; board on %s; waiting for the others\n",
		rec.Index, sf.Domain, sf.Epoch, sf.Reshare.Threshold, len(sf.Reshare.Dealers), sf.Threshold, len(sf.Members), role, addr)

	res, err := p.run(ctx, c, board, dkgnet.Config{OldShare: oldShare})
	if err != nil {
		return fmt.Errorf("dta reshare: %w; nothing was stored", err)
	}
	trJSON, err := jsonIndent(res.Transcript)
	if err != nil {
		return err
	}
	if res.Share == nil {
		if err := writeFileAtomic(trOut, trJSON, 0o644); err != nil {
			return fmt.Errorf("dta reshare: %w", err)
		}
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: resharing complete; this DTA is not in the new committee and keeps its old share "+
			"until the new bundle is live: then run polyroot dta retire; transcript written to %s\n", rec.Index, sf.Domain, trOut)
		return nil
	}
	err = ks.Put(ctx, dta.SecretMasterShareNext, res.Share.Bytes())
	res.Share.Set(new(pairing.Scalar))
	if err != nil {
		return fmt.Errorf("dta reshare: the resharing completed but the new share could not be stored: %w; the active share is unchanged", err)
	}
	out := *rec
	out.Commitment = hex.EncodeToString(res.Commitment.Bytes())
	recJSON, err := jsonIndent(&out)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(trOut, trJSON, 0o644); err != nil {
		return fmt.Errorf("dta reshare: the pending share is stored but the transcript could not be written: %w", err)
	}
	if err := writeFileAtomic(recOut, recJSON, 0o644); err != nil {
		return fmt.Errorf("dta reshare: the pending share is stored but the record could not be written: %w", err)
	}
	for _, f := range res.Transcript.DKG.Result.Faults {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: %s\n", f)
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: resharing complete, %d of %d, qualified dealers %v; new share PENDING in %s "+
		"(active once this DTA loads a bundle with its new commitment); transcript written to %s, record to %s\n",
		rec.Index, sf.Domain, sf.Threshold, len(sf.Members), res.Transcript.DKG.Result.Qualified, desc, trOut, recOut)
	return nil
}

func jsonIndent(v any) ([]byte, error) {
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(js, '\n'), nil
}

func dtaRetireCommand() *ucli.Command {
	file := &configFile{}
	return &ucli.Command{
		Name:  "retire",
		Usage: "erase the master shares of a DTA that a resharing left out, once the new bundle is live",
		UsageText: "polyroot dta retire [--config FILE] [keystore flags] --record FILE --bundle CURRENT.json --successor NEW.json\n\n" +
			"Example:\n" +
			"   polyroot dta retire --config /etc/polyroot/dta-5.toml --record dta-5.json --bundle bundle-1.json --successor bundle-2.json",
		Description: "Erases this DTA's master share (and any pending one) from its keystore, every\n" +
			"version. It checks first that --successor is a registrar-signed successor of --bundle\n" +
			"(same domain, registrar and public key, a greater serial), that --bundle names this\n" +
			"DTA's share, and that --successor does not list this DTA. Run it only once the\n" +
			"successor bundle is published and the other DTAs serve it: before that, the old\n" +
			"committee still needs this share if the resharing is not adopted. The signing key\n" +
			"stays (the DTA's log keeps being served and verified).",
		Flags: append([]ucli.Flag{
			configFlag(file),
			&ucli.StringFlag{Name: "record", Aliases: []string{"r"}, Usage: "this DTA's record `FILE`", TakesFile: true},
			&ucli.StringFlag{Name: "bundle", Usage: "the `FILE` of the bundle this DTA served", TakesFile: true},
			&ucli.StringFlag{Name: "successor", Usage: "the `FILE` of the successor bundle, without this DTA", TakesFile: true},
		}, keystoreFlags(file)...),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			return dtaRetire(ctx, c)
		},
	}
}

func dtaRetire(ctx context.Context, c *ucli.Command) error {
	recPath, oldPath, nextPath := c.String("record"), c.String("bundle"), c.String("successor")
	if recPath == "" || oldPath == "" || nextPath == "" {
		return errors.New("dta retire: --record, --bundle and --successor are required")
	}
	old, _, err := readBundleFile(oldPath)
	if err != nil {
		return fmt.Errorf("dta retire: %w", err)
	}
	nextRaw, err := readSmallFile(nextPath)
	if err != nil {
		return fmt.Errorf("dta retire: %w", err)
	}
	next, err := bundle.ParseSuccessor(old, nextRaw)
	if err != nil {
		return fmt.Errorf("dta retire: %s: %w", nextPath, err)
	}
	rec, err := readDKGRecord(recPath, old.Domain)
	if err != nil {
		return fmt.Errorf("dta retire: %w", err)
	}
	cur, ok := old.Find(rec.Index)
	if !ok || cur.SigningKey != rec.SigningKey {
		return fmt.Errorf("dta retire: %s does not list DTA %d with the key of %s", oldPath, rec.Index, recPath)
	}
	for _, d := range next.DTAs {
		if d.SigningKey == rec.SigningKey {
			return fmt.Errorf("dta retire: %s still lists this DTA (as DTA %d): it is not retired", nextPath, d.Index)
		}
	}
	ks, desc, err := openKeystore(ctx, c, c.Root().ErrWriter)
	if err != nil {
		return fmt.Errorf("dta retire: %w", err)
	}
	key, err := dta.SigningKey(ctx, ks)
	if err != nil {
		return fmt.Errorf("dta retire: %w (%s)", err, desc)
	}
	if hex.EncodeToString(key.Public().(ed25519.PublicKey)) != rec.SigningKey {
		return fmt.Errorf("dta retire: the signing key in %s is not the one in %s", desc, recPath)
	}
	for _, name := range []string{dta.SecretMasterShare, dta.SecretMasterShareNext} {
		if err := ks.Delete(ctx, name); err != nil {
			return fmt.Errorf("dta retire: %w", err)
		}
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s retired: master shares erased from %s (bundle serial %d → %d); stop its dta serve\n",
		rec.Index, old.Domain, desc, old.Serial, next.Serial)
	return nil
}
