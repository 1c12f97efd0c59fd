package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HS256 key accepted: 256 bits, the hash's size
// (RFC 7518 section 3.2).
const MinSecretLen = 32

// accessTokenType is the JWT "typ" header of access tokens (RFC 9068), checked on
// verification so that no other kind of JWT signed with the same key passes.
const accessTokenType = "at+jwt"

// ErrInvalidToken covers every reason to refuse an access token; the reason is
// in the wrapped error, for the log only.
var ErrInvalidToken = errors.New("invalid access token")

// Tokens issues and verifies access tokens.
type Tokens struct {
	key      []byte
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	parser   *jwt.Parser
}

// TokenConfig configures Tokens.
type TokenConfig struct {
	Secret   []byte        // at least MinSecretLen bytes
	Issuer   string        // "iss", checked on verification
	Audience string        // "aud", checked on verification
	TTL      time.Duration // lifetime of an access token
	Leeway   time.Duration // clock skew tolerated on exp, nbf and iat
}

// NewTokens checks the configuration and returns Tokens.
func NewTokens(cfg TokenConfig) (*Tokens, error) {
	if len(cfg.Secret) < MinSecretLen {
		return nil, fmt.Errorf("the JWT secret must be at least %d bytes, got %d", MinSecretLen, len(cfg.Secret))
	}
	if cfg.TTL <= 0 {
		return nil, errors.New("the access token lifetime must be positive")
	}
	return &Tokens{
		key:      cfg.Secret,
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		ttl:      cfg.TTL,
		leeway:   cfg.Leeway,
		parser: jwt.NewParser(
			// Pinning the algorithm rules out "alg: none" and RS/HS confusion.
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithLeeway(cfg.Leeway),
		),
	}, nil
}

// TTL is the lifetime of the access tokens issued.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// claims are an access token's claims: the registered ones, and the version
// of the user's sign-ins the token belongs to.
type claims struct {
	jwt.RegisteredClaims
	// Version is the user's token version when the token was issued; a new
	// password or a deactivation moves the user to the next version, which
	// ends every access token issued before. Absent means 0.
	Version int64 `json:"ver,omitempty"`
}

// Issue returns a signed access token for the user with id subject, whose
// token version is version.
func (t *Tokens) Issue(subject string, version int64) (string, error) {
	now := time.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{t.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			ID:        rand.Text(),
		},
		Version: version,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["typ"] = accessTokenType
	return tok.SignedString(t.key)
}

// Access is what a verified access token grants.
type Access struct {
	Subject string // the user's id
	Version int64  // the user's token version the token was issued for
	// Until is the token's expiry plus the leeway. Until then, the outcome of
	// verifying this exact token cannot change, which lets a caller remember it.
	Until time.Time
}

// Check verifies an access token's signature, type and claims and returns
// what it grants.
func (t *Tokens) Check(token string) (Access, error) {
	var c claims
	parsed, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil })
	if err != nil {
		return Access{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if typ, _ := parsed.Header["typ"].(string); typ != accessTokenType {
		return Access{}, fmt.Errorf("%w: typ %q", ErrInvalidToken, typ)
	}
	if c.Subject == "" {
		return Access{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return Access{Subject: c.Subject, Version: c.Version, Until: c.ExpiresAt.Add(t.leeway)}, nil
}

// NewRefreshToken returns a new opaque refresh token (256 random bits) and the
// hash under which it is stored.
func NewRefreshToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashRefreshToken(token)
}

// HashRefreshToken returns the stored form of a refresh token. A fast hash is
// right here: the token is 256 random bits, not a guessable password.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewFamily returns a new refresh token family id.
func NewFamily() string { return rand.Text() }
