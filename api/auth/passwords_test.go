// Tests for password hashing: the PHC argon2id format and its parameters, random
// salts, verification and the rehash signal, legacy bcrypt hashes, malformed
// hashes (never verify, never panic), Waste, waiting in line for a slot, the
// OWASP parameters, and a benchmark of the production cost (go test -bench
// HashOWASP).
package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// cheapArgon2 keeps the tests fast under the race detector; OWASPArgon2 has its
// own test and benchmark.
var cheapArgon2 = Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

func newTestPasswords(t testing.TB, params Argon2Params) *Passwords {
	t.Helper()
	p, err := NewPasswords(params)
	if err != nil {
		t.Fatalf("NewPasswords(%v): %v", params, err)
	}
	return p
}

func mustHash(t testing.TB, p *Passwords, password string) string {
	t.Helper()
	h, err := p.Hash(context.Background(), password)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return h
}

// verify calls Verify and turns a panic into a test failure naming the hash.
func verify(t *testing.T, p *Passwords, password, hash string) (ok, rehash bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Verify(%q, %q) panicked: %v", password, hash, r)
		}
	}()
	ok, rehash, err := p.Verify(context.Background(), password, hash)
	if err != nil {
		t.Errorf("Verify(%q, %q): %v", password, hash, err)
	}
	return ok, rehash
}

var phcArgon2id = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)

func TestHashFormat(t *testing.T) {
	for _, params := range []Argon2Params{
		cheapArgon2,
		{MemoryKiB: 2048, Iterations: 2, Parallelism: 2},
	} {
		t.Run(params.String(), func(t *testing.T) {
			p := newTestPasswords(t, params)
			if p.Params() != params {
				t.Errorf("Params() = %v, want %v", p.Params(), params)
			}
			const password = "correct horse battery staple"
			h := mustHash(t, p, password)
			m := phcArgon2id.FindStringSubmatch(h)
			if m == nil {
				t.Fatalf("Hash = %q, not a PHC argon2id string", h)
			}
			if got, want := m[1]+","+m[2]+","+m[3], fmt.Sprintf("%d,%d,%d", params.MemoryKiB, params.Iterations, params.Parallelism); got != want {
				t.Errorf("Hash = %q: m,t,p = %s,%s,%s, want %d,%d,%d", h, m[1], m[2], m[3], params.MemoryKiB, params.Iterations, params.Parallelism)
			}
			salt, err := base64.RawStdEncoding.DecodeString(m[4])
			if err != nil || len(salt) != 16 {
				t.Fatalf("salt %q: %d bytes, %v; want 16 bytes of unpadded base64", m[4], len(salt), err)
			}
			key, err := base64.RawStdEncoding.DecodeString(m[5])
			if err != nil || len(key) != 32 {
				t.Fatalf("key %q: %d bytes, %v; want 32 bytes of unpadded base64", m[5], len(key), err)
			}
			// The key really is argon2id over that salt with those parameters,
			// so that any other PHC implementation can verify it.
			want := argon2.IDKey([]byte(password), salt, params.Iterations, params.MemoryKiB, params.Parallelism, 32)
			if !bytes.Equal(key, want) {
				t.Errorf("key is not argon2id(password, salt, %v)", params)
			}
		})
	}
}

// NewPasswords either refuses parameters or makes hashes that it verifies
// itself; it never panics. Parameters that Hash accepts but Verify's parser
// rejects would lock every user out after their next password change.
func TestNewPasswordsParams(t *testing.T) {
	tests := []struct {
		name   string
		params Argon2Params
	}{
		{"zero value", Argon2Params{}},
		{"no iterations", Argon2Params{MemoryKiB: 1024, Iterations: 0, Parallelism: 1}},
		{"no lanes", Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 0}},
		{"no memory", Argon2Params{MemoryKiB: 0, Iterations: 1, Parallelism: 1}},
		{"101 iterations", Argon2Params{MemoryKiB: 8, Iterations: 101, Parallelism: 1}},
		{"cheap", cheapArgon2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("NewPasswords(%+v) panicked: %v; want an error", tt.params, r)
				}
			}()
			p, err := NewPasswords(tt.params)
			if err != nil {
				return // refused: fine
			}
			h := mustHash(t, p, "pw")
			if ok, _ := verify(t, p, "pw", h); !ok {
				t.Errorf("NewPasswords(%+v) accepted parameters whose hashes it cannot verify: %q", tt.params, h)
			}
		})
	}
}

