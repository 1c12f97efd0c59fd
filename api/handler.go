// Package api implements the CRM's operations: gen.StrictServerInterface over the
// store. Handlers convert between the generated API types and the store's types,
// decide who may do what, and return errors (their own from errors.go, or the
// store's sentinels) for the server package to turn into HTTP problems.
//
// Request validation against openapi.yaml has already happened when a handler
// runs: it only checks what the spec cannot express.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

var _ gen.StrictServerInterface = (*Handler)(nil)

// Config holds what the handlers need.
type Config struct {
	Store     *store.Store
	Tokens    *auth.Tokens
	Passwords *auth.Passwords
	// Secret derives the key that signs list cursors; the JWT secret will do.
	Secret []byte
	// RefreshTTL is the lifetime of a refresh token (and so of a sign-in that
	// keeps refreshing); 30 days when zero.
	RefreshTTL time.Duration
	// Throttle limits failed sign-ins; the zero value means DefaultThrottleLimits.
	Throttle ThrottleLimits
	Logger   *slog.Logger
}

// Handler implements every operation of the API.
type Handler struct {
	store      *store.Store
	tokens     *auth.Tokens
	passwords  *auth.Passwords
	cursors    cursorCodec
	refreshTTL time.Duration
	log        *slog.Logger
	principals *principalCache
	throttle   *throttle
}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{
		store:      cfg.Store,
		tokens:     cfg.Tokens,
		passwords:  cfg.Passwords,
		cursors:    cursorCodec{key: deriveKey(cfg.Secret, "crm list cursors")},
		refreshTTL: cfg.RefreshTTL,
		log:        cfg.Logger,
		principals: newPrincipalCache(),
		throttle:   newThrottle(cfg.Throttle),
	}
	h.throttle.full = func(until time.Time) {
		h.log.Warn("sign-in throttle full of lockouts: sign-ins that need a new counter get 429 until one ends "+
			"(a guessing attack from many addresses, or limits too tight for the traffic)",
			"until", until.UTC().Format(time.RFC3339), "counters", maxThrottleKeys)
	}
	return h
}

// PasswordHashes is how many password hashes the handlers have computed (see
// auth.Passwords.Computed), for the metrics.
func (h *Handler) PasswordHashes() uint64 { return h.passwords.Computed() }

// deriveKey derives a purpose-specific key from the secret, so that one secret
// can sign tokens and cursors without a value valid for one being valid for the
// other.
func deriveKey(secret []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// requestInfo is what handlers need to know of the HTTP request besides its
// parameters: the URL, for the Link headers of lists, and the client's address,
// for login throttling.
type requestInfo struct {
	url      *url.URL
	clientIP string
}

type requestInfoKey struct{}

// WithRequestInfo records the request's URL and client address in ctx.
func WithRequestInfo(ctx context.Context, u *url.URL, clientIP string) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, requestInfo{url: u, clientIP: clientIP})
}

func requestInfoFrom(ctx context.Context) requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	if info.url == nil {
		info.url = &url.URL{}
	}
	return info
}

// parseID turns a path or body id into an ObjectID. The spec's pattern has
// already checked the form, so an error here means a request that bypassed
// validation.
func parseID(s, pointer string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return id, invalidField(pointer, "must be 24 lower-case hex digits")
	}
	return id, nil
}

// etag is the entity tag of a record at revision rev.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// meETag is the entity tag of GET /users/me. That one address shows whoever
// signs in, so its tag names the user as well as the version: with the
// revision alone, a client that switched accounts and sent the last tag it
// saw would be told that the other user's profile had not changed. If-Match
// on the user's own address accepts it too: it names the same version.
func meETag(u *store.User) string {
	return `"` + u.ID.Hex() + "." + strconv.FormatInt(u.Revision, 10) + `"`
}

// parseETags parses an If-Match or If-None-Match header: "*" (star is true) or
// a comma-separated list of entity tags, weak ones keeping their W/ prefix.
func parseETags(header, name string) (tags []string, star bool, err error) {
	header = strings.TrimSpace(header)
	if header == "*" {
		return nil, true, nil
	}
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // an empty list element, which RFC 9110 section 5.6.1 says to accept
		}
		weak := strings.HasPrefix(part, "W/")
		part = strings.TrimPrefix(part, "W/")
		if len(part) < 2 || part[0] != '"' || part[len(part)-1] != '"' || strings.Contains(part[1:len(part)-1], `"`) {
			return nil, false, invalidParameter(name, `must be "*" or entity tags such as "3" (with the quotes)`)
		}
		if weak {
			part = "W/" + part
		}
		tags = append(tags, part)
	}
	if len(tags) == 0 {
		return nil, false, invalidParameter(name, `must be "*" or entity tags such as "3" (with the quotes)`)
	}
	return tags, false, nil
}

// checkIfMatch returns a *PreconditionFailedError unless the If-Match header (if
// any) names the current revision, or is one of the record's other current
// tags (see meETag). If-Match compares strongly: a weak tag never matches.
func checkIfMatch(header *string, rev int64, otherTags ...string) error {
	if header == nil {
		return nil
	}
	tags, anyTag, err := parseETags(*header, "If-Match")
	if err != nil || anyTag {
		return err
	}
	current := etag(rev)
	for _, t := range tags {
		if t == current || slices.Contains(otherTags, t) {
			return nil
		}
	}
	return &PreconditionFailedError{Detail: fmt.Sprintf("The record is at version %s; read it again and retry with that version.", current)}
}

// notModified reports whether the If-None-Match header (if any) names the
// current tag (etag(revision), or meETag). If-None-Match compares weakly.
func notModified(header *string, current string) (bool, error) {
	if header == nil {
		return false, nil
	}
	tags, anyTag, err := parseETags(*header, "If-None-Match")
	if err != nil || anyTag {
		return anyTag, err
	}
	for _, t := range tags {
		if strings.TrimPrefix(t, "W/") == current {
			return true, nil
		}
	}
	return false, nil
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// optional returns a pointer to s, or nil when s is empty: the API omits empty
// optional fields.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// retryStale runs a read-check-write operation again when its write found the
// record changed since the read (store.ErrStale) and the client did not ask for
// a specific version (no If-Match, or "If-Match: *", which any version of an
// existing record meets): the retry re-reads, re-checks permissions and
// re-applies the change to the current version, so no concurrent change is
// lost silently. With If-Match naming versions, a stale write is the client's
// 412. Every round lets at least one of the contending writers through, so
// the budget only runs out under pathological contention, which is answered
// as a busy server.
func retryStale(ifMatch *string, op func() error) error {
	const attempts = 100
	for attempt := range attempts {
		err := op()
		if !errors.Is(err, store.ErrStale) {
			return err
		}
		if ifMatch != nil && strings.TrimSpace(*ifMatch) != "*" {
			return &PreconditionFailedError{Detail: "The record changed since you read it; read it again and retry with its new version."}
		}
		// Jittered backoff, so that the contenders do not collide again in step.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) * int64(1+attempt/10))))
	}
	return ErrBusy
}
