package cli

// The distributed key generation commands: dkg session (the registrar), dta dkg (each
// DTA), and bundle assemble --mode threshold's check of the transcript
// (checkDKGTranscript). dta init --dkg is dta.InitForDKG.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// defaultDKGStartTimeout is how long dta dkg waits for the other DTAs to start: their
// operators start them by hand.
const defaultDKGStartTimeout = 5 * time.Minute

// maxDKGFile bounds the session, record and transcript files the commands read.
const maxDKGFile = 32 << 20

// readDKGRecord reads a DTA record for a DKG: as readRecord, but the commitment may be
// empty (dta init --dkg).
func readDKGRecord(path, domain string) (*bundle.DTA, error) {
	raw, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	var rec bundle.DTA
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&rec); err != nil || d.More() {
		return nil, fmt.Errorf("record %s: not a DTA record (the JSON dta init prints)", path)
	}
	switch {
	case rec.Index == 0:
		return nil, fmt.Errorf("record %s: DTA index missing or 0", path)
	case rec.LogOrigin != dta.LogOrigin(domain, rec.Index):
		return nil, fmt.Errorf("record %s: log origin %q is not %q: is it a record of another domain?", path, rec.LogOrigin, dta.LogOrigin(domain, rec.Index))
	}
	if _, err := rec.PublicKey(); err != nil {
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	return &rec, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxDKGFile+1))
	if err == nil && len(raw) > maxDKGFile {
		err = fmt.Errorf("%s is larger than %d bytes", path, maxDKGFile)
	}
	return raw, err
}

func dkgCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "dkg",
		Usage: "prepare a distributed key generation among a domain's DTAs (threshold mode)",
		Description: "In threshold mode (t of n) the DTAs make their master shares together, with no\n" +
			"dealer: each runs polyroot dta dkg with the session file the registrar makes here.\n\n" +
			"Example, the steps in order:\n" +
			"   1. each DTA:      polyroot dta init --dkg … --out dta-i.json   (signing key only)\n" +
			"   2. registrar:     polyroot dkg session --domain D --threshold T --member dta-1.json=https://dta1:9443 … --out session.json\n" +
			"   3. each DTA, all started within dta dkg's --start-timeout (5m) of each other:\n" +
			"                     polyroot dta dkg --session session.json --record dta-i.json --listen :9443 \\\n" +
			"                         --transcript-out transcript.json --record-out dta-i.dkg.json\n" +
			"   4. registrar:     polyroot bundle assemble --mode threshold --threshold T --transcript transcript.json \\\n" +
			"                         --record dta-1.dkg.json … --out bundle.json\n" +
			"   Publish transcript.json beside bundle.json: anyone can verify it.\n\n" +
			"A resharing (same key, new shares, maybe another committee) has a session made with\n" +
			"--reshare-from bundle.json; each DTA of the old and the new committee runs polyroot dta\n" +
			"reshare; the registrar assembles the successor bundle (bundle assemble --successor-of).\n" +
			"See docs/dkg.md.",
		Commands: []*ucli.Command{dkgSessionCommand()},
	}
}

func dkgSessionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "session",
		Usage: "write the session file of a DKG: domain, threshold, epoch, a fresh nonce, and each DTA's key and ceremony URL",
		UsageText: "polyroot dkg session --domain DOMAIN --threshold T [--epoch E] --member RECORD=URL … --out FILE\n" +
			"       polyroot dkg session --reshare-from BUNDLE [--threshold T] --member RECORD=URL … [--dealer-url INDEX=URL …] --out FILE\n\n" +
			"Example:\n" +
			"   polyroot dkg session --domain api.example.com --threshold 2 \\\n" +
			"       --member dta-1.json=https://dta1.example.net:9443 --member dta-2.json=https://dta2.example.net:9443 \\\n" +
			"       --member dta-3.json=https://dta3.example.net:9443 --out session.json",
		Description: "Each --member is a DTA's record (as dta init --dkg wrote it) and the URL where that\n" +
			"DTA will serve its ceremony board (polyroot dta dkg --listen). The index and the\n" +
			"Ed25519 key of each member come from its record. The nonce is fresh, so every\n" +
			"session is new; the epoch counts the domain's key generations and resharings.\n" +
			"The file is public. Its SHA-256 is printed on stdout: send the file to every DTA\n" +
			"and have each operator compare the hash out of band (the ceremony refuses parties\n" +
			"whose session file differs anyway).",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "domain", Aliases: []string{"d"}, Usage: "the `DOMAIN`"},
			&ucli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Usage: "`T`, the DTAs needed to make a key (2 to n; a key generation needs n ≥ 2T−1)", HideDefault: true},
			&ucli.Uint64Flag{Name: "epoch", Value: 1, Usage: "the `EPOCH` of this key generation"},
			&ucli.StringSliceFlag{Name: "member", Aliases: []string{"m"}, Usage: "a DTA: `RECORD=URL`, its record file and its ceremony URL; repeat for each DTA", TakesFile: true},
			&ucli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write the session to `FILE` (never overwritten)", TakesFile: true},
			&ucli.StringFlag{Name: "reshare-from", Usage: "a resharing of the key of the threshold bundle `FILE`: its DTAs deal, the --member DTAs receive " +
				"(domain and, unless given, threshold from the bundle; epoch: the bundle's serial + 2)", TakesFile: true},
			&ucli.StringSliceFlag{Name: "dealer-url", Usage: "in a resharing, `INDEX=URL`: the board of an old DTA that is not a --member (it retires)"},
			&ucli.StringSliceFlag{Name: "skip-dealer", Usage: "in a resharing, the `INDEX` of an old DTA that cannot take part (it does not deal; at least the old threshold must)"},
		},
		Action: dkgSession,
	}
}

func dkgSession(_ context.Context, c *ucli.Command) error {
	domain, t, out, members := c.String("domain"), c.Int("threshold"), c.String("out"), c.StringSlice("member")
	from := c.String("reshare-from")
	switch {
	case domain == "" && from == "":
		return errors.New("dkg session: --domain is required")
	case out == "":
		return errors.New("dkg session: --out is required")
	case len(members) < 2:
		return errors.New("dkg session: give at least two --member RECORD=URL")
	case (t < 2 && (from == "" || t != 0)) || t > len(members):
		return fmt.Errorf("dkg session: --threshold %d: want 2 to %d (the number of members)", t, len(members))
	case from == "" && len(members) < dkg.MinKeyGenMembers(t):
		return fmt.Errorf("dkg session: --threshold %d of %d members: a key generation needs at least 2t−1 = %d members, so that t "+
			"honest ones remain however t−1 collude (with fewer, a coalition below t could bias the key unnoticed): lower the "+
			"threshold to %d or add DTAs", t, len(members), dkg.MinKeyGenMembers(t), (len(members)+1)/2)
	case from == "" && (len(c.StringSlice("dealer-url")) > 0 || len(c.StringSlice("skip-dealer")) > 0):
		return errors.New("dkg session: --dealer-url and --skip-dealer need --reshare-from")
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("dkg session: %s exists; a session file is never overwritten (each session has a fresh nonce)", out)
	}
	var f *dkgnet.SessionFile
	var err error
	if from != "" {
		f, err = reshareSessionFile(c, from)
	} else {
		f = &dkgnet.SessionFile{Version: 1, Domain: domain, Epoch: c.Uint64("epoch"), Threshold: t}
		f.Members, err = sessionMembers(members, domain, nil)
	}
	if err != nil {
		return fmt.Errorf("dkg session: %w", err)
	}
	if f.Threshold > len(f.Members) {
		return fmt.Errorf("dkg session: threshold %d of %d members", f.Threshold, len(f.Members))
	}
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	f.Nonce = hex.EncodeToString(nonce[:])
	js, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if _, err := dkgnet.ParseSessionFile(js); err != nil {
		return fmt.Errorf("dkg session: %w", err)
	}
	if err := writeFileAtomic(out, js, 0o644); err != nil {
		return fmt.Errorf("dkg session: %w", err)
	}
	sum := sha256.Sum256(js)
	if r := f.Reshare; r != nil {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: wrote %s: resharing of %s, epoch %d, %d of %d old DTAs → %d of %d\n",
			out, f.Domain, f.Epoch, r.Threshold, len(r.Dealers), f.Threshold, len(f.Members))
	} else {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: wrote %s: DKG of %s, epoch %d, %d of %d DTAs\n", out, f.Domain, f.Epoch, f.Threshold, len(f.Members))
	}
	_, err = fmt.Fprintln(c.Root().Writer, hex.EncodeToString(sum[:]))
	return err
}

