// Tests for access and refresh tokens: NewTokens' configuration checks, the
// Issue/Check round trip, the JWT's header and claims, every reason Check must
// refuse a token (wrong key, alg none, HS512, RS256, HS/RS key confusion, time
// claims beyond the leeway, iss, aud, typ, subject, garbage), the leeway itself,
// and refresh token generation and hashing.
package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	otherSecret = []byte("another-secret-another-secret-another-secret")
)

const (
	testIssuer   = "crm"
	testAudience = "crm-api"
	testLeeway   = 30 * time.Second
)

func testTokenConfig() TokenConfig {
	return TokenConfig{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, TTL: 15 * time.Minute, Leeway: testLeeway}
}

func newTestTokens(t *testing.T) *Tokens {
	t.Helper()
	tokens, err := NewTokens(testTokenConfig())
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	return tokens
}

func TestNewTokensConfig(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*TokenConfig)
		wantErr bool
	}{
		{"valid", func(*TokenConfig) {}, false},
		{"secret of exactly 32 bytes", func(c *TokenConfig) { c.Secret = []byte(strings.Repeat("s", 32)) }, false},
		{"secret of 31 bytes", func(c *TokenConfig) { c.Secret = []byte(strings.Repeat("s", 31)) }, true},
		{"empty secret", func(c *TokenConfig) { c.Secret = []byte{} }, true},
		{"nil secret", func(c *TokenConfig) { c.Secret = nil }, true},
		{"zero TTL", func(c *TokenConfig) { c.TTL = 0 }, true},
		{"negative TTL", func(c *TokenConfig) { c.TTL = -time.Minute }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testTokenConfig()
			tt.edit(&cfg)
			tokens, err := NewTokens(cfg)
			if tt.wantErr {
				if err == nil {
					t.Fatal("NewTokens succeeded, want an error")
				}
				if tokens != nil {
					t.Error("NewTokens returned Tokens along with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("NewTokens: %v", err)
			}
			if tokens.TTL() != cfg.TTL {
				t.Errorf("TTL() = %v, want %v", tokens.TTL(), cfg.TTL)
			}
		})
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	tokens := newTestTokens(t)
	for _, subject := range []string{"665f1c2e8a4b3c2d1e0f9a8b", "x", "ünïcødé subject"} {
		tok, err := tokens.Issue(subject, 0)
		if err != nil {
			t.Fatalf("Issue(%q): %v", subject, err)
		}
		a, err := tokens.Check(tok)
		got := a.Subject
		if err != nil {
			t.Fatalf("Check(Issue(%q)): %v", subject, err)
		}
		if got != subject {
			t.Errorf("Check(Issue(%q)) = %q", subject, got)
		}
	}
}

func TestTokenVersionRoundTrip(t *testing.T) {
	tokens := newTestTokens(t)
	for _, version := range []int64{0, 1, 41} {
		tok, err := tokens.Issue("user-1", version)
		if err != nil {
			t.Fatal(err)
		}
		a, err := tokens.Check(tok)
		if err != nil {
			t.Fatal(err)
		}
		if a.Subject != "user-1" || a.Version != version {
			t.Errorf("Check(Issue(user-1, %d)) = %q at version %d", version, a.Subject, a.Version)
		}
		// Version 0 is left out: tokens issued before versions existed are
		// at version 0, as are users stored before.
		claims := decodeSegment(t, strings.Split(tok, ".")[1])
		if ver, present := claims["ver"]; present != (version != 0) || (present && ver != float64(version)) {
			t.Errorf("version %d: claim ver = %v (present %v)", version, ver, present)
		}
	}
}

// decodeSegment decodes one base64url segment of a JWT as a JSON object.
func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q is not unpadded base64url: %v", seg, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("segment %s is not a JSON object: %v", raw, err)
	}
	return m
}