func TestHashSaltIsRandom(t *testing.T) {
	p := newTestPasswords(t, cheapArgon2)
	h1, h2 := mustHash(t, p, "same password"), mustHash(t, p, "same password")
	if h1 == h2 {
		t.Fatalf("two hashes of one password are equal: %q", h1)
	}
	s1, s2 := strings.Split(h1, "$")[4], strings.Split(h2, "$")[4]
	if s1 == s2 {
		t.Errorf("two hashes share the salt %q", s1)
	}
	for _, h := range []string{h1, h2} {
		if ok, _ := verify(t, p, "same password", h); !ok {
			t.Errorf("Verify refuses its own hash %q", h)
		}
	}
}

func TestVerify(t *testing.T) {
	p := newTestPasswords(t, cheapArgon2)
	h := mustHash(t, p, "correct horse battery staple")
	tests := []struct {
		password string
		want     bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"correct horse battery staple ", false},
		{"", false},
	}
	for _, tt := range tests {
		ok, rehash := verify(t, p, tt.password, h)
		if ok != tt.want {
			t.Errorf("Verify(%q) ok = %v, want %v", tt.password, ok, tt.want)
		}
		if rehash {
			t.Errorf("Verify(%q) rehash = true for a hash with the current parameters", tt.password)
		}
	}
}

func TestVerifyEmptyPassword(t *testing.T) {
	p := newTestPasswords(t, cheapArgon2)
	h := mustHash(t, p, "")
	if ok, _ := verify(t, p, "", h); !ok {
		t.Error("the hash of the empty password does not verify it")
	}
	if ok, _ := verify(t, p, "x", h); ok {
		t.Error("the hash of the empty password verifies \"x\"")
	}
}

// TestVerifyNormalizesPasswords: one password, typed on different keyboards
// or systems, is one password (NFKC); hashes of the text as typed, made before
// normalization, still verify it and ask to be replaced.
func TestVerifyNormalizesPasswords(t *testing.T) {
	p := newTestPasswords(t, cheapArgon2)
	const composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
	for _, tc := range []struct{ hashed, typed string }{
		{composed, decomposed},
		{decomposed, composed},
		{"password12", "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12"}, // full-width
	} {
		if ok, rehash := verify(t, p, tc.typed, mustHash(t, p, tc.hashed)); !ok || rehash {
			t.Errorf("hash of %q, typed %q: ok=%v rehash=%v, want true false", tc.hashed, tc.typed, ok, rehash)
		}
	}

	// A hash of the decomposed text itself, as made before normalization.
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(decomposed), salt, cheapArgon2.Iterations, cheapArgon2.MemoryKiB, cheapArgon2.Parallelism, 32)
	b64 := base64.RawStdEncoding
	old := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", cheapArgon2.MemoryKiB, cheapArgon2.Iterations, cheapArgon2.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
	if ok, rehash := verify(t, p, decomposed, old); !ok || !rehash {
		t.Errorf("old hash, typed as then: ok=%v rehash=%v, want true true", ok, rehash)
	}
	if ok, rehash := verify(t, p, "cafe\u0301 au laid", old); ok || rehash {
		t.Errorf("old hash, wrong password: ok=%v rehash=%v, want false false", ok, rehash)
	}
}

