// Package dkg generates a domain's master key s among its DTAs with no dealer, and
// reshares it to a new committee without changing it. It is the protocol core only:
// it builds, checks and evaluates messages; moving them between DTAs is the caller's.
//
// # Key generation
//
// The protocol is the Pedersen-VSS key generation of Gennaro, Jarecki, Krawczyk and
// Rabin ("Secure distributed key generation for discrete-log based cryptosystems",
// 1999/2007), with t−1 the polynomial degree and n members with indices j (their
// bundle indices). P1 is the G1 generator and H a second generator whose discrete log
// nobody knows: the RFC 9380 hash to G1 of a fixed string under DSTPedersen.
//
//  1. Deal. Each member i draws f_i(x) = Σ a_ik x^k and f'_i(x) = Σ b_ik x^k of degree
//     t−1, publishes C_ik = a_ik·P1 + b_ik·H, and seals (f_i(j), f'_i(j)) to each
//     member j with HPKE (wire.Seal; the context binds the session ID, dealer and
//     recipient).
//  2. Complaint. Each member opens its shares and checks
//     f_i(j)·P1 + f'_i(j)·H = Σ_k j^k·C_ik; it lists the dealers whose share fails.
//  3. Answer. A dealer reveals the complained-about pairs in public.
//     QUAL is the dealers with a well-formed deal and every complaint answered
//     with a pair that verifies, and fewer than t complaints. It needs at least t dealers.
//  4. Feldman. Each qualified dealer publishes A_ik = a_ik·P1.
//  5. Disclose. A member whose share contradicts f_i(j)·P1 = Σ_k j^k·A_ik
//     publishes its pair (f_i(j), f'_i(j)); anyone checks it against C_ik (so it is the
//     true share, as Pedersen commitments bind) and against A_ik (so A_ik are wrong).
//  6. Reveal. For each dealer with missing or contradicted A_ik, members publish their
//     pairs, and everyone interpolates f_i from t of them that verify against C_ik.
//     That dealer stays in QUAL (excluding it now would let it bias the key after
//     seeing the others' A_ik: the attack on Feldman-only DKG that GJKR closes); its
//     contribution becomes public, and the others' keep s secret.
//
// Member j's share is s_j = Σ_{i∈QUAL} f_i(j); the key s = Σ f_i(0) is never held by
// anyone; the public key is s·P1 and the public commitments C_j = s_j·P1 follow from
// the A_ik (and the reconstructed values). These C_j are the bundle's per-DTA
// commitments.
//
// # Resharing
//
// In a resharing (Session.Reshare, after Desmedt–Jajodia and Herzberg et al.) the old
// committee deals to the new one: old member i draws g_i of degree t′−1 with
// g_i(0) = s_i, publishes Feldman commitments A_ik = a_ik·P1 with A_i0 required to
// equal its public commitment C_i, and seals g_i(j) to each new member. Complaints and
// answers run as above; QUAL needs at least the old threshold. New shares are
// s′_j = Σ_{i∈QUAL} λ_i·g_i(j), λ the Lagrange coefficients at 0 over QUAL; the key s
// and s·P1 do not change. Feldman commitments suffice here: the dealt secrets are fixed
// by the old commitments, so there is no key to bias. The new polynomial is fresh, so
// old and new shares do not combine.
//
// # Messages and transcript
//
// Every message carries the session ID (SHA-256 of the domain, epoch, nonce, t, the
// members with their Ed25519 and seal keys and, in a resharing, the old committee and
// commitments) and is signed with the sender's Ed25519 key. The encoding is binary and
// canonical; DecodeMessage rejects identity points, zero or unreduced scalars,
// unsorted or repeated indices, fields foreign to the kind and trailing bytes. Two
// different signed messages of one kind from one sender are equivocation: a dealer
// that equivocates on its deal or answer is excluded, on its Feldman commitments
// reconstructed; a member's equivocating messages are ignored.
//
// The outcome is a deterministic function of the set of messages, so everyone with the
// same messages computes the same QUAL, faults, public key and commitments. A
// Transcript holds the session, every message and the Result; Verify recomputes the
// result, so anyone can check it later, and it names every excluded or reconstructed
// DTA and why.
//
// # Security invariants
//
//   - Secrets (coefficients, shares, the old share) are handled only by
//     pairing.Scalar's constant-time arithmetic and constant-time scalar multiplication;
//     they leave a participant only sealed to one member, or revealed when a complaint
//     forces it (a share the complainer or the dealer could already know).
//   - Fewer than t corrupt members learn nothing about s: every honest dealer's f_i(0)
//     is hidden by t−1 unknown points and, until step 4, by Pedersen hiding.
//   - A dealer never answers t or more complaints: t revealed points would reveal its
//     polynomial, in a resharing its old share. It is excluded instead.
//   - A session completes only with at least t (old threshold in a resharing) qualified
//     dealers; otherwise it fails with a TooFewError naming every excluded dealer.
//   - Each member checks its final share against its public commitment.
//
// # Caveats
//
//   - Broadcast: the package assumes every participant evaluates the same set of
//     messages. The wiring must give that (e.g. a coordinator collects each round and
//     every DTA signs the set's hash before the next), or two DTAs may disagree on QUAL.
//   - Timeouts are the caller's: a message not received by a round's deadline is
//     absent, which excludes a dealer (no deal, no answer) or triggers reconstruction
//     (no Feldman commitments).
//   - Use a fresh seal key per session and erase it afterwards: the sealed shares are
//     in the public transcript, so a seal key stolen later would reveal the shares.
//     Likewise erase the old share after a resharing; the package cannot.
//   - Complaints are not attributable: a member that complains falsely only gets its own
//     share revealed, and the dealer stays qualified. A member that discloses or reveals
//     false shares is named as a fault and ignored.
//   - It is secure against a static adversary corrupting fewer than t members with
//     n ≥ 2t−1 (so that t honest members exist to reconstruct a cheater). GJKR's proof
//     assumes synchronous rounds.
//   - Public checks use the constant-time scalar multiplication too; they are slower
//     than they need to be (about 2.6 s for a whole 16-member key generation run in one
//     process, see BenchmarkDKG).
package dkg
