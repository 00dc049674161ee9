package pairing

import (
	"fmt"
	"io"
)

// Mode says how a domain's master secret s is shared among its DTAs.
type Mode int

const (
	// Additive is n-of-n sharing, the Milagro way: s = Σ s_i, every DTA must answer.
	Additive Mode = iota + 1
	// Threshold is t-of-n Shamir sharing: s_i = f(i), s = f(0); any t DTAs suffice.
	Threshold
)

// String returns "additive" or "threshold".
func (m Mode) String() string {
	switch m {
	case Additive:
		return "additive"
	case Threshold:
		return "threshold"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// LagrangeCoefficients returns λ_i at 0 for each DTA index in indices:
// λ_i = Π_{j≠i} j / (j − i). Indices must be non-zero and distinct. Indices are public,
// so this uses variable-time inversion.
func LagrangeCoefficients(indices []uint32) ([]*Scalar, error) {
	if err := checkIndices(indices); err != nil {
		return nil, err
	}
	out := make([]*Scalar, len(indices))
	for i, xi := range indices {
		num, den := NewScalar(1), NewScalar(1)
		for j, xj := range indices {
			if i == j {
				continue
			}
			num.Mul(num, NewScalar(uint64(xj)))
			den.Mul(den, new(Scalar).Sub(NewScalar(uint64(xj)), NewScalar(uint64(xi))))
		}
		inv, err := new(Scalar).InvertVarTime(den)
		if err != nil {
			return nil, err // unreachable: distinct indices below r
		}
		out[i] = num.Mul(num, inv)
	}
	return out, nil
}

func checkIndices(indices []uint32) error {
	if len(indices) == 0 {
		return fmt.Errorf("%w: no shares", ErrShareSet)
	}
	seen := make(map[uint32]bool, len(indices))
	for _, x := range indices {
		if x == 0 || seen[x] {
			return fmt.Errorf("%w: index %d is zero or repeated", ErrShareSet, x)
		}
		seen[x] = true
	}
	return nil
}

// groupElement is what share combination needs of *G1 and *G2.
type groupElement[T any] interface {
	Mul(*Scalar) T
	Add(T) T
	IsIdentity() bool
}

// Combine returns the combined key from the DTAs' shares: Σ S_i in additive mode,
// Σ λ_i S_i over the given indices in threshold mode. indices[i] is the DTA index of
// shares[i]. It works in constant time on the shares, which are secret. The caller
// checks the shares (DLEQ or VerifyServerShare) and that enough of them are present.
func Combine[T groupElement[T]](mode Mode, indices []uint32, shares []T) (T, error) {
	var zero T
	if len(indices) != len(shares) {
		return zero, fmt.Errorf("%w: %d indices for %d shares", ErrShareSet, len(indices), len(shares))
	}
	if err := checkIndices(indices); err != nil {
		return zero, err
	}
	var coeffs []*Scalar
	switch mode {
	case Additive:
	case Threshold:
		var err error
		if coeffs, err = LagrangeCoefficients(indices); err != nil {
			return zero, err
		}
	default:
		return zero, fmt.Errorf("%w: unknown mode %v", ErrShareSet, mode)
	}
	var sum T
	for i, s := range shares {
		if s.IsIdentity() {
			return zero, fmt.Errorf("%w: share of DTA %d", ErrIdentity, indices[i])
		}
		term := s
		if coeffs != nil {
			term = s.Mul(coeffs[i])
		}
		if i == 0 {
			sum = term
		} else {
			sum = sum.Add(term)
		}
	}
	if sum.IsIdentity() {
		return zero, fmt.Errorf("%w: the shares combine to the identity", ErrIdentity)
	}
	return sum, nil
}

// SplitSecret shares secret with a random polynomial f of degree t−1, f(0) = secret,
// and returns f(1), …, f(n). Any t of them recover secret with LagrangeCoefficients.
func SplitSecret(rand io.Reader, secret *Scalar, t, n int) ([]*Scalar, error) {
	if t < 1 || n < t || n > 1<<16 {
		return nil, fmt.Errorf("%w: cannot split %d of %d", ErrShareSet, t, n)
	}
	coeffs := []*Scalar{new(Scalar).Set(secret)}
	for range t - 1 {
		c, err := RandomScalar(rand)
		if err != nil {
			return nil, err
		}
		coeffs = append(coeffs, c)
	}
	out := make([]*Scalar, n)
	for i := range n {
		x := NewScalar(uint64(i + 1))
		y := new(Scalar)
		for j := len(coeffs) - 1; j >= 0; j-- { // Horner
			y.Mul(y, x).Add(y, coeffs[j])
		}
		out[i] = y
	}
	return out, nil
}