func TestVerifyRehash(t *testing.T) {
	const password = "hunter2hunter2"
	current := newTestPasswords(t, cheapArgon2)
	tests := []struct {
		name       string
		madeWith   Argon2Params
		wantRehash bool
	}{
		{"current params", cheapArgon2, false},
		{"less memory", Argon2Params{MemoryKiB: 512, Iterations: 1, Parallelism: 1}, true},
		{"more memory", Argon2Params{MemoryKiB: 2048, Iterations: 1, Parallelism: 1}, true},
		{"more iterations", Argon2Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 1}, true},
		{"more lanes", Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustHash(t, newTestPasswords(t, tt.madeWith), password)
			ok, rehash := verify(t, current, password, h)
			if !ok {
				t.Fatalf("Verify refuses the right password for a hash made with %v", tt.madeWith)
			}
			if rehash != tt.wantRehash {
				t.Errorf("rehash = %v, want %v (hash made with %v, current %v)", rehash, tt.wantRehash, tt.madeWith, cheapArgon2)
			}
			// A wrong password never asks for a rehash: there is nothing to store.
			if ok, rehash := verify(t, current, "wrong", h); ok || rehash {
				t.Errorf("wrong password: ok=%v rehash=%v, want false false", ok, rehash)
			}
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	const password = "legacy password from the original CRM"
	h2a, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h2a), "$2a$") {
		t.Fatalf("bcrypt produced %q, want a $2a$ hash", h2a)
	}
	p := newTestPasswords(t, cheapArgon2)
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(prefix, func(t *testing.T) {
			h := prefix + string(h2a)[len("$2a$"):]
			ok, rehash := verify(t, p, password, h)
			if !ok {
				t.Errorf("Verify refuses the right password for %q", h)
			}
			if !rehash {
				t.Error("a bcrypt hash that verifies must report rehash=true")
			}
			if ok, rehash := verify(t, p, password+"x", h); ok || rehash {
				t.Errorf("wrong password: ok=%v rehash=%v, want false false", ok, rehash)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	const password = "correct horse battery staple"
	p := newTestPasswords(t, cheapArgon2)
	good := mustHash(t, p, password)
	f := strings.Split(good, "$") // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	salt, key := f[4], f[5]
	join := func(fields ...string) string { return strings.Join(fields, "$") }
	bc, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	// Control: the unaltered hash verifies, so each refusal below is caused by
	// the one thing changed.
	if ok, _ := verify(t, p, password, join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt, key)); !ok {
		t.Fatal("control: the rebuilt hash does not verify")
	}

	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"plain text equal to the password", password},
		{"only the prefix", "$argon2id$"},
		{"missing key field", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt)},
		{"extra field", good + "$" + key},
		{"missing version", join("", "argon2id", "m=1024,t=1,p=1", salt, key)},
		{"version 16", join("", "argon2id", "v=16", "m=1024,t=1,p=1", salt, key)},
		{"version 20", join("", "argon2id", "v=20", "m=1024,t=1,p=1", salt, key)},
		{"version not a number", join("", "argon2id", "v=x", "m=1024,t=1,p=1", salt, key)},
		{"params garbled", join("", "argon2id", "v=19", "t=1,m=1024,p=1", salt, key)},
		{"params empty", join("", "argon2id", "v=19", "", salt, key)},
		{"m=0", join("", "argon2id", "v=19", "m=0,t=1,p=1", salt, key)},
		{"t=0", join("", "argon2id", "v=19", "m=1024,t=0,p=1", salt, key)},
		{"p=0", join("", "argon2id", "v=19", "m=1024,t=1,p=0", salt, key)},
		{"m negative", join("", "argon2id", "v=19", "m=-1,t=1,p=1", salt, key)},
		{"m absurd (16 GiB)", join("", "argon2id", "v=19", "m=16777216,t=1,p=1", salt, key)},
		{"m overflows uint32", join("", "argon2id", "v=19", "m=4294967296,t=1,p=1", salt, key)},
		{"m max uint32", join("", "argon2id", "v=19", "m=4294967295,t=1,p=1", salt, key)},
		{"t absurd", join("", "argon2id", "v=19", "m=1024,t=1000000,p=1", salt, key)},
		{"p overflows uint8", join("", "argon2id", "v=19", "m=1024,t=1,p=256", salt, key)},
		{"other params than the key was made with", join("", "argon2id", "v=19", "m=2048,t=1,p=1", salt, key)},
		{"salt bad base64", join("", "argon2id", "v=19", "m=1024,t=1,p=1", "!!!!", key)},
		{"salt padded base64", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt+"==", key)},
		{"key bad base64", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt, "!!!!"+key[4:])},
		{"key empty", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt, "")},
		{"key too short", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt, "AAAA")},
		{"key truncated", join("", "argon2id", "v=19", "m=1024,t=1,p=1", salt, key[:len(key)-4])},
		{"argon2i prefix", join("", "argon2i", "v=19", "m=1024,t=1,p=1", salt, key)},
		{"argon2d prefix", join("", "argon2d", "v=19", "m=1024,t=1,p=1", salt, key)},
		{"upper-case prefix", join("", "ARGON2ID", "v=19", "m=1024,t=1,p=1", salt, key)},
		{"no leading $", good[1:]},
		{"scrypt prefix", "$scrypt$ln=16,r=8,p=1$" + salt + "$" + key},
		{"md5-crypt prefix", "$1$saltsalt$abcdefghijklmnopqrstuv"},
		{"bcrypt $2x$ prefix", "$2x$" + string(bc)[4:]},
		{"bcrypt truncated", string(bc)[:20]},
		{"bcrypt prefix only", "$2a$"},
		{"bcrypt bad cost", "$2a$99$" + string(bc)[7:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash := verify(t, p, password, tt.hash)
			if ok {
				t.Errorf("Verify accepted the malformed hash %q", tt.hash)
			}
			if rehash {
				t.Errorf("Verify asked to rehash the malformed hash %q", tt.hash)
			}
		})
	}
}