func dtaDKGCommand() *ucli.Command {
	file := &configFile{}
	return &ucli.Command{
		Name:  "dkg",
		Usage: "make this DTA's master share with the other DTAs (distributed key generation, threshold mode)",
		UsageText: "polyroot dta dkg [--config FILE] [keystore flags] --session FILE --record FILE --listen HOST:PORT\n" +
			"       [--start-timeout 5m] [--round-timeout 30s] --transcript-out FILE --record-out FILE\n\n" +
			"Example (on each DTA, all started within --start-timeout of each other):\n" +
			"   export " + envPassphrase + "='…'\n" +
			"   polyroot dta dkg --config /etc/polyroot/dta-1.toml --session session.json --record dta-1.json \\\n" +
			"       --listen 0.0.0.0:9443 --transcript-out transcript.json --record-out dta-1.dkg.json",
		Description: "Runs the DTA's part of the key generation the registrar described in --session\n" +
			"(polyroot dkg session): it serves the ceremony's board on --listen (the URL the\n" +
			"session names for this DTA must reach it) and exchanges signed messages with the\n" +
			"other DTAs' boards. The DTA is the one whose signing key is in the keystore; --record\n" +
			"is its record from dta init --dkg.\n\n" +
			"The ceremony completes only when every DTA confirms the same transcript; only then is\n" +
			"the master share stored in the keystore, and the transcript and the DTA's updated\n" +
			"record (with its commitment C_j) written. On any error nothing is stored: fix the\n" +
			"cause (the error names the DTAs at fault) and rerun with a new session file. A DTA\n" +
			"that sent an inconsistent share is named and excluded, and the ceremony completes\n" +
			"if t others remain. It refuses to run if the keystore already holds a master share.\n" +
			"Send the record and the transcript to the registrar (bundle assemble --mode threshold).",
		Flags: ceremonyFlags(file, "the session `FILE` from the registrar (polyroot dkg session)",
			"this DTA's record `FILE` (dta init --dkg)", "write the DTA's record with its new commitment to `FILE`"),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			return dtaDKG(ctx, c)
		},
	}
}