func TestIssuedTokenContents(t *testing.T) {
	tokens := newTestTokens(t)
	before := time.Now().Unix()
	tok, err := tokens.Issue("user-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Unix()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", tok, len(parts))
	}

	header := decodeSegment(t, parts[0])
	if header["alg"] != "HS256" {
		t.Errorf("header alg = %v, want HS256", header["alg"])
	}
	if header["typ"] != "at+jwt" {
		t.Errorf("header typ = %v, want at+jwt", header["typ"])
	}

	claims := decodeSegment(t, parts[1])
	for _, name := range []string{"iss", "aud", "sub", "iat", "nbf", "exp", "jti"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("claim %q missing from %v", name, claims)
		}
	}
	if claims["iss"] != testIssuer {
		t.Errorf("iss = %v, want %q", claims["iss"], testIssuer)
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != testAudience {
			t.Errorf("aud = %q, want %q", aud, testAudience)
		}
	case []any:
		if len(aud) != 1 || aud[0] != testAudience {
			t.Errorf("aud = %v, want [%q]", aud, testAudience)
		}
	default:
		t.Errorf("aud = %#v, want %q", claims["aud"], testAudience)
	}
	if claims["sub"] != "user-1" {
		t.Errorf("sub = %v, want user-1", claims["sub"])
	}
	num := func(name string) int64 {
		f, ok := claims[name].(float64)
		if !ok {
			t.Fatalf("claim %s = %#v, want a NumericDate", name, claims[name])
		}
		return int64(f)
	}
	iat, nbf, exp := num("iat"), num("nbf"), num("exp")
	if iat < before || iat > after {
		t.Errorf("iat = %d, want between %d and %d", iat, before, after)
	}
	if nbf != iat {
		t.Errorf("nbf = %d, want iat (%d)", nbf, iat)
	}
	if exp-iat != int64(tokens.TTL()/time.Second) {
		t.Errorf("exp - iat = %ds, want the TTL %v", exp-iat, tokens.TTL())
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Errorf("jti = %#v, want a non-empty string", claims["jti"])
	}

	// Each token gets its own id.
	tok2, err := tokens.Issue("user-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if jti2 := decodeSegment(t, strings.Split(tok2, ".")[1])["jti"]; jti2 == claims["jti"] {
		t.Errorf("two tokens share jti %v", jti2)
	}
}

// validClaims are the claims of a token that Check accepts; the refusal cases
// change one thing at a time.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "user-1",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
		"jti": "test-jti",
	}
}

