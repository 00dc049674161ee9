// Package ledger anchors every DTA's transparency log on an Ethereum chain, through the
// IssuanceLog contract.
//
// Each DTA appends its issuance entries to its own Tessera log (internal/translog) and
// signs checkpoints: a size and a root hash. From time to time it sends the latest one to
// IssuanceLog.anchor(logID, size, root), where logID is LogID(origin), the SHA-256 of the
// log's origin line. The contract keeps the latest anchor of each log and emits
// Anchored(logID, size, root, timestamp); an auditor reads those events and checks, with
// consistency proofs from the log itself, that every anchored checkpoint extends the one
// before. A DTA that rewrites or forks the anchored part of its log is then caught; what
// it logged since its last anchor is protected only by its signed checkpoints, so an
// audit reports how far each log runs ahead of its anchors (MaxLag makes that a
// problem, MaxAnchorAge an unanchored entry that has waited too long), and an auditor
// that keeps the checkpoints it verified (AuditConfig.Seen) catches a rollback of the
// unanchored part between two of its audits.
//
// # Files
//
//   - contracts/IssuanceLog.sol: the contract, deliberately tiny.
//
//   - contracts/IssuanceLog.json: its ABI and bytecode from solc 0.8.37 (the npm package,
//     pinned by contracts/package-lock.json), optimizer on (200 runs), EVM "cancun", no
//     metadata hash, so the bytecode depends only on the source. TestContractBuildIsReproducible
//     recompiles it; the code deployed on chain is byte for byte deployedBytecode.
//
//   - issuancelog.go: go-ethereum abigen --v2 bindings (accounts/abi/bind/v2), generated.
//     Use Binding() for the Pack*/Unpack* methods and bind.Transact, bind.Call and
//     bind.FilterEvents with them; Revert decodes the contract's custom errors.
//
//   - chain.go: the chains an anchorer uses — `embedded` (NewEmbedded, in memory) or `rpc`
//     (Dial, any JSON-RPC endpoint, with a key from LoadKeyFile) — and Deploy and Register.
//
//   - anchor.go: the Anchorer a DTA runs (dta serve --chain): it anchors the log's latest
//     verified checkpoint whenever the log grew, with retries, confirmations and reorg
//     handling, and reports its lag.
//
//   - audit.go: Audit and AuditIdentity, behind `polyroot audit`.
//
// `make contracts` regenerates both generated files; `make solc` installs the compiler.
//
// # Security invariants
//
//   - Only hashes and salted identity hashes go on chain: log IDs, Merkle roots and sizes.
//     Nothing about an identity or a share is readable from the chain.
//   - The contract accepts an anchor for a log only from the one address the owner (the
//     deployer) registered for it, and only with a size strictly larger than the last
//     anchored one; a refused anchor changes nothing. An anchor at an already anchored
//     size — the shape of a forked log — is refused, so the first root for a size stands.
//   - The owner can move a log to another address (a DTA's key rotation) or to address(0)
//     (frozen); moving it does not reset its size. The owner cannot change past anchors
//     (the history is the chain's event log), but by registering an address of its own
//     for a log it can anchor that log: an anchor carries no signature of the DTA, so an
//     audit that finds a wrong anchored root cannot tell whether the DTA or whoever held
//     the log's registered address sent it. Guard the owner key as the chain keys.
//   - The contract is a witness, not a verifier: it does not check that a root is the root
//     of a consistent log. The auditor does, from the anchors and the logs' tiles.
//   - Every auditor must read the same contract on the same chain, or a DTA could anchor a
//     fork of its log elsewhere and show it to those pointed there. When the trust bundle
//     names its anchoring (chain ID and contract), Audit, FetchProofBundle and
//     VerifyProofBundle refuse any other contract or chain (CheckAnchoring, ErrAnchoring),
//     and an Anchorer given the chain ID sends no anchor to another chain. Audit and
//     FetchProofBundle also refuse a contract whose code is not DeployedCode (CheckCode,
//     ErrNotIssuanceLog): one with IssuanceLog's ABI and a laxer anchor() would let
//     anyone anchor junk for honest logs.
//   - Sizes only grow, so an anchor at size 2^64−1 (from the log's anchorer, or from an
//     address the owner registers) blocks the log on that contract for good: the only
//     recovery is a new log origin.
//   - An Anchorer given the log's tiles (ReadTile) proves, before each anchor, that the
//     log extends the chain's latest anchor, and refuses (ErrLogMismatch) a log that
//     does not: one restored from an old copy and grown past the anchored size.
//   - An anchor counts for the auditor once its block has AuditConfig.Confirmations
//     confirmations: anchors are read as of that block, not the head.
//   - One DTA or RPC endpoint cannot make an audit run for ever or fill its memory: a
//     log past AuditConfig.MaxEntries (its checkpoint or its last anchor) is not read,
//     and MaxLag does not suffice for that (a DTA that anchors its huge checkpoint has
//     no lag); a log that contradicts an anchor is read no further; past a bound on the
//     anchors read (anchor sizes must grow as they are read) or on the entries of a kind
//     kept (key and server-key entries, revocations, an identity's entries) a log fails;
//     the DTAs are audited at once, each within AuditConfig.DTATimeout from its
//     checkpoint to its last entry, so that one cut off does not hold up the others.
//
// # Caveats
//
//   - The `embedded` chain is go-ethereum's simulated backend (ethclient/simulated): in
//     process and in memory. Its anchors vanish with the process, so it shows the mechanism
//     (devnet, demo, tests) but gives no protection against the operator who runs it. Real
//     deployments anchor on an independent chain over JSON-RPC.
//   - The chain's timestamp is the block's, set by its producer, not a trusted clock.
package ledger