func dtaDKG(ctx context.Context, c *ucli.Command) error {
	sessPath, recPath, listen := c.String("session"), c.String("record"), c.String("listen")
	trOut, recOut := c.String("transcript-out"), c.String("record-out")
	for _, f := range []struct{ v, name string }{{sessPath, "session"}, {recPath, "record"}, {listen, "listen"}, {trOut, "transcript-out"}, {recOut, "record-out"}} {
		if f.v == "" {
			return fmt.Errorf("dta dkg: --%s is required", f.name)
		}
	}
	for _, out := range []string{trOut, recOut} {
		if err := checkWritable(out); err != nil {
			return fmt.Errorf("dta dkg: %s: %w", out, err)
		}
	}
	p, err := openCeremony(ctx, c, "dta dkg", false)
	if err != nil {
		return err
	}
	sf, rec, ks, desc := p.session, p.record, p.ks, p.desc
	var me *dkgnet.SessionMember
	for k := range sf.Members {
		if sf.Members[k].SigningKey == rec.SigningKey {
			me = &sf.Members[k]
		}
	}
	if me == nil || me.Index != rec.Index {
		return fmt.Errorf("dta dkg: the session has no DTA %d with the signing key of %s", rec.Index, recPath)
	}
	if _, err := ks.Get(ctx, dta.SecretMasterShare); err == nil {
		return fmt.Errorf("dta dkg: %s already holds a master share; a DKG makes a new one only in an empty keystore (dta init --dkg)", desc)
	} else if !errors.Is(err, keystore.ErrNotFound) {
		return fmt.Errorf("dta dkg: %w", err)
	}
	board, addr, stop, err := p.serveBoard(c, "dta dkg")
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: DKG of a key %d of %d, epoch %d; board on %s (session URL %s); waiting for the other %d DTAs\n",
		rec.Index, sf.Domain, sf.Threshold, len(sf.Members), sf.Epoch, addr, me.URL, len(sf.Members)-1)

	res, err := p.run(ctx, c, board, dkgnet.Config{})
	if err != nil {
		return fmt.Errorf("dta dkg: %w; nothing was stored", err)
	}
	if res.Share == nil {
		return fmt.Errorf("dta dkg: DTA %d is not a member of the new committee; nothing to store", rec.Index)
	}
	err = ks.Put(ctx, dta.SecretMasterShare, res.Share.Bytes())
	res.Share.Set(new(pairing.Scalar))
	if err != nil {
		return fmt.Errorf("dta dkg: the ceremony completed but the share could not be stored: %w; the others' shares stay valid (rerun a key generation or resharing to give this DTA one)", err)
	}
	trJSON, err := json.MarshalIndent(res.Transcript, "", "  ")
	if err != nil {
		return err
	}
	out := *rec
	out.Commitment = hex.EncodeToString(res.Commitment.Bytes())
	recJSON, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(trOut, append(trJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("dta dkg: the master share is stored but the transcript could not be written: %w", err)
	}
	if err := writeFileAtomic(recOut, append(recJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("dta dkg: the master share is stored but the record could not be written: %w", err)
	}
	r := res.Transcript.DKG.Result
	for _, f := range r.Faults {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: %s\n", f)
	}
	fmt.Fprintf(c.Root().ErrWriter, "polyroot: DTA %d of %s: DKG complete, %d of %d, qualified dealers %v; master share stored in %s; "+
		"transcript written to %s, record to %s\n", rec.Index, sf.Domain, sf.Threshold, len(sf.Members), r.Qualified, desc, trOut, recOut)
	return nil
}

// checkDKGTranscript checks a threshold bundle against the DKG transcript at path:
// the transcript verifies (every message and every DTA's confirmation), and its domain,
// threshold, members' signing keys and commitments C_j are the bundle's. It sets the
// bundle's TranscriptSHA256 to the hash of the file's bytes, and returns the transcript.
func checkDKGTranscript(path string, b *bundle.Bundle, w io.Writer) (*dkgnet.Transcript, error) {
	raw, err := readSmallFile(path)
	if err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	tr, err := dkgnet.ParseTranscript(raw)
	if err != nil {
		return nil, fmt.Errorf("transcript %s: %w", path, err)
	}
	res, err := tr.Verify()
	if err != nil {
		return nil, fmt.Errorf("transcript %s: %w", path, err)
	}
	s := tr.DKG.Session
	switch {
	case s.Domain != b.Domain:
		return nil, fmt.Errorf("transcript %s is of domain %s, not %s", path, s.Domain, b.Domain)
	case s.Threshold != b.Threshold:
		return nil, fmt.Errorf("transcript %s has threshold %d, not --threshold %d", path, s.Threshold, b.Threshold)
	case len(s.Members) != len(b.DTAs):
		return nil, fmt.Errorf("transcript %s has %d DTAs, the records %d", path, len(s.Members), len(b.DTAs))
	}
	for k, m := range s.Members {
		d := b.DTAs[k] // both sorted by index
		switch {
		case d.Index != m.Index:
			return nil, fmt.Errorf("transcript %s has DTA %d where the records have DTA %d", path, m.Index, d.Index)
		case d.SigningKey != hex.EncodeToString(m.SigningKey):
			return nil, fmt.Errorf("DTA %d's record has another signing key than in transcript %s", d.Index, path)
		case d.Commitment != hex.EncodeToString(res.Commitments[k].Bytes()):
			return nil, fmt.Errorf("DTA %d's record has another commitment than C_%d in transcript %s (use the record dta dkg wrote)", d.Index, d.Index, path)
		}
	}
	sum := sha256.Sum256(raw) // the bundle names the file it was checked against
	b.TranscriptSHA256 = hex.EncodeToString(sum[:])
	for _, f := range res.Faults {
		fmt.Fprintf(w, "polyroot: the key generation names %s\n", f)
	}
	fmt.Fprintf(w, "polyroot: transcript %s verified: confirmed by all %d DTAs, qualified dealers %v; publish it beside the bundle "+
		"(the bundle names it by its SHA-256 %s, which each DTA logs)\n", path, len(s.Members), res.Qualified, b.TranscriptSHA256)
	return tr, nil
}