// signed builds a token with the given method, key, typ header (omitted when
// empty) and claims.
func signed(t *testing.T, method jwt.SigningMethod, key any, typ string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// handBuilt joins a header and claims with a signature without any library.
func handBuilt(t *testing.T, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + sig
}

// with returns a copy of c with the given claims set (nil deletes).
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func TestVerifyRefuses(t *testing.T) {
	tokens := newTestTokens(t)
	now := time.Now()
	good := validClaims(now)
	hs := jwt.SigningMethodHS256

	// Control: the helpers make tokens that Check accepts, so each refusal
	// below is caused by the one thing changed.
	if a, err := tokens.Check(signed(t, hs, testSecret, "at+jwt", good)); err != nil || a.Subject != "user-1" {
		t.Fatalf("control token: Check = %q, %v; want user-1, nil", a.Subject, err)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	valid := signed(t, hs, testSecret, "at+jwt", good)
	vp := strings.Split(valid, ".")
	otherSub := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"crm","aud":"crm-api","sub":"admin","iat":` +
		itoa(now.Unix()) + `,"nbf":` + itoa(now.Unix()) + `,"exp":` + itoa(now.Add(10*time.Minute).Unix()) + `}`))
	beyond := testLeeway + time.Minute

	tests := []struct {
		name  string
		token string
	}{
		{"signed with another key", signed(t, hs, otherSecret, "at+jwt", good)},
		{"alg none, no signature", handBuilt(t, map[string]any{"alg": "none", "typ": "at+jwt"}, good, "")},
		{"alg none, with the real signature", handBuilt(t, map[string]any{"alg": "none", "typ": "at+jwt"}, good, vp[2])},
		{"alg None", handBuilt(t, map[string]any{"alg": "None", "typ": "at+jwt"}, good, "")},
		{"alg missing", handBuilt(t, map[string]any{"typ": "at+jwt"}, good, vp[2])},
		{"HS512 with the right key", signed(t, jwt.SigningMethodHS512, testSecret, "at+jwt", good)},
		{"HS384 with the right key", signed(t, jwt.SigningMethodHS384, testSecret, "at+jwt", good)},
		{"RS256", signed(t, jwt.SigningMethodRS256, rsaKey, "at+jwt", good)},
		{"HS/RS confusion: HS256 keyed with an RSA public key PEM", signed(t, hs, pubPEM, "at+jwt", good)},
		{"expired beyond the leeway", signed(t, hs, testSecret, "at+jwt", with(good,
			"iat", now.Add(-time.Hour).Unix(), "nbf", now.Add(-time.Hour).Unix(), "exp", now.Add(-beyond).Unix()))},
		{"nbf in the future beyond the leeway", signed(t, hs, testSecret, "at+jwt", with(good, "nbf", now.Add(beyond).Unix()))},
		{"iat in the future beyond the leeway", signed(t, hs, testSecret, "at+jwt", with(good, "iat", now.Add(beyond).Unix()))},
		{"missing exp", signed(t, hs, testSecret, "at+jwt", with(good, "exp", nil))},
		{"exp not a number", signed(t, hs, testSecret, "at+jwt", with(good, "exp", "tomorrow"))},
		{"wrong iss", signed(t, hs, testSecret, "at+jwt", with(good, "iss", "someone-else"))},
		{"missing iss", signed(t, hs, testSecret, "at+jwt", with(good, "iss", nil))},
		{"wrong aud", signed(t, hs, testSecret, "at+jwt", with(good, "aud", "other-api"))},
		{"wrong aud list", signed(t, hs, testSecret, "at+jwt", with(good, "aud", []string{"other-api", "more"}))},
		{"missing aud", signed(t, hs, testSecret, "at+jwt", with(good, "aud", nil))},
		{"missing typ", signed(t, hs, testSecret, "", good)},
		{"typ JWT", signed(t, hs, testSecret, "JWT", good)},
		{"typ refresh", signed(t, hs, testSecret, "refresh+jwt", good)},
		{"empty subject", signed(t, hs, testSecret, "at+jwt", with(good, "sub", ""))},
		{"missing subject", signed(t, hs, testSecret, "at+jwt", with(good, "sub", nil))},
		{"payload swapped, signature kept", vp[0] + "." + otherSub + "." + vp[2]},
		{"signature truncated", valid[:len(valid)-2]},
		{"signature removed", vp[0] + "." + vp[1] + "."},
		{"two segments", vp[0] + "." + vp[1]},
		{"four segments", valid + "." + vp[2]},
		{"Bearer prefix left on", "Bearer " + valid},
		{"empty", ""},
		{"garbage", "not a token"},
		{"dots", ".."},
		{"base64 garbage", "a.b.c"},
		{"non-JSON header", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + vp[1] + "." + vp[2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tokens.Check(tt.token)
			sub := a.Subject
			if err == nil {
				t.Fatalf("Check accepted it (subject %q)", sub)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Check error %v is not ErrInvalidToken", err)
			}
			if sub != "" {
				t.Errorf("Check returned subject %q with an error", sub)
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestVerifyLeeway(t *testing.T) {
	tokens := newTestTokens(t)
	now := time.Now()
	within := testLeeway - 20*time.Second // 10 s inside the leeway
	tests := []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"expired by less than the leeway", with(validClaims(now),
			"iat", now.Add(-time.Hour).Unix(), "nbf", now.Add(-time.Hour).Unix(), "exp", now.Add(-within).Unix())},
		{"nbf in the future by less than the leeway", with(validClaims(now), "nbf", now.Add(within).Unix())},
		{"iat in the future by less than the leeway", with(validClaims(now), "iat", now.Add(within).Unix())},
		{"aud as a list containing the audience", with(validClaims(now), "aud", []string{"other", testAudience})},
		{"no nbf", with(validClaims(now), "nbf", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := signed(t, jwt.SigningMethodHS256, testSecret, "at+jwt", tt.claims)
			a, err := tokens.Check(tok)
			sub := a.Subject
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if sub != "user-1" {
				t.Errorf("subject = %q, want user-1", sub)
			}
		})
	}
}

var (
	base64URL43 = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	hex64       = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestNewRefreshToken(t *testing.T) {
	const n = 200
	tokens, hashes := map[string]bool{}, map[string]bool{}
	for range n {
		tok, hash := NewRefreshToken()
		if !base64URL43.MatchString(tok) {
			t.Fatalf("refresh token %q is not 43 base64url characters", tok)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(tok); err != nil || len(raw) != 32 {
			t.Fatalf("refresh token %q: %d bytes, %v; want 32 random bytes", tok, len(raw), err)
		}
		if !hex64.MatchString(hash) {
			t.Fatalf("hash %q is not 64 lower-case hex characters", hash)
		}
		if got := HashRefreshToken(tok); got != hash {
			t.Fatalf("HashRefreshToken(%q) = %q, want the hash NewRefreshToken returned, %q", tok, got, hash)
		}
		if hash == tok {
			t.Fatal("the stored hash is the token itself")
		}
		tokens[tok], hashes[hash] = true, true
	}
	if len(tokens) != n || len(hashes) != n {
		t.Errorf("%d calls gave %d distinct tokens and %d distinct hashes", n, len(tokens), len(hashes))
	}
}

func TestHashRefreshToken(t *testing.T) {
	// Deterministic, and different inputs give different hashes.
	a, b := HashRefreshToken("token-a"), HashRefreshToken("token-b")
	if a != HashRefreshToken("token-a") {
		t.Error("HashRefreshToken is not deterministic")
	}
	if a == b {
		t.Error("two tokens have the same hash")
	}
	// SHA-256 of the empty string: the hash is the standard one, so an operator
	// can compute it with sha256sum.
	if got, want := HashRefreshToken(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("HashRefreshToken(\"\") = %s, want %s", got, want)
	}
}

func TestNewFamily(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		f := NewFamily()
		if len(f) < 16 {
			t.Fatalf("family id %q is too short to be unguessable", f)
		}
		if seen[f] {
			t.Fatalf("NewFamily repeated %q", f)
		}
		seen[f] = true
	}
}
