// Package auth holds the CRM's credentials: password hashing (argon2id for new
// hashes, bcrypt hashes from the original CRM still verify) and access tokens
// (HS256 JWTs, RFC 8725 practice). It knows nothing of HTTP or the database.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are argon2id's cost parameters.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// OWASPArgon2 is the OWASP Password Storage Cheat Sheet's first recommended
// configuration for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
var OWASPArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

func (p Argon2Params) String() string {
	return fmt.Sprintf("argon2id m=%d KiB, t=%d, p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
}

const (
	saltLen = 16
	keyLen  = 32
)

// Passwords hashes and verifies passwords with one set of argon2id parameters,
// a few at a time.
type Passwords struct {
	params Argon2Params
	// dummy is a hash of a random password, verified when no user matches a
	// login so that an unknown email costs as much time as a wrong password.
	dummy string
	// slots admits one hash per CPU at a time. Each takes 19 MiB and a CPU for
	// tens of milliseconds: 64 sign-ins at once took 1.1 GiB and made each of
	// them wait for all the others (BenchmarkConcurrentLogins). In line, the
	// memory stays bounded and sign-ins finish in the order they came.
	slots chan struct{}
	// maxWait bounds the wait for a slot; past it, ErrBusy.
	maxWait time.Duration
	// computed counts the hashes computed, new and verified (see Computed).
	computed atomic.Uint64
}

// ErrBusy: so many passwords are being checked that this one would wait too
// long; the client should retry shortly.
var ErrBusy = errors.New("auth: too many password checks at once")

// defaultMaxWait is how long a password check waits in line before ErrBusy.
const defaultMaxWait = 5 * time.Second

// admit waits for a slot, within ctx and maxWait; done gives it back.
func (p *Passwords) admit(ctx context.Context) (done func(), err error) {
	timer := time.NewTimer(p.maxWait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-timer.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// validate keeps the parameters within what argon2 accepts and what Verify will
// agree to compute: the same limits bind new hashes and stored ones, so that no
// hash is ever written that its own verifier refuses.
func (p Argon2Params) validate() error {
	switch {
	case p.Parallelism < 1:
		return errors.New("argon2id: parallelism must be at least 1")
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("argon2id: iterations must be 1 to %d", maxIterations)
	case p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id: memory must be %d KiB to %d KiB", 8*uint32(p.Parallelism), maxMemoryKiB)
	}
	return nil
}

// Limits on argon2id parameters, also for hashes read from the database: a
// planted hash must not make a single login cost gigabytes.
const (
	maxIterations = 100
	maxMemoryKiB  = 256 * 1024
)

// NewPasswords returns a Passwords that hashes with params.
func NewPasswords(params Argon2Params) (*Passwords, error) {
	if err := params.validate(); err != nil {
		return nil, err
	}
	p := &Passwords{params: params, slots: make(chan struct{}, runtime.GOMAXPROCS(0)), maxWait: defaultMaxWait}
	dummy, err := p.Hash(context.Background(), rand.Text())
	if err != nil {
		return nil, err
	}
	p.dummy = dummy
	return p, nil
}

// Computed is how many password hashes were computed so far, to hash a new
// password or to check one against a stored hash: each costs tens of
// milliseconds of a CPU, so their rate is the server's sign-in load, and a
// surge of them is password guessing.
func (p *Passwords) Computed() uint64 { return p.computed.Load() }

// Params returns the argon2id parameters of new hashes.
func (p *Passwords) Params() Argon2Params { return p.params }

// Hash returns the PHC string of password:
// $argon2id$v=19$m=<KiB>,t=<iterations>,p=<lanes>$<salt>$<key>.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	done, err := p.admit(ctx)
	if err != nil {
		return "", err
	}
	defer done()
	p.computed.Add(1)
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(normalizePassword(password)), salt, p.params.Iterations, p.params.MemoryKiB, p.params.Parallelism, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.params.MemoryKiB, p.params.Iterations, p.params.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the stored hash, and whether the hash
// should be replaced by a fresh one (it is bcrypt, or argon2id with other
// parameters). An unparsable hash never matches. err is ErrBusy or ctx's
// error when the check could not be made.
func (p *Passwords) Verify(ctx context.Context, password, hash string) (ok, rehash bool, err error) {
	done, err := p.admit(ctx)
	if err != nil {
		return false, false, err
	}
	defer done()
	p.computed.Add(1)
	normalized := normalizePassword(password)
	ok, rehash = p.verify(normalized, hash)
	if !ok && normalized != password {
		// A hash made before passwords were normalized, of the text as typed
		// then; replaced by one of the normalized text once it matches.
		p.computed.Add(1)
		ok, _ = p.verify(password, hash)
		rehash = ok
	}
	return ok, rehash, nil
}

// normalizePassword is the password in Unicode's NFKC form, as NIST SP
// 800-63B (section 5.1.1.2) recommends: "é" typed as one character or as "e"
// and a combining accent, or a full-width digit, is the same password
// whichever keyboard or system typed it.
func normalizePassword(password string) string { return norm.NFKC.String(password) }

func (p *Passwords) verify(password, hash string) (ok, rehash bool) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		params, salt, key, err := parseArgon2(hash)
		if err != nil {
			return false, false
		}
		got := argon2.IDKey([]byte(password), salt, params.Iterations, params.MemoryKiB, params.Parallelism, uint32(len(key)))
		ok := subtle.ConstantTimeCompare(got, key) == 1
		return ok, ok && params != p.params
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		ok := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
		return ok, ok
	default:
		return false, false
	}
}

// Waste verifies password against a hash that matches nothing, taking as long
// as a real verification (and waiting in line as one).
func (p *Passwords) Waste(ctx context.Context, password string) error {
	_, _, err := p.Verify(ctx, password, p.dummy)
	return err
}

func parseArgon2(hash string) (Argon2Params, []byte, []byte, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return Argon2Params{}, nil, nil, errors.New("argon2id hash: wrong number of fields")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Argon2Params{}, nil, nil, errors.New("argon2id hash: unsupported version")
	}
	var params Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &params.MemoryKiB, &params.Iterations, &params.Parallelism); err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("argon2id hash: parameters: %w", err)
	}
	if err := params.validate(); err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("argon2id hash: %w", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("argon2id hash: salt: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return Argon2Params{}, nil, nil, errors.New("argon2id hash: bad key")
	}
	return params, salt, key, nil
}