func TestWaste(t *testing.T) {
	params := Argon2Params{MemoryKiB: 4096, Iterations: 1, Parallelism: 1}
	p := newTestPasswords(t, params)
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Waste panicked: %v", r)
		}
	}()
	// Waste must do a real argon2id verification (the point is to cost as much
	// as one), so it allocates at least the configured memory.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, pw := range []string{"", "some password", strings.Repeat("x", 1000)} {
		if err := p.Waste(context.Background(), pw); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if got, min := after.TotalAlloc-before.TotalAlloc, uint64(3*params.MemoryKiB)*1024; got < min {
		t.Errorf("3 Waste calls allocated %d bytes, want at least %d (3 argon2id runs at %v)", got, min, params)
	}
	// Nor does it verify anything or change the parameters.
	if p.Params() != params {
		t.Errorf("Params() = %v after Waste, want %v", p.Params(), params)
	}
}

func TestOWASPArgon2(t *testing.T) {
	want := Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}
	if OWASPArgon2 != want {
		t.Errorf("OWASPArgon2 = %+v, want %+v (OWASP: m=19456 KiB, t=2, p=1)", OWASPArgon2, want)
	}
	if got, want := OWASPArgon2.String(), "argon2id m=19456 KiB, t=2, p=1"; got != want {
		t.Errorf("OWASPArgon2.String() = %q, want %q", got, want)
	}
}

// BenchmarkHashOWASP reports what one password hash costs in production; its
// name carries the parameters, so that `make bench` prints them with the cost.
func BenchmarkHashOWASP(b *testing.B) {
	p := newTestPasswords(b, OWASPArgon2)
	b.Run(OWASPArgon2.String(), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Hash(context.Background(), "correct horse battery staple"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Password checks wait in line, one per CPU: one that would wait longer than
// maxWait gets ErrBusy, one whose context ends gets its error, and a slot given
// back lets the next one through.
func TestPasswordChecksWaitInLine(t *testing.T) {
	p := newTestPasswords(t, Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if cap(p.slots) != runtime.GOMAXPROCS(0) {
		t.Errorf("%d slots, want one per CPU (%d)", cap(p.slots), runtime.GOMAXPROCS(0))
	}
	hash := mustHash(t, p, "pw")
	for range cap(p.slots) {
		p.slots <- struct{}{} // every slot taken
	}
	p.maxWait = 20 * time.Millisecond
	if _, err := p.Hash(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash with every slot taken = %v, want ErrBusy", err)
	}
	if _, _, err := p.Verify(context.Background(), "pw", hash); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify with every slot taken = %v, want ErrBusy", err)
	}
	if err := p.Waste(context.Background(), "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("Waste with every slot taken = %v, want ErrBusy", err)
	}
	p.maxWait = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Verify(ctx, "pw", hash); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify with every slot taken and its context cancelled = %v, want context.Canceled", err)
	}

	// A slot given back admits the next check, which waited for it.
	result := make(chan error, 1)
	go func() {
		ok, _, err := p.Verify(context.Background(), "pw", hash)
		if err == nil && !ok {
			err = errors.New("the password did not match")
		}
		result <- err
	}()
	select {
	case err := <-result:
		t.Fatalf("Verify ran with every slot taken: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	<-p.slots
	if err := <-result; err != nil {
		t.Errorf("Verify after a slot was given back: %v", err)
	}
}
